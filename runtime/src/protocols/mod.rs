//! Replicated three-party protocols (Araki et al. CCS 2016; ABY3, Mohassel & Rindal CCS 2018).
//!
//! Each protocol is a state machine: `start` does the local work and fixes the words for each
//! peer (no IO); one-round protocols ([`RoundProtocol`]) then `finish` with the peers' words,
//! multi-round ones ([`MultiRound`]) `step` once per round until they are done. The engine
//! drives many of them per round with one message per peer; the `async fn`s here run one
//! protocol on its own for other callers and tests.

pub mod bit_inject;
pub mod boolean;
pub mod compare;
pub mod compose;
pub mod input;
mod masked_bit;
pub mod msb;
pub mod mul;
pub mod mul_trunc;
pub mod reveal;
pub mod select;
pub mod trunc;

pub use input::{InputRound, input};
pub use mul::{MulRound, dot, matmul, matmul32, mul};
pub use reveal::{RevealRound, reveal_to};
pub use trunc::{TruncRound, trunc_pr};

use crate::error::ProtocolError;
use crate::kernels;
// The hot local kernels of the protocols (cross terms, dot rows, matmul, AND layers): the CPU
// kernels, or with feature `gpu` their twins of the same signatures, dispatched by size to the
// device chosen for the process (`crate::device`).
#[cfg(feature = "gpu")]
use crate::gpu::dispatch as hot;
#[cfg(not(feature = "gpu"))]
use crate::kernels as hot;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::{RoundId, Transport};
use bytes::Bytes;
use std::sync::{Arc, OnceLock};
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
pub trait RoundProtocol: Send {
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
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Self::Output, ProtocolError>;
}

/// One party's masked words z_i of a product-type round (multiplication, dot product, matrix
/// product, AND): sent to P_{i−1}; with z_{i+1} from P_{i+1} they are the new replicated
/// sharing (z_i, z_{i+1}) — the "reshare once per output" step of Araki et al. CCS 2016 §2.2.
/// [`MulRound`] and [`boolean::AndRound`] are this type with their own constructors.
pub struct Reshare {
    z: Vec<u64>,
    /// Malicious mode: where the result goes for the session's verification.
    record: Option<Arc<OnceLock<Shares>>>,
    /// A product over Z_2^32: the sender of the words this party receives (P_{i+1}), each of
    /// which must be below 2^32.
    ring32_from: Option<PartyId>,
}

impl Reshare {
    /// A reshare of the masked cross terms `z` over Z_2^64 (or XOR words) whose result goes to
    /// `record` (malicious mode; `None` otherwise).
    pub(crate) fn recorded(z: Vec<u64>, record: Option<Arc<OnceLock<Shares>>>) -> Self {
        Reshare {
            z,
            record,
            ring32_from: None,
        }
    }

    /// The masked cross terms z_i without the reshare: a 3-out-of-3 sharing of the product
    /// (z_0 + z_1 + z_2, or XOR for AND gates), for a protocol that opens it instead.
    pub fn into_masked(self) -> Vec<u64> {
        self.z
    }

    /// [`Reshare::into_masked`] with the slot that takes the opened gate's result for the
    /// session's verification (malicious mode).
    pub(crate) fn into_opened(self) -> (Vec<u64>, Option<Arc<OnceLock<Shares>>>) {
        (self.z, self.record)
    }
}

impl RoundProtocol for Reshare {
    type Output = Shares;

    fn to_next(&self) -> &[u64] {
        &[]
    }

    fn to_prev(&self) -> &[u64] {
        &self.z
    }

    fn expect(&self) -> Expect {
        Expect {
            from_next: self.z.len(),
            from_prev: 0,
        }
    }

    fn finish(
        self,
        from_next: Vec<u64>,
        _: Vec<u64>,
        round: RoundId,
    ) -> Result<Shares, ProtocolError> {
        if let Some(peer) = self.ring32_from
            && from_next.iter().any(|w| w >> 32 != 0)
        {
            return Err(ProtocolError::PeerMisbehaved {
                peer,
                round,
                what: "a word of a product over Z_2^32 is not below 2^32".into(),
            });
        }
        let out = Shares {
            own: self.z,
            next: from_next,
        };
        if let Some(slot) = self.record {
            // Each recorded round finishes once; a second set cannot happen.
            let _ = slot.set(out.clone());
        }
        Ok(out)
    }
}

/// One party's state of a protocol that runs over one or more rounds and yields arithmetic
/// shares. Each round the engine sends [`MultiRound::to_next`] / [`MultiRound::to_prev`],
/// then hands the peers' words to [`MultiRound::step`].
pub trait MultiRound: Send {
    /// Words for P_{i+1} this round.
    fn to_next(&self) -> &[u64];
    /// Words for P_{i-1} this round.
    fn to_prev(&self) -> &[u64];
    /// Words this party waits for this round.
    fn expect(&self) -> Expect;
    /// Consume this round's words: the state for the next round, or the result.
    fn step(
        self: Box<Self>,
        ctx: &mut PartyCtx,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Step, ProtocolError>;
}

/// Outcome of one round of a [`MultiRound`] protocol.
pub enum Step {
    /// More rounds follow.
    More(Box<dyn MultiRound>),
    /// Finished: this party's shares of the result.
    Done(Shares),
}

/// Run a multi-round protocol on its own, one message per peer per round.
pub async fn run_multi<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    mut p: Box<dyn MultiRound>,
) -> Result<Shares, ProtocolError> {
    loop {
        let round = ctx.next_round();
        let mut got = exchange(net, round, &[p.to_next()], &[p.to_prev()], &[p.expect()]).await?;
        let (from_next, from_prev) = got.pop().expect("one protocol, one result");
        match p.step(ctx, from_next, from_prev, round)? {
            Step::More(next) => p = next,
            Step::Done(out) => return Ok(out),
        }
    }
}

/// Serialise the concatenation of `parts` little-endian for the wire (one copy, no
/// intermediate buffer).
pub fn encode_words(parts: &[&[u64]]) -> Bytes {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(total * 8);
    for part in parts {
        kernels::extend_le_bytes(&mut out, part);
    }
    Bytes::from(out)
}

/// Check a message from `peer` has exactly `expected` words.
fn check_message(
    msg: &[u8],
    expected: usize,
    peer: PartyId,
    round: RoundId,
) -> Result<(), ProtocolError> {
    if msg.len() == expected * 8 {
        Ok(())
    } else {
        Err(ProtocolError::PeerMisbehaved {
            peer,
            round,
            what: format!("sent {} bytes, expected {}", msg.len(), expected * 8),
        })
    }
}

/// One round for several protocols at once: send each peer **one** message holding every
/// protocol's words for it, receive one message from each peer, and split it back into each
/// protocol's `(from_next, from_prev)` words by its [`Expect`]. Both peers always get a message
/// (possibly empty), so every round is a full exchange.
pub async fn exchange<T: Transport>(
    net: &T,
    round: RoundId,
    to_next: &[&[u64]],
    to_prev: &[&[u64]],
    expect: &[Expect],
) -> Result<Vec<(Vec<u64>, Vec<u64>)>, ProtocolError> {
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
    check_message(
        &m_next,
        expect.iter().map(|e| e.from_next).sum(),
        next,
        round,
    )?;
    check_message(
        &m_prev,
        expect.iter().map(|e| e.from_prev).sum(),
        prev,
        round,
    )?;
    let (mut at_next, mut at_prev) = (0usize, 0usize);
    Ok(expect
        .iter()
        .map(|e| {
            let a = kernels::le_bytes_to_words(&m_next[at_next * 8..(at_next + e.from_next) * 8]);
            let b = kernels::le_bytes_to_words(&m_prev[at_prev * 8..(at_prev + e.from_prev) * 8]);
            at_next += e.from_next;
            at_prev += e.from_prev;
            (a, b)
        })
        .collect())
}

/// Run one protocol on its own: one round, one message per peer.
pub async fn run_round<P: RoundProtocol, T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    p: P,
) -> Result<P::Output, ProtocolError> {
    let round = ctx.next_round();
    let mut got = exchange(net, round, &[p.to_next()], &[p.to_prev()], &[p.expect()]).await?;
    let (from_next, from_prev) = got.pop().expect("one protocol, one result");
    p.finish(from_next, from_prev, round)
}

/// Error for operands of different lengths.
pub(crate) fn check_len(op: &'static str, left: usize, right: usize) -> Result<(), ProtocolError> {
    if left == right {
        Ok(())
    } else {
        Err(ProtocolError::Shape { op, left, right })
    }
}
