//! `veil node`: run one node of a cluster from its `node-<i>.toml` until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use veil_node::config::NodeConfig;

/// Loads and validates the configuration (with `data_dir` replacing its `data_dir`, created if
/// missing), then serves until shut down.
pub async fn run(config: &Path, data_dir: Option<PathBuf>) -> Result<()> {
    let mut cfg = NodeConfig::load(config)?;
    if let Some(dir) = data_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("create data directory {}", dir.display()))?;
        cfg.data_dir = dir;
    }
    veil_node::server::run_node(cfg)
        .await
        .with_context(|| format!("node from {}", config.display()))
}
