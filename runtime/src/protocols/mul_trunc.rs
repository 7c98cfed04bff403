//! Matrix product and probabilistic truncation of replicated shares in **one** round.
//!
//! Construction: the product's 3-out-of-3 cross terms (Araki et al., CCS 2016, as in
//! [`super::mul`]) are not reshared; instead P0 and P1 open the product masked by a random r
//! that P2 deals, and truncate the opened value locally. This is the mask-open-truncate of
//! ABY3's Π_trunc2 (Mohassel & Rindal, CCS 2018, §5.1.2) with the truncation pair
//! (r, ⌊r/2^d⌋) dealt by P2 from pairwise PRF streams inside the same round, instead of in a
//! preprocessing phase; the error analysis is SecureML's (Mohassel & Zhang, S&P 2017, Thm. 1).
//!
//! Let z = z_0 + z_1 + z_2 be the product (z_i at P_i, masked by a zero-sharing). Streams:
//! s_0, x_0 from k_{2,0} (P2 and P0), s_1 from k_{1,2} (P1 and P2); r = s_0 + s_1 is known only
//! to P2.
//! | party | sends | holds afterwards (y_i, y_{i+1}) |
//! |---|---|---|
//! | P0 | z_0 to P1 | (x_0, ⌊c/2^d⌋) with c = z_0 + s_0 + z_1 + (z_2 + s_1) |
//! | P1 | z_1 to P0 | (⌊c/2^d⌋, x_2) with c = z_1 + s_1 + z_0 + (z_2 + s_0) |
//! | P2 | z_2 + s_1 to P0; z_2 + s_0 and x_2 = −⌊r/2^d⌋ − x_0 to P1 | (x_2, x_0) |
//!
//! So y = ⌊c/2^d⌋ − ⌊r/2^d⌋ with c = z + r (mod 2^64), all shifts logical.
//!
//! **Correctness.** If the signed product satisfies |z| < 2^ℓ, then 0 ≤ r + z < 2^64 except
//! with probability ≤ 2^(ℓ−64) over the uniform r; then c − r = z over the integers and
//! ⌊c/2^d⌋ − ⌊r/2^d⌋ ∈ {⌊z/2^d⌋, ⌊z/2^d⌋ + 1} (one ulp, as [`super::trunc`]). On failure the result
//! is off by about 2^(64−d).
//!
//! **Security** (semi-honest, honest majority). P0 sees z_1 (masked by the zero-sharing stream
//! of k_{1,2}) and z_2 + s_1 (s_1 from k_{1,2}): both uniform, and their sum with its own terms
//! is c = z + r with s_1 unknown to it, so uniform. P1 sees z_0 (zero-sharing stream of
//! k_{2,0}), z_2 + s_0 and x_2, masked by independent k_{2,0} streams it does not hold. P2
//! receives nothing. No party learns z.
//!
//! **Cost**: 1 round; per output element P0 and P1 send 8 bytes, P2 sends 24 (against 1 round
//! of 8 bytes each for the product plus 1 round of 8 bytes from P1 for a separate truncation).

use super::{Expect, MulRound, RoundProtocol};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;
use veil_circuits::PartyId;

/// One party's state of a fused matrix product and truncation.
pub struct MulTruncRound {
    me: PartyId,
    /// P0, P1: z_i + s_i (own masked cross terms); P2: unused.
    base: Vec<u64>,
    /// P0 → P1 / P1 → P0: z_i. P2 → P0: z_2 + s_1.
    to_next: Vec<u64>,
    /// P2 → P1: z_2 + s_0 followed by x_2. P1 → P0: z_1.
    to_prev: Vec<u64>,
    /// P0: x_0; P2: (x_2, x_0) as own/next.
    keep: Vec<u64>,
    keep_next: Vec<u64>,
    n: usize,
    d: u32,
}

impl MulTruncRound {
    /// Starts `(x·y) / 2^d` for shared `x` (m×k) and `y` (k×n), `d < 64`.
    pub fn matmul(
        ctx: &mut PartyCtx,
        x: &Shares,
        y: &Shares,
        (m, k, n): (usize, usize, usize),
        d: u32,
    ) -> Result<Self, ProtocolError> {
        if d >= 64 {
            return Err(ProtocolError::Argument {
                op: "matmul_rescale",
                what: format!("cannot truncate by {d} bits (at most 63)"),
            });
        }
        // z_i: this party's masked cross terms of the product, as the matrix product computes
        // them before its reshare.
        let z = MulRound::matmul(ctx, x, y, m, k, n)?.z;
        Ok(Self::start(ctx, z, d))
    }

    /// Starts the open-and-truncate of the 3-out-of-3 masked product parts `z`.
    fn start(ctx: &mut PartyCtx, z: Vec<u64>, d: u32) -> Self {
        let len = z.len();
        let dom = ctx.next_domain();
        let mut st = MulTruncRound {
            me: ctx.id,
            base: Vec::new(),
            to_next: Vec::new(),
            to_prev: Vec::new(),
            keep: Vec::new(),
            keep_next: Vec::new(),
            n: len,
            d,
        };
        match ctx.id {
            PartyId::P0 => {
                // k_{2,0} is P0's "prev" stream: s_0 then x_0.
                let mut s = ctx.rand_with_prev(dom, 2 * len);
                st.keep = s.split_off(len);
                st.base = z.iter().zip(&s).map(|(a, b)| a.wrapping_add(*b)).collect();
                st.to_next = z;
            }
            PartyId::P1 => {
                // k_{1,2} is P1's "next" stream: s_1.
                let s1 = ctx.rand_with_next(dom, len);
                st.base = z.iter().zip(&s1).map(|(a, b)| a.wrapping_add(*b)).collect();
                st.to_prev = z;
            }
            PartyId::P2 => {
                let mut s0 = ctx.rand_with_next(dom, 2 * len);
                let x0 = s0.split_off(len);
                let s1 = ctx.rand_with_prev(dom, len);
                let mut to_p1: Vec<u64> =
                    z.iter().zip(&s0).map(|(a, b)| a.wrapping_add(*b)).collect();
                let x2: Vec<u64> = s0
                    .iter()
                    .zip(&s1)
                    .zip(&x0)
                    .map(|((a, b), x)| (a.wrapping_add(*b) >> d).wrapping_neg().wrapping_sub(*x))
                    .collect();
                to_p1.extend_from_slice(&x2);
                st.to_next = z.iter().zip(&s1).map(|(a, b)| a.wrapping_add(*b)).collect();
                st.to_prev = to_p1;
                st.keep = x2;
                st.keep_next = x0;
            }
        }
        st
    }
}

impl RoundProtocol for MulTruncRound {
    type Output = Shares;

    fn to_next(&self) -> &[u64] {
        &self.to_next
    }

    fn to_prev(&self) -> &[u64] {
        &self.to_prev
    }

    fn expect(&self) -> Expect {
        match self.me {
            PartyId::P0 => Expect {
                from_next: self.n,
                from_prev: self.n,
            },
            PartyId::P1 => Expect {
                from_next: 2 * self.n,
                from_prev: self.n,
            },
            PartyId::P2 => Expect {
                from_next: 0,
                from_prev: 0,
            },
        }
    }

    fn finish(
        self,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        _: RoundId,
    ) -> Result<Shares, ProtocolError> {
        let n = self.n;
        // c = own (z_i + s_i) + the other opener's z_j + P2's z_2 + s_{other}; y = c >> d.
        let open = |from_opener: &[u64], from_p2: &[u64]| -> Vec<u64> {
            self.base
                .iter()
                .zip(from_opener)
                .zip(from_p2)
                .map(|((a, b), c)| a.wrapping_add(*b).wrapping_add(*c) >> self.d)
                .collect()
        };
        Ok(match self.me {
            // P0: P1 is next, P2 is prev.
            PartyId::P0 => Shares {
                next: open(&from_next, &from_prev),
                own: self.keep,
            },
            // P1: P0 is prev, P2 is next and sent (z_2 + s_0, x_2).
            PartyId::P1 => {
                let (m, x2) = from_next.split_at(n);
                Shares {
                    own: open(&from_prev, m),
                    next: x2.to_vec(),
                }
            }
            PartyId::P2 => Shares {
                own: self.keep,
                next: self.keep_next,
            },
        })
    }
}
