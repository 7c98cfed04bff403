//! The `veil` command line.
#![forbid(unsafe_code)]

/// MPC moves many multi-megabyte buffers per round; an allocator that keeps freed pages
/// (instead of glibc returning them to the OS and faulting them in again) makes large rounds
/// several times cheaper on the CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use veil_node::bench::{self, BenchOp, Params, TransportKind};

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
    /// Times are medians over --reps runs of one session (setup excluded), the slowest party
    /// per run. Progress goes to stderr.
    Bench {
        /// Links between the parties.
        #[arg(long, value_enum, default_value = "memory")]
        transport: TransportKind,
        /// Comma-separated ops.
        #[arg(long, value_delimiter = ',', default_value = "mul,dot,matmul,fixmul")]
        ops: Vec<BenchOp>,
        /// Comma-separated sizes (see above); each op runs at each size. Default: each op's
        /// target size — mul/fixmul/ltz/relu/recip 1,000,000, dot/topk 10,000,
        /// matmul/softmax 128, onehot_gather 100,000.
        #[arg(long, value_delimiter = ',')]
        size: Vec<usize>,
        /// How many of the largest scores `topk` returns (1..=size).
        #[arg(long, default_value_t = bench::workload::DEFAULT_TOPK_K)]
        k: usize,
        /// Runs per measurement (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Also print where P0's time went, per op and waiting for peers (stderr).
        #[arg(long)]
        breakdown: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench {
            transport,
            ops,
            size,
            k,
            reps,
            json,
            breakdown,
        } => run_bench(transport, &ops, &size, Params { k }, reps, json, breakdown),
    }
}

fn run_bench(
    transport: TransportKind,
    ops: &[BenchOp],
    sizes: &[usize],
    params: Params,
    reps: usize,
    json: bool,
    breakdown: bool,
) -> Result<()> {
    if ops.is_empty() {
        bail!("give at least one op");
    }
    if !json {
        println!(
            "{:<13} {:>9} {:>11} {:>14} {:>6} {:>14} {:>11} {:>9}",
            "op", "size", "median", "throughput/s", "rounds", "bytes/party", "plaintext", "ratio"
        );
    }
    for &op in ops {
        let defaults = [op.default_size()];
        let sizes = if sizes.is_empty() {
            &defaults[..]
        } else {
            sizes
        };
        for &size in sizes {
            let k = if op == BenchOp::TopK {
                format!(" k {}", params.k)
            } else {
                String::new()
            };
            eprintln!("veil bench: {op} size {size}{k} over {transport:?} ({reps} runs)…");
            let r = match transport {
                TransportKind::Memory => bench::run_memory(op, size, params, reps),
            }
            .with_context(|| format!("benchmark {op} at size {size}"))?;
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
