//! Reveal (open) a replicated sharing to one party or to all three.
//!
//! Construction: Araki et al. CCS 2016 §2.1. P_j holds (x_j, x_{j+1}) and misses x_{j+2}, which
//! both other parties hold: P_{j+1} as its `next`, P_{j+2} = P_{j−1} as its `own`. Both send it;
//! the recipient checks the two copies agree, so a single party that sends a wrong component is
//! detected (it cannot make the recipient accept a wrong value without the other's copy).
//!
//! Security: the recipient learns the value; the senders learn nothing new (they only send).
//! Reveal to all = each party sends `own` to P_{i+1} and `next` to P_{i−1}.
//!
//! Cost: 1 round. To one party: the two others each send 8 bytes per element. To all: every
//! party sends 16 bytes per element.

use super::{Expect, RoundProtocol, run_round};
use crate::error::ProtocolError;
use crate::kernels;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::{RoundId, Transport};
use veil_circuits::PartyId;

/// One party's state of a reveal.
pub struct RevealRound {
    me: PartyId,
    /// `None` = reveal to all parties.
    to: Option<PartyId>,
    shares: Shares,
}

impl RevealRound {
    /// Start revealing `x` to `to` (`None`: to all three parties).
    pub fn start(ctx: &PartyCtx, x: Shares, to: Option<PartyId>) -> Self {
        RevealRound {
            me: ctx.id,
            to,
            shares: x,
        }
    }

    fn receives(&self) -> bool {
        self.to.is_none_or(|p| p == self.me)
    }
}

impl RoundProtocol for RevealRound {
    /// The plaintext at a receiving party, `None` elsewhere.
    type Output = Option<Vec<u64>>;

    fn to_next(&self) -> &[u64] {
        // P_{i+1} misses x_{i+3} = x_i: my own component.
        match self.to {
            Some(p) if p != self.me.next() => &[],
            _ => &self.shares.own,
        }
    }

    fn to_prev(&self) -> &[u64] {
        // P_{i−1} misses x_{i+1}: my next component.
        match self.to {
            Some(p) if p != self.me.prev() => &[],
            _ => &self.shares.next,
        }
    }

    fn expect(&self) -> Expect {
        let n = if self.receives() {
            self.shares.len()
        } else {
            0
        };
        Expect {
            from_next: n,
            from_prev: n,
        }
    }

    fn finish(
        self,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Option<Vec<u64>>, ProtocolError> {
        if !self.receives() {
            return Ok(None);
        }
        if let Some(i) = from_next.iter().zip(&from_prev).position(|(a, b)| a != b) {
            return Err(ProtocolError::PeerMisbehaved {
                peer: self.me.next(),
                round,
                what: format!(
                    "its copy of the missing component disagrees with {}'s at element {i} \
                     (one of the two is at fault; the recipient cannot tell which)",
                    self.me.prev()
                ),
            });
        }
        let mut v = self.shares.own;
        kernels::ring_add_assign(&mut v, &self.shares.next);
        kernels::ring_add_assign(&mut v, &from_next);
        Ok(Some(v))
    }
}

/// Reveal `x` to `to` (`None`: all parties); returns the plaintext at receiving parties.
pub async fn reveal_to<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    x: Shares,
    to: Option<PartyId>,
) -> Result<Option<Vec<u64>>, ProtocolError> {
    let p = RevealRound::start(ctx, x, to);
    run_round(ctx, net, p).await
}
