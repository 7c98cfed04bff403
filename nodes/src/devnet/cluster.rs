//! [`LocalCluster`]: the one way to start three local nodes — as `veil node` processes (the
//! devnet, `veil bench --transport grpc`, the end-to-end tests) or as tasks in this process
//! (the examples). Either way each node has its own port, certificate and store, and they talk
//! gRPC with mutual TLS exactly as on three machines.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{DevnetError, DevnetLayout, io_err, write_devnet};
use crate::config::{NodeConfig, RetrievalEntry};

/// Ports below this are outside Linux's default ephemeral range (32768–60999), so no outgoing
/// connection of this machine is handed one of them while a test cluster waits to bind it.
const EPHEMERAL_START: u16 = 32_768;

/// The first `base` at or after `hint` (below the ephemeral range, in steps of 3) such that
/// `127.0.0.1:base..base+2` can all be bound now: how tests and benches pick a cluster's ports
/// without colliding with sockets already open on the machine.
pub fn free_base_port(hint: u16) -> Result<u16, DevnetError> {
    let bindable = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    (hint.max(1024)..EPHEMERAL_START - 2)
        .step_by(3)
        .find(|&b| (b..b + 3).all(bindable))
        .ok_or_else(|| {
            DevnetError::Invalid(format!(
                "no three free loopback ports between {hint} and {EPHEMERAL_START}"
            ))
        })
}

/// How the nodes of a [`LocalCluster`] run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runner {
    /// `<exe> node --config node-<i>.toml`, one process per node, output appended to
    /// `node-<i>.log` in the devnet directory. `exe` is a `veil` binary.
    Process(PathBuf),
    /// Tasks on the caller's tokio runtime (node logs go to this process's subscriber).
    InProcess,
}

/// One running node.
enum Running {
    Child(Child),
    Task(tokio::task::JoinHandle<()>),
}

/// Three nodes on `127.0.0.1:base_port..base_port+2` laid out by [`write_devnet`]. Nodes are
/// started with [`LocalCluster::start`] (or one by one) and stopped when it is dropped; a
/// cluster made by [`LocalCluster::temp`] also removes its directory then.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use veil_node::devnet::{LocalCluster, Runner};
/// let mut cluster = LocalCluster::temp(7300, &["alice"], Runner::InProcess)?;
/// cluster.start()?;
/// cluster.wait_listening(std::time::Duration::from_secs(30)).await?;
/// let cluster_toml = cluster.cluster_toml("alice"); // for `veil_client::Client::connect`
/// # let _ = cluster_toml; Ok(()) }
/// ```
pub struct LocalCluster {
    layout: DevnetLayout,
    base_port: u16,
    runner: Runner,
    nodes: [Option<Running>; 3],
    _temp: Option<tempfile::TempDir>,
}

impl LocalCluster {
    /// Lays out a devnet for `clients` in a fresh temporary directory (nothing runs yet).
    pub fn temp(base_port: u16, clients: &[&str], runner: Runner) -> Result<Self, DevnetError> {
        let temp = tempfile::Builder::new()
            .prefix("veil-cluster-")
            .tempdir()
            .map_err(io_err("create directory", &std::env::temp_dir()))?;
        let mut cluster = Self::in_dir(temp.path(), base_port, clients, runner)?;
        cluster._temp = Some(temp);
        Ok(cluster)
    }

    /// Lays out (or refreshes, keeping keys and data) a devnet for `clients` in `dir`, which is
    /// kept after the cluster stops (nothing runs yet).
    pub fn in_dir(
        dir: &Path,
        base_port: u16,
        clients: &[&str],
        runner: Runner,
    ) -> Result<Self, DevnetError> {
        Ok(LocalCluster {
            layout: write_devnet(dir, base_port, clients)?,
            base_port,
            runner,
            nodes: [None, None, None],
            _temp: None,
        })
    }

    /// The devnet's files (edit them before starting a node to change its configuration).
    pub fn layout(&self) -> &DevnetLayout {
        &self.layout
    }

    /// The address node `party` listens on.
    pub fn addr(&self, party: usize) -> SocketAddr {
        super::node_addr(self.base_port, party)
    }

    /// The `cluster.toml` of `client` (`dir/cluster-<client>.toml`, written for every client
    /// the devnet was laid out for).
    pub fn cluster_toml(&self, client: &str) -> PathBuf {
        self.layout.dir.join(format!("cluster-{client}.toml"))
    }

    /// Makes node `party` serve the prepared corpus in `dir` as `name` on its Retrieval
    /// service (takes effect when the node next starts).
    pub fn serve_corpus(&self, party: usize, name: &str, dir: &Path) -> Result<(), DevnetError> {
        self.layout.edit_node(party, |cfg| {
            cfg.retrieval.push(RetrievalEntry {
                name: name.to_string(),
                dir: dir.to_path_buf(),
            })
        })
    }

    /// Starts the three nodes.
    pub fn start(&mut self) -> Result<(), DevnetError> {
        (0..3).try_for_each(|i| self.start_node(i))
    }

    /// Starts node `party` (stopping it first if it runs). In-process nodes need a tokio
    /// runtime.
    pub fn start_node(&mut self, party: usize) -> Result<(), DevnetError> {
        self.kill_node(party);
        let config = &self.layout.node_configs[party];
        self.nodes[party] = Some(match &self.runner {
            Runner::Process(exe) => {
                let log_path = self.log_path(party);
                let open = || {
                    fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log_path)
                        .map_err(io_err("open", &log_path))
                };
                let child = Command::new(exe)
                    .arg("node")
                    .arg("--config")
                    .arg(config)
                    .stdin(Stdio::null())
                    .stdout(open()?)
                    .stderr(open()?)
                    .spawn()
                    .map_err(|source| DevnetError::Spawn { party, source })?;
                Running::Child(child)
            }
            Runner::InProcess => {
                let cfg = NodeConfig::load(config)?;
                Running::Task(tokio::spawn(async move {
                    if let Err(e) = crate::server::run_node(cfg).await {
                        tracing::error!(party, "node stopped: {e}");
                    }
                }))
            }
        });
        Ok(())
    }

    /// Stops node `party` at once (a killed process, an aborted task) and waits for it.
    pub fn kill_node(&mut self, party: usize) {
        match self.nodes[party].take() {
            Some(Running::Child(mut c)) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Some(Running::Task(t)) => t.abort(),
            None => {}
        }
    }

    /// Waits until every node accepts TCP connections, or `timeout` passes.
    pub async fn wait_listening(&self, timeout: Duration) -> Result<(), DevnetError> {
        let deadline = Instant::now() + timeout;
        for party in 0..3 {
            while tokio::net::TcpStream::connect(self.addr(party))
                .await
                .is_err()
            {
                if Instant::now() >= deadline {
                    return Err(DevnetError::NotListening {
                        party,
                        log: self.log_path(party),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Polls the node processes: the first one that has exited, with how (in-process nodes
    /// are never reported).
    pub fn exited(&mut self) -> Option<(usize, String)> {
        self.nodes
            .iter_mut()
            .enumerate()
            .find_map(|(i, n)| match n {
                Some(Running::Child(c)) => match c.try_wait() {
                    Ok(Some(status)) => Some((i, status.to_string())),
                    Ok(None) => None,
                    Err(e) => Some((i, format!("wait failed: {e}"))),
                },
                _ => None,
            })
    }

    /// Stops every node: processes get `grace` to exit on their own (a Ctrl-C at a terminal
    /// reached them too) before they are killed.
    pub fn stop(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let running = |n: &mut Option<Running>| match n {
            Some(Running::Child(c)) => matches!(c.try_wait(), Ok(None)),
            _ => false,
        };
        while Instant::now() < deadline && self.nodes.iter_mut().any(running) {
            std::thread::sleep(Duration::from_millis(50));
        }
        (0..3).for_each(|i| self.kill_node(i));
    }

    /// Node `party`'s log file (process nodes).
    pub fn log_path(&self, party: usize) -> PathBuf {
        self.layout.dir.join(format!("node-{party}.log"))
    }

    /// Node `party`'s log so far (empty for in-process nodes).
    pub fn log(&self, party: usize) -> String {
        fs::read_to_string(self.log_path(party)).unwrap_or_default()
    }

    /// The three nodes' logs, for failure messages.
    pub fn logs(&self) -> String {
        (0..3)
            .map(|i| self.log(i))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        (0..3).for_each(|i| self.kill_node(i));
    }
}
