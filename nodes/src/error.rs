//! Why a node refuses or fails a client request, and the one map from that to a gRPC status.
//!
//! Every service handler returns [`NodeError`]; `impl From<NodeError> for Status` is the only
//! place a status code is chosen. Messages name ids, sizes and rules, never share words or
//! plaintext: they travel to the client and into the node's log.

use tonic::{Code, Status};
use veil_circuits::PartyId;
use veil_proto::convert::WireError;
use veil_runtime::SecurityMode;
use veil_runtime::error::EngineError;
use veil_runtime::fhe::FheError;

use crate::limits::LimitError;
use crate::peer::OpenError;
use crate::store::StoreError;

/// A request a node refused or could not complete.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed or contradicts the program (`InvalidArgument`).
    #[error("{0}")]
    Invalid(String),
    /// A field failed wire validation (`InvalidArgument`).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The request exceeds one of this node's limits (`ResourceExhausted`).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// No client certificate was presented (`Unauthenticated`).
    #[error("a client certificate is required")]
    NoCertificate,
    /// The caller is known but the rules forbid what it asked (`PermissionDenied`).
    #[error("{0}")]
    Forbidden(String),
    /// The id does not exist, or exists but the caller may not use it: one answer for both,
    /// so ids cannot be probed (`NotFound`).
    #[error("{0}")]
    NotFound(String),
    /// The id is taken (`AlreadyExists`).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request was valid once but the node's state moved on, e.g. a query encrypted for
    /// another corpus version (`FailedPrecondition`).
    #[error("{0}")]
    Stale(String),
    /// The three nodes disagreed about the session, or a protocol step failed: it was
    /// aborted on every node and nothing was stored (`Aborted`).
    #[error("{0}")]
    Aborted(String),
    /// The nodes run different security modes (their configs' `security` differ): every node
    /// refused the session before it ran (`FailedPrecondition`).
    #[error(
        "security mode mismatch: this node ({me}) runs {mine} sessions, but {}; every node of a \
         cluster must set the same `security` in its config; no node ran the session",
        describe_modes(peers)
    )]
    SecurityMismatch {
        /// This node.
        me: PartyId,
        /// Its mode.
        mine: SecurityMode,
        /// The peers whose mode differs, with their modes.
        peers: Vec<(PartyId, SecurityMode)>,
    },
    /// A peer could not be reached or the node is shutting down (`Unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// The share store failed (`AlreadyExists` for a taken id, `Internal` otherwise).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session could not be opened on the peer links.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The session's program failed on this node.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A TFHE query against a corpus was refused.
    #[error("corpus '{corpus}': {source}")]
    Fhe {
        /// The corpus queried.
        corpus: String,
        /// Why.
        #[source]
        source: FheError,
    },
    /// A bug or an environment failure on this node (`Internal`).
    #[error("{0}")]
    Internal(String),
}

/// "P1 runs malicious and P2 runs malicious".
fn describe_modes(peers: &[(PartyId, SecurityMode)]) -> String {
    let each: Vec<String> = peers
        .iter()
        .map(|(p, mode)| format!("{p} runs {mode}"))
        .collect();
    each.join(" and ")
}

impl NodeError {
    /// The gRPC status code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            NodeError::Invalid(_) | NodeError::Wire(_) => Code::InvalidArgument,
            NodeError::Limit(_) => Code::ResourceExhausted,
            NodeError::NoCertificate => Code::Unauthenticated,
            NodeError::Forbidden(_) => Code::PermissionDenied,
            NodeError::NotFound(_) => Code::NotFound,
            NodeError::AlreadyExists(_) => Code::AlreadyExists,
            NodeError::Stale(_) | NodeError::SecurityMismatch { .. } => Code::FailedPrecondition,
            NodeError::Aborted(_) => Code::Aborted,
            NodeError::Unavailable(_) => Code::Unavailable,
            NodeError::Internal(_) => Code::Internal,
            NodeError::Store(StoreError::AlreadyExists { .. }) => Code::AlreadyExists,
            NodeError::Store(_) => Code::Internal,
            NodeError::Open(OpenError::Reused(_)) => Code::AlreadyExists,
            NodeError::Open(_) => Code::Unavailable,
            NodeError::Engine(e) => match e {
                // In malicious mode: the proof of the program's products would exceed the
                // session's bound (a limit, like the node's own).
                EngineError::ProofTooLarge { .. } => Code::ResourceExhausted,
                EngineError::Round { .. } | EngineError::Setup(_) => Code::Unavailable,
                // A protocol step failed, or (malicious mode) the session's verification
                // caught a deviation: every honest node aborts, nothing is stored.
                EngineError::Protocol { .. } | EngineError::Aborted { .. } => Code::Aborted,
                // The request's program or inputs do not fit: the caller's error. In malicious
                // mode that includes an op with no maliciously secure protocol.
                EngineError::Unverified { .. }
                | EngineError::Invalid(_)
                | EngineError::MissingInput { .. }
                | EngineError::UnknownInput { .. }
                | EngineError::InputLength { .. }
                | EngineError::InputKind { .. } => Code::InvalidArgument,
                // The engine disagreed with itself (plan, schedule, operands): a fault in
                // veil, not in the request; the session failed instead of the node.
                _ => Code::Internal,
            },
            // Another database version means a stale client: fetch the corpus again.
            NodeError::Fhe {
                source: FheError::WrongDatabase { .. },
                ..
            } => Code::FailedPrecondition,
            NodeError::Fhe { .. } => Code::InvalidArgument,
        }
    }
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

impl From<tokio::task::JoinError> for NodeError {
    fn from(e: tokio::task::JoinError) -> Self {
        NodeError::Internal(format!("task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code_and_keeps_its_message() {
        let cases = [
            (NodeError::Invalid("bad".into()), Code::InvalidArgument),
            (NodeError::NoCertificate, Code::Unauthenticated),
            (NodeError::Forbidden("no".into()), Code::PermissionDenied),
            (NodeError::NotFound("none".into()), Code::NotFound),
            (
                NodeError::AlreadyExists("taken".into()),
                Code::AlreadyExists,
            ),
            (NodeError::Aborted("mismatch".into()), Code::Aborted),
            (NodeError::Unavailable("down".into()), Code::Unavailable),
            (
                NodeError::Store(StoreError::AlreadyExists {
                    kind: "value",
                    id: "x".into(),
                }),
                Code::AlreadyExists,
            ),
            (
                NodeError::Store(StoreError::Db("io".into())),
                Code::Internal,
            ),
        ];
        for (e, code) in cases.into_iter().chain([
            (
                NodeError::Engine(EngineError::Aborted {
                    what: "P1's product proof failed".into(),
                }),
                Code::Aborted,
            ),
            (
                NodeError::Engine(EngineError::Unverified {
                    op: 3,
                    name: "msb_onehot",
                }),
                Code::InvalidArgument,
            ),
            (
                NodeError::Engine(EngineError::ProofTooLarge {
                    what: "products (proof entries)",
                    entries: 1 << 22,
                    limit: 1 << 21,
                }),
                Code::ResourceExhausted,
            ),
            (
                NodeError::SecurityMismatch {
                    me: PartyId::P0,
                    mine: SecurityMode::Malicious,
                    peers: vec![(PartyId::P2, SecurityMode::SemiHonest)],
                },
                Code::FailedPrecondition,
            ),
        ]) {
            let message = e.to_string();
            let status = Status::from(e);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn abort_refusal_and_mismatch_messages_say_what_happened() {
        let aborted = Status::from(NodeError::Engine(EngineError::Aborted {
            what: "P1's product proof failed".into(),
        }));
        assert_eq!(
            aborted.message(),
            "session aborted for inconsistency: P1's product proof failed"
        );
        let refused = Status::from(NodeError::Engine(EngineError::Unverified {
            op: 3,
            name: "msb_onehot",
        }));
        assert!(
            refused
                .message()
                .starts_with("op 3 (msb_onehot) has no maliciously secure protocol")
        );
        let mismatch = NodeError::SecurityMismatch {
            me: PartyId::P0,
            mine: SecurityMode::Malicious,
            peers: vec![
                (PartyId::P1, SecurityMode::SemiHonest),
                (PartyId::P2, SecurityMode::SemiHonest),
            ],
        };
        assert_eq!(
            mismatch.to_string(),
            "security mode mismatch: this node (P0) runs malicious sessions, but P1 runs \
             semi-honest and P2 runs semi-honest; every node of a cluster must set the same \
             `security` in its config; no node ran the session"
        );
    }
}
