//! `veil node`: run one node of a cluster from its `node-<i>.toml` until Ctrl-C or SIGTERM.

use std::path::Path;

use anyhow::{Context, Result};
use veil_node::config::NodeConfig;

/// Loads and validates the configuration, then serves until shut down.
pub async fn run(config: &Path) -> Result<()> {
    let cfg = NodeConfig::load(config)?;
    veil_node::server::run_node(cfg)
        .await
        .with_context(|| format!("node from {}", config.display()))
}
