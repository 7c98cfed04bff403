//! `veil devnet`: a local three-node cluster with a throwaway PKI, running until Ctrl-C.

use std::path::Path;

use anyhow::{Result, bail};

/// Checks the arguments, lays out (or reuses) `dir` and runs the three nodes.
pub async fn run(dir: &Path, nodes: usize, base_port: u16, clients: &[String]) -> Result<()> {
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
    veil_node::devnet::run_devnet(dir, base_port, &clients).await?;
    Ok(())
}
