//! `veil health`: gRPC health checks over the cluster's mutual TLS (container health checks,
//! checking a deployment from a client machine).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use veil_node::config::NodeConfig;
use veil_node::health;
use veil_proto::config::ClusterConfig;

/// Checks the node of `config` from its own host, or every node of `cluster` as its client;
/// prints one line per node and fails unless all are SERVING.
pub async fn run(config: Option<&Path>, cluster: Option<&Path>, timeout: Duration) -> Result<()> {
    if let Some(path) = config {
        let cfg = NodeConfig::load(path)?;
        health::check_self(&cfg, timeout)
            .await
            .with_context(|| format!("node from {}", path.display()))?;
        println!("P{}: SERVING", cfg.party);
        return Ok(());
    }
    let Some(path) = cluster else {
        bail!("give --config or --cluster");
    };
    let cfg = ClusterConfig::load(path)?;
    let tls = health::client_tls(&cfg.ca, &cfg.client.cert, &cfg.client.key)?;
    let mut failed = 0;
    for n in &cfg.nodes {
        match health::check(&tls, n.party, &n.addr, &n.cert_sha256, timeout).await {
            Ok(()) => println!("P{} at {}: SERVING", n.party, n.addr),
            Err(e) => {
                println!("{e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} nodes are not serving", cfg.nodes.len());
    }
    Ok(())
}
