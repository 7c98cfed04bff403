//! A local three-node cluster for development: `veil devnet`.
//!
//! [`write_devnet`] lays out a directory with a throwaway PKI, `node-<i>.toml` for each node
//! and `cluster-<client>.toml` for each client; [`LocalCluster`] starts and stops the three
//! nodes (processes or in-process tasks); [`run_devnet`] runs them as child processes of the
//! current executable until Ctrl-C.

mod cluster;

pub use cluster::{LocalCluster, Runner};

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    ClientEntry, ConfigError, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SESSION_TIMEOUT_MS,
    DEFAULT_VALUE_CACHE_MIB, NodeConfig, PeerEntry, TlsFiles,
};
use crate::pki::{self, DevnetPki};
use veil_proto::config::{ClientIdentity, ClusterConfig, ClusterNode};
use veil_proto::receipt::{ReceiptError, ReceiptSigner};
use veil_proto::tls::TlsError;

/// Errors from laying out or running a devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// Bad arguments (client names, ports).
    #[error("devnet: {0}")]
    Invalid(String),
    /// Certificates could not be generated, read or written.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A receipt signing key could not be read or written.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// A written configuration does not load back.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or directory operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration could not be serialised.
    #[error("serialise {path}: {message}")]
    Serialize {
        /// The file being written.
        path: PathBuf,
        /// What the serialiser said.
        message: String,
    },
    /// A node process could not be started.
    #[error("start node {party}: {source}")]
    Spawn {
        /// Its party.
        party: usize,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A node process exited while the devnet was running.
    #[error("node {party} exited ({status}); see {}", log.display())]
    NodeExited {
        /// Its party.
        party: usize,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
    },
    /// A node did not accept connections in time.
    #[error("node {party} is not listening; see {}", log.display())]
    NotListening {
        /// Its party.
        party: usize,
        /// Its log file.
        log: PathBuf,
    },
    /// Waiting for Ctrl-C failed.
    #[error("listen for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
}

/// The files of a devnet directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevnetLayout {
    /// The directory.
    pub dir: PathBuf,
    /// `dir/node-<i>.toml`, by party.
    pub node_configs: [PathBuf; 3],
    /// Per client: (name, `dir/cluster-<name>.toml`). The first client's is also `dir/cluster.toml`.
    pub cluster_configs: Vec<(String, PathBuf)>,
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> DevnetError + 'a {
    move |source| DevnetError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn check_args(base_port: u16, clients: &[&str]) -> Result<(), DevnetError> {
    if clients.is_empty() {
        return Err(DevnetError::Invalid("give at least one client".into()));
    }
    for (i, c) in clients.iter().enumerate() {
        if c.is_empty()
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(DevnetError::Invalid(format!(
                "client name `{c}`: use letters, digits, `-` and `_`"
            )));
        }
        if clients[..i].contains(c) {
            return Err(DevnetError::Invalid(format!("client `{c}` given twice")));
        }
    }
    if base_port == 0 || base_port > u16::MAX - 2 {
        return Err(DevnetError::Invalid(format!(
            "base port {base_port}: need three ports in 1..=65535"
        )));
    }
    Ok(())
}

/// The address node `party` listens on.
fn node_addr(base_port: u16, party: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], base_port + party as u16))
}

/// Path relative to the devnet directory, as written into the config files.
fn rel(path: &Path) -> PathBuf {
    PathBuf::from(path.file_name().unwrap_or(path.as_os_str()))
}

pub(crate) fn write_toml<T: serde::Serialize>(
    path: &Path,
    header: &str,
    value: &T,
) -> Result<(), DevnetError> {
    let body = toml::to_string(value).map_err(|e| DevnetError::Serialize {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    fs::write(path, format!("{header}\n{body}")).map_err(io_err("write", path))
}

/// Lays out a devnet in `dir`: the PKI ([`pki::write_devnet_pki`]; kept if `dir` already holds
/// a complete one for these clients, so a restart keeps its keys), `node-<i>.toml` (listening on
/// `127.0.0.1:base_port+i`, data in `dir/node-<i>`, which is created and never emptied) and
/// `cluster-<client>.toml` per client, the first client's also as `dir/cluster.toml`. Config
/// files are rewritten each time; paths inside them are relative to `dir`.
pub fn write_devnet(
    dir: &Path,
    base_port: u16,
    clients: &[&str],
) -> Result<DevnetLayout, DevnetError> {
    check_args(base_port, clients)?;
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let pki: DevnetPki = match pki::load_devnet_pki(dir, clients)? {
        Some(existing) => existing,
        None => pki::write_devnet_pki(dir, clients)?,
    };
    let signers = receipt_keys(dir)?;
    let peers: Vec<PeerEntry> = (0..3)
        .map(|i| PeerEntry {
            party: i,
            addr: node_addr(base_port, i).to_string(),
            cert_sha256: pki.node_fingerprints[i].clone(),
        })
        .collect();
    let client_entries: Vec<ClientEntry> = pki
        .client_fingerprints
        .iter()
        .map(|(name, fp)| ClientEntry {
            name: name.clone(),
            cert_sha256: fp.clone(),
        })
        .collect();

    let node_configs: [PathBuf; 3] = std::array::from_fn(|i| dir.join(format!("node-{i}.toml")));
    for (i, path) in node_configs.iter().enumerate() {
        let data_dir = dir.join(format!("node-{i}"));
        fs::create_dir_all(&data_dir).map_err(io_err("create directory", &data_dir))?;
        let cfg = NodeConfig {
            party: i,
            listen: node_addr(base_port, i),
            data_dir: rel(&data_dir),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            value_cache_mib: DEFAULT_VALUE_CACHE_MIB,
            tls: TlsFiles {
                ca: rel(&pki.ca),
                cert: rel(&pki.nodes[i].0),
                key: rel(&pki.nodes[i].1),
            },
            signing_key: rel(&receipt_key_path(dir, i)),
            limits: Default::default(),
            peers: peers.clone(),
            clients: client_entries.clone(),
            retrieval: Vec::new(),
        };
        write_toml(
            path,
            &format!(
                "# veil devnet node {i} (written by `veil devnet`; rewritten on each start).\n\
                 # Relative paths are relative to this file's directory."
            ),
            &cfg,
        )?;
    }

    let nodes: Vec<ClusterNode> = (0..3)
        .map(|i| ClusterNode {
            party: i,
            addr: node_addr(base_port, i).to_string(),
            receipt_key: signers[i].public_hex(),
            cert_sha256: pki.node_fingerprints[i].clone(),
        })
        .collect();
    let mut cluster_configs = Vec::new();
    for (k, (name, cert, key)) in pki.clients.iter().enumerate() {
        let cfg = ClusterConfig {
            ca: rel(&pki.ca),
            nodes: nodes.clone(),
            client: ClientIdentity {
                name: name.clone(),
                cert: rel(cert),
                key: rel(key),
            },
        };
        let header = format!(
            "# veil devnet cluster, as client `{name}` (written by `veil devnet`).\n\
             # Relative paths are relative to this file's directory."
        );
        let path = dir.join(format!("cluster-{name}.toml"));
        write_toml(&path, &header, &cfg)?;
        if k == 0 {
            write_toml(&dir.join("cluster.toml"), &header, &cfg)?;
        }
        cluster_configs.push((name.clone(), path));
    }

    Ok(DevnetLayout {
        dir: dir.to_path_buf(),
        node_configs,
        cluster_configs,
    })
}

fn receipt_key_path(dir: &Path, party: usize) -> PathBuf {
    dir.join(format!("node-{party}.receipt.key"))
}

/// Each node's receipt signing key: `dir/node-<i>.receipt.key`, kept if it exists (so a
/// restart keeps the keys clients pinned), generated otherwise.
fn receipt_keys(dir: &Path) -> Result<[ReceiptSigner; 3], DevnetError> {
    let mut keys = Vec::with_capacity(3);
    for party in 0..3 {
        let path = receipt_key_path(dir, party);
        let key = if path.exists() {
            ReceiptSigner::load(party, &path)?
        } else {
            let key = ReceiptSigner::generate(party);
            key.save(&path)?;
            key
        };
        keys.push(key);
    }
    keys.try_into()
        .map_err(|_| DevnetError::Invalid("three receipt keys".into()))
}

/// How long nodes get to exit on their own after Ctrl-C before they are killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Lays out `dir` with [`write_devnet`] (keeping an existing PKI and node data), starts
/// `<current exe> node --config dir/node-<i>.toml` for the three nodes (output appended to
/// `dir/node-<i>.log`), prints how to connect, and runs until Ctrl-C (then the nodes get a few
/// seconds to exit before being killed) or until a node exits (then the others are killed and
/// [`DevnetError::NodeExited`] is returned).
pub async fn run_devnet(dir: &Path, base_port: u16, clients: &[&str]) -> Result<(), DevnetError> {
    check_args(base_port, clients)?;
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let dir = dir.canonicalize().map_err(io_err("resolve", dir))?;
    let exe = std::env::current_exe().map_err(io_err("locate", Path::new("current executable")))?;
    let mut cluster = LocalCluster::in_dir(&dir, base_port, clients, Runner::Process(exe))?;
    cluster.start()?;

    let layout = cluster.layout();
    let first = &layout.cluster_configs[0].0;
    eprintln!("veil devnet: three nodes from {}", dir.display());
    for i in 0..3 {
        eprintln!(
            "  node {i}: {}  (log: {})",
            cluster.addr(i),
            cluster.log_path(i).display()
        );
    }
    eprintln!(
        "  client config: {} (as `{first}`)",
        dir.join("cluster.toml").display()
    );
    for (name, path) in &layout.cluster_configs[1..] {
        eprintln!("  client config as `{name}`: {}", path.display());
    }
    eprintln!(
        "  try: cd {} && grpcurl -cacert ca.pem -cert client-{first}.pem -key client-{first}.key.pem \
         localhost:{base_port} grpc.health.v1.Health/Check",
        dir.display()
    );
    eprintln!("  Ctrl-C stops the devnet.");

    let signal = crate::server::shutdown_signal();
    tokio::pin!(signal);
    let mut listening = false;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let started = tokio::time::Instant::now();
    let outcome = loop {
        tokio::select! {
            r = &mut signal => break r.map_err(DevnetError::Signal).map(|()| None),
            _ = poll.tick() => {
                if let Some(exit) = cluster.exited() {
                    break Ok(Some(exit));
                }
                if !listening {
                    match cluster.wait_listening(Duration::ZERO).await {
                        Ok(()) => {
                            listening = true;
                            eprintln!("veil devnet: all three nodes are listening");
                        }
                        Err(e) if started.elapsed() > Duration::from_secs(30) => {
                            listening = true; // report once, keep running
                            eprintln!("veil devnet: {e}");
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    };
    match outcome? {
        None => {
            eprintln!("veil devnet: stopping the nodes…");
            tokio::task::block_in_place(|| cluster.stop(SHUTDOWN_GRACE));
            eprintln!("veil devnet: stopped");
            Ok(())
        }
        Some((party, status)) => {
            cluster.stop(Duration::ZERO);
            Err(DevnetError::NodeExited {
                party,
                status,
                log: cluster.log_path(party),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_devnet_lays_out_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7800, &["alice", "bob"]).unwrap();
        assert_eq!(layout.dir, dir.path());
        for (i, p) in layout.node_configs.iter().enumerate() {
            assert_eq!(p, &dir.path().join(format!("node-{i}.toml")));
            assert!(p.is_file());
            assert!(dir.path().join(format!("node-{i}")).is_dir());
        }
        assert_eq!(
            layout.cluster_configs,
            vec![
                ("alice".to_string(), dir.path().join("cluster-alice.toml")),
                ("bob".to_string(), dir.path().join("cluster-bob.toml")),
            ]
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("cluster.toml")).unwrap(),
            fs::read_to_string(dir.path().join("cluster-alice.toml")).unwrap()
        );
        for f in [
            "ca.pem",
            "client-bob.pem",
            "client-bob.key.pem",
            "node-2.key.pem",
        ] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
    }

    #[test]
    fn rewriting_keeps_keys_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7900, &["alice"]).unwrap();
        let before = NodeConfig::load(&layout.node_configs[0]).unwrap();
        let key = fs::read_to_string(&before.tls.key).unwrap();
        fs::write(before.data_dir.join("store.redb"), b"data").unwrap();

        let layout = write_devnet(dir.path(), 7950, &["alice"]).unwrap();
        let after = NodeConfig::load(&layout.node_configs[0]).unwrap();
        assert_eq!(after.peers[0].cert_sha256, before.peers[0].cert_sha256);
        assert_eq!(after.listen.port(), 7950);
        assert_eq!(fs::read_to_string(&after.tls.key).unwrap(), key);
        assert_eq!(fs::read(after.store_path()).unwrap(), b"data");

        // A new client needs a new PKI (the CA key is not kept); data stays.
        let layout = write_devnet(dir.path(), 7950, &["alice", "carol"]).unwrap();
        let again = NodeConfig::load(&layout.node_configs[0]).unwrap();
        assert_ne!(again.peers[0].cert_sha256, before.peers[0].cert_sha256);
        assert_eq!(again.clients.len(), 2);
        assert_eq!(fs::read(again.store_path()).unwrap(), b"data");
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for (port, clients) in [
            (7100, &[][..]),
            (7100, &["a/b"][..]),
            (7100, &["alice", "alice"][..]),
            (65534, &["alice"][..]),
            (0, &["alice"][..]),
        ] {
            assert!(
                matches!(
                    write_devnet(dir.path(), port, clients),
                    Err(DevnetError::Invalid(_))
                ),
                "{port} {clients:?}"
            );
        }
    }
}
