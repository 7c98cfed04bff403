//! Probabilistic truncation of replicated shares: divide a shared value by 2^d.
//!
//! Construction: the two-party local truncation of SecureML (Mohassel & Zhang, S&P 2017,
//! eprint 2017/396, Theorem 1) applied to a 2-out-of-2 view of the replicated sharing, then
//! re-randomised into replicated form; this is ABY3's Π_trunc1 (Mohassel & Rindal, CCS 2018,
//! §5.1.1) with roles fixed as below.
//!
//! x = A + B with A = x_0 (held by P0 and P2) and B = x_1 + x_2 (held by P1).
//! | party | computes | holds afterwards (y_i, y_{i+1}) |
//! |---|---|---|
//! | P0 | A' = ⌊A / 2^d⌋ (logical shift) | (A', y_1) — y_1 received from P1 |
//! | P1 | B' = −⌊(−B) / 2^d⌋, r = F_{k_{1,2}}, y_1 = B' − r | (y_1, r) |
//! | P2 | A' and r = F_{k_{1,2}} | (r, A') |
//!
//! Correctness (SecureML Thm. 1): if the signed value satisfies |x| < 2^ℓx, then
//! A' + B' ∈ {⌊x/2^d⌋, ⌊x/2^d⌋ + 1} except with probability ≤ 2^(ℓx+1−64) over the uniform
//! A; on failure the result is off by about 2^(64−d). See `veil_circuits::fixed` for the error
//! budget this puts on fixed-point values.
//!
//! Security: semi-honest, honest majority. P0 receives y_1 = B' − r where r comes from the key
//! k_{1,2} that P0 does not hold, so y_1 is uniform to P0; P1 and P2 receive nothing.
//!
//! Cost: 1 round; P1 sends 8 bytes per element to P0; P0 and P2 send nothing.
//!
//! **Exact truncation** ([`exact`], the malicious mode's): P1's message above has no relation
//! the other parties could check, so a deviating P1 could shift the result at will. Instead,
//! with x = x_0 + x_1 + x_2 over the integers (components as u64) and q_j = ⌊x_j / 2^d⌋ — a
//! trivial sharing, each component known to its two holders:
//!
//! ⌊x / 2^d⌋ (arithmetic shift) = Σ_j q_j + c − 2^(64−d)·(w + msb(x)) (mod 2^64),
//!
//! where c = ⌊Σ_j (x_j mod 2^d) / 2^d⌋ ∈ {0, 1, 2} is the carry out of the low d bits and
//! w ∈ {0, 1, 2} the number of wraps of the sum. The malicious mode's split (the carry-save
//! layer of [`super::msb`]) gives x_0 + x_1 + x_2 = s + 2·m exactly, and the adder then adds
//! s + t, t = m ≪ 1, with carries G_i out of bit i; so c = G_{d−1} + m_{d−1},
//! w = G_63 + m_63 and msb(x) = P⁽⁰⁾_63 ⊕ G_62. Those five bits come out of the bit
//! decomposition of [`super::compare`] (`Target::TruncCarries`: all prefix levels, the five
//! lanes opened under masks and injected), verified like every decomposition. The result is
//! exact for every x (the plaintext evaluator's arithmetic shift: no one-ulp rounding, no
//! failure probability).
//! Cost: `veil_circuits::cost::EXACT_TRUNC_ROUNDS` = 8 rounds and
//! `low_bits_range_bytes(59, 5)` bytes per element (five injected lanes).

use super::compare::{Target, decompose};
use super::compose::Then;
use super::{Expect, MultiRound, RoundProtocol, Step, run_round};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::{RoundId, Transport};
use veil_circuits::PartyId;

/// One party's state of a truncation.
pub struct TruncRound {
    me: PartyId,
    own: Vec<u64>,
    /// Known `next` component (P1, P2) — P0 learns its `next` from the message.
    next: Vec<u64>,
    n: usize,
}

impl TruncRound {
    /// Start truncating `x` by `d` bits (0 ≤ d < 64).
    pub fn start(ctx: &mut PartyCtx, x: &Shares, d: u32) -> Result<Self, ProtocolError> {
        if d >= 64 {
            return Err(ProtocolError::Argument {
                op: "trunc_pr",
                what: format!("cannot truncate by {d} bits (at most 63)"),
            });
        }
        let n = x.len();
        let dom = ctx.next_domain();
        let (own, next) = match ctx.id {
            // P0: (x_0, x_1) → own = x_0 >> d.
            PartyId::P0 => (x.own.iter().map(|a| a >> d).collect(), Vec::new()),
            // P1: (x_1, x_2) → B = x_1 + x_2, B' = −((−B) >> d).
            PartyId::P1 => {
                let r = ctx.rand_with_next(dom, n);
                let own = x
                    .own
                    .iter()
                    .zip(&x.next)
                    .zip(&r)
                    .map(|((a, b), r)| {
                        let big_b = a.wrapping_add(*b);
                        (big_b.wrapping_neg() >> d).wrapping_neg().wrapping_sub(*r)
                    })
                    .collect();
                (own, r)
            }
            // P2: (x_2, x_0) → own = r, next = x_0 >> d.
            PartyId::P2 => (
                ctx.rand_with_prev(dom, n),
                x.next.iter().map(|a| a >> d).collect(),
            ),
        };
        Ok(TruncRound {
            me: ctx.id,
            own,
            next,
            n,
        })
    }
}

impl RoundProtocol for TruncRound {
    type Output = Shares;

    fn to_next(&self) -> &[u64] {
        &[]
    }

    fn to_prev(&self) -> &[u64] {
        match self.me {
            PartyId::P1 => &self.own,
            _ => &[],
        }
    }

    fn expect(&self) -> Expect {
        Expect {
            from_next: if self.me == PartyId::P0 { self.n } else { 0 },
            from_prev: 0,
        }
    }

    fn finish(self, from_next: Vec<u64>, _: Vec<u64>, _: RoundId) -> Result<Shares, ProtocolError> {
        let next = match self.me {
            PartyId::P0 => from_next,
            _ => self.next,
        };
        Ok(Shares {
            own: self.own,
            next,
        })
    }
}

/// Truncate shared `x` by `d` bits (1 round; P1 sends 8 bytes per element).
pub async fn trunc_pr<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    x: &Shares,
    d: u32,
) -> Result<Shares, ProtocolError> {
    let p = TruncRound::start(ctx, x, d)?;
    run_round(ctx, net, p).await
}

/// Exact truncation of shared `x` by `d` bits (1 ≤ d ≤ 62, the most fractional bits a type
/// has; malicious mode, whose split it reads): the arithmetic shift (see the module docs).
pub fn exact(ctx: &mut PartyCtx, x: &Shares, d: u32) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let q = x.map(|c| c.iter().map(|w| w >> d).collect());
    let carries = decompose(ctx, x, Target::TruncCarries { d })?;
    Ok(Then::boxed(carries, move |_, b| {
        // Per element: q + G_{d−1} + m_{d−1} − 2^(64−d)·(G_63 + m_63 + msb).
        let high = 64 - d;
        let f = |q: &[u64], b: &[u64]| -> Vec<u64> {
            q.iter()
                .zip(b.chunks_exact(5))
                .map(|(q, b)| {
                    let wraps = b[2].wrapping_add(b[3]).wrapping_add(b[4]);
                    q.wrapping_add(b[0])
                        .wrapping_add(b[1])
                        .wrapping_sub(wraps << high)
                })
                .collect()
        };
        Ok(Step::Done(Shares {
            own: f(&q.own, &b.own),
            next: f(&q.next, &b.next),
        }))
    }))
}
