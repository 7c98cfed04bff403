//! A transport that plays a deviating party: it adds an error to one word of one outgoing
//! message. Used by the cheating harness (tests) and by nodes built for fault injection.

use super::{RoundId, SessionId, Transport};
use crate::error::TransportError;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use veil_circuits::PartyId;

/// Which word of which message to change, and by how much (added mod 2^64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The round of the message.
    pub round: RoundId,
    /// Its recipient.
    pub to: PartyId,
    /// The word (taken modulo the message's word count).
    pub word: usize,
    /// The error; non-zero for a real deviation.
    pub error: u64,
}

/// `msg` with `error` added (mod 2^64) to its little-endian word `word mod (words in msg)`;
/// `msg` itself when it holds no whole word.
pub fn add_error(msg: &Bytes, word: usize, error: u64) -> Bytes {
    let words = msg.len() / 8;
    if words == 0 {
        return msg.clone();
    }
    let at = 8 * (word % words);
    let mut bytes = msg.to_vec();
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    let changed = u64::from_le_bytes(w).wrapping_add(error);
    bytes[at..at + 8].copy_from_slice(&changed.to_le_bytes());
    Bytes::from(bytes)
}

/// `inner` with [`Fault`] applied to the first matching non-empty message.
pub struct Tamper<T> {
    inner: T,
    fault: Fault,
    fired: AtomicBool,
}

impl<T> Tamper<T> {
    /// Wrap `inner`.
    pub fn new(inner: T, fault: Fault) -> Self {
        Tamper {
            inner,
            fault,
            fired: AtomicBool::new(false),
        }
    }

    /// Whether the fault has been applied (the round had a non-empty message to its target).
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl<T: Transport> Transport for Tamper<T> {
    fn me(&self) -> PartyId {
        self.inner.me()
    }

    fn session(&self) -> SessionId {
        self.inner.session()
    }

    async fn send(&self, to: PartyId, round: RoundId, msg: Bytes) -> Result<(), TransportError> {
        let f = self.fault;
        let words = msg.len() / 8;
        if f.round == round && f.to == to && words > 0 && !self.fired.swap(true, Ordering::SeqCst) {
            return self
                .inner
                .send(to, round, add_error(&msg, f.word, f.error))
                .await;
        }
        self.inner.send(to, round, msg).await
    }

    async fn recv(&self, from: PartyId, round: RoundId) -> Result<Bytes, TransportError> {
        self.inner.recv(from, round).await
    }
}
