//! A node's configuration file (TOML).
//!
//! `node-<i>.toml` tells one node who it is, where it listens, where its data and TLS files are,
//! which peers and clients it trusts (by certificate fingerprint), the security mode of its
//! sessions (`security`) and, optionally, which prepared corpora its Retrieval service serves
//! (`[[retrieval]]`). Relative paths are resolved
//! against the directory of the file. The client's `cluster.toml` and the field checks both
//! files share are in [`veil_proto::config`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use veil_proto::config::ConfigError;
use veil_proto::config::{
    base_dir, check_addr, check_fingerprint, check_name, check_party, check_readable, check_three,
    read_toml, resolve,
};
use veil_runtime::SecurityMode;

/// Default [`NodeConfig::session_timeout_ms`]: 10 s.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 10_000;
/// Default [`NodeConfig::max_message_bytes`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

fn default_session_timeout_ms() -> u64 {
    DEFAULT_SESSION_TIMEOUT_MS
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

/// Default [`NodeConfig::value_cache_mib`]: 2 GiB, enough for a node's share of a compact
/// RAG corpus of a million 384-dimension chunks (about 1.5 GB), so no query re-reads it.
pub const DEFAULT_VALUE_CACHE_MIB: usize = 2048;

fn default_value_cache_mib() -> usize {
    DEFAULT_VALUE_CACHE_MIB
}

/// A node's TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA certificate that signs every node and client certificate.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// One of the three nodes, as every node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Party index, 0..=2.
    pub party: usize,
    /// Where to dial it, e.g. `127.0.0.1:7101`.
    pub addr: String,
    /// Lowercase hex SHA-256 of its certificate's DER ([`veil_proto::tls::cert_fingerprint`]).
    pub cert_sha256: String,
}

/// A client allowed to call the Compute service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// Its name (owners and recipients are named by it).
    pub name: String,
    /// Lowercase hex SHA-256 of its certificate's DER.
    pub cert_sha256: String,
}

/// A corpus served by the node's Retrieval service (`[[retrieval]]` in `node-<i>.toml`).
///
/// ```toml
/// [[retrieval]]
/// name = "docs"          # what clients ask for
/// dir = "corpora/docs"   # written by `veil retrieval-prepare`; relative to the config file
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalEntry {
    /// Name clients use: 1..=64 characters of `[A-Za-z0-9._-]`, unique per node.
    pub name: String,
    /// The corpus directory ([`crate::retrieval_files`]: `corpus.bin`, `corpus.hint`, optional
    /// `passages.bin` and `passages.hint`).
    pub dir: PathBuf,
}

/// Longest corpus name in a [`RetrievalEntry`].
pub const MAX_CORPUS_NAME_LEN: usize = 64;

/// Whether `name` is a valid corpus name (1..=[`MAX_CORPUS_NAME_LEN`] of `[A-Za-z0-9._-]`).
pub fn is_corpus_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CORPUS_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Configuration of one node (`node-<i>.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's party index, 0..=2.
    pub party: usize,
    /// The address the gRPC server binds.
    pub listen: SocketAddr,
    /// Data directory; the store is `data_dir/store.redb`.
    pub data_dir: PathBuf,
    /// Per-session receive timeout in milliseconds.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Largest gRPC message accepted (decode limit), in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Memory for decoded stored values kept between requests (a corpus, a model's weights),
    /// in MiB; 0 reads every stored input from the database.
    #[serde(default = "default_value_cache_mib")]
    pub value_cache_mib: usize,
    /// What every session of this node protects against: `semi-honest` (the default) or
    /// `malicious` (security with abort: a deviating node is caught before any output leaves,
    /// and programs with an op that has no maliciously secure protocol yet are refused). All
    /// three nodes of a cluster must set the same mode: it is part of the session binding, so
    /// nodes whose modes differ refuse every session.
    #[serde(default, with = "veil_proto::config::security_name")]
    pub security: SecurityMode,
    /// TLS files.
    pub tls: TlsFiles,
    /// This node's receipt signing key: a file holding an Ed25519 seed as 64 hex digits
    /// ([`veil_proto::receipt`]); its public key is pinned in clients' `cluster.toml`.
    pub signing_key: PathBuf,
    /// Resource limits (`[limits]`; every field has a default).
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// All three nodes including this one.
    pub peers: Vec<PeerEntry>,
    /// Clients allowed to call Compute.
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// Corpora served by the Retrieval service (optional; none by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retrieval: Vec<RetrievalEntry>,
    /// Test builds only (feature `fault-injection`): alter one word of one outgoing peer
    /// message in this node's sessions ([`crate::fault`]). A build without the feature refuses
    /// a config with a `[fault]` table (unknown field).
    #[cfg(feature = "fault-injection")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::fault::FaultSpec>,
}

impl NodeConfig {
    /// Reads, parses and validates `node-<i>.toml`; relative paths are resolved against the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: NodeConfig = read_toml(path)?;
        let base = base_dir(path);
        resolve(&base, &mut cfg.data_dir);
        resolve(&base, &mut cfg.tls.ca);
        resolve(&base, &mut cfg.tls.cert);
        resolve(&base, &mut cfg.tls.key);
        resolve(&base, &mut cfg.signing_key);
        for r in &mut cfg.retrieval {
            resolve(&base, &mut r.dir);
        }
        cfg.validate().map_err(|e| e.in_file(path))?;
        Ok(cfg)
    }

    /// Checks ranges, the peer list (parties 0..=2 each exactly once), fingerprints, client
    /// names, that the TLS files are readable, that `tls.cert` is this party's certificate, and
    /// that every `[[retrieval]]` entry has a unique valid name and a directory holding the
    /// required corpus files (their content is checked when the node loads them).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_party("party", self.party)?;
        if self.session_timeout_ms == 0 {
            return Err(ConfigError::invalid("session_timeout_ms", "must be > 0"));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::invalid(
                "max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "empty path"));
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::invalid(
                "data_dir",
                format!("{} exists and is not a directory", self.data_dir.display()),
            ));
        }
        check_three("peers", self.peers.iter().map(|p| p.party))?;
        for (i, p) in self.peers.iter().enumerate() {
            check_addr(&format!("peers[{i}].addr"), &p.addr)?;
            check_fingerprint(&format!("peers[{i}].cert_sha256"), &p.cert_sha256)?;
        }
        let mut names = BTreeSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            check_name(&format!("clients[{i}].name"), &c.name)?;
            if !names.insert(c.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("clients[{i}].name"),
                    format!("duplicate client `{}`", c.name),
                ));
            }
            check_fingerprint(&format!("clients[{i}].cert_sha256"), &c.cert_sha256)?;
        }
        let mut corpora = BTreeSet::new();
        for (i, r) in self.retrieval.iter().enumerate() {
            if !is_corpus_name(&r.name) {
                return Err(ConfigError::invalid(
                    format!("retrieval[{i}].name"),
                    format!("must be 1..={MAX_CORPUS_NAME_LEN} characters of [A-Za-z0-9._-]"),
                ));
            }
            if !corpora.insert(r.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("retrieval[{i}].name"),
                    format!("duplicate corpus `{}`", r.name),
                ));
            }
            if !r.dir.is_dir() {
                return Err(ConfigError::invalid(
                    format!("retrieval[{i}].dir"),
                    format!("{} is not a directory", r.dir.display()),
                ));
            }
            for file in [
                crate::retrieval_files::CORPUS_FILE,
                crate::retrieval_files::CORPUS_HINT_FILE,
            ] {
                check_readable(&format!("retrieval[{i}].dir"), &r.dir.join(file))?;
            }
        }
        check_readable("tls.ca", &self.tls.ca)?;
        check_readable("tls.cert", &self.tls.cert)?;
        check_readable("tls.key", &self.tls.key)?;
        check_readable("signing_key", &self.signing_key)?;
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = &self.fault {
            fault.validate(self.party)?;
        }
        let own = veil_proto::tls::file_fingerprint(&self.tls.cert)
            .map_err(|e| ConfigError::invalid("tls.cert", e.to_string()))?;
        if Some(&own) != self.peer(self.party).map(|p| &p.cert_sha256) {
            return Err(ConfigError::invalid(
                "tls.cert",
                format!(
                    "certificate fingerprint does not match the peers entry for party {}",
                    self.party
                ),
            ));
        }
        Ok(())
    }

    /// The peer entry for `party`.
    pub fn peer(&self, party: usize) -> Option<&PeerEntry> {
        self.peers.iter().find(|p| p.party == party)
    }

    /// Node certificate fingerprints indexed by party (call after [`validate`](Self::validate)).
    pub fn node_fingerprints(&self) -> [String; 3] {
        std::array::from_fn(|i| {
            self.peer(i)
                .map(|p| p.cert_sha256.clone())
                .unwrap_or_default()
        })
    }

    /// The store file: `data_dir/store.redb`.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store.redb")
    }

    /// The per-session timeout.
    pub fn session_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.session_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::write_devnet;
    use veil_proto::config::ClusterConfig;

    #[test]
    fn devnet_configs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7300, &["alice", "bob"]).unwrap();
        let mut fps = Vec::new();
        for (i, path) in layout.node_configs.iter().enumerate() {
            let cfg = NodeConfig::load(path).unwrap();
            assert_eq!(cfg.party, i);
            assert_eq!(
                cfg.listen,
                format!("127.0.0.1:{}", 7300 + i).parse().unwrap()
            );
            assert_eq!(cfg.data_dir, dir.path().join(format!("node-{i}")));
            assert_eq!(cfg.store_path(), cfg.data_dir.join("store.redb"));
            assert_eq!(cfg.tls.ca, dir.path().join("ca.pem"));
            assert_eq!(cfg.tls.cert, dir.path().join(format!("node-{i}.pem")));
            assert_eq!(cfg.session_timeout_ms, DEFAULT_SESSION_TIMEOUT_MS);
            assert_eq!(cfg.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
            assert_eq!(cfg.security, SecurityMode::SemiHonest);
            assert_eq!(cfg.peers.len(), 3);
            assert_eq!(cfg.peer(2).unwrap().addr, "127.0.0.1:7302");
            let names: Vec<_> = cfg.clients.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["alice", "bob"]);
            cfg.validate().unwrap();
            fps.push(cfg.node_fingerprints());
        }
        assert!(fps.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(layout.cluster_configs.len(), 2);
        for (name, path) in &layout.cluster_configs {
            let cc = ClusterConfig::load(path).unwrap();
            assert_eq!(&cc.client.name, name);
            assert_eq!(cc.addr(1), Some("127.0.0.1:7301"));
            // The client pins the same node certificates the nodes pin for each other.
            for (i, fp) in fps[0].iter().enumerate() {
                assert_eq!(&cc.node(i).unwrap().cert_sha256, fp);
            }
            assert_eq!(cc.ca, dir.path().join("ca.pem"));
            assert_eq!(
                veil_proto::tls::file_fingerprint(&cc.client.cert).unwrap(),
                NodeConfig::load(&layout.node_configs[0]).unwrap().clients
                    [if name == "alice" { 0 } else { 1 }]
                .cert_sha256
            );
        }
        let default = ClusterConfig::load(&dir.path().join("cluster.toml")).unwrap();
        assert_eq!(default.client.name, "alice");
    }

    #[test]
    fn defaults_apply_when_fields_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7400, &["alice"]).unwrap();
        let text = std::fs::read_to_string(&layout.node_configs[0]).unwrap();
        let trimmed: String = text
            .lines()
            .filter(|l| {
                ![
                    "session_timeout_ms",
                    "max_message_bytes",
                    "value_cache_mib",
                    "security",
                ]
                .iter()
                .any(|f| l.starts_with(f))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(trimmed, text);
        std::fs::write(&layout.node_configs[0], trimmed).unwrap();
        let cfg = NodeConfig::load(&layout.node_configs[0]).unwrap();
        assert_eq!(cfg.session_timeout(), std::time::Duration::from_secs(10));
        assert_eq!(cfg.max_message_bytes, 64 * 1024 * 1024);
        assert_eq!(cfg.value_cache_mib, 2048);
        assert_eq!(cfg.security, SecurityMode::SemiHonest);
    }

    #[test]
    fn security_is_read_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7450, &["alice"]).unwrap();
        let path = &layout.node_configs[0];
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("security = \"semi-honest\""), "{text}");
        let with = |mode: &str| text.replace("\"semi-honest\"", mode);
        std::fs::write(path, with("\"malicious\"")).unwrap();
        assert_eq!(
            NodeConfig::load(path).unwrap().security,
            SecurityMode::Malicious
        );
        std::fs::write(path, with("\"paranoid\"")).unwrap();
        let e = NodeConfig::load(path).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Parse { message, .. }
                if message.contains("unknown security mode `paranoid`")),
            "{e}"
        );
    }

    fn loaded(dir: &Path) -> NodeConfig {
        let layout = write_devnet(dir, 7500, &["alice", "bob"]).unwrap();
        NodeConfig::load(&layout.node_configs[1]).unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let good = loaded(dir.path());

        let mut c = good.clone();
        c.party = 3;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("party"));
        assert!(e.to_string().contains("out of range"), "{e}");

        let mut c = good.clone();
        c.peers[2].party = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("peers[2].party"));
        assert!(e.to_string().contains("duplicate party 0"), "{e}");

        let mut c = good.clone();
        c.peers.pop();
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("peers"));
        assert!(e.to_string().contains("missing party"), "{e}");

        let mut c = good.clone();
        c.peers[0].party = 5;
        assert_eq!(c.validate().unwrap_err().field(), Some("peers[0].party"));

        let mut c = good.clone();
        c.tls.key = dir.path().join("nope.key.pem");
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("tls.key"));
        assert!(e.to_string().contains("nope.key.pem"), "{e}");

        let mut c = good.clone();
        c.peers[1].cert_sha256 = "XYZ".into();
        assert_eq!(
            c.validate().unwrap_err().field(),
            Some("peers[1].cert_sha256")
        );

        let mut c = good.clone();
        c.clients[1].name = "alice".into();
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("clients[1].name"));

        let mut c = good.clone();
        c.peers[0].addr = "localhost".into();
        assert_eq!(c.validate().unwrap_err().field(), Some("peers[0].addr"));

        // This node's certificate must be the one its peers expect.
        let mut c = good.clone();
        c.tls.cert = dir.path().join("node-0.pem");
        assert_eq!(c.validate().unwrap_err().field(), Some("tls.cert"));

        let mut c = good.clone();
        c.session_timeout_ms = 0;
        assert_eq!(
            c.validate().unwrap_err().field(),
            Some("session_timeout_ms")
        );

        good.validate().unwrap();
    }

    #[test]
    fn retrieval_entries_are_optional_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let layout = write_devnet(dir.path(), 7800, &["alice"]).unwrap();
        // Devnet configs have no retrieval section and none is written.
        let text = std::fs::read_to_string(&layout.node_configs[0]).unwrap();
        assert!(!text.contains("retrieval"), "{text}");
        let good = NodeConfig::load(&layout.node_configs[0]).unwrap();
        assert!(good.retrieval.is_empty());

        let corpus = dir.path().join("corpus");
        std::fs::create_dir(&corpus).unwrap();
        std::fs::write(
            &layout.node_configs[0],
            format!("{text}\n[[retrieval]]\nname = \"docs\"\ndir = \"corpus\"\n"),
        )
        .unwrap();
        // The directory exists but lacks corpus.bin: the error names the entry and the file.
        let e = NodeConfig::load(&layout.node_configs[0]).unwrap_err();
        assert_eq!(e.field(), Some("retrieval[0].dir"));
        assert!(e.to_string().contains("corpus.bin"), "{e}");
        for f in ["corpus.bin", "corpus.hint"] {
            std::fs::write(corpus.join(f), b"x").unwrap();
        }
        let cfg = NodeConfig::load(&layout.node_configs[0]).unwrap();
        assert_eq!(cfg.retrieval[0].dir, corpus);

        let mut c = cfg.clone();
        c.retrieval[0].dir = dir.path().join("missing");
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("retrieval[0].dir"));
        assert!(e.to_string().contains("not a directory"), "{e}");

        let mut c = cfg.clone();
        c.retrieval[0].name = "bad name".into();
        assert_eq!(c.validate().unwrap_err().field(), Some("retrieval[0].name"));

        let mut c = cfg.clone();
        c.retrieval.push(c.retrieval[0].clone());
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), Some("retrieval[1].name"));
        assert!(e.to_string().contains("duplicate"), "{e}");
    }

    #[test]
    fn cluster_validation_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        write_devnet(dir.path(), 7600, &["alice"]).unwrap();
        let good = ClusterConfig::load(&dir.path().join("cluster.toml")).unwrap();

        let mut c = good.clone();
        c.nodes[1].party = 3;
        assert_eq!(c.validate().unwrap_err().field(), Some("nodes[1].party"));

        let mut c = good.clone();
        c.nodes[1].party = 0;
        assert_eq!(c.validate().unwrap_err().field(), Some("nodes[1].party"));

        let mut c = good.clone();
        c.nodes[2].cert_sha256 = c.nodes[2].cert_sha256.to_uppercase();
        assert_eq!(
            c.validate().unwrap_err().field(),
            Some("nodes[2].cert_sha256")
        );

        let mut c = good.clone();
        c.nodes[0].cert_sha256.pop();
        assert_eq!(
            c.validate().unwrap_err().field(),
            Some("nodes[0].cert_sha256")
        );

        let mut c = good.clone();
        c.client.cert = dir.path().join("missing.pem");
        assert_eq!(c.validate().unwrap_err().field(), Some("client.cert"));

        let mut c = good;
        c.client.name = String::new();
        assert_eq!(c.validate().unwrap_err().field(), Some("client.name"));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        assert!(matches!(
            NodeConfig::load(&missing),
            Err(ConfigError::Io { path, .. }) if path == missing
        ));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "party = \"zero\"\n").unwrap();
        match NodeConfig::load(&bad) {
            Err(ConfigError::Parse { path, message }) => {
                assert_eq!(path, bad);
                assert!(message.contains("party"), "{message}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        // Validation errors from load carry the file.
        let layout = write_devnet(dir.path(), 7700, &["alice"]).unwrap();
        let text = std::fs::read_to_string(&layout.node_configs[2]).unwrap();
        std::fs::write(
            &layout.node_configs[2],
            text.replacen("party = 2", "party = 7", 1),
        )
        .unwrap();
        let e = NodeConfig::load(&layout.node_configs[2]).unwrap_err();
        assert_eq!(e.field(), Some("party"));
        assert!(e.to_string().contains("node-2.toml"), "{e}");
    }
}
