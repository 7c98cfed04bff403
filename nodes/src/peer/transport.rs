//! [`GrpcTransport`]: one session's [`Transport`] over a [`PeerMux`]'s links.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use veil_circuits::PartyId;
use veil_proto::pb;

use veil_runtime::error::TransportError;
use veil_runtime::transport::{RoundId, SessionId, Transport};

use super::mux::*;
use super::*;

/// One session's [`Transport`] over a [`PeerMux`]'s links. Dropping it closes the session.
pub struct GrpcTransport {
    pub(super) mux: Arc<PeerMux>,
    pub(super) me: PartyId,
    pub(super) session: SessionId,
    pub(super) token: u64,
    pub(super) timeout: Duration,
    pub(super) chunk_bytes: usize,
    pub(super) receivers: [Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<Msg>>>; 3],
    pub(super) bytes_sent: AtomicU64,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("me", &self.me)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// Payload bytes this party has sent in this session so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    fn frames(&self, round: RoundId, msg: &Bytes) -> Vec<pb::Frame> {
        let n = msg.len().div_ceil(self.chunk_bytes).max(1);
        (0..n)
            .map(|i| {
                let start = (i * self.chunk_bytes).min(msg.len());
                let end = (start + self.chunk_bytes).min(msg.len());
                pb::Frame {
                    session: self.session.0,
                    round: round.0,
                    payload: msg.slice(start..end),
                    last: i + 1 == n,
                    hello: Bytes::new(),
                }
            })
            .collect()
    }
}

impl Drop for GrpcTransport {
    fn drop(&mut self) {
        self.mux.close_session_token(self.session, self.token);
    }
}

impl Transport for GrpcTransport {
    fn me(&self) -> PartyId {
        self.me
    }

    fn session(&self) -> SessionId {
        self.session
    }

    async fn send(&self, to: PartyId, round: RoundId, msg: Bytes) -> Result<(), TransportError> {
        if to == self.me {
            return Err(TransportError::SelfMessage(self.me));
        }
        let len = msg.len() as u64;
        let mut frames = self.frames(round, &msg);
        drop(msg);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut up = self.mux.link_up[to.index()].subscribe();
        loop {
            {
                let st = self.mux.lock();
                let alive = st
                    .sessions
                    .get(&self.session)
                    .is_some_and(|s| s.token == self.token && s.inbound[to.index()].is_some());
                if !alive {
                    return Err(TransportError::Closed { peer: to });
                }
                if let Some(link) = &st.links[to.index()] {
                    for f in frames.drain(..) {
                        if link.tx.send(f).is_err() {
                            return Err(TransportError::Closed { peer: to });
                        }
                    }
                    self.bytes_sent.fetch_add(len, Ordering::Relaxed);
                    return Ok(());
                }
            }
            match tokio::time::timeout_at(deadline, up.wait_for(|u| *u)).await {
                Ok(Ok(_)) => continue,
                _ => return Err(TransportError::Closed { peer: to }),
            }
        }
    }

    async fn recv(&self, from: PartyId, round: RoundId) -> Result<Bytes, TransportError> {
        let rx = self.receivers[from.index()]
            .as_ref()
            .ok_or(TransportError::SelfMessage(self.me))?;
        let mut rx = rx.lock().await;
        let msg = tokio::time::timeout(self.timeout, rx.recv())
            .await
            .map_err(|_| TransportError::Timeout { peer: from, round })?;
        match msg {
            None => Err(TransportError::Closed { peer: from }),
            Some((got, payload)) if got == round => Ok(payload),
            Some((got, _)) => Err(TransportError::OutOfOrder {
                peer: from,
                expected: round,
                got,
            }),
        }
    }
}
