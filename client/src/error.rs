//! What can go wrong in a client call, by service.

use veil_proto::config::ConfigError;
use veil_proto::receipt::ReceiptError;
use veil_proto::tls::{PinnedConnector, TlsError, WrongCertificate};
use veil_runtime::fhe::FheError;
use veil_runtime::sharing::ReconstructError;

/// A client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A connection could not be set up.
    #[error("connecting to node {node}: {source}")]
    Connect {
        /// Party index of the node.
        node: usize,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// A node refused or failed a call.
    #[error("node {node}: {}: {}", status.code(), status.message())]
    Status {
        /// Party index of the node.
        node: usize,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The nodes' components of an output do not agree.
    #[error("output '{output}': {source}")]
    Reconstruct {
        /// Output name.
        output: String,
        /// Cause (names the disagreeing node when it can).
        source: ReconstructError,
    },
    /// The nodes ran (or computed a stored result) in a weaker security mode than this
    /// client requires (`require_security` in `cluster.toml`, [`crate::Client::require_security`]);
    /// the outputs were not used.
    #[error(
        "the nodes ran the session in {stated} mode, but this client requires {required}; its \
         outputs were not used"
    )]
    SecurityTooWeak {
        /// The mode this client requires.
        required: veil_runtime::SecurityMode,
        /// The mode the nodes stated (the weakest of the three, for a stored result).
        stated: veil_runtime::SecurityMode,
    },
    /// The nodes answered inconsistently (e.g. different program ids or output lists).
    #[error("nodes disagree: {0}")]
    Inconsistent(String),
    /// The address of node `node` led to a server whose certificate (valid for the cluster CA)
    /// is not the one `cluster.toml` pins for that node: another node or an impostor answered.
    #[error("node {node} is not the node cluster.toml pins: {source}")]
    WrongNodeCertificate {
        /// Party index of the node the client meant to reach.
        node: usize,
        /// Address, presented and pinned fingerprints.
        source: WrongCertificate,
    },
    /// A node's components of an output are not whole 64-bit words or differ in length.
    #[error("node {node} sent a malformed output '{output}': {what}")]
    MalformedOutput {
        /// Party index of the node.
        node: usize,
        /// Output name.
        output: String,
        /// What is wrong with it.
        what: String,
    },
    /// A node's receipt is missing, binds another request, or does not verify.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
}

/// The error for a failed call to node `node`: a refused certificate pin when that is why the
/// (lazy) channel could not connect, the status otherwise.
pub(crate) fn node_error(
    node: usize,
    connector: &PinnedConnector,
    status: tonic::Status,
) -> ClientError {
    match connector.refused() {
        Some(source) if status.code() == tonic::Code::Unavailable => {
            ClientError::WrongNodeCertificate { node, source }
        }
        _ => ClientError::Status { node, status },
    }
}

/// A retrieval call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetrievalError {
    /// The cluster file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The cluster file lists no node with this party index.
    #[error("the cluster has no node {node}")]
    NoSuchNode {
        /// The requested party index.
        node: usize,
    },
    /// A connection could not be set up.
    #[error("connecting to node {node}: {source}")]
    Connect {
        /// Party index of the node.
        node: usize,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// The node refused or failed a call.
    #[error("node {node}: {}: {}", status.code(), status.message())]
    Status {
        /// Party index of the node.
        node: usize,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// Encrypting a query or decoding an answer, hint or corpus object failed.
    #[error(transparent)]
    Fhe(#[from] FheError),
    /// The node's reply broke the protocol (e.g. a corpus stream with gaps, a wrong count).
    #[error("node {node} sent a malformed reply: {what}")]
    Malformed {
        /// Party index of the node.
        node: usize,
        /// What is wrong with it.
        what: String,
    },
    /// `fetch` on a corpus that has no passages.
    #[error("corpus '{corpus}' has no passages")]
    NoPassages {
        /// The corpus name.
        corpus: String,
    },
    /// The node's address led to a server whose certificate is not the one `cluster.toml` pins
    /// for it (see [`ClientError::WrongNodeCertificate`]).
    #[error("node {node} is not the node cluster.toml pins: {source}")]
    WrongNodeCertificate {
        /// Party index of the node the client meant to reach.
        node: usize,
        /// Address, presented and pinned fingerprints.
        source: WrongCertificate,
    },
}

impl ClientError {
    /// The gRPC status code a node answered with, for [`ClientError::Status`].
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

impl RetrievalError {
    /// The gRPC status code, for [`RetrievalError::Status`].
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            RetrievalError::Status { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}
