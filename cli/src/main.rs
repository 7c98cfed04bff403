//! The `veil` command line.
#![forbid(unsafe_code)]

/// MPC moves many multi-megabyte buffers per round; an allocator that keeps freed pages
/// (instead of glibc returning them to the OS and faulting them in again) makes large rounds
/// several times cheaper on the CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
mod bench;

use bench::{BenchOp, FheOp, OpChoice, Params, TransportKind};
use veil_node::config::NodeConfig;

#[derive(Parser)]
#[command(
    name = "veil",
    version,
    about = "veil: privacy-preserving computation on three MPC nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure encrypted ops on three parties beside the same computation in the clear.
    ///
    /// Sizes are each op's natural size: `mul` and `fixmul` — elements of two secret vectors;
    /// `dot` — number of fixed-point dot products of length 384; `matmul` — side n of two
    /// secret n×n fixed-point matrices. `mul` is ring multiplication; `fixmul`, `dot` and
    /// `matmul` are fixed point (16 fractional bits) with truncation. Caps: mul/fixmul 2^25
    /// elements, dot 131,072 products, matmul 2048.
    ///
    /// Comparison ops (exact, checked word for word; not in the default --ops): `ltz` — sign
    /// bits of a secret ring vector (size = elements, default 1,000,000, cap 2^22); `relu` —
    /// max(x, 0) of a secret fixed-point vector (size = elements, default 1,000,000, cap 2^22);
    /// `topk` — the --k largest of n secret fixed-point scores, values and indices, ties to the
    /// lowest index (size = n, default 10,000, cap 2^17); `onehot_gather` — 8 rows of a secret
    /// fixed-point matrix with 96 columns, each picked by its own secret index, one-hot ×
    /// matrix (size = rows, default 100,000, cap 2^18). Throughput counts elements for ltz and
    /// relu, and one query per run for topk and onehot_gather.
    ///
    /// Fixed-point functions (approximations, checked against f64 to within 0.01): `softmax` —
    /// row-wise softmax of a secret matrix with 128 columns (size = rows, default 128, cap
    /// 4096; one matrix per run); `recip` — 1/x of a secret vector with x log-uniform in
    /// [2^-4, 2^12] (size = elements, default 1,000,000, cap 2^22).
    ///
    /// Latency (`chain`, not in the default --ops): `size` dependent multiplications of secret
    /// scalars, one round each (default 100, cap 10,000); prints the session time per round.
    ///
    /// TFHE retrieval (in-process server and client; preparation and hint timed separately):
    /// `fhe_score` — score an encrypted query against `size` synthetic documents of --dim
    /// dimensions (default 100,000; reports server time per query, GEMV GB/s per core, client
    /// encrypt/decode times, upload/download/hint bytes, and plaintext search of the same
    /// corpus); `fhe_fetch` — fetch one of `size` 512-byte passages by linear PIR (default
    /// 10,000).
    ///
    /// Private inference (`mlp`, not in the default --ops): dense ReLU networks 784-128-10 and
    /// 784-128-128-10 and a LeNet-style CNN on 28×28 images (conv 5×5 → 8, ReLU, max pool 2×2,
    /// conv 5×5 → 16, ReLU, max pool 2×2, dense 256 → 10) with seeded random secret weights, on
    /// a devnet (or --cluster) and on the memory transport, beside the f64 reference; --size gives batch sizes (default 1,100).
    /// Reports the user's wall time per request, session time, rounds, bytes, per-layer times,
    /// and the max logit error (fails above 0.05, or on a class change with a clear margin).
    ///
    /// Times are medians over --reps runs. Memory transport: one session (setup excluded),
    /// the slowest party per run. gRPC transport (a devnet started on the fly, or --cluster):
    /// the session time at the slowest node (the program over mTLS peer links; keys come from
    /// the links, no setup round); the client's wall time of the whole Invoke is printed too.
    /// Progress goes to stderr.
    Bench {
        /// Links between the parties.
        #[arg(long, value_enum, default_value = "memory")]
        transport: TransportKind,
        /// Comma-separated ops.
        #[arg(long, value_delimiter = ',', default_value = "mul,dot,matmul,fixmul")]
        ops: Vec<OpChoice>,
        /// Comma-separated sizes (see above); each op runs at each size. Default: each op's
        /// target size — mul/fixmul/ltz/relu/recip 1,000,000, dot/topk 10,000,
        /// matmul/softmax 128, onehot_gather 100,000.
        #[arg(long, value_delimiter = ',')]
        size: Vec<usize>,
        /// How many of the largest scores `topk` returns (1..=size).
        #[arg(long, default_value_t = veil_benches::workload::DEFAULT_TOPK_K)]
        k: usize,
        /// Embedding dimension of `fhe_score`.
        #[arg(long, default_value_t = 384)]
        dim: usize,
        /// Runs per measurement (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Also print where P0's time went, per op and waiting for peers (stderr).
        #[arg(long)]
        breakdown: bool,
        /// With `--transport grpc`: use this running cluster instead of starting a devnet.
        #[arg(long, value_name = "FILE")]
        cluster: Option<PathBuf>,
    },
    /// Run a serialised program (veil-circuits JSON) on a cluster: every input NAME is read
    /// from FILE (one number per line: integers for ring inputs, decimals for fixed point),
    /// secret-shared locally, stored, and the outputs are delivered to you and printed.
    Run {
        /// The program (JSON, as written by `Program::to_json`).
        program: PathBuf,
        /// `NAME=FILE` for every program input.
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// The cluster to use.
        #[arg(long, value_name = "FILE", default_value = "devnet/cluster.toml")]
        cluster: PathBuf,
    },
    /// Run one MPC node (gRPC over mutual TLS) from its configuration file.
    Node {
        /// The node's configuration (`node-<i>.toml`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run a local three-node cluster: writes certificates and configs to --dir, starts the
    /// nodes as child processes (logs in DIR/node-<i>.log) and stops them on Ctrl-C. Keys and
    /// stored data in an existing DIR are kept.
    Devnet {
        /// Directory for certificates, configs, logs and node data.
        #[arg(long, default_value = "devnet")]
        dir: PathBuf,
        /// Number of nodes. veil's protocols are three-party replicated sharing (2-of-3,
        /// honest majority), so 3 is the only value accepted; the flag makes that explicit.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Node i listens on 127.0.0.1:(base-port + i).
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Comma-separated client names; each gets a certificate and DIR/cluster-<name>.toml
        /// (the first also DIR/cluster.toml).
        #[arg(long, value_delimiter = ',', default_value = "alice,bob")]
        clients: Vec<String>,
    },
    /// Prepare a corpus directory for a node's Retrieval service (`[[retrieval]] dir`):
    /// quantise and cluster the embeddings, lay out the scoring matrix, compute its hint, and
    /// optionally do the same for passages. Writes DIR/corpus.bin, DIR/corpus.hint and, with
    /// passages, DIR/passages.bin and DIR/passages.hint. Progress goes to stderr, a summary of
    /// what was written (sizes, database ids, timings) to stdout.
    RetrievalPrepare {
        /// The corpus directory to write (created if needed; existing files are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// N synthetic documents (uniform random embeddings) instead of --embeddings.
        #[arg(long, value_name = "N", conflicts_with = "embeddings")]
        synthetic: Option<usize>,
        /// Embeddings as raw little-endian f32, document after document (needs --dim).
        #[arg(long, value_name = "FILE")]
        embeddings: Option<PathBuf>,
        /// Embedding dimension (default 384 with --synthetic; required with --embeddings).
        #[arg(long)]
        dim: Option<usize>,
        /// Clusters C (default: about √documents, see `Clustering::default_clusters`).
        #[arg(long)]
        clusters: Option<usize>,
        /// k-means iterations for --embeddings (0: random balanced clusters; --synthetic always
        /// uses random balanced clusters).
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// Passages: every *.txt file of DIR, in file-name order (passage i = document i).
        #[arg(long, value_name = "DIR", conflicts_with = "synthetic_passages")]
        passages_dir: Option<PathBuf>,
        /// One synthetic passage per document.
        #[arg(long)]
        synthetic_passages: bool,
        /// Seed of the synthetic data and of the clustering.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> Result<()> {
    init_tracing();
    match Cli::parse().command {
        // The benchmark drives its own threads: keep it off any async runtime.
        Command::Bench {
            transport,
            ops,
            size,
            k,
            dim,
            reps,
            json,
            breakdown,
            cluster,
        } => run_bench(
            transport,
            &ops,
            &size,
            (Params { k }, dim),
            reps,
            Output { json, breakdown },
            cluster,
        ),
        Command::Run {
            program,
            inputs,
            cluster,
        } => runtime()?.block_on(run_program(&program, &inputs, &cluster)),
        Command::Node { config } => runtime()?.block_on(async move {
            let cfg = NodeConfig::load(&config)?;
            veil_node::server::run_node(cfg)
                .await
                .with_context(|| format!("node from {}", config.display()))
        }),
        Command::Devnet {
            dir,
            nodes,
            base_port,
            clients,
        } => {
            if nodes != 3 {
                bail!(
                    "--nodes {nodes}: veil runs three-party replicated secret sharing (2-of-3, \
                     honest majority), so a devnet has exactly 3 nodes"
                );
            }
            if usize::from(base_port) + 2 > usize::from(u16::MAX) {
                bail!("--base-port {base_port}: nodes need ports {base_port}..={base_port}+2");
            }
            let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
            runtime()?.block_on(veil_node::devnet::run_devnet(&dir, base_port, &clients))?;
            Ok(())
        }
        Command::RetrievalPrepare {
            out,
            synthetic,
            embeddings,
            dim,
            clusters,
            iterations,
            passages_dir,
            synthetic_passages,
            seed,
        } => retrieval_prepare(
            &out,
            (synthetic, embeddings, dim),
            (clusters, iterations, seed),
            (passages_dir, synthetic_passages),
        ),
    }
}

/// `veil retrieval-prepare`: embeddings (+ passages) → a corpus directory.
fn retrieval_prepare(
    out: &std::path::Path,
    (synthetic, embeddings, dim): (Option<usize>, Option<PathBuf>, Option<usize>),
    (clusters, iterations, seed): (Option<usize>, usize, u64),
    (passages_dir, synthetic_passages): (Option<PathBuf>, bool),
) -> Result<()> {
    use std::time::Instant;
    use veil_node::retrieval_files as files;
    use veil_runtime::fhe::{Clustering, PassageDb, ScoringCorpus};
    let (emb, dim, synthetic) = match (synthetic, embeddings, dim) {
        (Some(n), None, dim) => {
            let dim = dim.unwrap_or(384);
            eprintln!("retrieval-prepare: generating {n} synthetic embeddings of dimension {dim}…");
            (files::synthetic_embeddings(n, dim, seed), dim, true)
        }
        (None, Some(path), Some(dim)) => (files::read_embeddings_f32(&path, dim)?, dim, false),
        (None, Some(_), None) => bail!("--embeddings needs --dim"),
        _ => bail!("give --synthetic N or --embeddings FILE --dim D"),
    };
    let n = emb.len() / dim.max(1);
    let c = clusters.unwrap_or_else(|| Clustering::default_clusters(n, dim));
    let clustering = if synthetic || iterations == 0 {
        Clustering::RandomBalanced { clusters: c, seed }
    } else {
        Clustering::KMeans {
            clusters: c,
            iterations,
            seed,
        }
    };
    eprintln!("retrieval-prepare: {n} documents × {dim}, {c} clusters ({clustering:?})…");
    let t = Instant::now();
    let corpus = ScoringCorpus::prepare(&emb, dim, clustering).context("preparing the corpus")?;
    drop(emb);
    let prepare_s = t.elapsed().as_secs_f64();
    let passages = match (passages_dir, synthetic_passages) {
        (Some(dir), _) => Some(files::read_passages_dir(&dir)?),
        (None, true) => Some(files::synthetic_passages(n, seed)),
        (None, false) => None,
    };
    let passage_db = match &passages {
        Some(p) => {
            if p.len() != n {
                eprintln!(
                    "retrieval-prepare: warning: {} passages for {n} documents",
                    p.len()
                );
            }
            eprintln!("retrieval-prepare: laying out {} passages…", p.len());
            Some(PassageDb::new(p).context("preparing the passages")?)
        }
        None => None,
    };
    eprintln!(
        "retrieval-prepare: computing hints and writing {}…",
        out.display()
    );
    let w = files::write_corpus_dir(out, &corpus, passage_db.as_ref())?;
    let s = &w.score_shape;
    println!(
        "scoring matrix: {} rows × {} cols, db {} (prepared in {prepare_s:.2} s, hint in {:.2} s)",
        s.rows,
        s.cols,
        hex::encode(s.id.0),
        w.score_hint_time.as_secs_f64()
    );
    if let (Some(p), Some(t)) = (&w.passage_shape, w.passage_hint_time) {
        println!(
            "passage matrix: {} rows × {} passages, db {} (hint in {:.2} s)",
            p.rows,
            p.cols,
            hex::encode(p.id.0),
            t.as_secs_f64()
        );
    }
    for (path, bytes) in &w.files {
        println!("wrote {} ({:.2} MB)", path.display(), *bytes as f64 / 1e6);
    }
    Ok(())
}

/// Logs go to stderr; the filter comes from `VEIL_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VEIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// How `veil bench` prints.
struct Output {
    json: bool,
    breakdown: bool,
}

fn run_bench(
    transport: TransportKind,
    ops: &[OpChoice],
    sizes: &[usize],
    (params, dim): (Params, usize),
    reps: usize,
    output: Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    if ops.is_empty() {
        bail!("give at least one op");
    }
    let mpc: Vec<BenchOp> = ops
        .iter()
        .filter_map(|o| match o {
            OpChoice::Mpc(op) => Some(*op),
            _ => None,
        })
        .collect();
    let fhe: Vec<FheOp> = ops
        .iter()
        .filter_map(|o| match o {
            OpChoice::Fhe(op) => Some(*op),
            _ => None,
        })
        .collect();
    // Every op at every size is checked first, so a bad pair fails before anything runs.
    for &op in &mpc {
        for size in sizes_or(sizes, op.default_size()) {
            bench::check_args(op, size, params)
                .with_context(|| format!("benchmark {op} at size {size}; nothing was run"))?;
        }
    }
    for &op in &fhe {
        for size in sizes_or(sizes, op.default_size()) {
            bench::fhe::check_size(op, size)
                .with_context(|| format!("benchmark {op} at size {size}; nothing was run"))?;
        }
    }
    if !mpc.is_empty() {
        run_mpc_bench(
            transport,
            &mpc,
            sizes,
            params,
            reps,
            &output,
            cluster.clone(),
        )?;
    }
    if !fhe.is_empty() {
        if transport == TransportKind::Grpc {
            eprintln!("veil bench: fhe ops run in-process (server time is what they measure)");
        }
        run_fhe_bench(&fhe, sizes, (params.k, dim), reps, &output)?;
    }
    if ops.contains(&OpChoice::Rag) {
        run_rag_bench(sizes, (params.k, dim), reps, &output, cluster.clone())?;
    }
    if ops.contains(&OpChoice::Mlp) {
        run_mlp_bench(sizes, reps, &output, cluster)?;
    }
    Ok(())
}

/// `--ops mlp`: private inference of dense ReLU networks with secret weights on a devnet
/// (started here unless `--cluster`) and on the memory transport, beside the f64 reference;
/// `--size` gives the batch sizes.
fn run_mlp_bench(
    sizes: &[usize],
    reps: usize,
    Output { json, .. }: &Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    use bench::mlp;
    let batches = if sizes.is_empty() {
        mlp::DEFAULT_BATCHES.to_vec()
    } else {
        sizes.to_vec()
    };
    let rt = runtime()?;
    let (_devnet, toml) = rt.block_on(async { bench::grpc::cluster_or_devnet(cluster, 7800) })?;
    let mut client = rt.block_on(bench::grpc::connect_ready(&toml))?;
    if !json {
        println!(
            "{:<4} {:<15} {:>5} {:>10} {:>10} {:>6} {:>8} {:>10} {:>10} {:>9} {:>9}",
            "op",
            "arch",
            "batch",
            "grpc/req",
            "grpc sess",
            "rounds",
            "KB/node",
            "memory",
            "plaintext",
            "max err",
            "classes"
        );
    }
    for network in mlp::NETWORKS {
        let mut model = rt.block_on(mlp::MlpBench::upload(&mut client, network))?;
        for &batch in &batches {
            eprintln!(
                "veil bench: mlp {} batch {batch} ({reps} requests per transport)…",
                model.arch()
            );
            let r = rt
                .block_on(model.run(&mut client, batch, reps))
                .with_context(|| format!("benchmark mlp {} at batch {batch}", model.arch()))?;
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                let f = bench::fmt_duration;
                println!(
                    "{:<4} {:<15} {:>5} {:>10} {:>10} {:>6} {:>8.1} {:>10} {:>10} {:>9.5} {:>9}",
                    r.op,
                    r.arch,
                    r.batch,
                    f(r.mpc_median_s),
                    f(r.mpc_session_median_s),
                    r.mpc_rounds,
                    r.mpc_bytes_per_node.iter().max().copied().unwrap_or(0) as f64 / 1e3,
                    f(r.memory_median_s),
                    f(r.plaintext_median_s),
                    r.max_abs_logit_error,
                    format!("{}/{}", r.class_matches, r.samples)
                );
                let layers: Vec<String> = r
                    .layers
                    .iter()
                    .map(|l| format!("{} {} ({} r)", l.name, f(l.median_s), l.rounds))
                    .collect();
                eprintln!("  grpc layers (slowest node): {}", layers.join(", "));
                eprintln!(
                    "  weights upload (one-time): {}; classes: {} samples with a clear \
                     margin (> {}) all match",
                    f(r.weights_upload_s),
                    r.clear_margin_samples,
                    mlp::CLEAR_MARGIN
                );
            }
        }
        rt.block_on(model.delete(&mut client))?;
    }
    Ok(())
}

/// `--ops rag`: both RAG backends beside plaintext; MPC on a devnet (started here unless
/// `--cluster`), FHE in this process.
fn run_rag_bench(
    sizes: &[usize],
    (k, dim): (usize, usize),
    reps: usize,
    Output { json, .. }: &Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    let rt = runtime()?;
    let (_devnet, toml) = rt.block_on(async { bench::grpc::cluster_or_devnet(cluster, 7750) })?;
    let mut client = rt.block_on(bench::grpc::connect_ready(&toml))?;
    if !json {
        println!(
            "{:<5} {:>8} {:>4} {:>10} {:>10} {:>7} {:>12} {:>11} {:>11} {:>11}",
            "op",
            "size",
            "k",
            "mpc/query",
            "mpc sess",
            "rounds",
            "MB/node",
            "fhe server",
            "fhe client",
            "plaintext"
        );
    }
    for size in sizes_or(sizes, 10_000) {
        eprintln!("veil bench: rag size {size} dim {dim} k {k} ({reps} queries per backend)…");
        let r = rt
            .block_on(bench::rag::run_rag(&mut client, size, dim, k, reps))
            .with_context(|| format!("benchmark rag at size {size}"))?;
        if *json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            let f = bench::fmt_duration;
            println!(
                "{:<5} {:>8} {:>4} {:>10} {:>10} {:>7} {:>12.2} {:>11} {:>11} {:>11}",
                r.op,
                r.size,
                r.k,
                f(r.mpc_median_s),
                f(r.mpc_session_median_s),
                r.mpc_rounds,
                r.mpc_bytes_per_node.iter().max().copied().unwrap_or(0) as f64 / 1e6,
                f(r.fhe_server_median_s),
                f(r.fhe_client_s),
                f(r.plaintext_median_s)
            );
            eprintln!("  mpc ingest (one-time upload): {}", f(r.mpc_ingest_s));
        }
    }
    Ok(())
}

fn run_fhe_bench(
    ops: &[FheOp],
    sizes: &[usize],
    (k, dim): (usize, usize),
    reps: usize,
    Output { json, .. }: &Output,
) -> Result<()> {
    if !json {
        println!(
            "{:<10} {:>9} {:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9}",
            "op",
            "size",
            "server",
            "GB/s/core",
            "encrypt",
            "decode",
            "upload",
            "download",
            "hint",
            "plaintext",
            "ratio"
        );
    }
    for &op in ops {
        for size in sizes_or(sizes, op.default_size()) {
            eprintln!("veil bench: {op} size {size} ({reps} queries)…");
            let r = match op {
                FheOp::Score => bench::fhe::run_score(size, dim, k, reps),
                FheOp::Fetch => bench::fhe::run_fetch(size, reps),
            }
            .with_context(|| format!("benchmark {op} at size {size}"))?;
            eprintln!(
                "  offline: prepare {}, hint {}; batched ({} queries/pass): {} per query",
                bench::fmt_duration(r.prepare_s),
                bench::fmt_duration(r.hint_s),
                bench::fhe::BATCH,
                bench::fmt_duration(r.batched_per_query_s)
            );
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                let mb = |b: usize| format!("{:.2} MB", b as f64 / 1e6);
                println!(
                    "{:<10} {:>9} {:>11} {:>10.2} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>8.1}×",
                    r.op,
                    r.size,
                    bench::fmt_duration(r.median_s),
                    r.gemv_gb_per_s_per_core,
                    bench::fmt_duration(r.client_encrypt_s),
                    bench::fmt_duration(r.client_decode_s),
                    mb(r.upload_bytes),
                    mb(r.download_bytes),
                    mb(r.hint_bytes),
                    bench::fmt_duration(r.plaintext_median_s),
                    r.ratio_to_plaintext
                );
            }
        }
    }
    Ok(())
}

fn run_mpc_bench(
    transport: TransportKind,
    ops: &[BenchOp],
    sizes: &[usize],
    params: Params,
    reps: usize,
    &Output { json, breakdown }: &Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    // gRPC: a cluster (given, or a devnet started now) and a client connected to it.
    let grpc = match transport {
        TransportKind::Memory => None,
        TransportKind::Grpc => {
            let rt = runtime()?;
            let (devnet, toml) =
                rt.block_on(async { bench::grpc::cluster_or_devnet(cluster, 7700) })?;
            let client = rt.block_on(bench::grpc::connect_ready(&toml))?;
            Some((rt, devnet, client))
        }
    };
    let mut grpc = grpc;
    if !json {
        println!(
            "{:<13} {:>9} {:>11} {:>14} {:>6} {:>14} {:>11} {:>9}",
            "op", "size", "median", "throughput/s", "rounds", "bytes/party", "plaintext", "ratio"
        );
    }
    for &op in ops {
        for size in sizes_or(sizes, op.default_size()) {
            let k = if op == BenchOp::TopK {
                format!(" k {}", params.k)
            } else {
                String::new()
            };
            eprintln!("veil bench: {op} size {size}{k} over {transport:?} ({reps} runs)…");
            let r = match grpc.as_mut() {
                None => bench::run_memory(op, size, params, reps),
                Some((rt, _, client)) => {
                    rt.block_on(bench::grpc::run_grpc(client, op, size, params, reps))
                }
            }
            .with_context(|| format!("benchmark {op} at size {size}"))?;
            if r.rounds > 0 && op == BenchOp::Chain {
                eprintln!(
                    "  per round: {}",
                    bench::fmt_duration(r.median_s / r.rounds as f64)
                );
            }
            if let Some(wall) = r.invoke_wall_median_s {
                eprintln!(
                    "  invoke wall time (incl. storage): {}",
                    bench::fmt_duration(wall)
                );
            }
            if breakdown {
                for (name, secs) in &r.breakdown {
                    eprintln!("  P0 {name:<14} {}", bench::fmt_duration(*secs));
                }
            }
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{:<13} {:>9} {:>11} {:>14.3e} {:>6} {:>14.0} {:>11} {:>8.1}×",
                    r.op,
                    r.size,
                    bench::fmt_duration(r.median_s),
                    r.throughput_per_s,
                    r.rounds,
                    r.bytes_per_party,
                    bench::fmt_duration(r.plaintext_median_s),
                    r.ratio_to_plaintext
                );
            }
        }
    }
    Ok(())
}

/// The sizes given on the command line, or the op's default when none were.
fn sizes_or(sizes: &[usize], default: usize) -> Vec<usize> {
    if sizes.is_empty() {
        vec![default]
    } else {
        sizes.to_vec()
    }
}

/// `veil run`: share the inputs, run the program on the cluster, print the outputs.
async fn run_program(
    program: &std::path::Path,
    inputs: &[String],
    cluster: &std::path::Path,
) -> Result<()> {
    use veil_circuits::{ElemType, Program, Recipient, fixed};
    let json = std::fs::read_to_string(program)
        .with_context(|| format!("reading {}", program.display()))?;
    let mut client = veil_client::Client::connect(cluster).await?;
    let mut p = Program::from_json(&json).context("parsing the program")?;
    for out in &mut p.outputs {
        out.recipient = Recipient::Client(client.name().to_string());
    }
    let p = p.validate().context("validating the program")?;
    let files: std::collections::HashMap<&str, &str> = inputs
        .iter()
        .map(|s| {
            s.split_once('=')
                .with_context(|| format!("--input {s}: expected NAME=FILE"))
        })
        .collect::<Result<_>>()?;
    let tag: u32 = rand::random();
    let mut bindings = Vec::new();
    for decl in &p.program().inputs {
        let file = files
            .get(decl.name.as_str())
            .with_context(|| format!("input '{}' needs --input {}=FILE", decl.name, decl.name))?;
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let words = text
            .split_whitespace()
            .map(|t| match decl.ty.elem {
                ElemType::Fixed(f) => t
                    .parse::<f64>()
                    .map_err(anyhow::Error::from)
                    .and_then(|x| Ok(fixed::encode(x, f)?)),
                _ => t
                    .parse::<i64>()
                    .map(|x| x as u64)
                    .map_err(anyhow::Error::from),
            })
            .collect::<Result<Vec<u64>>>()
            .with_context(|| format!("parsing {file}"))?;
        if words.len() != decl.ty.shape.len() {
            bail!(
                "{file} has {} numbers, input '{}' expects {}",
                words.len(),
                decl.name,
                decl.ty.shape.len()
            );
        }
        let id = format!("run-{tag:08x}-{}", decl.name);
        client.store_secret(&id, &words, &[], &[]).await?;
        bindings.push((decl.name.clone(), id));
    }
    let program_id = client.store_program(&p).await?;
    let binding: Vec<(&str, &str)> = bindings
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_str()))
        .collect();
    let result_id = format!("run-{tag:08x}-result");
    let summary = client.invoke(&program_id, &binding, &result_id).await?;
    let outputs = client.fetch_verified(&result_id, &summary.receipt).await?;
    for out in &p.program().outputs {
        let words = &outputs[&out.name];
        let text: Vec<String> = match p.types()[out.value.index()].elem {
            ElemType::Fixed(f) => words
                .iter()
                .map(|w| fixed::decode(*w, f).to_string())
                .collect(),
            _ => words.iter().map(|w| (*w as i64).to_string()).collect(),
        };
        println!("{} = [{}]", out.name, text.join(", "));
    }
    eprintln!(
        "veil run: {} rounds, bytes sent per node {:?}",
        summary.rounds, summary.bytes_sent
    );
    eprint!(
        "veil run: receipts of program {program_id}, verified against cluster.toml's keys:\n{}",
        summary.receipt
    );
    Ok(())
}
