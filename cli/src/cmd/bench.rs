//! `veil bench`: run the selected ops at the selected sizes and print a table or JSON lines.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::runtime;

use crate::bench::{self, BenchError, BenchOp, FheOp, OpChoice, Params, TransportKind};
use veil_runtime::SecurityMode;

/// How `veil bench` prints.
pub struct Output {
    /// One JSON object per line instead of a table.
    pub json: bool,
    /// Per-op time breakdown after each MPC result.
    pub breakdown: bool,
    /// `rag`: the link profiles to plan the top-k for (one row each, queries alternating).
    pub links: Vec<bench::LinkChoice>,
    /// `rag`: modes, clusters, probe and whether to run the TFHE path.
    pub rag: bench::rag::RagOptions,
    /// The security modes to measure (`--security`), each its own row of every op and size.
    pub security: Vec<SecurityMode>,
}

/// Whether a benchmark error is a workload that does not run in malicious mode: printed as a
/// note and skipped, so the other rows still run.
fn skipped(e: &BenchError) -> bool {
    matches!(e, BenchError::NotMalicious { .. })
}

pub fn run_bench(
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
        for size in sizes_or(sizes, op.default_size) {
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
/// (started here, one per security mode, unless `--cluster`) and on the memory transport,
/// beside the f64 reference; `--size` gives the batch sizes.
fn run_mlp_bench(
    sizes: &[usize],
    reps: usize,
    Output { json, security, .. }: &Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    use bench::mlp;
    let batches = if sizes.is_empty() {
        mlp::DEFAULT_BATCHES.to_vec()
    } else {
        sizes.to_vec()
    };
    let rt = runtime()?;
    if !json {
        println!(
            "{:<4} {:<15} {:>5} {:>11} {:>10} {:>10} {:>6} {:>8} {:>10} {:>10} {:>9} {:>9}",
            "op",
            "arch",
            "batch",
            "security",
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
    for (i, &mode) in security.iter().enumerate() {
        let port = 7800 + 10 * i as u16;
        let (_devnet, toml) =
            rt.block_on(async { bench::grpc::cluster_or_devnet(cluster.clone(), port, mode) })?;
        let mut client = rt.block_on(bench::grpc::connect_ready(&toml))?;
        for network in mlp::NETWORKS {
            let mut model = rt.block_on(mlp::MlpBench::upload(&mut client, network))?;
            for &batch in &batches {
                eprintln!(
                    "veil bench: mlp {} batch {batch}, {mode} ({reps} requests per transport)…",
                    model.arch()
                );
                let r = match rt.block_on(model.run(&mut client, batch, reps, mode)) {
                    Err(e) if skipped(&e) => {
                        eprintln!("  skipped: {e}");
                        continue;
                    }
                    r => r.with_context(|| {
                        format!(
                            "benchmark mlp {} at batch {batch} in {mode} mode",
                            model.arch()
                        )
                    })?,
                };
                print_mlp_row(&r, *json)?;
            }
            rt.block_on(model.delete(&mut client))?;
        }
    }
    Ok(())
}

/// One `mlp` result: a table row (stdout) with its notes (stderr), or a JSON line.
fn print_mlp_row(r: &bench::mlp::MlpBenchResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let f = bench::fmt_duration;
    println!(
        "{:<4} {:<15} {:>5} {:>11} {:>10} {:>10} {:>6} {:>8.1} {:>10} {:>10} {:>9.5} {:>9}",
        r.op,
        r.arch,
        r.batch,
        r.security,
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
        "  weights upload (one-time): {}; classes: {} samples with a clear margin (> {}) all \
         match",
        f(r.weights_upload_s),
        r.clear_margin_samples,
        bench::mlp::CLEAR_MARGIN
    );
    Ok(())
}

/// `--ops rag`: both RAG backends beside plaintext; MPC on a devnet (started here, one per
/// security mode, unless `--cluster`), FHE in this process.
fn run_rag_bench(
    sizes: &[usize],
    (k, dim): (usize, usize),
    reps: usize,
    Output {
        json,
        links,
        rag,
        security,
        ..
    }: &Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    let rt = runtime()?;
    let links: Vec<bench::LinkChoice> = if links.is_empty() {
        vec![bench::LinkChoice::Loopback]
    } else {
        links.clone()
    };
    if !json {
        println!(
            "{:<5} {:>8} {:>4} {:>9} {:>8} {:>11} {:>10} {:>10} {:>7} {:>9} {:>10} {:>7} {:>11} {:>11} {:>10}",
            "op",
            "size",
            "k",
            "mode",
            "plan for",
            "security",
            "mpc/query",
            "mpc sess",
            "rounds",
            "MB/node",
            "stored MB",
            "recall",
            "fhe server",
            "fhe client",
            "plaintext"
        );
    }
    for (i, &mode) in security.iter().enumerate() {
        let port = 7750 + 10 * i as u16;
        let (_devnet, toml) =
            rt.block_on(async { bench::grpc::cluster_or_devnet(cluster.clone(), port, mode) })?;
        let mut client = rt.block_on(bench::grpc::connect_ready(&toml))?;
        for size in sizes_or(sizes, 10_000) {
            eprintln!(
                "veil bench: rag size {size} dim {dim} k {k}, {mode} ({reps} queries per backend)…"
            );
            // The TFHE path has no security mode: measured with the first mode only.
            let opts = bench::rag::RagOptions {
                fhe: rag.fhe && i == 0,
                ..rag.clone()
            };
            let rows = match rt.block_on(bench::rag::run_rag(
                &mut client,
                (size, dim, k),
                reps,
                (&links, mode),
                &opts,
            )) {
                Err(e) if skipped(&e) => {
                    eprintln!("  skipped: {e}");
                    continue;
                }
                r => r.with_context(|| format!("benchmark rag at size {size} in {mode} mode"))?,
            };
            for r in rows {
                print_rag_row(&r, *json)?;
            }
        }
    }
    Ok(())
}

/// One `rag` result as a table row or a JSON line.
fn print_rag_row(r: &bench::rag::RagBenchResult, json: bool) -> Result<()> {
    {
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            let f = bench::fmt_duration;
            let opt = |x: Option<f64>| x.map_or_else(|| "-".to_string(), f);
            let mode = match r.probe {
                Some(p) => format!("clust p{p}"),
                None => "exact".into(),
            };
            println!(
                "{:<5} {:>8} {:>4} {:>9} {:>8} {:>11} {:>10} {:>10} {:>7} {:>9.2} {:>10.1} {:>7} {:>11} {:>11} {:>10}",
                r.op,
                r.size,
                r.k,
                mode,
                format!("{:?}", r.link).to_lowercase(),
                r.security,
                f(r.mpc_median_s),
                f(r.mpc_session_median_s),
                r.mpc_rounds,
                r.mpc_bytes_per_node.iter().max().copied().unwrap_or(0) as f64 / 1e6,
                r.mpc_stored_bytes_per_node
                    .iter()
                    .max()
                    .copied()
                    .unwrap_or(0) as f64
                    / 1e6,
                r.recall_vs_exact
                    .map_or_else(|| "-".into(), |x| format!("{x:.3}")),
                opt(r.fhe_server_median_s),
                opt(r.fhe_client_s),
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
    &Output {
        json,
        breakdown,
        ref security,
        ..
    }: &Output,
    cluster: Option<PathBuf>,
) -> Result<()> {
    // gRPC: per security mode, a cluster (given, or a devnet in that mode started now) and a
    // client connected to it.
    let rt = runtime()?;
    let mut grpc = Vec::new();
    if transport == TransportKind::Grpc {
        for (i, &mode) in security.iter().enumerate() {
            let port = 7700 + 10 * i as u16;
            let (devnet, toml) =
                rt.block_on(async { bench::grpc::cluster_or_devnet(cluster.clone(), port, mode) })?;
            let client = rt.block_on(bench::grpc::connect_ready(&toml))?;
            grpc.push((devnet, client));
        }
    }
    if !json {
        println!(
            "{:<13} {:>9} {:>11} {:>11} {:>14} {:>6} {:>14} {:>11} {:>9}",
            "op",
            "size",
            "security",
            "median",
            "throughput/s",
            "rounds",
            "bytes/party",
            "plaintext",
            "ratio"
        );
    }
    for &op in ops {
        for size in sizes_or(sizes, op.default_size) {
            for (i, &mode) in security.iter().enumerate() {
                let k = if op.takes_k {
                    format!(" k {}", params.k)
                } else {
                    String::new()
                };
                eprintln!(
                    "veil bench: {op} size {size}{k} over {transport:?}, {mode} ({reps} runs)…"
                );
                let r = match grpc.get_mut(i) {
                    None => bench::run_memory(op, size, params, reps, mode),
                    Some((_, client)) => rt.block_on(bench::grpc::run_grpc(
                        client,
                        (op, size, params),
                        reps,
                        mode,
                    )),
                };
                let r = match r {
                    Err(e) if skipped(&e) => {
                        eprintln!("  skipped: {e}");
                        continue;
                    }
                    r => {
                        r.with_context(|| format!("benchmark {op} at size {size} in {mode} mode"))?
                    }
                };
                print_mpc_row(&r, op, json, breakdown)?;
            }
        }
    }
    Ok(())
}

/// One MPC result: a table row (stdout) with its notes (stderr), or a JSON line.
fn print_mpc_row(r: &bench::BenchResult, op: BenchOp, json: bool, breakdown: bool) -> Result<()> {
    if r.rounds > 0 && op.per_round {
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
    if r.verify_rounds > 0 {
        eprintln!(
            "  verification: {} rounds, {:.0} bytes/party",
            r.verify_rounds,
            r.verify_bytes_by_party.iter().sum::<u64>() as f64 / 3.0
        );
    }
    if breakdown {
        for (name, secs) in &r.breakdown {
            eprintln!("  P0 {name:<14} {}", bench::fmt_duration(*secs));
        }
    }
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!(
            "{:<13} {:>9} {:>11} {:>11} {:>14.3e} {:>6} {:>14.0} {:>11} {:>8.1}×",
            r.op,
            r.size,
            r.security,
            bench::fmt_duration(r.median_s),
            r.throughput_per_s,
            r.rounds,
            r.bytes_per_party,
            bench::fmt_duration(r.plaintext_median_s),
            r.ratio_to_plaintext
        );
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
