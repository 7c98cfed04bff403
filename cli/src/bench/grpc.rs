//! `veil bench --transport grpc`: the same workloads on a real cluster — three `veil node`
//! processes with mutual TLS on loopback (started on the fly, or given by `--cluster`), driven
//! through the client SDK. `median_s` is the session time at the slowest node (opening it and
//! the program over the gRPC peer links); `invoke_wall_median_s` is the client's wall time of
//! the whole `Invoke` (adds loading inputs from and storing results to the nodes' databases).

use super::{BenchError, BenchOp, BenchResult, TransportKind, median, prepare, time_plaintext};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use veil_benches::workload::Params;
use veil_circuits::Recipient;
use veil_client::Client;
use veil_node::devnet::{LocalCluster, Runner};
use veil_runtime::SecurityMode;

/// Connect to a cluster, waiting up to 30 s for all three nodes to answer.
pub async fn connect_ready(cluster_toml: &Path) -> Result<Client, BenchError> {
    Client::connect_ready(cluster_toml, Duration::from_secs(30))
        .await
        .map_err(|e| BenchError::Devnet(format!("cluster not reachable: {e}")))
}

/// A cluster to benchmark on: the given `cluster.toml` (whose nodes run whatever mode they are
/// configured with), or a devnet of this binary's `veil node` processes in `mode` started now
/// on `base_port` (kept alive by the returned handle).
pub fn cluster_or_devnet(
    cluster: Option<PathBuf>,
    base_port: u16,
    mode: SecurityMode,
) -> Result<(Option<LocalCluster>, PathBuf), BenchError> {
    let devnet = |e: &dyn std::fmt::Display| BenchError::Devnet(e.to_string());
    Ok(match cluster {
        Some(toml) => (None, toml),
        None => {
            eprintln!("veil bench: starting a local devnet ({mode} mode)…");
            let exe = std::env::current_exe().map_err(|e| devnet(&e))?;
            let mut d = LocalCluster::temp(base_port, &["alice"], Runner::Process(exe))
                .map_err(|e| devnet(&e))?;
            d.layout().set_security(mode).map_err(|e| devnet(&e))?;
            d.start().map_err(|e| devnet(&e))?;
            let toml = d.cluster_toml("alice");
            (Some(d), toml)
        }
    })
}

/// Measure `op` at `size` on the cluster behind `client`, whose nodes run `mode`: inputs
/// stored once, `reps` invocations.
pub async fn run_grpc(
    client: &mut Client,
    (op, size, params): (BenchOp, usize, Params),
    reps: usize,
    mode: SecurityMode,
) -> Result<BenchResult, BenchError> {
    let reps = reps.max(1);
    let w = prepare(op, size, params, mode, &mut rand::rng())?;
    let program = w
        .program
        .with_outputs_to(&Recipient::Client(client.name().to_string()))
        .map_err(|source| BenchError::Program { op, source })?;
    let client_err = |source| BenchError::Client { op, size, source };
    let tag: u32 = rand::random();
    let mut bindings = Vec::new();
    for (name, words) in &w.inputs {
        let id = format!("bench-{tag:08x}-{name}");
        client
            .store_secret(&id, words, &[], &[])
            .await
            .map_err(client_err)?;
        bindings.push((name.clone(), id));
    }
    let program_id = client.store_program(&program).await.map_err(client_err)?;
    let inputs: Vec<(&str, &str)> = bindings
        .iter()
        .map(|(n, id)| (n.as_str(), id.as_str()))
        .collect();

    let mut times = Vec::with_capacity(reps);
    let mut walls = Vec::with_capacity(reps);
    let mut last = None;
    for rep in 0..reps {
        let result_id = format!("bench-{tag:08x}-run-{rep}");
        let t = Instant::now();
        let summary = client
            .invoke(&program_id, &inputs, &result_id)
            .await
            .map_err(client_err)?;
        walls.push(t.elapsed().as_secs_f64());
        times.push(summary.session_time.as_secs_f64());
        last = Some((result_id, summary));
    }
    let (result_id, summary) = last.expect("reps ≥ 1");
    let got = client.fetch(&result_id).await.map_err(client_err)?;
    for rep in 0..reps {
        let _ = client.delete(&format!("bench-{tag:08x}-run-{rep}")).await;
    }
    for (_, id) in &bindings {
        let _ = client.delete(id).await;
    }

    if summary.receipt.security != mode {
        return Err(BenchError::WrongMode {
            op,
            size,
            want: mode,
            got: summary.receipt.security,
        });
    }
    let (plaintext_median_s, want) = time_plaintext(&w, reps);
    veil_benches::workload::compare_outputs(&got, &want, op.tolerance)
        .map_err(|mismatch| BenchError::Mismatch { op, size, mismatch })?;
    let median_s = median(times);
    Ok(BenchResult {
        invoke_wall_median_s: Some(median(walls)),
        ..BenchResult::measured(
            (op, size, TransportKind::Grpc, mode),
            median_s,
            (summary.rounds, summary.bytes_sent),
            (summary.verify_rounds, summary.verify_bytes),
            plaintext_median_s,
        )
    })
}
