//! The devnet PKI (rcgen: a throwaway CA issuing node and client certificates) and the
//! node's server TLS configuration. Fingerprints and pinning live in [`veil_proto::tls`].

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::ServerTlsConfig;
use veil_proto::tls::{
    TlsError, cert_fingerprint, file_fingerprint, first_cert_der, load_identity, read_string,
    with_what, write_private, write_public,
};

use crate::config::TlsFiles;

/// Certificate generation failed (rcgen's error, as text).
fn generate(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
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
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(generate)?;
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
        self.node_cert_for(name, &[])
    }

    /// [`Pki::node_cert`] with `hosts` (DNS names or IP addresses, as a node is reached on
    /// another machine) added to the SANs after `localhost` and `127.0.0.1`. Dialers inside
    /// veil verify [`veil_proto::tls::NODE_SERVER_NAME`] plus the pinned fingerprint; the extra
    /// names are for standard tools (`grpcurl host:port`) that verify the dialed name.
    pub fn node_cert_for(&self, name: &str, hosts: &[String]) -> Result<IssuedCert, TlsError> {
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        for h in hosts {
            if !sans.contains(h) {
                sans.push(h.clone());
            }
        }
        let params = CertificateParams::new(sans).map_err(generate)?;
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
        let params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        self.issue(params, name, vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        name: &str,
        eku: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<IssuedCert, TlsError> {
        let key = KeyPair::generate().map_err(generate)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(generate)?;
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
    write_pki(dir, clients, &Default::default())
}

/// [`write_devnet_pki`] with extra SANs per node certificate ([`Pki::node_cert_for`]): node
/// `i`'s certificate also names `node_hosts[i]`.
pub fn write_pki(
    dir: &Path,
    clients: &[&str],
    node_hosts: &[Vec<String>; 3],
) -> Result<DevnetPki, TlsError> {
    fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        op: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = devnet_paths(dir, clients);
    let pki = Pki::generate("veil devnet CA")?;
    write_public(&out.ca, pki.ca_pem())?;
    for (i, (cert, key)) in out.nodes.iter().enumerate() {
        let issued = pki.node_cert_for(&format!("node-{i}"), &node_hosts[i])?;
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
#[cfg(test)]
mod tests {
    use super::*;
    use tonic::transport::{Certificate, Endpoint};
    use veil_proto::tls::{PinnedTls, WrongCertificate, find_wrong_certificate, pem_fingerprint};

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

    /// Checks `cert` as a dial to `party` at 127.0.0.1:9101 pinned to `expected` does.
    fn verify(
        dialer: &PinnedTls,
        party: usize,
        expected: &str,
        cert: &Path,
    ) -> Result<(), rustls::Error> {
        let der = first_cert_der(&fs::read_to_string(cert).unwrap()).unwrap();
        dialer.check_server_cert(party, "127.0.0.1:9101", expected, &der)
    }

    #[test]
    fn pinned_verifier_accepts_only_the_pinned_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = write_devnet_pki(dir.path(), &["alice"]).unwrap();
        let dialer = PinnedTls::load(&pki.ca, &pki.clients[0].1, &pki.clients[0].2).unwrap();

        // The right certificate for P1.
        let pin = &pki.node_fingerprints[1];
        verify(&dialer, 1, pin, &pki.nodes[1].0).unwrap();

        // P2's certificate (same CA, valid name) where P1 was expected.
        let err = verify(&dialer, 1, pin, &pki.nodes[2].0).unwrap_err();
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
        let err = verify(&dialer, 1, &rogue.fingerprint, &rogue_pem).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
        assert!(find_wrong_certificate(&err).is_none());
    }
}
