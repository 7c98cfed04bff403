//! Private RAG end to end: `cargo run --release --example private_rag`.
//!
//! Starts a local three-node cluster (mutual TLS on loopback; or joins `--cluster`), ingests
//! a corpus as the data owner (default: veil's own README and docs), embeds questions as the
//! asker with an offline embedder, retrieves the best chunks privately (MPC on secret shares,
//! or TFHE against one node), checks them against a plaintext search and prints them.

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veil_client::rag::blocked::{self, Mode};
use veil_examples::chunk::{Chunk, ChunkOptions};
use veil_examples::embed::Embedder;
use veil_examples::rag::{Answer, Backend, Corpus, DemoCluster, MpcSearch, Rag};
use veil_examples::{ingest, llm};
use veil_runtime::SecurityMode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Questions asked when none is given and stdin is not a terminal.
const SAMPLE_QUESTIONS: &[&str] = &[
    "How do I start a local cluster?",
    "What does a node learn about my data?",
    "How does the encrypted retrieval path work?",
];

#[derive(Parser)]
#[command(about = "Private retrieval-augmented generation on a veil cluster")]
struct Args {
    /// Retrieval backend: mpc (secret shares on three nodes) or fhe (TFHE against node 0).
    #[arg(long, value_enum, default_value = "mpc")]
    backend: Backend,
    /// Chunks to retrieve per question.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// A question (repeatable). Without it: a prompt on a terminal, else sample questions.
    #[arg(long)]
    question: Vec<String>,
    /// Ingest your own Markdown/text files from this folder (or file) instead of veil's docs.
    #[arg(long, value_name = "DIR", conflicts_with = "synthetic")]
    docs: Option<PathBuf>,
    /// A synthetic corpus of N random chunks (scale test) instead of veil's docs.
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Send the question and the retrieved passages to this OpenAI-compatible endpoint
    /// (http://host:port, e.g. a local llama.cpp or Ollama server) and print its answer.
    #[arg(long, value_name = "URL")]
    llm_url: Option<String>,
    /// Model name sent to --llm-url.
    #[arg(long, default_value = "local")]
    llm_model: String,
    /// Use this running cluster (its cluster.toml; MPC backend) instead of starting one.
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// First port of the local cluster (nodes listen on this and the next two).
    #[arg(long, default_value_t = 7300)]
    base_port: u16,
    /// Security mode of the local cluster: semi-honest, or malicious (a deviating node is
    /// caught before any output is released; slower). A given --cluster runs its own mode.
    #[arg(long, default_value = "semi-honest")]
    security: SecurityMode,
    /// MPC search: exact (every chunk) or clustered (the chunks of the --probe best clusters).
    #[arg(long, value_enum, default_value = "exact")]
    mode: SearchMode,
    /// Clustered mode: clusters built at upload (default: about 1.25·n/R, R ≈ √n).
    #[arg(long)]
    clusters: Option<usize>,
    /// Clustered mode: clusters searched per question (p).
    #[arg(long, default_value_t = 8)]
    probe: usize,
}

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SearchMode {
    Exact,
    Clustered,
}

impl Args {
    /// The MPC layout and mode for `n` chunks; the owner approves the asked k only.
    fn search(&self, n: usize) -> MpcSearch {
        match self.mode {
            SearchMode::Exact => MpcSearch {
                mode: Mode::Exact,
                clusters: None,
                ks: vec![self.k],
            },
            SearchMode::Clustered => {
                let r = blocked::exact_block_rows(n);
                let clusters = self.clusters.unwrap_or((5 * n).div_ceil(4 * r)).clamp(1, n);
                MpcSearch {
                    mode: Mode::Clustered {
                        p: self.probe.min(clusters),
                    },
                    clusters: Some(clusters),
                    ks: vec![self.k],
                }
            }
        }
    }
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn load_chunks(args: &Args) -> Result<Vec<Chunk>> {
    let opts = ChunkOptions::default();
    if let Some(n) = args.synthetic {
        if n == 0 {
            bail!("--synthetic needs at least 1 chunk");
        }
        let texts = veil_node::retrieval_files::synthetic_passages(n, 7);
        return Ok(texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| Chunk {
                source: "synthetic".into(),
                heading: format!("chunk {i}"),
                text: String::from_utf8_lossy(&t).into_owned(),
            })
            .collect());
    }
    let ingested = match &args.docs {
        Some(dir) => ingest::ingest_path(dir, &opts)
            .with_context(|| format!("ingesting {}", dir.display()))?,
        None => ingest::default_corpus(&opts),
    };
    for s in &ingested.skipped {
        eprintln!("  skipped {}: {}", s.path.display(), s.reason);
    }
    eprintln!(
        "ingest: {} files, {} bytes → {} chunks",
        ingested.files,
        ingested.bytes,
        ingested.chunks.len()
    );
    Ok(ingested.chunks)
}

/// The questions to ask: given ones, else a prompt on a terminal, else the samples.
fn questions(args: &Args) -> Box<dyn Iterator<Item = String>> {
    if !args.question.is_empty() {
        return Box::new(args.question.clone().into_iter());
    }
    if !std::io::stdin().is_terminal() {
        return Box::new(SAMPLE_QUESTIONS.iter().map(|q| q.to_string()));
    }
    Box::new(std::iter::from_fn(|| {
        print!("\nquestion (empty line to quit)> ");
        std::io::stdout().flush().ok()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        let q = line.trim().to_string();
        (!q.is_empty()).then_some(q)
    }))
}

fn excerpt(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn print_answer(corpus: &Corpus, a: &Answer, plain_ids: &[usize]) {
    for (rank, h) in a.hits.iter().enumerate() {
        let c = &corpus.chunks[h.doc];
        println!(
            "  {}. [score {:>6}] {} › {}",
            rank + 1,
            h.score,
            c.source,
            if c.heading.is_empty() {
                "-"
            } else {
                &c.heading
            }
        );
        println!("     {}", excerpt(&h.text, 240));
    }
    let ids: Vec<usize> = a.hits.iter().map(|h| h.doc).collect();
    let same = ids == plain_ids;
    println!(
        "  plaintext top-{} {}: {:?}",
        plain_ids.len(),
        if same { "matches" } else { "DIFFERS" },
        plain_ids
    );
    println!(
        "  embed {} · retrieve {} · rounds {} · bytes/node {:?}",
        ms(a.embed_time),
        ms(a.retrieve_time),
        a.rounds,
        a.bytes
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if args.cluster.is_some() && args.backend == Backend::Fhe {
        bail!(
            "--backend fhe needs its corpus served by a node: run without --cluster to start one"
        );
    }
    let total = Instant::now();
    let embedder = Embedder::builtin().context("loading the built-in embedder")?;

    let t = Instant::now();
    let chunks = load_chunks(&args)?;
    let pb = bar(chunks.len(), "embed");
    let corpus = Corpus::embed(chunks, embedder, |d, _| pb.set_position(d as u64))?;
    pb.finish_and_clear();
    let prep_time = t.elapsed();
    eprintln!(
        "embed: {} chunks × {} dims in {} ({} dropped: no known token)",
        corpus.chunks.len(),
        corpus.dim,
        ms(corpus.embed_time),
        corpus.dropped
    );
    if args.k > corpus.chunks.len() {
        bail!(
            "--k {} exceeds the corpus ({} chunks)",
            args.k,
            corpus.chunks.len()
        );
    }

    let search = args.search(corpus.chunks.len());
    if let Some(c) = search.clusters {
        eprintln!("mpc: {c} clusters, {:?}", search.mode);
    }
    let t = Instant::now();
    let local;
    let mut rag = match &args.cluster {
        Some(toml) => {
            eprintln!("cluster: joining {}", toml.display());
            let pb = bar(corpus.chunks.len(), "upload");
            pb.set_length(0);
            let r = Rag::join(toml, toml, &corpus, None, &search, |d, t| {
                pb.set_length(t as u64);
                pb.set_position(d as u64)
            })
            .await?;
            pb.finish_and_clear();
            r
        }
        None => {
            let fhe = (args.backend == Backend::Fhe).then_some(&corpus);
            local = DemoCluster::start(args.base_port, fhe, args.security).await?;
            eprintln!(
                "cluster: 3 nodes on 127.0.0.1:{}-{} (mutual TLS, in this process, {} \
                 sessions){}",
                args.base_port,
                args.base_port + 2,
                args.security,
                if fhe.is_some() {
                    "; node 0 serves the TFHE corpus"
                } else {
                    ""
                }
            );
            let pb = bar(corpus.chunks.len(), "upload");
            let r = Rag::connect(&local, &corpus, &search, |d, t| {
                pb.set_length(t as u64);
                pb.set_position(d as u64)
            })
            .await?;
            pb.finish_and_clear();
            r
        }
    };
    let setup_time = t.elapsed();
    eprintln!(
        "ingest: {} chunks secret-shared into the cluster in {}",
        corpus.chunks.len(),
        ms(rag.ingest_time)
    );

    let (mut asked, mut retrieve, mut rounds, mut bytes) = (0u32, Duration::ZERO, 0u64, [0u64; 3]);
    for q in questions(&args) {
        println!("\nQ: {q}");
        let answer = match rag.ask(embedder, &q, args.k, args.backend).await {
            Ok(a) => a,
            Err(e) => {
                println!("  error: {e}");
                continue;
            }
        };
        let qv = veil_examples::rag::quantise(&embedder.embed(&q)?)?;
        let plain: Vec<usize> = match args.backend {
            // The MPC answer's twin: the same layout (and clusters) in plaintext.
            Backend::Mpc => rag
                .mpc_plaintext(&corpus, &qv, args.k)?
                .iter()
                .map(|d| d.0)
                .collect(),
            Backend::Fhe => corpus
                .plaintext_search(&qv, args.k)
                .iter()
                .map(|d| d.doc as usize)
                .collect(),
        };
        print_answer(&corpus, &answer, &plain);
        if let Some(url) = &args.llm_url {
            let passages: Vec<&str> = answer.hits.iter().map(|h| h.text.as_str()).collect();
            match llm::complete(url, &args.llm_model, &q, &passages) {
                Ok(text) => println!("\nA: {text}"),
                Err(e) => println!("  llm: {e}"),
            }
        }
        asked += 1;
        retrieve += answer.retrieve_time;
        rounds = answer.rounds;
        for (b, x) in bytes.iter_mut().zip(answer.bytes) {
            *b = (*b).max(x);
        }
    }

    println!("\nsummary ({:?} backend, k = {}):", args.backend, args.k);
    println!("  chunk + embed corpus   {}", ms(prep_time));
    println!("  start cluster + ingest {}", ms(setup_time));
    if asked > 0 {
        println!("  questions              {asked}");
        println!("  retrieval per question {}", ms(retrieve / asked));
        if args.backend == Backend::Mpc {
            println!("  rounds per question    {rounds}");
            println!(
                "  bytes sent per node    {:.2} MB / {:.2} MB / {:.2} MB",
                bytes[0] as f64 / 1e6,
                bytes[1] as f64 / 1e6,
                bytes[2] as f64 / 1e6
            );
        }
    }
    println!("  total                  {}", ms(total.elapsed()));
    Ok(())
}
