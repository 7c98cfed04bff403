//! Mutual TLS for the nodes: certificate fingerprints, a throwaway devnet PKI (rcgen) and the
//! tonic server/client TLS configurations.
//!
//! Every link is mTLS: nodes present their node certificate both when serving and when dialing
//! a peer, clients present a client certificate. Who is who is decided by the SHA-256
//! fingerprint of the presented certificate (see [`cert_fingerprint`]), checked on both ends:
//! the accepting node checks the dialer's client certificate against its configuration, and the
//! dialer (a node dialing a peer, or the client SDK) checks the server's certificate against the
//! fingerprint pinned for the party it meant to reach ([`PinnedTls`], [`PinnedConnector`]), on
//! top of chain verification against the cluster CA. A redirected address therefore fails with
//! [`WrongCertificate`] instead of reaching another node.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Certificate, Endpoint, Identity, ServerTlsConfig};

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
    /// The TLS configuration could not be built from the certificates and key.
    #[error("TLS configuration: {0}")]
    Config(String),
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

/// The server name a dialer verifies node certificates for (every node certificate carries it,
/// see [`Pki::node_cert`]); which node answered is decided by the pinned fingerprint.
pub const NODE_SERVER_NAME: &str = "localhost";

/// A dialed node presented a certificate (valid for the cluster CA) other than the one pinned
/// for the party the dialer meant to reach: the address leads to another node or an impostor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate of {addr} has fingerprint {got}, expected P{party}'s {expected}")]
pub struct WrongCertificate {
    /// The party the dialer meant to reach.
    pub party: usize,
    /// The address it dialed.
    pub addr: String,
    /// [`cert_fingerprint`] of the certificate presented.
    pub got: String,
    /// The pinned fingerprint (from the node or cluster configuration).
    pub expected: String,
}

/// Finds a [`WrongCertificate`] in an error's source chain (looking inside `std::io::Error`s,
/// whose `source` skips the error they wrap, and inside rustls errors).
pub fn find_wrong_certificate<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a WrongCertificate> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(w) = e.downcast_ref::<WrongCertificate>() {
            return Some(w);
        }
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))) =
            e.downcast_ref::<rustls::Error>()
        {
            return o.0.downcast_ref::<WrongCertificate>();
        }
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|i| i as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// The CA, certificate and key a dialer presents, loaded once; [`PinnedTls::connector`] makes a
/// connector per node that accepts only that node's pinned certificate. Used by nodes dialing
/// peers and by the client SDK: the single place where outbound TLS is configured.
pub struct PinnedTls {
    provider: Arc<CryptoProvider>,
    chain: Arc<WebPkiServerVerifier>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for PinnedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedTls")
            .field("certs", &self.certs.len())
            .finish_non_exhaustive() // never the key
    }
}

impl PinnedTls {
    /// Trusts `ca` (PEM, its first certificate), presents `cert` (PEM chain) with `key` (PEM).
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let ca_der = first_cert_der(&read_string(ca)?).map_err(|e| with_what(e, ca))?;
        let cert_pem = read_string(cert)?;
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(pem_error(cert, "no CERTIFICATE block".to_string()));
        }
        let key_pem = read_string(key)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| pem_error(key, "no PRIVATE KEY block".to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_der))
            .map_err(|e| pem_error(ca, format!("not a usable CA certificate: {e}")))?;
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(PinnedTls {
            provider,
            chain,
            certs,
            key,
        })
    }

    /// A connector to node `party` at `addr` (`host:port`) that completes the handshake only if
    /// the node's certificate chains to the CA for [`NODE_SERVER_NAME`] and its SHA-256
    /// fingerprint is `cert_sha256` (lowercase hex); otherwise the dial fails with
    /// [`WrongCertificate`]. ALPN offers `h2`.
    pub fn connector(
        &self,
        party: usize,
        addr: &str,
        cert_sha256: &str,
    ) -> Result<PinnedConnector, TlsError> {
        let verifier = Arc::new(PinnedVerifier {
            chain: self.chain.clone(),
            party,
            addr: addr.to_string(),
            expected: cert_sha256.to_ascii_lowercase(),
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(format!("client certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(PinnedConnector {
            tls: TlsConnector::from(Arc::new(config)),
            addr: addr.to_string(),
            refused: Arc::new(Mutex::new(None)),
        })
    }
}

fn pem_error(path: &Path, message: String) -> TlsError {
    TlsError::Pem {
        what: Some(path.display().to_string()),
        message,
    }
}

/// Chain and name verification against the cluster CA, then the fingerprint pin.
#[derive(Debug)]
struct PinnedVerifier {
    chain: Arc<WebPkiServerVerifier>,
    party: usize,
    addr: String,
    expected: String,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let got = cert_fingerprint(end_entity.as_ref());
        if got != self.expected {
            let wrong = WrongCertificate {
                party: self.party,
                addr: self.addr.clone(),
                got,
                expected: self.expected.clone(),
            };
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(wrong))),
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// A tonic connector (`Endpoint::connect_with_connector[_lazy]`) that dials one node over TCP
/// (`TCP_NODELAY`) and runs the pinned TLS handshake of [`PinnedTls::connector`]. TLS happens
/// here, so the endpoint URI is `http://` ([`PinnedConnector::endpoint`]). Clones share the
/// record of the last refusal ([`PinnedConnector::refused`]).
#[derive(Clone)]
pub struct PinnedConnector {
    tls: TlsConnector,
    addr: String,
    refused: Arc<Mutex<Option<WrongCertificate>>>,
}

impl std::fmt::Debug for PinnedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedConnector")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl PinnedConnector {
    /// An endpoint for this connector: `http://<addr>` (TLS is done by the connector).
    pub fn endpoint(&self) -> Result<Endpoint, tonic::transport::Error> {
        Endpoint::from_shared(format!("http://{}", self.addr))
    }

    /// The address this connector dials.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The certificate mismatch of the latest handshake, if the latest handshake failed on the
    /// pin (a lazy channel turns connect errors into a bare `Unavailable` status; this says why).
    pub fn refused(&self) -> Option<WrongCertificate> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self, refusal: Option<WrongCertificate>) {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = refusal;
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for PinnedConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        // The URI is `http://<addr>` from `endpoint`; dial the configured address itself.
        Box::pin(self.clone().dial())
    }
}

impl PinnedConnector {
    async fn dial(self) -> Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>, BoxError> {
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(NODE_SERVER_NAME)?;
        match self.tls.connect(name, tcp).await {
            Ok(stream) => {
                self.record(None);
                Ok(TokioIo::new(stream))
            }
            Err(e) => match find_wrong_certificate(&e).cloned() {
                Some(wrong) => {
                    self.record(Some(wrong.clone()));
                    Err(Box::new(wrong))
                }
                None => Err(Box::new(e)),
            },
        }
    }
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

/// Writes a private key file, readable by its owner only (mode 0600 on Unix, also when the file
/// already existed with a wider mode).
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
    // The mode above applies only when the file is created: tighten an existing file too,
    // before any secret is written to it (opening truncated it).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
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
        use tonic::transport::{ClientTlsConfig, Server};
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

        let check = |channel| async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        };
        // A node (server+client EKU) and a client certificate are both accepted, over the
        // pinned connector with node 0's fingerprint.
        let addr = format!("127.0.0.1:{}", addr.port());
        for (cert, key) in [
            (&pki.nodes[1].0, &pki.nodes[1].1),
            (&pki.clients[0].1, &pki.clients[0].2),
        ] {
            let dialer = PinnedTls::load(&pki.ca, cert, key).unwrap();
            let connector = dialer
                .connector(0, &addr, &pki.node_fingerprints[0])
                .unwrap();
            let channel = connector
                .endpoint()
                .unwrap()
                .connect_with_connector(connector.clone())
                .await
                .unwrap();
            assert_eq!(check(channel).await.unwrap().into_inner().status, 1); // SERVING
            assert_eq!(connector.refused(), None);
        }

        // Pinning node 1 while the address leads to node 0: the dial fails, naming both.
        let dialer = PinnedTls::load(&pki.ca, &pki.nodes[2].0, &pki.nodes[2].1).unwrap();
        let connector = dialer
            .connector(1, &addr, &pki.node_fingerprints[1])
            .unwrap();
        let err = connector
            .endpoint()
            .unwrap()
            .connect_with_connector(connector.clone())
            .await
            .unwrap_err();
        let expected = WrongCertificate {
            party: 1,
            addr: addr.clone(),
            got: pki.node_fingerprints[0].clone(),
            expected: pki.node_fingerprints[1].clone(),
        };
        assert_eq!(find_wrong_certificate(&err), Some(&expected), "{err:?}");
        assert_eq!(connector.refused(), Some(expected.clone()));
        // A lazy channel reports it as Unavailable carrying the same text.
        let lazy = connector
            .endpoint()
            .unwrap()
            .connect_with_connector_lazy(connector.clone());
        let status = check(lazy).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().contains(&expected.to_string()),
            "{status:?}"
        );

        // Without a client certificate the handshake/RPC fails.
        let no_identity = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(fs::read(&pki.ca).unwrap()))
            .domain_name("localhost");
        let url = format!("https://{addr}");
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

    /// A node's certificate as rustls sees it.
    fn der_of(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from(first_cert_der(&fs::read_to_string(path).unwrap()).unwrap())
    }

    fn verifier(dialer: &PinnedTls, party: usize, expected: &str) -> PinnedVerifier {
        PinnedVerifier {
            chain: dialer.chain.clone(),
            party,
            addr: "127.0.0.1:9101".to_string(),
            expected: expected.to_string(),
        }
    }

    fn verify(v: &PinnedVerifier, cert: &Path) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(NODE_SERVER_NAME).unwrap();
        v.verify_server_cert(&der_of(cert), &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn pinned_verifier_accepts_only_the_pinned_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = write_devnet_pki(dir.path(), &["alice"]).unwrap();
        let dialer = PinnedTls::load(&pki.ca, &pki.clients[0].1, &pki.clients[0].2).unwrap();

        // The right certificate for P1.
        let v = verifier(&dialer, 1, &pki.node_fingerprints[1]);
        verify(&v, &pki.nodes[1].0).unwrap();

        // P2's certificate (same CA, valid name) where P1 was expected.
        let err = verify(&v, &pki.nodes[2].0).unwrap_err();
        let wrong = find_wrong_certificate(&err)
            .expect("a WrongCertificate")
            .clone();
        assert_eq!(
            wrong,
            WrongCertificate {
                party: 1,
                addr: "127.0.0.1:9101".to_string(),
                got: pki.node_fingerprints[2].clone(),
                expected: pki.node_fingerprints[1].clone(),
            }
        );
        let text = wrong.to_string();
        assert!(text.contains("127.0.0.1:9101"), "{text}");
        assert!(text.contains("expected P1's"), "{text}");
        assert!(text.contains(&pki.node_fingerprints[2]), "{text}");

        // Inside an io::Error (as tokio-rustls reports it) it is found too.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        assert_eq!(find_wrong_certificate(&io), Some(&wrong));
    }

    #[test]
    fn pinned_verifier_refuses_another_ca_even_with_a_matching_pin() {
        let dir = tempfile::tempdir().unwrap();
        let pki = write_devnet_pki(dir.path(), &["alice"]).unwrap();
        let dialer = PinnedTls::load(&pki.ca, &pki.clients[0].1, &pki.clients[0].2).unwrap();

        let rogue = Pki::generate("rogue CA")
            .unwrap()
            .node_cert("node-1")
            .unwrap();
        let rogue_pem = dir.path().join("rogue.pem");
        fs::write(&rogue_pem, &rogue.cert_pem).unwrap();
        let v = verifier(&dialer, 1, &rogue.fingerprint);
        let err = verify(&v, &rogue_pem).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
        assert!(find_wrong_certificate(&err).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn write_private_tightens_an_existing_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, "secret").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "secret");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
}
