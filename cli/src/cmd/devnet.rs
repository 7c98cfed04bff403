//! `veil devnet`: a local three-node cluster with a throwaway PKI, running until Ctrl-C; with
//! `--hosts`, certificates and configs for three nodes on three machines.

use std::path::Path;

use anyhow::{Result, bail};
use veil_runtime::SecurityMode;

fn check_nodes(nodes: usize) -> Result<()> {
    if nodes != 3 {
        bail!(
            "--nodes {nodes}: veil runs three-party replicated secret sharing (2-of-3, \
             honest majority), so a devnet has exactly 3 nodes"
        );
    }
    Ok(())
}

/// Checks the arguments, lays out (or reuses) `dir` and runs the three nodes in `security`
/// mode.
pub async fn run(
    dir: &Path,
    nodes: usize,
    base_port: u16,
    clients: &[String],
    security: SecurityMode,
) -> Result<()> {
    check_nodes(nodes)?;
    if usize::from(base_port) + 2 > usize::from(u16::MAX) {
        bail!("--base-port {base_port}: nodes need ports {base_port}..={base_port}+2");
    }
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    veil_node::devnet::run_devnet(dir, base_port, &clients, security).await?;
    Ok(())
}

/// `veil devnet --hosts`: writes a multi-host layout to `dir` (nodes in `security` mode) and
/// says what goes where.
pub fn write_hosts(
    dir: &Path,
    nodes: usize,
    base_port: u16,
    clients: &[String],
    hosts: &[String],
    security: SecurityMode,
) -> Result<()> {
    check_nodes(nodes)?;
    let hosts = veil_node::devnet::parse_hosts(hosts, base_port)?;
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    let layout = veil_node::devnet::write_hosts(dir, &hosts, &clients)?;
    layout.set_security(security)?;
    println!(
        "veil devnet --hosts: wrote certificates and configs to {} ({security} mode)",
        dir.display()
    );
    for (i, h) in hosts.iter().enumerate() {
        println!(
            "  node {i} at {} (listens on {}): copy ca.pem node-{i}.toml node-{i}.pem \
             node-{i}.key.pem node-{i}.receipt.key, run `veil node --config node-{i}.toml`",
            h.dial_addr(),
            h.listen_addr()
        );
    }
    for (name, path) in &layout.cluster_configs {
        println!(
            "  client `{name}`: ca.pem {} client-{name}.pem client-{name}.key.pem",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    println!(
        "  check: veil health --cluster {}",
        layout.cluster_configs[0].1.display()
    );
    Ok(())
}
