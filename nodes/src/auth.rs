//! Who is calling: the name of the client (or node) behind a request, from the SHA-256
//! fingerprint of the TLS certificate it presented, looked up in the node's configuration.

use std::collections::HashMap;

use tonic::Request;
use veil_proto::tls::cert_fingerprint;

use crate::error::NodeError;

/// The callers a service accepts: certificate fingerprint → name.
#[derive(Clone, Debug, Default)]
pub struct Callers(HashMap<String, String>);

impl Callers {
    /// Accepts the certificates in `by_fingerprint` (lowercase hex SHA-256 of the DER → name).
    pub fn new(by_fingerprint: HashMap<String, String>) -> Self {
        Callers(by_fingerprint)
    }

    /// The caller's name: `NoCertificate` without a certificate, `Forbidden` for one this node
    /// does not know.
    pub fn name<T>(&self, req: &Request<T>) -> Result<String, NodeError> {
        let certs = req.peer_certs().ok_or(NodeError::NoCertificate)?;
        let first = certs.first().ok_or(NodeError::NoCertificate)?;
        self.0
            .get(&cert_fingerprint(first.as_ref()))
            .cloned()
            .ok_or_else(|| {
                NodeError::Forbidden(
                    "this client certificate is not authorised on this node".into(),
                )
            })
    }
}
