//! The client's `cluster.toml` and the validation helpers shared with the node's own
//! configuration: `cluster.toml` tells a client where the three nodes are, which certificate
//! each must present (pinned by fingerprint), which receipt key each signs with and which identity
//! to present. Relative paths are resolved against the directory of the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors from loading or validating a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read {path}: {source}")]
    Io {
        /// The configuration file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("parse {path}: {message}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A field has an invalid value.
    #[error("{}invalid `{field}`: {problem}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Invalid {
        /// The configuration file, when known (set by `load`).
        path: Option<PathBuf>,
        /// The field, e.g. `peers[1].party` or `tls.cert`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    /// An invalid-field error (the file is filled in by `in_file`).
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: None,
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Names `file` in an [`ConfigError::Invalid`] that does not name one yet.
    pub fn in_file(self, file: &Path) -> Self {
        match self {
            ConfigError::Invalid {
                path: None,
                field,
                problem,
            } => ConfigError::Invalid {
                path: Some(file.to_path_buf()),
                field,
                problem,
            },
            other => other,
        }
    }

    /// The offending field, for [`ConfigError::Invalid`].
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// One node, as a client knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterNode {
    /// Party index, 0..=2.
    pub party: usize,
    /// Where to dial it, e.g. `127.0.0.1:7100`.
    pub addr: String,
    /// Its receipt public key (Ed25519, 64 hex digits): the client checks every node's signed
    /// receipt against it.
    pub receipt_key: String,
    /// Lowercase hex SHA-256 of its certificate's DER ([`crate::tls::cert_fingerprint`]): the
    /// client completes a handshake with this node only if it presents exactly this
    /// certificate (pinned, on top of the CA check).
    pub cert_sha256: String,
}

/// The identity a client presents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIdentity {
    /// The client's name (as the nodes know it).
    pub name: String,
    /// Its certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// A [`SecurityMode`] by name in a config file (`semi-honest`, `malicious`): the node's
/// `security` and the client's `require_security`.
pub mod security_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use veil_runtime::SecurityMode;

    /// The mode's name.
    pub fn serialize<S: Serializer>(mode: &SecurityMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.as_str())
    }

    /// A mode from its name; an unknown name is an error naming the accepted ones.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecurityMode, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }

    /// Whether `mode` is the default (semi-honest), which need not be written.
    pub fn is_default(mode: &SecurityMode) -> bool {
        *mode == SecurityMode::default()
    }
}

/// What a client needs to reach the cluster (`cluster.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The CA certificate that signs the node certificates.
    pub ca: PathBuf,
    /// The three nodes.
    pub nodes: Vec<ClusterNode>,
    /// The identity to present.
    pub client: ClientIdentity,
    /// The weakest security mode whose results this client accepts (`semi-honest`, the
    /// default, accepts any; `malicious` refuses outputs of a session the nodes ran
    /// semi-honest — what all three nodes state and sign in their receipts).
    #[serde(
        default,
        with = "security_name",
        skip_serializing_if = "security_name::is_default"
    )]
    pub require_security: veil_runtime::SecurityMode,
}

/// Reads and parses a TOML configuration file.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// The directory relative paths in `path` are resolved against.
pub fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a relative `p` relative to `base`.
pub fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

/// Checks that `path` is a readable regular file.
pub fn check_readable(field: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::File::open(path) {
        Ok(f) => match f.metadata() {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(ConfigError::invalid(
                field,
                format!("{} is not a file", path.display()),
            )),
            Err(e) => Err(ConfigError::invalid(
                field,
                format!("cannot read {}: {e}", path.display()),
            )),
        },
        Err(e) => Err(ConfigError::invalid(
            field,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Checks a certificate fingerprint: 64 lowercase hex digits.
pub fn check_fingerprint(field: &str, fp: &str) -> Result<(), ConfigError> {
    if fp.len() == 64 && fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            "expected 64 lowercase hex digits (SHA-256 of the certificate DER)",
        ))
    }
}

/// Checks a party index (0..=2).
pub fn check_party(field: &str, party: usize) -> Result<(), ConfigError> {
    if party <= 2 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("party {party} out of range (0..=2)"),
        ))
    }
}

/// Checks a `host:port` address with a numeric port.
pub fn check_addr(field: &str, addr: &str) -> Result<(), ConfigError> {
    // host:port with a numeric port; the host may be a name.
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("`{addr}` is not host:port"),
        ))
    }
}

/// Checks that `parties` holds 0, 1 and 2 exactly once each; `list` names the field.
pub fn check_three(list: &str, parties: impl Iterator<Item = usize>) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for (i, p) in parties.enumerate() {
        check_party(&format!("{list}[{i}].party"), p)?;
        if !seen.insert(p) {
            return Err(ConfigError::invalid(
                format!("{list}[{i}].party"),
                format!("duplicate party {p}"),
            ));
        }
    }
    if let Some(missing) = (0..3).find(|p| !seen.contains(p)) {
        return Err(ConfigError::invalid(
            list,
            format!("missing party {missing} (all three nodes must be listed)"),
        ));
    }
    Ok(())
}

/// Checks a client or corpus name: non-empty, no whitespace or control characters.
pub fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        Err(ConfigError::invalid(field, "empty name"))
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err(ConfigError::invalid(
            field,
            "name contains whitespace or control characters",
        ))
    } else {
        Ok(())
    }
}

impl ClusterConfig {
    /// Reads, parses and validates `cluster.toml`; relative paths are resolved against the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: ClusterConfig = read_toml(path)?;
        let base = base_dir(path);
        resolve(&base, &mut cfg.ca);
        resolve(&base, &mut cfg.client.cert);
        resolve(&base, &mut cfg.client.key);
        cfg.validate().map_err(|e| e.in_file(path))?;
        Ok(cfg)
    }

    /// Checks the node list (parties 0..=2 each exactly once, host:port addresses, certificate
    /// fingerprints), the client name and that the CA and client files are readable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_three("nodes", self.nodes.iter().map(|n| n.party))?;
        for (i, n) in self.nodes.iter().enumerate() {
            check_addr(&format!("nodes[{i}].addr"), &n.addr)?;
            crate::receipt::parse_public(n.party, &n.receipt_key).map_err(|e| {
                ConfigError::invalid(format!("nodes[{i}].receipt_key"), e.to_string())
            })?;
            check_fingerprint(&format!("nodes[{i}].cert_sha256"), &n.cert_sha256)?;
        }
        check_name("client.name", &self.client.name)?;
        check_readable("ca", &self.ca)?;
        check_readable("client.cert", &self.client.cert)?;
        check_readable("client.key", &self.client.key)?;
        Ok(())
    }

    /// The entry of `party`'s node.
    pub fn node(&self, party: usize) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.party == party)
    }

    /// The address of `party`'s node.
    pub fn addr(&self, party: usize) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.party == party)
            .map(|n| n.addr.as_str())
    }
}
