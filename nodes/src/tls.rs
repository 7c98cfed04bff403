//! Mutual TLS for the nodes: certificate fingerprints, a throwaway devnet PKI (rcgen) and the
//! tonic server/client TLS configurations.
//!
//! Every link is mTLS: nodes present their node certificate both when serving and when dialing
//! a peer, clients present a client certificate. Who is who is decided by the SHA-256
//! fingerprint of the presented certificate (see [`cert_fingerprint`]), checked against the
//! node configuration.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::TlsFiles;

/// Errors from reading, parsing or generating certificates. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create directory").
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM document is malformed or lacks the expected block.
    #[error("bad PEM{}: {message}", what.as_ref().map(|w| format!(" in {w}")).unwrap_or_default())]
    Pem {
        /// Which file (if known).
        what: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
}

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> Self {
        TlsError::Generate(e.to_string())
    }
}

/// Lowercase hex SHA-256 of a certificate's DER encoding.
pub fn cert_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Fingerprint ([`cert_fingerprint`]) of the first `CERTIFICATE` block in a PEM document.
pub fn pem_fingerprint(pem: &str) -> Result<String, TlsError> {
    Ok(cert_fingerprint(&first_cert_der(pem)?))
}

/// Fingerprint of the first certificate in the PEM file at `path`.
pub fn file_fingerprint(path: &Path) -> Result<String, TlsError> {
    let pem = read_string(path)?;
    pem_fingerprint(&pem).map_err(|e| with_what(e, path))
}

/// DER bytes of the first `CERTIFICATE` block of a PEM document.
pub fn first_cert_der(pem: &str) -> Result<Vec<u8>, TlsError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let bad = |message: &str| TlsError::Pem {
        what: None,
        message: message.to_string(),
    };
    let start = pem.find(BEGIN).ok_or_else(|| bad("no CERTIFICATE block"))? + BEGIN.len();
    let len = pem[start..]
        .find(END)
        .ok_or_else(|| bad("CERTIFICATE block is not terminated"))?;
    let der = base64_decode(&pem[start..start + len])
        .ok_or_else(|| bad("CERTIFICATE block is not valid base64"))?;
    if der.is_empty() {
        return Err(bad("CERTIFICATE block is empty"));
    }
    Ok(der)
}

/// Standard base64 (with optional `=` padding); ASCII whitespace is skipped.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits, mut padding) = (0u32, 0u32, 0usize);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None; // data after padding
        }
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of a 2- or 3-character final group.
    if padding > 2 || bits >= 6 || acc != 0 {
        return None;
    }
    Some(out)
}

/// A certificate and its private key, freshly issued by a [`Pki`].
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM. Secret: write it with [`write_private`].
    pub key_pem: String,
    /// [`cert_fingerprint`] of the certificate.
    pub fingerprint: String,
}

/// A generated certificate authority that issues node and client certificates (devnet only:
/// its key lives in memory and is dropped with it).
pub struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// A new self-signed CA named `common_name`.
    pub fn generate(common_name: &str) -> Result<Pki, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A node certificate: CN `name`, SANs `localhost` and `127.0.0.1`, usable for both server
    /// and client authentication (nodes dial each other).
    pub fn node_cert(&self, name: &str) -> Result<IssuedCert, TlsError> {
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        self.issue(
            params,
            name,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// A client certificate: CN `name`, client authentication only.
    pub fn client_cert(&self, name: &str) -> Result<IssuedCert, TlsError> {
        let params = CertificateParams::new(Vec::<String>::new())?;
        self.issue(params, name, vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        name: &str,
        eku: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<IssuedCert, TlsError> {
        let key = KeyPair::generate()?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint: cert_fingerprint(cert.der()),
        })
    }
}

/// The files of a devnet PKI and the fingerprints of its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevnetPki {
    /// The CA certificate (`ca.pem`).
    pub ca: PathBuf,
    /// Per party: (certificate, key) — `node-<i>.pem`, `node-<i>.key.pem`.
    pub nodes: [(PathBuf, PathBuf); 3],
    /// Per client: (name, certificate, key) — `client-<name>.pem`, `client-<name>.key.pem`.
    pub clients: Vec<(String, PathBuf, PathBuf)>,
    /// Per party: fingerprint of the node certificate.
    pub node_fingerprints: [String; 3],
    /// Per client: (name, fingerprint of its certificate).
    pub client_fingerprints: Vec<(String, String)>,
}

fn devnet_paths(dir: &Path, clients: &[&str]) -> DevnetPki {
    DevnetPki {
        ca: dir.join("ca.pem"),
        nodes: std::array::from_fn(|i| {
            (
                dir.join(format!("node-{i}.pem")),
                dir.join(format!("node-{i}.key.pem")),
            )
        }),
        clients: clients
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    dir.join(format!("client-{c}.pem")),
                    dir.join(format!("client-{c}.key.pem")),
                )
            })
            .collect(),
        node_fingerprints: Default::default(),
        client_fingerprints: Vec::new(),
    }
}

/// Generates a fresh CA, three node certificates and one client certificate per name, and
/// writes `dir/ca.pem`, `dir/node-{0,1,2}.pem` + `.key.pem` and `dir/client-<name>.pem` +
/// `.key.pem` (keys mode 0600 on Unix). Creates `dir` if needed; overwrites existing files.
pub fn write_devnet_pki(dir: &Path, clients: &[&str]) -> Result<DevnetPki, TlsError> {
    fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        op: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = devnet_paths(dir, clients);
    let pki = Pki::generate("veil devnet CA")?;
    write_public(&out.ca, pki.ca_pem())?;
    for (i, (cert, key)) in out.nodes.iter().enumerate() {
        let issued = pki.node_cert(&format!("node-{i}"))?;
        write_public(cert, &issued.cert_pem)?;
        write_private(key, &issued.key_pem)?;
        out.node_fingerprints[i] = issued.fingerprint;
    }
    for (name, cert, key) in &out.clients {
        let issued = pki.client_cert(&format!("client-{name}"))?;
        write_public(cert, &issued.cert_pem)?;
        write_private(key, &issued.key_pem)?;
        out.client_fingerprints
            .push((name.clone(), issued.fingerprint));
    }
    Ok(out)
}

/// Reads back a devnet PKI written by [`write_devnet_pki`] if every file for these clients is
/// present in `dir` (`Ok(None)` if any is missing), computing the fingerprints from the files.
pub fn load_devnet_pki(dir: &Path, clients: &[&str]) -> Result<Option<DevnetPki>, TlsError> {
    let mut out = devnet_paths(dir, clients);
    let all_present = std::iter::once(&out.ca)
        .chain(out.nodes.iter().flat_map(|(c, k)| [c, k]))
        .chain(out.clients.iter().flat_map(|(_, c, k)| [c, k]))
        .all(|p| p.is_file());
    if !all_present {
        return Ok(None);
    }
    first_cert_der(&read_string(&out.ca)?).map_err(|e| with_what(e, &out.ca))?;
    for (i, (cert, _)) in out.nodes.iter().enumerate() {
        out.node_fingerprints[i] = file_fingerprint(cert)?;
    }
    for (name, cert, _) in &out.clients {
        out.client_fingerprints
            .push((name.clone(), file_fingerprint(cert)?));
    }
    Ok(Some(out))
}

/// Server TLS for a node: its identity, and client certificates required (signed by `ca`).
pub fn server_tls(files: &TlsFiles) -> Result<ServerTlsConfig, TlsError> {
    let (ca, identity) = load_identity(&files.ca, &files.cert, &files.key)?;
    Ok(ServerTlsConfig::new().identity(identity).client_ca_root(ca))
}

/// Client TLS (for a node dialing a peer, or a client): trusts `ca`, presents `cert`/`key`,
/// and expects the server name `localhost`.
pub fn client_tls(ca: &Path, cert: &Path, key: &Path) -> Result<ClientTlsConfig, TlsError> {
    let (ca, identity) = load_identity(ca, cert, key)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(identity)
        .domain_name("localhost"))
}

fn load_identity(ca: &Path, cert: &Path, key: &Path) -> Result<(Certificate, Identity), TlsError> {
    let ca_pem = read_string(ca)?;
    first_cert_der(&ca_pem).map_err(|e| with_what(e, ca))?;
    let cert_pem = read_string(cert)?;
    first_cert_der(&cert_pem).map_err(|e| with_what(e, cert))?;
    let key_pem = read_string(key)?;
    if !key_pem.contains("PRIVATE KEY-----") {
        return Err(TlsError::Pem {
            what: Some(key.display().to_string()),
            message: "no PRIVATE KEY block".to_string(),
        });
    }
    Ok((
        Certificate::from_pem(ca_pem),
        Identity::from_pem(cert_pem, key_pem),
    ))
}

fn with_what(e: TlsError, path: &Path) -> TlsError {
    match e {
        TlsError::Pem {
            what: None,
            message,
        } => TlsError::Pem {
            what: Some(path.display().to_string()),
            message,
        },
        other => other,
    }
}

fn read_string(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn write_public(path: &Path, contents: &str) -> Result<(), TlsError> {
    fs::write(path, contents).map_err(|source| TlsError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a private key file, readable by its owner only (mode 0600 on Unix).
pub fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Zg==Zg").is_none());
        assert!(base64_decode("Z").is_none());
    }

    #[test]
    fn pem_without_certificate_is_rejected() {
        assert!(matches!(
            pem_fingerprint("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(TlsError::Pem { .. })
        ));
        assert!(pem_fingerprint("-----BEGIN CERTIFICATE-----\nAA!A\n").is_err());
    }

    #[test]
    fn devnet_pki_writes_files_and_fingerprints_match_der() {
        let dir = tempfile::tempdir().unwrap();
        let pki = write_devnet_pki(dir.path(), &["alice", "bob"]).unwrap();
        assert_eq!(pki.ca, dir.path().join("ca.pem"));
        assert!(pki.ca.is_file());
        for (i, (cert, key)) in pki.nodes.iter().enumerate() {
            assert_eq!(cert, &dir.path().join(format!("node-{i}.pem")));
            assert_eq!(key, &dir.path().join(format!("node-{i}.key.pem")));
            let pem = fs::read_to_string(cert).unwrap();
            let der = first_cert_der(&pem).unwrap();
            assert_eq!(cert_fingerprint(&der), pki.node_fingerprints[i]);
            assert_eq!(pem_fingerprint(&pem).unwrap(), pki.node_fingerprints[i]);
            assert_eq!(pki.node_fingerprints[i].len(), 64);
            assert!(fs::read_to_string(key).unwrap().contains("PRIVATE KEY"));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(key).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "key readable by others");
            }
        }
        let mut distinct = pki.node_fingerprints.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        assert_eq!(pki.clients.len(), 2);
        for ((name, cert, key), (fname, fp)) in pki.clients.iter().zip(&pki.client_fingerprints) {
            assert_eq!(name, fname);
            assert_eq!(cert, &dir.path().join(format!("client-{name}.pem")));
            assert!(key.is_file());
            assert_eq!(&file_fingerprint(cert).unwrap(), fp);
        }
        // Reading the directory back gives the same PKI.
        let loaded = load_devnet_pki(dir.path(), &["alice", "bob"])
            .unwrap()
            .unwrap();
        assert_eq!(loaded, pki);
        // A client without files means "not there yet".
        assert!(load_devnet_pki(dir.path(), &["carol"]).unwrap().is_none());
    }

    #[tokio::test]
    async fn mutual_tls_round_trip_with_generated_certs() {
        use tokio_stream::wrappers::TcpListenerStream;
        use tonic::transport::{Endpoint, Server};
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

        let dir = tempfile::tempdir().unwrap();
        let pki = write_devnet_pki(dir.path(), &["alice"]).unwrap();
        let files = TlsFiles {
            ca: pki.ca.clone(),
            cert: pki.nodes[0].0.clone(),
            key: pki.nodes[0].1.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let server = tokio::spawn(
            Server::builder()
                .tls_config(server_tls(&files).unwrap())
                .unwrap()
                .add_service(health)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let url = format!("https://127.0.0.1:{}", addr.port());

        // A node (server+client EKU) and a client certificate are both accepted.
        for (cert, key) in [
            (&pki.nodes[1].0, &pki.nodes[1].1),
            (&pki.clients[0].1, &pki.clients[0].2),
        ] {
            let channel = Endpoint::from_shared(url.clone())
                .unwrap()
                .tls_config(client_tls(&pki.ca, cert, key).unwrap())
                .unwrap()
                .connect()
                .await
                .unwrap();
            let resp = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .unwrap();
            assert_eq!(resp.into_inner().status, 1); // SERVING
        }

        // Without a client certificate the handshake/RPC fails.
        let no_identity = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(fs::read(&pki.ca).unwrap()))
            .domain_name("localhost");
        let result = async {
            let channel = Endpoint::from_shared(url.clone())?
                .tls_config(no_identity)?
                .connect()
                .await?;
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }
        .await;
        assert!(
            result.is_err(),
            "a client without a certificate got through"
        );
        server.abort();
    }
}
