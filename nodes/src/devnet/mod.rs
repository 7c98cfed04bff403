//! A local three-node cluster for development: `veil devnet`.
//!
//! [`write_devnet`] lays out a directory with a throwaway PKI, `node-<i>.toml` for each node
//! and `cluster-<client>.toml` for each client; [`LocalCluster`] starts and stops the three
//! nodes (processes or in-process tasks); [`run_devnet`] runs them as child processes of the
//! current executable until Ctrl-C.

mod cluster;

pub use cluster::{LocalCluster, Runner, free_base_port};

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
use veil_runtime::SecurityMode;

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

impl DevnetLayout {
    /// Changes node `party`'s config file: reads it, applies `edit` and writes it back (paths
    /// in it stay as written, relative to the directory; the node reads the file when it
    /// next starts).
    pub fn edit_node(
        &self,
        party: usize,
        edit: impl FnOnce(&mut NodeConfig),
    ) -> Result<(), DevnetError> {
        let path = self
            .node_configs
            .get(party)
            .ok_or_else(|| DevnetError::Invalid(format!("party {party} out of range (0..=2)")))?;
        let mut cfg: NodeConfig = veil_proto::config::read_toml(path)?;
        edit(&mut cfg);
        write_toml(
            path,
            &format!("# veil node {party} (devnet, edited)."),
            &cfg,
        )
    }

    /// Sets `security` in all three node configs (every node of a cluster must run the same
    /// mode) and `require_security` in every client's `cluster.toml`, so the devnet's clients
    /// refuse results of a weaker mode.
    pub fn set_security(&self, mode: SecurityMode) -> Result<(), DevnetError> {
        (0..3).try_for_each(|i| self.edit_node(i, |c| c.security = mode))?;
        let mut paths: Vec<PathBuf> = self
            .cluster_configs
            .iter()
            .map(|(_, p)| p.clone())
            .collect();
        paths.push(self.dir.join("cluster.toml"));
        for path in paths.iter().filter(|p| p.exists()) {
            let mut cfg: ClusterConfig = veil_proto::config::read_toml(path)?;
            cfg.require_security = mode;
            write_toml(
                path,
                &format!(
                    "# veil cluster, as client `{}` (devnet, edited).\n\
                     # Relative paths are relative to this file's directory.",
                    cfg.client.name
                ),
                &cfg,
            )?;
        }
        Ok(())
    }
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
    let nodes: [NodeSpec; 3] = std::array::from_fn(|i| NodeSpec {
        listen: node_addr(base_port, i),
        dial: node_addr(base_port, i).to_string(),
        sans: Vec::new(),
    });
    write_layout(dir, &nodes, clients, None)
}

/// Where one node of a multi-host cluster is reached: a DNS name or an IP address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHost {
    /// DNS name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port the node listens on and is dialed at.
    pub port: u16,
}

impl NodeHost {
    /// `host:port` as peers and clients dial it (IPv6 addresses in brackets).
    pub fn dial_addr(&self) -> String {
        if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The address the node binds: every interface (`0.0.0.0`, or `[::]` for an IPv6 host),
    /// on [`NodeHost::port`].
    pub fn listen_addr(&self) -> SocketAddr {
        let any: std::net::IpAddr = if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        SocketAddr::new(any, self.port)
    }
}

/// Parses the three `--hosts` entries: `HOST` (port `base_port + i` for node `i`) or
/// `HOST:PORT` (`[V6]:PORT` for IPv6). HOST is a DNS name or an IP address.
pub fn parse_hosts(hosts: &[String], base_port: u16) -> Result<[NodeHost; 3], DevnetError> {
    if hosts.len() != 3 {
        return Err(DevnetError::Invalid(format!(
            "--hosts: give exactly three hosts (node 0, 1, 2), got {}",
            hosts.len()
        )));
    }
    let mut out = Vec::with_capacity(3);
    for (i, entry) in hosts.iter().enumerate() {
        let entry = entry.trim();
        let bad = |why: &str| DevnetError::Invalid(format!("--hosts entry `{entry}`: {why}"));
        let default_port = base_port
            .checked_add(i as u16)
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("base port + node index is not a port"))?;
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if tail.is_empty() => default_port,
                None => return Err(bad("expected `]:PORT`")),
            };
            (h.to_string(), port)
        } else if entry.parse::<std::net::Ipv6Addr>().is_ok() {
            (entry.to_string(), default_port)
        } else if let Some((h, p)) = entry.rsplit_once(':') {
            (h.to_string(), p.parse().map_err(|_| bad("bad port"))?)
        } else {
            (entry.to_string(), default_port)
        };
        if port == 0 {
            return Err(bad("port 0"));
        }
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !is_ip && !is_name {
            return Err(bad("not a DNS name or IP address"));
        }
        out.push(NodeHost { host, port });
    }
    for i in 0..3 {
        for j in 0..i {
            if out[i] == out[j] {
                return Err(DevnetError::Invalid(format!(
                    "--hosts: nodes {j} and {i} are both at {}",
                    out[i].dial_addr()
                )));
            }
        }
    }
    Ok(out.try_into().expect("three hosts"))
}

/// The file recording which extra SANs the node certificates of a multi-host layout carry
/// (so rewriting with the same hosts keeps the PKI and other hosts get a new one).
const HOSTS_FILE: &str = "hosts.txt";

/// Lays out certificates and configs for three nodes on distinct hosts (`veil devnet --hosts`):
/// the same files as [`write_devnet`], but node `i` listens on every interface at
/// `hosts[i].port` ([`NodeHost::listen_addr`]), peers and clients dial `hosts[i]`
/// ([`NodeHost::dial_addr`]), and node `i`'s certificate also names `hosts[i].host`. The PKI is
/// kept if `dir` holds a complete one made for the same hosts and clients, else made anew.
/// Copy `ca.pem`, `node-<i>.toml`, `node-<i>.pem`, `node-<i>.key.pem` and
/// `node-<i>.receipt.key` to host `i`; a client needs `ca.pem`, its `cluster-<name>.toml`,
/// `client-<name>.pem` and `client-<name>.key.pem`.
pub fn write_hosts(
    dir: &Path,
    hosts: &[NodeHost; 3],
    clients: &[&str],
) -> Result<DevnetLayout, DevnetError> {
    check_args(1, clients)?;
    let nodes: [NodeSpec; 3] = std::array::from_fn(|i| NodeSpec {
        listen: hosts[i].listen_addr(),
        dial: hosts[i].dial_addr(),
        sans: vec![hosts[i].host.clone()],
    });
    let record: String = hosts.iter().map(|h| format!("{}\n", h.host)).collect();
    write_layout(dir, &nodes, clients, Some(&record))
}

/// One node of a layout: what it binds, where it is dialed, extra certificate SANs.
struct NodeSpec {
    listen: SocketAddr,
    dial: String,
    sans: Vec<String>,
}

/// Writes PKI (kept when complete and, with `hosts_record`, made for the same hosts), receipt
/// keys, node configs and cluster configs.
fn write_layout(
    dir: &Path,
    specs: &[NodeSpec; 3],
    clients: &[&str],
    hosts_record: Option<&str>,
) -> Result<DevnetLayout, DevnetError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let hosts_path = dir.join(HOSTS_FILE);
    let same_hosts = match hosts_record {
        None => true,
        Some(record) => fs::read_to_string(&hosts_path).is_ok_and(|old| old == record),
    };
    let existing = if same_hosts {
        pki::load_devnet_pki(dir, clients)?
    } else {
        None
    };
    let pki: DevnetPki = match existing {
        Some(existing) => existing,
        None => {
            let sans: [Vec<String>; 3] = std::array::from_fn(|i| specs[i].sans.clone());
            let pki = pki::write_pki(dir, clients, &sans)?;
            match hosts_record {
                Some(record) => {
                    fs::write(&hosts_path, record).map_err(io_err("write", &hosts_path))?
                }
                None => match fs::remove_file(&hosts_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &hosts_path)(e)),
                },
            }
            pki
        }
    };
    let signers = receipt_keys(dir)?;
    let peers: Vec<PeerEntry> = (0..3)
        .map(|i| PeerEntry {
            party: i,
            addr: specs[i].dial.clone(),
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
    let made_by = if hosts_record.is_some() {
        "veil devnet --hosts"
    } else {
        "veil devnet"
    };

    let node_configs: [PathBuf; 3] = std::array::from_fn(|i| dir.join(format!("node-{i}.toml")));
    for (i, path) in node_configs.iter().enumerate() {
        let data_dir = dir.join(format!("node-{i}"));
        fs::create_dir_all(&data_dir).map_err(io_err("create directory", &data_dir))?;
        let cfg = NodeConfig {
            party: i,
            listen: specs[i].listen,
            data_dir: rel(&data_dir),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            value_cache_mib: DEFAULT_VALUE_CACHE_MIB,
            security: SecurityMode::default(),
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
            #[cfg(feature = "fault-injection")]
            fault: None,
        };
        write_toml(
            path,
            &format!(
                "# veil node {i} (written by `{made_by}`; rewritten each time it runs).\n\
                 # Relative paths are relative to this file's directory."
            ),
            &cfg,
        )?;
    }

    let nodes: Vec<ClusterNode> = (0..3)
        .map(|i| ClusterNode {
            party: i,
            addr: specs[i].dial.clone(),
            receipt_key: signers[i].public_hex(),
            cert_sha256: pki.node_fingerprints[i].clone(),
        })
        .collect();
    let mut cluster_configs = Vec::new();
    for (k, (name, cert, key)) in pki.clients.iter().enumerate() {
        let cfg = ClusterConfig {
            require_security: SecurityMode::default(),
            ca: rel(&pki.ca),
            nodes: nodes.clone(),
            client: ClientIdentity {
                name: name.clone(),
                cert: rel(cert),
                key: rel(key),
            },
        };
        let header = format!(
            "# veil cluster, as client `{name}` (written by `{made_by}`).\n\
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
/// [`DevnetError::NodeExited`] is returned). Every node runs its sessions in `security` mode.
pub async fn run_devnet(
    dir: &Path,
    base_port: u16,
    clients: &[&str],
    security: SecurityMode,
) -> Result<(), DevnetError> {
    check_args(base_port, clients)?;
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let dir = dir.canonicalize().map_err(io_err("resolve", dir))?;
    let exe = std::env::current_exe().map_err(io_err("locate", Path::new("current executable")))?;
    let mut cluster = LocalCluster::in_dir(&dir, base_port, clients, Runner::Process(exe))?;
    cluster.layout().set_security(security)?;
    cluster.start()?;

    let layout = cluster.layout();
    let first = &layout.cluster_configs[0].0;
    eprintln!(
        "veil devnet: three nodes from {} ({security} mode)",
        dir.display()
    );
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
    fn the_security_mode_reaches_nodes_and_clients() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7850, &["alice", "bob"]).unwrap();
        let cluster = |name: &str| ClusterConfig::load(&dir.path().join(name)).unwrap();
        // Semi-honest is the default and is not written.
        assert_eq!(
            cluster("cluster.toml").require_security,
            SecurityMode::SemiHonest
        );
        let text = fs::read_to_string(dir.path().join("cluster-bob.toml")).unwrap();
        assert!(!text.contains("require_security"), "{text}");

        layout.set_security(SecurityMode::Malicious).unwrap();
        for name in ["cluster.toml", "cluster-alice.toml", "cluster-bob.toml"] {
            assert_eq!(
                cluster(name).require_security,
                SecurityMode::Malicious,
                "{name}"
            );
        }
        for path in &layout.node_configs {
            assert_eq!(
                NodeConfig::load(path).unwrap().security,
                SecurityMode::Malicious
            );
        }
        // An unknown mode is refused with the accepted names.
        let path = dir.path().join("cluster-bob.toml");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("\"malicious\"", "\"paranoid\"")).unwrap();
        let e = ClusterConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("unknown security mode `paranoid`"), "{e}");
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

    fn hosts(list: &[&str], base_port: u16) -> [NodeHost; 3] {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse_hosts(&list, base_port).unwrap()
    }

    #[test]
    fn hosts_parse_names_ips_and_ports() {
        let h = hosts(
            &["10.0.0.1", "node-b.example.org:9000", "[fd00::3]:7002"],
            7100,
        );
        assert_eq!(h[0].dial_addr(), "10.0.0.1:7100");
        assert_eq!(h[0].listen_addr(), "0.0.0.0:7100".parse().unwrap());
        assert_eq!(h[1].host, "node-b.example.org");
        assert_eq!(h[1].dial_addr(), "node-b.example.org:9000");
        assert_eq!(h[1].listen_addr(), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(h[2].host, "fd00::3");
        assert_eq!(h[2].dial_addr(), "[fd00::3]:7002");
        assert_eq!(h[2].listen_addr(), "[::]:7002".parse().unwrap());
        // A bare IPv6 address takes the default port.
        assert_eq!(
            hosts(&["a", "b", "fd00::3"], 7100)[2].dial_addr(),
            "[fd00::3]:7102"
        );
        for bad in [
            &["a", "b"][..],
            &["a", "b", "c", "d"][..],
            &["a", "b", "bad host"][..],
            &["a", "b", "c:notaport"][..],
            &["a", "b", "c:0"][..],
            &["a", "b:7100", "b:7100"][..],
            &["a", "b", "-c"][..],
            &["a", "b", "[fd00::1"][..],
        ] {
            let list: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(
                matches!(parse_hosts(&list, 7100), Err(DevnetError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    /// Whether `cert` (PEM) verifies against `ca` (PEM) for the server name `name`.
    fn cert_valid_for(ca: &Path, cert: &Path, name: &str) -> bool {
        use rustls::client::WebPkiServerVerifier;
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let der = |p: &Path| {
            CertificateDer::from(
                veil_proto::tls::first_cert_der(&fs::read_to_string(p).unwrap()).unwrap(),
            )
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(ca)).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(&der(cert), &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn write_hosts_lays_out_a_multi_host_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let h = hosts(&["10.77.0.1", "node1.example", "10.77.0.3:9002"], 7100);
        let layout = write_hosts(dir.path(), &h, &["alice", "bob"]).unwrap();
        let dial = ["10.77.0.1:7100", "node1.example:7101", "10.77.0.3:9002"];
        for (i, path) in layout.node_configs.iter().enumerate() {
            let cfg = NodeConfig::load(path).unwrap();
            cfg.validate().unwrap();
            assert_eq!(cfg.party, i);
            assert_eq!(cfg.listen, h[i].listen_addr());
            assert!(cfg.listen.ip().is_unspecified());
            let addrs: Vec<_> = cfg.peers.iter().map(|p| p.addr.as_str()).collect();
            assert_eq!(addrs, dial);
            // The node's certificate names its own host (and still localhost), not the others'.
            assert!(cert_valid_for(&cfg.tls.ca, &cfg.tls.cert, &h[i].host));
            assert!(cert_valid_for(&cfg.tls.ca, &cfg.tls.cert, "localhost"));
            assert!(!cert_valid_for(
                &cfg.tls.ca,
                &cfg.tls.cert,
                &h[(i + 1) % 3].host
            ));
        }
        let cluster = ClusterConfig::load(&dir.path().join("cluster-bob.toml")).unwrap();
        let addrs: Vec<_> = cluster.nodes.iter().map(|n| n.addr.as_str()).collect();
        assert_eq!(addrs, dial);
        assert_eq!(cluster.client.name, "bob");

        // Same hosts: the PKI is kept. Other hosts: a new PKI, keys for receipts kept.
        let fp = |layout: &DevnetLayout| {
            NodeConfig::load(&layout.node_configs[0]).unwrap().peers[0]
                .cert_sha256
                .clone()
        };
        let receipt = fs::read_to_string(dir.path().join("node-0.receipt.key")).unwrap();
        let first = fp(&layout);
        let again = write_hosts(dir.path(), &h, &["alice", "bob"]).unwrap();
        assert_eq!(fp(&again), first);
        let moved = hosts(&["10.77.0.9", "node1.example", "10.77.0.3:9002"], 7100);
        let other = write_hosts(dir.path(), &moved, &["alice", "bob"]).unwrap();
        assert_ne!(fp(&other), first);
        let cfg = NodeConfig::load(&other.node_configs[0]).unwrap();
        assert!(cert_valid_for(&cfg.tls.ca, &cfg.tls.cert, "10.77.0.9"));
        assert_eq!(
            fs::read_to_string(dir.path().join("node-0.receipt.key")).unwrap(),
            receipt
        );
    }

    #[test]
    fn single_host_default_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7600, &["alice"]).unwrap();
        for (i, path) in layout.node_configs.iter().enumerate() {
            let cfg = NodeConfig::load(path).unwrap();
            assert_eq!(cfg.listen, node_addr(7600, i));
            assert_eq!(cfg.peers[i].addr, format!("127.0.0.1:{}", 7600 + i));
            assert!(cert_valid_for(&cfg.tls.ca, &cfg.tls.cert, "localhost"));
            assert!(cert_valid_for(&cfg.tls.ca, &cfg.tls.cert, "127.0.0.1"));
        }
        assert!(!dir.path().join(HOSTS_FILE).exists());
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
