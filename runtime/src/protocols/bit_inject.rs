//! Bit injection: a boolean-shared bit b = b_0 ⊕ b_1 ⊕ b_2 → arithmetic shares of b ∈ {0, 1}.
//!
//! Construction: each b_j is known to two parties, so it has a trivial arithmetic sharing
//! (component j = b_j, the others 0) that needs no communication. XOR in arithmetic form is
//! a ⊕ b = a + b − 2ab, so two multiplications of replicated shares (Araki et al. CCS 2016 §2.2)
//! finish the job: c = b_0 ⊕ b_1, then b = c ⊕ b_2. This is the arithmetic-XOR conversion used
//! for bit injection in ABY3 (Mohassel & Rindal, CCS 2018, §5.3) without its OT variant; every
//! party does the same work in both rounds, so no node carries an asymmetric role.
//!
//! Security: semi-honest, honest majority; only the two multiplications communicate, and their
//! messages are masked by fresh zero-sharings.
//!
//! Cost: 2 rounds, 16 bytes per bit per party (8 per multiplication).

use super::{Expect, MulRound, MultiRound, RoundProtocol, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;
use veil_circuits::PartyId;

/// Arithmetic shares of component `j` of a boolean sharing whose lane 0 holds one bit:
/// component j is `b_j & 1`, the others 0. Local.
pub fn component_as_arith(me: PartyId, bits: &Shares, j: PartyId) -> Shares {
    let n = bits.len();
    let zero = || vec![0u64; n];
    let lane0 = |v: &[u64]| v.iter().map(|w| w & 1).collect::<Vec<u64>>();
    if me == j {
        Shares {
            own: lane0(&bits.own),
            next: zero(),
        }
    } else if me.next() == j {
        Shares {
            own: zero(),
            next: lane0(&bits.next),
        }
    } else {
        Shares {
            own: zero(),
            next: zero(),
        }
    }
}

/// a + b − 2·ab from shares of a, b and of the product ab (local).
fn arith_xor(a: &Shares, b: &Shares, ab: &Shares) -> Shares {
    let f = |x: &[u64], y: &[u64], p: &[u64]| {
        x.iter()
            .zip(y)
            .zip(p)
            .map(|((x, y), p)| x.wrapping_add(*y).wrapping_sub(p.wrapping_mul(2)))
            .collect()
    };
    Shares {
        own: f(&a.own, &b.own, &ab.own),
        next: f(&a.next, &b.next, &ab.next),
    }
}

/// One party's state of a bit injection.
pub struct BitInject {
    stage: Stage,
}

enum Stage {
    /// Round 1: b_0 · b_1.
    First {
        mul: MulRound,
        b0: Shares,
        b1: Shares,
        b2: Shares,
    },
    /// Round 2: c · b_2.
    Second {
        mul: MulRound,
        c: Shares,
        b2: Shares,
    },
}

impl BitInject {
    /// Start injecting the bits in lane 0 of the boolean shares `bits`.
    pub fn start(ctx: &mut PartyCtx, bits: &Shares) -> Result<Self, ProtocolError> {
        let me = ctx.id;
        let [b0, b1, b2] = PartyId::ALL.map(|j| component_as_arith(me, bits, j));
        let mul = MulRound::mul(ctx, &b0, &b1)?;
        Ok(BitInject {
            stage: Stage::First { mul, b0, b1, b2 },
        })
    }

    fn mul(&self) -> &MulRound {
        match &self.stage {
            Stage::First { mul, .. } | Stage::Second { mul, .. } => mul,
        }
    }
}

impl MultiRound for BitInject {
    fn to_next(&self) -> &[u64] {
        self.mul().to_next()
    }

    fn to_prev(&self) -> &[u64] {
        self.mul().to_prev()
    }

    fn expect(&self) -> Expect {
        self.mul().expect()
    }

    fn step(
        self: Box<Self>,
        ctx: &mut PartyCtx,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Step, ProtocolError> {
        match self.stage {
            Stage::First { mul, b0, b1, b2 } => {
                let p = mul.finish(from_next, from_prev, round)?;
                let c = arith_xor(&b0, &b1, &p);
                let mul = MulRound::mul(ctx, &c, &b2)?;
                Ok(Step::More(Box::new(BitInject {
                    stage: Stage::Second { mul, c, b2 },
                })))
            }
            Stage::Second { mul, c, b2 } => {
                let p = mul.finish(from_next, from_prev, round)?;
                Ok(Step::Done(arith_xor(&c, &b2, &p)))
            }
        }
    }
}
