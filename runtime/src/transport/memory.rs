//! In-memory transport: three parties in one process, connected by channels (tests, benches,
//! `veil bench --transport memory`). A party whose transport is dropped closes its links, so the
//! others fail fast with [`TransportError::Closed`] instead of hanging.

use super::{RoundId, SessionId, Transport};
use crate::error::TransportError;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use veil_circuits::PartyId;

type Frame = (RoundId, Bytes);

/// Factory for the three connected [`MemoryTransport`]s of one session.
pub struct MemoryNetwork;

impl MemoryNetwork {
    /// Default time a party waits for a peer's message before aborting the session.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Three transports (for P0, P1, P2) wired to each other.
    pub fn connect(session: SessionId) -> [MemoryTransport; 3] {
        Self::connect_with_timeout(session, Self::DEFAULT_TIMEOUT)
    }

    /// As [`MemoryNetwork::connect`] with a custom receive timeout.
    pub fn connect_with_timeout(session: SessionId, timeout: Duration) -> [MemoryTransport; 3] {
        // chans[from][to]
        let mut senders: Vec<Vec<Option<mpsc::UnboundedSender<Frame>>>> =
            (0..3).map(|_| vec![None, None, None]).collect();
        let mut receivers: Vec<Vec<Option<Mutex<mpsc::UnboundedReceiver<Frame>>>>> =
            (0..3).map(|_| vec![None, None, None]).collect();
        for from in 0..3 {
            for to in 0..3 {
                if from != to {
                    let (tx, rx) = mpsc::unbounded_channel();
                    senders[from][to] = Some(tx);
                    receivers[to][from] = Some(Mutex::new(rx));
                }
            }
        }
        let mut out = Vec::with_capacity(3);
        for (i, (tx, rx)) in senders.into_iter().zip(receivers).enumerate() {
            out.push(MemoryTransport {
                me: PartyId::from_index(i),
                session,
                timeout,
                senders: tx,
                receivers: rx,
                bytes_sent: AtomicU64::new(0),
                rounds_sent: AtomicU64::new(0),
            });
        }
        match <[MemoryTransport; 3]>::try_from(out) {
            Ok(arr) => arr,
            Err(_) => unreachable!("exactly three transports are built above"),
        }
    }
}

/// One party's end of an in-memory network.
pub struct MemoryTransport {
    me: PartyId,
    session: SessionId,
    timeout: Duration,
    senders: Vec<Option<mpsc::UnboundedSender<Frame>>>,
    receivers: Vec<Option<Mutex<mpsc::UnboundedReceiver<Frame>>>>,
    bytes_sent: AtomicU64,
    rounds_sent: AtomicU64,
}

impl MemoryTransport {
    /// Payload bytes this party has sent so far (all peers, all rounds, setup included).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Distinct rounds in which this party sent to its next party (setup round 0 included).
    pub fn rounds_sent(&self) -> u64 {
        self.rounds_sent.load(Ordering::Relaxed)
    }
}

impl Transport for MemoryTransport {
    fn me(&self) -> PartyId {
        self.me
    }

    fn session(&self) -> SessionId {
        self.session
    }

    async fn send(&self, to: PartyId, round: RoundId, msg: Bytes) -> Result<(), TransportError> {
        let tx = self.senders[to.index()]
            .as_ref()
            .ok_or(TransportError::SelfMessage(self.me))?;
        self.bytes_sent
            .fetch_add(msg.len() as u64, Ordering::Relaxed);
        if to == self.me.next() {
            self.rounds_sent.fetch_add(1, Ordering::Relaxed);
        }
        tx.send((round, msg))
            .map_err(|_| TransportError::Closed { peer: to })
    }

    async fn recv(&self, from: PartyId, round: RoundId) -> Result<Bytes, TransportError> {
        let rx = self.receivers[from.index()]
            .as_ref()
            .ok_or(TransportError::SelfMessage(self.me))?;
        let mut rx = rx.lock().await;
        let frame = tokio::time::timeout(self.timeout, rx.recv())
            .await
            .map_err(|_| TransportError::Timeout { peer: from, round })?;
        match frame {
            None => Err(TransportError::Closed { peer: from }),
            Some((got, msg)) if got == round => Ok(msg),
            Some((got, _)) => Err(TransportError::OutOfOrder {
                peer: from,
                expected: round,
                got,
            }),
        }
    }
}
