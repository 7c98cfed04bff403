//! Replicated three-party protocols (Araki et al. CCS 2016; ABY3, Mohassel & Rindal CCS 2018).
//!
//! Each protocol is a one-round state machine: `start` does the local work and fixes the words
//! for each peer (no IO), [`RoundProtocol::finish`] consumes the peers' words. The engine drives
//! many of them per round with one message per peer; the `async fn`s here run one protocol on
//! its own for other callers and tests.

pub mod input;
pub mod mul;
pub mod reveal;
pub mod trunc;

pub use input::{InputRound, input};
pub use mul::{MulRound, dot, matmul, mul};
pub use reveal::{RevealRound, reveal_to};
pub use trunc::{TruncRound, trunc_pr};

use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::transport::{RoundId, Transport};
use bytes::Bytes;
use veil_circuits::PartyId;

/// Words a party expects from each peer in one round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Words from P_{i+1}.
    pub from_next: usize,
    /// Words from P_{i-1}.
    pub from_prev: usize,
}

/// One party's state of a one-round protocol between sending and receiving.
pub trait RoundProtocol {
    /// What the protocol produces at this party.
    type Output;
    /// Words for P_{i+1}.
    fn to_next(&self) -> &[u64];
    /// Words for P_{i-1}.
    fn to_prev(&self) -> &[u64];
    /// Words this party waits for.
    fn expect(&self) -> Expect;
    /// Complete the protocol with the peers' words (lengths already checked against
    /// [`RoundProtocol::expect`]).
    fn finish(
        self,
        from_next: &[u64],
        from_prev: &[u64],
        round: RoundId,
    ) -> Result<Self::Output, ProtocolError>;
}

/// Serialise words little-endian for the wire.
pub fn encode_words(words: &[u64]) -> Bytes {
    let mut out = Vec::with_capacity(words.len() * 8);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    Bytes::from(out)
}

/// Parse a message of exactly `expected` little-endian words from `peer`.
pub fn decode_words(
    msg: &[u8],
    expected: usize,
    peer: PartyId,
    round: RoundId,
) -> Result<Vec<u64>, ProtocolError> {
    if msg.len() != expected * 8 {
        return Err(ProtocolError::PeerMisbehaved {
            peer,
            round,
            what: format!("sent {} bytes, expected {}", msg.len(), expected * 8),
        });
    }
    Ok(msg
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks_exact(8) yields 8 bytes")))
        .collect())
}

/// Send `to_next`/`to_prev` and receive the expected words from both peers in round `round`.
/// Both peers always get a message (possibly empty) so every round is a full exchange.
pub async fn exchange<T: Transport>(
    net: &T,
    round: RoundId,
    to_next: &[u64],
    to_prev: &[u64],
    expect: Expect,
) -> Result<(Vec<u64>, Vec<u64>), ProtocolError> {
    let me = net.me();
    let (next, prev) = (me.next(), me.prev());
    let (s1, s2) = tokio::join!(
        net.send(next, round, encode_words(to_next)),
        net.send(prev, round, encode_words(to_prev))
    );
    s1?;
    s2?;
    let (r1, r2) = tokio::join!(net.recv(next, round), net.recv(prev, round));
    let (m_next, m_prev): (Bytes, Bytes) = (r1?, r2?);
    let from_next = decode_words(&m_next, expect.from_next, next, round)?;
    let from_prev = decode_words(&m_prev, expect.from_prev, prev, round)?;
    Ok((from_next, from_prev))
}

/// Run one protocol on its own: one round, one message per peer.
pub async fn run_round<P: RoundProtocol, T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    p: P,
) -> Result<P::Output, ProtocolError> {
    let round = ctx.next_round();
    let (from_next, from_prev) = exchange(net, round, p.to_next(), p.to_prev(), p.expect()).await?;
    p.finish(&from_next, &from_prev, round)
}

/// Error for operands of different lengths.
pub(crate) fn check_len(op: &'static str, left: usize, right: usize) -> Result<(), ProtocolError> {
    if left == right {
        Ok(())
    } else {
        Err(ProtocolError::Shape { op, left, right })
    }
}
