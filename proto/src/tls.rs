//! Pinned mutual TLS shared by nodes and clients: certificate fingerprints, PEM checks and the
//! dialer that verifies a server against the fingerprint pinned for the party it meant to reach.
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
use tonic::transport::{Certificate, Endpoint, Identity};

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
    /// Checks a server certificate (DER) exactly as a dial to `party` at `addr`, pinned to the
    /// fingerprint `expected`, does: chain to the cluster CA for [`NODE_SERVER_NAME`], then the
    /// pin. A pin mismatch is a [`WrongCertificate`] (see [`find_wrong_certificate`]).
    pub fn check_server_cert(
        &self,
        party: usize,
        addr: &str,
        expected: &str,
        der: &[u8],
    ) -> Result<(), rustls::Error> {
        let verifier = PinnedVerifier {
            chain: self.chain.clone(),
            party,
            addr: addr.to_string(),
            expected: expected.to_string(),
        };
        let name = ServerName::try_from(NODE_SERVER_NAME)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier
            .verify_server_cert(&CertificateDer::from(der), &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

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

/// Reads a CA certificate, a certificate and its private key (PEM), checking each has the
/// expected block: the TLS identity a node or client presents.
pub fn load_identity(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<(Certificate, Identity), TlsError> {
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

/// Names `path` in a [`TlsError::Pem`] that does not name a file yet.
pub fn with_what(e: TlsError, path: &Path) -> TlsError {
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

/// Reads a PEM file to a string.
pub fn read_string(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a public file (a certificate).
pub fn write_public(path: &Path, contents: &str) -> Result<(), TlsError> {
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
