//! The `Transport` trait: how the engine talks to the other two parties, with nothing about
//! sockets. Every message is tagged with its session and round; the in-memory implementation
//! lives in [`memory`], the gRPC one in `veil-node`.

pub mod memory;
pub mod tamper;

use crate::error::TransportError;
use bytes::Bytes;
use std::fmt;
use std::future::Future;
use veil_circuits::PartyId;

pub use memory::{MemoryNetwork, MemoryTransport};

/// Identifies one session (one run of key setup and programs among the three parties).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// Round number inside a session: 0 is key setup, programs use 1, 2, ….
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoundId(pub u64);

impl fmt::Display for RoundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A party's authenticated links to the other two parties for one session.
///
/// Messages between a pair of parties arrive in the order they were sent. `recv` must give up
/// with [`TransportError::Timeout`] or [`TransportError::Closed`] rather than wait forever.
pub trait Transport: Send + Sync {
    /// This party.
    fn me(&self) -> PartyId;
    /// The session these links belong to.
    fn session(&self) -> SessionId;
    /// Send one message of round `round` to `to`.
    fn send(
        &self,
        to: PartyId,
        round: RoundId,
        msg: Bytes,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Receive the message of round `round` from `from`.
    fn recv(
        &self,
        from: PartyId,
        round: RoundId,
    ) -> impl Future<Output = Result<Bytes, TransportError>> + Send;
}
