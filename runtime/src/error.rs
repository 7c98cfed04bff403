//! Typed errors of the runtime. Messages carry op names, sizes and party ids — never values,
//! shares, keys or seeds.

use crate::setup::SetupError;
use crate::transport::RoundId;
use veil_circuits::{PartyId, ValidationError};

/// The transport failed to deliver a message (environment or peer fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The link to this peer is closed (the peer stopped or crashed).
    #[error("link to {peer} closed")]
    Closed {
        /// The peer that went away.
        peer: PartyId,
    },
    /// No message from this peer arrived within the session timeout.
    #[error("timed out waiting for {peer} in round {round}")]
    Timeout {
        /// The silent peer.
        peer: PartyId,
        /// The round being waited for.
        round: RoundId,
    },
    /// A message arrived tagged with an unexpected round.
    #[error("{peer} sent a message for round {got} while round {expected} was expected")]
    OutOfOrder {
        /// The sender.
        peer: PartyId,
        /// Round the receiver waited for.
        expected: RoundId,
        /// Round on the message.
        got: RoundId,
    },
    /// A party tried to talk to itself.
    #[error("{0} cannot send a message to itself")]
    SelfMessage(PartyId),
    /// Any other transport failure (I/O, TLS, gRPC status), described without payloads.
    #[error("transport: {0}")]
    Other(String),
}

/// A protocol could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Operands of a protocol have incompatible sizes (caller fault).
    #[error("{op}: operands have {left} and {right} elements")]
    Shape {
        /// Protocol name.
        op: &'static str,
        /// Elements of the left operand.
        left: usize,
        /// Elements of the right operand.
        right: usize,
    },
    /// A protocol argument is out of range (caller fault).
    #[error("{op}: {what}")]
    Argument {
        /// Protocol name.
        op: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A peer sent something the protocol does not allow.
    #[error("{peer} misbehaved in round {round}: {what}")]
    PeerMisbehaved {
        /// The peer at fault (for a reveal mismatch: one of the two senders).
        peer: PartyId,
        /// Round of the offending message.
        round: RoundId,
        /// What was wrong (never a value).
        what: String,
    },
    /// Session setup failed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The transport failed (incl. a peer timing out).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The engine could not run a program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The program is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A declared input was not supplied to this party.
    #[error("{party}: input `{name}` is missing")]
    MissingInput {
        /// This party.
        party: PartyId,
        /// Input name.
        name: String,
    },
    /// An input was supplied that the program does not declare.
    #[error("{party}: input `{name}` is not declared by the program")]
    UnknownInput {
        /// This party.
        party: PartyId,
        /// Input name.
        name: String,
    },
    /// An input has the wrong number of elements.
    #[error("{party}: input `{name}` has {actual} elements, the program expects {expected}")]
    InputLength {
        /// This party.
        party: PartyId,
        /// Input name.
        name: String,
        /// Declared element count.
        expected: usize,
        /// Supplied element count.
        actual: usize,
    },
    /// An input was supplied in the wrong form (plaintext where shares are needed or the reverse).
    #[error("{party}: input `{name}` must be given as {expected}")]
    InputKind {
        /// This party.
        party: PartyId,
        /// Input name.
        name: String,
        /// The form the program needs.
        expected: &'static str,
    },
    /// A protocol step failed.
    #[error("op {op} ({name}): {source}")]
    Protocol {
        /// Op index (for an output reveal: the op that defines the output value, `name` = "output").
        op: usize,
        /// Op name.
        name: &'static str,
        /// Cause.
        #[source]
        source: ProtocolError,
    },
    /// A round's exchange failed; every op of that round is aborted.
    #[error("round {round}: {source}")]
    Round {
        /// Round number.
        round: RoundId,
        /// Cause.
        #[source]
        source: ProtocolError,
    },
    /// Session setup failed.
    #[error("session setup: {0}")]
    Setup(#[source] ProtocolError),
}
