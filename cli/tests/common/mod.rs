//! Shared by the node integration tests: three `veil node` processes with mutual TLS on
//! loopback, laid out by `write_devnet` (clients `alice` and `bob`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use veil_circuits::{Builder, Recipient, Ring};
use veil_client::Client;
use veil_node::devnet::{DevnetLayout, write_devnet};

/// Distinct port ranges per test in this process (and per process, by pid).
pub fn base_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    20_000 + (std::process::id() % 400) as u16 * 100 + k * 5
}

/// A running three-node cluster; its nodes are killed on drop.
pub struct Cluster {
    /// The devnet files.
    pub layout: DevnetLayout,
    nodes: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Lays out a devnet in a temp dir (clients `alice`, `bob`) and starts its three nodes.
    pub fn start() -> Cluster {
        Cluster::start_with(base_port(), |_| {})
    }

    /// [`Cluster::start`] on `base_port..base_port+3`, letting `edit` change the devnet's
    /// files before the nodes start.
    pub fn start_with(base_port: u16, edit: impl FnOnce(&DevnetLayout)) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = write_devnet(dir.path(), base_port, &["alice", "bob"]).expect("devnet files");
        edit(&layout);
        let mut c = Cluster {
            layout,
            nodes: vec![None, None, None],
            _dir: dir,
        };
        for i in 0..3 {
            c.start_node(i);
        }
        c
    }

    /// Starts node `i` (its log goes to `test-node-<i>.log`).
    pub fn start_node(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.dir.join(format!("test-node-{i}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_veil"))
            .args(["node", "--config"])
            .arg(&self.layout.node_configs[i])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn veil node");
        self.nodes[i] = Some(child);
    }

    /// Kills node `i` and waits for it.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `cluster.toml` of `client`.
    pub fn cluster_toml(&self, client: &str) -> PathBuf {
        self.layout
            .cluster_configs
            .iter()
            .find(|(n, _)| n == client)
            .map(|(_, p)| p.clone())
            .expect("client config")
    }

    /// The three nodes' logs, for failure messages.
    pub fn logs(&self) -> String {
        (0..3)
            .map(|i| self.log(i))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.layout.dir.join(format!("test-node-{i}.log")))
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill_node(i);
        }
    }
}

/// Connect and wait until all three nodes answer.
pub async fn ready_client(path: &Path) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = Client::connect(path).await.expect("client config");
        match c.list().await {
            Ok(_) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cluster did not come up: {e}"),
        }
    }
}

/// `z = x ⊙ y` and `neg = (z < 0)` over `n` ring elements, to `client`.
pub fn mul_program(client: &str, n: usize) -> veil_circuits::ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let z = b.mul(x, y);
    let l = b.ltz(z);
    b.output("z", z, Recipient::Client(client.into()));
    b.output("neg", l, Recipient::Client(client.into()));
    b.finish().expect("valid program")
}
