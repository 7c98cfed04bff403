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
//! the other parties could check, so a deviating P1 could shift the result at will. Instead the
//! bits d..63 of x are computed by the bit decomposition of [`super::compare`] (ABY3 §5.3 adder,
//! in malicious mode with its verified AND gates, masked openings and injections) and
//! recomposed as a two's-complement number: ⌊x / 2^d⌋ = Σ_{i=d}^{62} 2^{i−d}·x_i − 2^{63−d}·x_63,
//! the arithmetic shift, exact for every x (no one-ulp rounding, no failure probability).
//! Cost: `veil_circuits::cost::EXACT_TRUNC_ROUNDS` = 8 rounds,
//! `low_bits_range_bytes(d, 64 − d)` bytes per element (the opened lanes' injection dominates).

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

/// Exact truncation of shared `x` by `d` bits (1 ≤ d ≤ 63): the arithmetic shift, from the
/// decomposed bits d..63 (see the module docs).
pub fn exact(ctx: &mut PartyCtx, x: &Shares, d: u32) -> Result<Box<dyn MultiRound>, ProtocolError> {
    if !(1..64).contains(&d) {
        return Err(ProtocolError::Argument {
            op: "exact truncation",
            what: format!("cannot truncate by {d} bits (1 to 63)"),
        });
    }
    let lanes = 64 - d;
    let bits = decompose(ctx, x, Target::BitRange { skip: d, lanes })?;
    Ok(Then::boxed(bits, move |_, b| {
        Ok(Step::Done(recompose(&b, lanes as usize)))
    }))
}

/// Σ_{i < L−1} 2^i·b_i − 2^{L−1}·b_{L−1} for each row of `L` = `lanes` bit shares (local).
fn recompose(bits: &Shares, lanes: usize) -> Shares {
    bits.map(|c| {
        c.chunks_exact(lanes)
            .map(|row| {
                let (top, low) = row.split_last().map_or((0, &row[..0]), |(t, l)| (*t, l));
                let sum = low
                    .iter()
                    .enumerate()
                    .fold(0u64, |s, (i, b)| s.wrapping_add(b << i));
                sum.wrapping_sub(top << (lanes - 1))
            })
            .collect()
    })
}
