//! The `veil` command line.
#![forbid(unsafe_code)]

/// MPC moves many multi-megabyte buffers per round; an allocator that keeps freed pages
/// (instead of glibc returning them to the OS and faulting them in again) makes large rounds
/// several times cheaper on the CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
mod bench;
mod cmd;

use bench::{OpChoice, Params, TransportKind};
use veil_runtime::SecurityMode;

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
    /// --ops picks the ops and --size their sizes, each in the op's own measure. The MPC ops
    /// (what each computes, what its size counts, its default and cap, what its throughput
    /// counts and how its result is checked) are listed after the options; the other ops
    /// follow here.
    ///
    /// TFHE retrieval (in-process server and client; preparation and hint timed separately):
    /// `fhe_score` — score an encrypted query against `size` synthetic documents of --dim
    /// dimensions (default 100,000; reports server time per query, GEMV GB/s per core, client
    /// encrypt/decode times, upload/download/hint bytes, and plaintext search of the same
    /// corpus); `fhe_fetch` — fetch one of `size` 512-byte passages by linear PIR (default
    /// 10,000).
    ///
    /// Private RAG (`rag`, not in the default --ops): one query for the --k nearest of `size`
    /// synthetic documents of --dim dimensions (default 10,000), by MPC on a devnet (or
    /// --cluster) and by TFHE in this process, beside plaintext.
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
        #[arg(long, value_delimiter = ',', default_value = bench::DEFAULT_OPS.as_str())]
        ops: Vec<OpChoice>,
        /// Comma-separated sizes (what a size counts depends on the op; see the op list); each
        /// op runs at each size. Default: each op's own default size.
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
        /// Where this process's kernels run: `cpu`, `cuda` or `cuda:N` (needs a build with
        /// `--features gpu`); with a GPU, each kernel is first timed on the CPU and the GPU side
        /// by side. Default: `VEIL_DEVICE`, else the CPU.
        #[arg(long, value_name = "cpu|cuda|cuda:N")]
        device: Option<veil_runtime::device::Device>,
        /// With `--transport grpc`: use this running cluster instead of starting a devnet.
        #[arg(long, value_name = "FILE")]
        cluster: Option<PathBuf>,
        /// `rag`: comma-separated link profiles to plan the top-k for (loopback keeps the
        /// comparator network, wan picks rank selection); the queries alternate between them
        /// and each gets a row.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "loopback")]
        link: Vec<bench::LinkChoice>,
        /// `rag`: comma-separated retrieval modes, each a row: `exact` (every chunk a candidate)
        /// and `clustered` (the chunks of the `--probe` clusters whose centroids score best).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "exact")]
        mode: Vec<bench::rag::RagMode>,
        /// `rag --mode clustered`: clusters of the corpus (default: about 1.25·n/R, R ≈ √n).
        #[arg(long)]
        clusters: Option<usize>,
        /// `rag --mode clustered`: clusters searched per query (p).
        #[arg(long, default_value_t = 8)]
        probe: usize,
        /// `rag`: skip the TFHE path (it builds its own encrypted index of the corpus).
        #[arg(long)]
        no_fhe: bool,
        /// Comma-separated security modes of the MPC sessions, each its own row of every op
        /// and size (on both transports; a devnet per mode with `--transport grpc`, `rag` and
        /// `mlp`): `semi-honest`, `malicious`. In malicious mode a workload whose program has
        /// an op without a maliciously secure protocol yet is skipped with a note. With
        /// `--cluster`, the cluster's nodes must run the mode asked for.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "semi-honest",
            value_name = "MODE[,MODE]"
        )]
        security: Vec<SecurityMode>,
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
    /// Write an example program JSON for `veil run`, or check one (validation, id, inputs,
    /// outputs, rounds and bytes). The format is in docs/programs.md; examples/programs/ has the
    /// examples with input files.
    Program {
        #[command(subcommand)]
        action: ProgramAction,
    },
    /// Run one MPC node (gRPC over mutual TLS) from its configuration file.
    Node {
        /// The node's configuration (`node-<i>.toml`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Keep the store here instead of the config's `data_dir` (e.g. a writable volume when
        /// the configuration is mounted read-only in a container).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check nodes with the gRPC health service over mutual TLS; exits non-zero unless every
    /// checked node is SERVING. `--config node.toml` checks that node from its own host with
    /// its own certificate (a container health check); `--cluster cluster.toml` checks all
    /// three nodes as that client.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["config", "cluster"])))]
    Health {
        /// A node's configuration: check that node at its listen port on this host.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A client's cluster configuration: check all three nodes.
        #[arg(long, value_name = "FILE")]
        cluster: Option<PathBuf>,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Run a local three-node cluster: writes certificates and configs to --dir, starts the
    /// nodes as child processes (logs in DIR/node-<i>.log) and stops them on Ctrl-C. Keys and
    /// stored data in an existing DIR are kept.
    ///
    /// With --hosts H0,H1,H2 it only writes certificates and configs for three nodes on three
    /// machines and exits: node i listens on every interface at port base-port + i (or the
    /// port given as Hi:PORT), peers and clients dial Hi, and node i's certificate also names
    /// Hi. See deploy/README.md for which files go to which host.
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
        /// Comma-separated hosts of nodes 0, 1, 2 (DNS names or IP addresses, each optionally
        /// with :PORT, IPv6 as [ADDR]:PORT): write a multi-host layout and exit.
        #[arg(long, value_delimiter = ',', value_name = "H0,H1,H2")]
        hosts: Vec<String>,
        /// The nodes' security mode (`security` in every node-<i>.toml): `semi-honest`, or
        /// `malicious` (security with abort; programs with an op that has no maliciously
        /// secure protocol yet are refused).
        #[arg(long, default_value = "semi-honest", value_name = "MODE")]
        security: SecurityMode,
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

#[derive(Subcommand)]
enum ProgramAction {
    /// Write an example program: mul, dot, compare or mean.
    Example {
        /// Which example: `mul` (x ⊙ y, ring), `dot` (fixed-point dot product), `compare`
        /// (x > y and max, ring) or `mean` (fixed-point mean).
        name: String,
        /// Elements of each input vector.
        #[arg(long, default_value_t = 4)]
        size: usize,
        /// The client every output goes to (`veil run` readdresses outputs to its caller).
        #[arg(long, default_value = "alice")]
        client: String,
        /// Where to write it (stdout if not given).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Validate a program JSON and print its id, inputs, outputs and cost.
    Check {
        /// The program (JSON).
        program: PathBuf,
    },
}

fn main() -> Result<()> {
    init_tracing();
    let mut matches = command().get_matches();
    let cli =
        Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command()).exit());
    match cli.command {
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
            device,
            cluster,
            link,
            mode,
            clusters,
            probe,
            no_fhe,
            security,
        } => {
            // Each mode once, in the order given.
            let mut modes = Vec::new();
            for mode in security {
                if !modes.contains(&mode) {
                    modes.push(mode);
                }
            }
            if let Some(device) = device {
                cmd::device::use_device(device, reps, json)?;
            }
            cmd::bench::run_bench(
                transport,
                &ops,
                &size,
                (Params { k }, dim),
                reps,
                cmd::bench::Output {
                    json,
                    breakdown,
                    links: link,
                    rag: bench::rag::RagOptions {
                        modes: mode,
                        clusters,
                        probe,
                        fhe: !no_fhe,
                    },
                    security: modes,
                },
                cluster,
            )
        }
        Command::Run {
            program,
            inputs,
            cluster,
        } => runtime()?.block_on(cmd::run::run_program(&program, &inputs, &cluster)),
        Command::Program { action } => match action {
            ProgramAction::Example {
                name,
                size,
                client,
                out,
            } => cmd::program::write_example(&name, size, &client, out.as_deref()),
            ProgramAction::Check { program } => cmd::program::check(&program),
        },
        Command::Node { config, data_dir } => {
            runtime()?.block_on(cmd::node::run(&config, data_dir))
        }
        Command::Health {
            config,
            cluster,
            timeout,
        } => runtime()?.block_on(cmd::health::run(
            config.as_deref(),
            cluster.as_deref(),
            std::time::Duration::from_secs(timeout),
        )),
        Command::Devnet {
            dir,
            nodes,
            base_port,
            clients,
            hosts,
            security,
        } if !hosts.is_empty() => {
            cmd::devnet::write_hosts(&dir, nodes, base_port, &clients, &hosts, security)
        }
        Command::Devnet {
            dir,
            nodes,
            base_port,
            clients,
            hosts: _,
            security,
        } => runtime()?.block_on(cmd::devnet::run(&dir, nodes, base_port, &clients, security)),
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
        } => cmd::prepare::retrieval_prepare(
            &out,
            (synthetic, embeddings, dim),
            (clusters, iterations, seed),
            (passages_dir, synthetic_passages),
        ),
    }
}

/// The command line: the derived [`Cli`] with the op lists of `veil bench -h` and `--help`
/// generated from the op table.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("bench", |c| {
        c.after_help(bench::ops_short_help())
            .after_long_help(bench::ops_long_help())
    })
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

/// A multi-threaded tokio runtime for the commands that talk gRPC.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent_and_lists_the_ops() {
        command().debug_assert();
        let mut cmd = command();
        cmd.build();
        let bench = cmd.find_subcommand_mut("bench").expect("bench");
        let long = bench.render_long_help().to_string();
        for op in &bench::OPS {
            assert!(long.contains(op.about), "{op}");
        }
        assert!(long.contains("[default: mul,dot,matmul,fixmul]"));
    }
}
