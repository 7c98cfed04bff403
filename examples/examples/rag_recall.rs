//! Recall of clustered retrieval on a real corpus:
//! `cargo run --release -p veil-examples --example rag_recall -- --docs target/corpus/linux-doc`
//! (fetch the corpus first with `examples/tools/fetch_corpus.sh`).
//!
//! Chunks and embeds the corpus as the data owner does (the bundled offline embedder, int8),
//! lays it out in C clusters with [`veil_runtime::cluster::layout_blocks`] (the layout the MPC
//! clustered retrieval stores), and measures, for p = 1, 2, 4, … clusters probed, the recall@k
//! of the clustered algorithm (score the p best centroids' clusters exactly, keep the top k)
//! against the exact top-k over all chunks, plus the fraction of chunks that p clusters hold.
//! Everything is plaintext: the oblivious circuits compute exactly these answers.
//!
//! Queries: `--queries N` held-out chunks (drawn with `--seed`, removed from the corpus before
//! it is embedded) each give one sentence of their body — the first of at least 5 words past
//! the chunk's overlap with its predecessor — as the query text; and, with `--questions FILE`,
//! real questions (one per line, `#` comments) are measured as a second set.

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use veil_examples::chunk::{Chunk, ChunkOptions};
use veil_examples::embed::{EmbedError, Embedder};
use veil_examples::ingest;
use veil_examples::rag::{Corpus, quantise};
use veil_examples::recall::{
    all_scores, clustered_search, probe_counts, query_sentence, rank_blocks, recall_at_k,
};
use veil_runtime::cluster::{BlockLayout, layout_blocks};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Recall@k of clustered retrieval against exact top-k, over the clusters probed")]
struct Args {
    /// Markdown/text files under this folder (or one file); default: veil's own docs.
    #[arg(long, value_name = "DIR", conflicts_with = "synthetic")]
    docs: Option<PathBuf>,
    /// A synthetic corpus of N random passages instead (only a scale check: random text).
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Largest chunk in bytes (heading trail included); the examples' default is 1000.
    #[arg(long, default_value_t = 1000)]
    chunk_bytes: usize,
    /// Bytes of the previous chunk repeated at the start of the next (default: 12 % of
    /// --chunk-bytes, 120 for 1000).
    #[arg(long)]
    overlap_bytes: Option<usize>,
    /// Clusters C (default ⌈√n⌉); a comma-separated list measures each.
    #[arg(long, value_delimiter = ',')]
    clusters: Vec<usize>,
    /// Lloyd iterations of the k-means.
    #[arg(long, default_value_t = 8)]
    iterations: usize,
    /// Held-out chunks used as queries (removed from the corpus).
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Real questions, one per line (blank lines and lines starting with `#` are skipped).
    #[arg(long, value_name = "FILE")]
    questions: Option<PathBuf>,
    /// Results per query.
    #[arg(long, default_value_t = 8)]
    k: usize,
    /// Only chunk the corpus and print the chunk count (no embedding, no measurement).
    #[arg(long)]
    count_only: bool,
    /// Seed of the held-out draw and of the k-means.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn chunk_options(args: &Args) -> Result<ChunkOptions> {
    let defaults = ChunkOptions::default();
    let opts = if args.chunk_bytes == defaults.max_bytes && args.overlap_bytes.is_none() {
        defaults
    } else {
        ChunkOptions {
            max_bytes: args.chunk_bytes,
            overlap_bytes: args.overlap_bytes.unwrap_or(args.chunk_bytes * 12 / 100),
            min_bytes: args.chunk_bytes * 8 / 100,
        }
    };
    opts.validate().context("chunk options")?;
    Ok(opts)
}

fn load_chunks(args: &Args, opts: &ChunkOptions) -> Result<Vec<Chunk>> {
    if let Some(n) = args.synthetic {
        if n == 0 {
            bail!("--synthetic needs at least 1 chunk");
        }
        let texts = veil_node::retrieval_files::synthetic_passages(n, 7);
        return Ok(texts
            .into_iter()
            .map(|t| Chunk {
                source: "synthetic".into(),
                heading: String::new(),
                text: String::from_utf8_lossy(&t).into_owned(),
            })
            .collect());
    }
    let ingested = match &args.docs {
        Some(dir) => ingest::ingest_path(dir, opts)
            .with_context(|| format!("ingesting {}", dir.display()))?,
        None => ingest::default_corpus(opts),
    };
    if !ingested.skipped.is_empty() {
        eprintln!("  skipped {} files, e.g.:", ingested.skipped.len());
        for s in ingested.skipped.iter().take(5) {
            eprintln!("    {}: {}", s.path.display(), s.reason);
        }
    }
    eprintln!(
        "ingest: {} files, {} bytes → {} chunks",
        ingested.files,
        ingested.bytes,
        ingested.chunks.len()
    );
    Ok(ingested.chunks)
}

/// Embeds every chunk on all cores (chunks without a known token are dropped and counted).
fn embed_all(chunks: Vec<Chunk>, embedder: &'static Embedder) -> Result<Corpus> {
    let start = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = chunks.len().div_ceil(threads).max(1);
    let done = AtomicUsize::new(0);
    let pb = bar(chunks.len(), "embed");
    type Part = Result<Vec<Option<Vec<f32>>>, EmbedError>;
    let results: Vec<std::thread::Result<Part>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .chunks(per)
            .map(|part| {
                let done = &done;
                s.spawn(move || {
                    part.iter()
                        .map(|c| {
                            let e = match embedder.embed(&c.text) {
                                Ok(e) => Ok(Some(e)),
                                Err(EmbedError::NoTokens) => Ok(None),
                                Err(e) => Err(e),
                            };
                            done.fetch_add(1, Ordering::Relaxed);
                            e
                        })
                        .collect()
                })
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) {
            pb.set_position(done.load(Ordering::Relaxed) as u64);
            std::thread::sleep(Duration::from_millis(200));
        }
        handles.into_iter().map(|h| h.join()).collect()
    });
    pb.finish_and_clear();
    let mut vectors = Vec::with_capacity(chunks.len());
    for part in results {
        let part = part.map_err(|_| anyhow::anyhow!("an embedding thread panicked"))?;
        vectors.extend(part.context("embedding")?);
    }
    let (mut kept, mut embeddings, mut dropped) = (Vec::new(), Vec::new(), 0);
    for (c, e) in chunks.into_iter().zip(vectors) {
        match e {
            Some(e) => {
                embeddings.extend(e);
                kept.push(c);
            }
            None => dropped += 1,
        }
    }
    Ok(Corpus::from_embeddings(
        kept,
        embeddings,
        embedder.dim(),
        dropped,
        start.elapsed(),
    )?)
}

/// Per probe count: recall sum, chunks scored sum, queries with full recall.
struct Sweep {
    probes: Vec<usize>,
    recall: Vec<f64>,
    scored: Vec<usize>,
    perfect: Vec<usize>,
    queries: usize,
}

impl Sweep {
    fn new(probes: Vec<usize>) -> Self {
        let m = probes.len();
        Sweep {
            probes,
            recall: vec![0.0; m],
            scored: vec![0; m],
            perfect: vec![0; m],
            queries: 0,
        }
    }

    fn add(&mut self, layout: &BlockLayout, corpus: &Corpus, query: &[i8], k: usize) {
        let exact = corpus.plaintext_search(query, k);
        let scores = all_scores(&corpus.quant, corpus.dim, query);
        let order = rank_blocks(layout, query);
        for (i, &p) in self.probes.iter().enumerate() {
            let got = clustered_search(layout, &order, &scores, p, k);
            let r = recall_at_k(&exact, &got.hits);
            self.recall[i] += r;
            self.scored[i] += got.scored;
            self.perfect[i] += usize::from(r == 1.0);
        }
        self.queries += 1;
    }

    fn print(&self, title: &str, layout: &BlockLayout, k: usize) {
        let n = layout.documents() as f64;
        let q = self.queries.max(1) as f64;
        println!("{title}: {} queries, k = {k}", self.queries);
        println!(
            "  {:>6} {:>9} {:>10} {:>12} {:>10} {:>10}",
            "p",
            "clusters",
            "scored",
            "padded p·R",
            format!("recall@{k}"),
            "all found"
        );
        for (i, &p) in self.probes.iter().enumerate() {
            println!(
                "  {:>6} {:>8.2}% {:>9.2}% {:>11.2}% {:>10.3} {:>9.1}%",
                p,
                100.0 * p as f64 / layout.blocks() as f64,
                100.0 * self.scored[i] as f64 / q / n,
                100.0 * (p * layout.block_rows) as f64 / n,
                self.recall[i] / q,
                100.0 * self.perfect[i] as f64 / q
            );
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let total = Instant::now();
    let embedder = Embedder::builtin().context("loading the built-in embedder")?;
    let opts = chunk_options(&args)?;

    let t = Instant::now();
    let mut chunks = load_chunks(&args, &opts)?;
    let chunk_time = t.elapsed();
    if args.count_only {
        println!("{} chunks in {}", chunks.len(), secs(chunk_time));
        return Ok(());
    }

    // Held-out queries: drawn, removed from the corpus, one sentence of each kept.
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.shuffle(&mut rng);
    let mut held = Vec::new();
    let mut held_ids = Vec::new();
    for &i in &order {
        if held.len() == args.queries || chunks.len() - held_ids.len() <= args.k {
            break;
        }
        let c = &chunks[i];
        if let Some(s) = query_sentence(&c.text, !c.heading.is_empty(), opts.overlap_bytes, 5, 300)
        {
            held.push(s);
            held_ids.push(i);
        }
    }
    let mut is_held = vec![false; chunks.len()];
    held_ids.iter().for_each(|&i| is_held[i] = true);
    let mut held_flags = is_held.into_iter();
    chunks.retain(|_| !held_flags.next().unwrap_or(false));
    let questions: Vec<String> = match &args.questions {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    eprintln!(
        "queries: {} held-out sentences, {} questions; corpus {} chunks",
        held.len(),
        questions.len(),
        chunks.len()
    );

    let corpus = embed_all(chunks, embedder)?;
    let n = corpus.chunks.len();
    eprintln!(
        "embed: {n} chunks × {} dims in {} ({} dropped: no known token)",
        corpus.dim,
        secs(corpus.embed_time),
        corpus.dropped
    );
    if n <= args.k {
        bail!("the corpus has {n} chunks, not more than k = {}", args.k);
    }

    // Embed every query once; the sets are measured against each clustering.
    let mut sets: Vec<(&str, Vec<Vec<i8>>)> = Vec::new();
    for (title, texts) in [("held-out sentences", &held), ("questions", &questions)] {
        let mut qs = Vec::with_capacity(texts.len());
        for text in texts {
            match embedder.embed(text) {
                Ok(e) => qs.push(quantise(&e)?),
                Err(EmbedError::NoTokens) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !qs.is_empty() {
            sets.push((title, qs));
        }
    }

    let cluster_counts = if args.clusters.is_empty() {
        vec![(n as f64).sqrt().ceil() as usize]
    } else {
        args.clusters.clone()
    };
    let (mut cluster_time, mut eval_time) = (Duration::ZERO, Duration::ZERO);
    for clusters in cluster_counts {
        let clusters = clusters.clamp(1, n);
        eprintln!(
            "cluster: k-means of {n} chunks into {clusters} clusters ({} iterations)…",
            args.iterations
        );
        let t = Instant::now();
        let layout = layout_blocks(
            &corpus.quant,
            corpus.dim,
            clusters,
            args.iterations,
            args.seed,
        )?;
        let took = t.elapsed();
        cluster_time += took;
        let sizes = layout.block_sizes();
        let (min, max) = (
            sizes.iter().min().copied().unwrap_or(0),
            sizes.iter().max().copied().unwrap_or(0),
        );
        println!(
            "\nC = {} clusters of R = {} rows (sizes {min}..={max}, {} empty; mean n/C = {:.0}), \
             k-means {}",
            layout.blocks(),
            layout.block_rows,
            sizes.iter().filter(|&&s| s == 0).count(),
            n as f64 / layout.blocks() as f64,
            secs(took)
        );
        let t = Instant::now();
        for (title, queries) in &sets {
            let mut sweep = Sweep::new(probe_counts(layout.blocks()));
            let pb = bar(queries.len(), "queries");
            for q in queries {
                sweep.add(&layout, &corpus, q, args.k);
                pb.inc(1);
            }
            pb.finish_and_clear();
            sweep.print(title, &layout, args.k);
        }
        eval_time += t.elapsed();
    }

    println!(
        "\ncorpus: {n} chunks × {} dims; time: chunk {} · embed {} · k-means {} · queries {} · \
         total {}",
        corpus.dim,
        secs(chunk_time),
        secs(corpus.embed_time),
        secs(cluster_time),
        secs(eval_time),
        secs(total.elapsed())
    );
    Ok(())
}
