//! Typed errors of the runtime. Messages carry op names, sizes and party ids — never values,
//! shares, keys or seeds.

use crate::setup::SetupError;
use crate::transport::RoundId;
use veil_circuits::{PartyId, ValidationError, ValueId};

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
    /// The program has an op with no maliciously secure protocol, and the session runs in
    /// [`crate::SecurityMode::Malicious`]: refused before any round.
    #[error(
        "op {op} ({name}) has no maliciously secure protocol yet; this session runs in malicious \
         mode (run the program in semi-honest mode, or without that op)"
    )]
    Unverified {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
    },
    /// The program's products or AND gates need a larger proof than a malicious session
    /// allows.
    #[error(
        "the {what} of this program need a proof of {entries}; a malicious session allows at \
         most {limit} (split the program into several sessions)"
    )]
    ProofTooLarge {
        /// What is proven, in what unit: "products (proof entries)" or "AND gates (64-gate
        /// words)".
        what: &'static str,
        /// Entries (or words) the program needs.
        entries: usize,
        /// The limit ([`crate::verify::MAX_PROOF_ENTRIES`] or
        /// [`crate::verify::MAX_AND_WORDS`]).
        limit: usize,
    },
    /// The session's verification failed (malicious mode): a party sent a message that is not
    /// what the protocol prescribes. No output is returned.
    #[error("session aborted for inconsistency: {what}")]
    Aborted {
        /// What was inconsistent and, where the check can tell, on which link (never a value).
        what: String,
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
    /// The schedule (the cost model's rounds and depths) is not one the engine can run: its
    /// tables do not match the program, or an op's depth is out of range. A fault in veil
    /// (cost model and engine disagree), never in the caller's program or a peer.
    #[error("inconsistent schedule: {what}")]
    Plan {
        /// What does not fit.
        what: String,
    },
    /// The cost model and an op's protocol disagree about when or whether the op talks: a local
    /// op whose operands need a protocol, an interactive op without one, or a protocol that
    /// finishes in another round than scheduled. A fault in veil; the session fails.
    #[error("op {op} ({name}): {what}")]
    Schedule {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The disagreement.
        what: String,
    },
    /// An operand is public where the op's protocol needs shares, or the reverse (a fault in
    /// veil: type inference and the engine disagree).
    #[error("op {op} ({name}): operand {operand} is {found}, expected {expected}")]
    OperandKind {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The operand.
        operand: ValueId,
        /// What the op needs.
        expected: &'static str,
        /// What it got.
        found: &'static str,
    },
    /// An operand has a shape the op cannot use (a fault in veil: validation admits it).
    #[error("op {op} ({name}): operand {operand} is not a {expected}")]
    OperandShape {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The operand.
        operand: ValueId,
        /// The shape the op needs.
        expected: &'static str,
    },
    /// An operand has no value when the op runs: not computed yet, or already released (a fault
    /// in veil: the schedule runs the op too early).
    #[error("op {op} ({name}): operand {operand} has no value yet")]
    MissingValue {
        /// Op index (for an output: the op that defines the output value).
        op: usize,
        /// Op name.
        name: &'static str,
        /// The operand.
        operand: ValueId,
    },
    /// Protocols were still running after the last round of the schedule.
    #[error("{count} protocol(s) still in flight after the last round, the first op {op} ({name})")]
    InFlight {
        /// Op index of the first one (for an output: the op that defines the output value).
        op: usize,
        /// Its op name.
        name: &'static str,
        /// How many.
        count: usize,
    },
}
