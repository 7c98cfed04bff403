//! Comparisons on replicated shares, built on the sign bit (LTZ, in [`super::msb`]): lt/le/gt/
//! ge/eq, ReLU, elementwise max/min, tournament max/argmax — and the full bit decomposition
//! (`Bits`, `MsbOneHot`) used to normalise fixed-point values.
//!
//! **Bit decomposition.** Construction: the "two-way split" of ABY3 (Mohassel & Rindal, CCS
//! 2018, §5.3) with a Kogge–Stone parallel-prefix adder (Kogge & Stone 1973) on boolean shares
//! (Araki et al. CCS 2016), 64 bit lanes per word:
//! 1. x = s + t with s = x_0 + x_1 (P0 knows both) and t = x_2 (P1 and P2 know it). P0
//!    boolean-shares s (1 round, P0 sends 16 B per element); t has a trivial boolean sharing.
//! 2. With generate G = s ∧ t (1 AND round) and propagate P = s ⊕ t, five prefix levels
//!    k = 1, 2, 4, 8, 16 compute G ← G ⊕ (P ∧ (G ≪ k)) and P ← P ∧ (P ≪ k) (2 ANDs, 1 round
//!    each) and a last level k = 32 only G (1 AND, 1 round). Then G lane i is the carry out of
//!    bits 0..=i and the sum is P⁽⁰⁾ ⊕ (G ≪ 1): all 64 bits of x.
//! 3. `Bits` injects every lane (2 rounds); `MsbOneHot` first runs a suffix OR (6 AND rounds),
//!    keeps the lane where it steps, and injects the low `lanes` lanes (2 rounds).
//!
//! **Comparisons** use lt(a, b) = LTZ(a − b), exact whenever |a − b| < 2^63; ReLU, max and min
//! add one multiplication ("base + LTZ·diff").
//!
//! Security: semi-honest, honest majority. Every message is either P0's masked input share
//! (one-time-padded by PRF streams each receiver lacks one key of) or an AND / multiplication
//! message masked by a fresh zero-sharing, so a single party's view is uniform and independent
//! of the inputs; the number of rounds and bytes depends only on n.
//!
//! Cost: see `veil_circuits::cost` (`ltz_bytes`, `tournament_bytes`, `BIT_DECOMPOSE_BYTES`).

use super::bit_inject::BitInject;
use super::boolean::{AndRound, shl, shr_mask, xor, xor_assign};
use super::compose::Then;
use super::{Expect, InputRound, MultiRound, RoundProtocol, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;
use veil_circuits::PartyId;

/// What the full adder's output becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// All 64 bits, injected to arithmetic 0/1: n × 64 results, row-major.
    Bits,
    /// The low `lanes` bits, injected to arithmetic 0/1: n × lanes results, row-major.
    LowBits {
        /// Bit positions reported (from bit 0).
        lanes: u32,
    },
    /// One-hot of the highest set bit among the low `lanes` positions (n × lanes results).
    MsbOneHot {
        /// Bit positions reported.
        lanes: u32,
    },
}

/// One party's state of a bit decomposition (full Kogge–Stone adder) on a vector.
pub struct Decompose {
    stage: Stage,
    target: Target,
}

enum Stage {
    /// Round 1: P0 boolean-shares s = x_0 + x_1.
    Split { input: InputRound, t: Shares },
    /// Round 2: G = s ∧ t.
    Generate { and: AndRound, p: Shares },
    /// Rounds 3–8: prefix level k; `p0` is the original propagate word s ⊕ t.
    Prefix {
        k: u32,
        and: AndRound,
        g: Shares,
        p0: Shares,
    },
    /// MsbOneHot only, rounds 9–14: suffix OR y ← y ∨ (y ≫ k), k = 1, 2, …, 32.
    SuffixOr { k: u32, and: AndRound, y: Shares },
}

fn split(s: Shares, n: usize) -> (Shares, Shares) {
    let Shares { mut own, mut next } = s;
    let (own2, next2) = (own.split_off(n), next.split_off(n));
    (
        Shares { own, next },
        Shares {
            own: own2,
            next: next2,
        },
    )
}

impl Decompose {
    /// Start the two-way-split adder on `x` and turn its output into `target`.
    pub fn start_for(
        ctx: &mut PartyCtx,
        x: &Shares,
        target: Target,
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        let (input, t) = super::msb::two_way_split(ctx, x)?;
        Ok(Box::new(Decompose {
            stage: Stage::Split { input, t },
            target,
        }))
    }

    fn current(&self) -> (&[u64], &[u64], Expect) {
        match &self.stage {
            Stage::Split { input, .. } => (input.to_next(), input.to_prev(), input.expect()),
            Stage::Generate { and, .. }
            | Stage::Prefix { and, .. }
            | Stage::SuffixOr { and, .. } => (and.to_next(), and.to_prev(), and.expect()),
        }
    }
}

/// The AND round of prefix level `k`: both G and P below level 32, only G at level 32.
fn prefix_level(
    ctx: &mut PartyCtx,
    target: Target,
    k: u32,
    g: Shares,
    p: &Shares,
    p0: Shares,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let and = AndRound::start_prefix(ctx, p, &g, k, k < 32)?;
    Ok(Box::new(Decompose {
        stage: Stage::Prefix { k, and, g, p0 },
        target,
    }))
}

/// The AND round of suffix-OR level `k`: y ∧ (y ≫ k).
fn suffix_or_level(
    ctx: &mut PartyCtx,
    target: Target,
    k: u32,
    y: Shares,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let and = AndRound::start(ctx, &y, &shr_mask(&y, k, u64::MAX))?;
    Ok(Box::new(Decompose {
        stage: Stage::SuffixOr { k, and, y },
        target,
    }))
}

/// Lanes `0..lanes` of every word as separate one-lane words (element j·lanes + i holds lane i
/// of word j in lane 0), ready for bit injection. Local: lane selection is XOR-linear.
fn unpack_lanes(w: &Shares, lanes: u32) -> Shares {
    let f = |v: &[u64]| {
        v.iter()
            .flat_map(|x| (0..lanes).map(move |i| (x >> i) & 1))
            .collect()
    };
    Shares {
        own: f(&w.own),
        next: f(&w.next),
    }
}

impl MultiRound for Decompose {
    fn to_next(&self) -> &[u64] {
        self.current().0
    }

    fn to_prev(&self) -> &[u64] {
        self.current().1
    }

    fn expect(&self) -> Expect {
        self.current().2
    }

    fn step(
        self: Box<Self>,
        ctx: &mut PartyCtx,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Step, ProtocolError> {
        match self.stage {
            Stage::Split { input, t } => {
                let (and, p) = super::msb::generate(ctx, input, &t, from_next, from_prev, round)?;
                Ok(Step::More(Box::new(Decompose {
                    stage: Stage::Generate { and, p },
                    target: self.target,
                })))
            }
            Stage::Generate { and, p } => {
                let g = and.finish(from_next, from_prev, round)?;
                Ok(Step::More(prefix_level(
                    ctx,
                    self.target,
                    1,
                    g,
                    &p,
                    p.clone(),
                )?))
            }
            Stage::Prefix { k, and, g, p0 } => {
                let res = and.finish(from_next, from_prev, round)?;
                let mut g = g;
                xor_assign(&mut g, &res);
                if k < 32 {
                    // res = [P ∧ (G ≪ k) | P ∧ (P ≪ k)]: G ⊕= the first half, P = the second.
                    let (_, p) = split(res, g.len());
                    return Ok(Step::More(prefix_level(
                        ctx,
                        self.target,
                        2 * k,
                        g,
                        &p,
                        p0,
                    )?));
                }
                // G lane i = carry out of bits 0..=i, so the sum is P⁽⁰⁾ ⊕ (G ≪ 1).
                match self.target {
                    Target::Bits | Target::LowBits { .. } => {
                        let lanes = match self.target {
                            Target::LowBits { lanes } => lanes,
                            _ => 64,
                        };
                        let sum = xor(&p0, &shl(&g, 1));
                        let bits = unpack_lanes(&sum, lanes);
                        Ok(Step::More(Box::new(BitInject::start(ctx, &bits)?)))
                    }
                    Target::MsbOneHot { .. } => {
                        let sum = xor(&p0, &shl(&g, 1));
                        Ok(Step::More(suffix_or_level(ctx, self.target, 1, sum)?))
                    }
                }
            }
            Stage::SuffixOr { k, and, y } => {
                // y ∨ z = y ⊕ z ⊕ (y ∧ z) with z = y ≫ k.
                let both = and.finish(from_next, from_prev, round)?;
                let y = xor(&xor(&y, &shr_mask(&y, k, u64::MAX)), &both);
                if k < 32 {
                    return Ok(Step::More(suffix_or_level(ctx, self.target, 2 * k, y)?));
                }
                // Lane i of y is 1 iff some bit ≥ i is set; the top set bit is where y steps.
                let onehot = xor(&y, &shr_mask(&y, 1, u64::MAX));
                let Target::MsbOneHot { lanes } = self.target else {
                    unreachable!("only MsbOneHot runs the suffix OR")
                };
                let bits = unpack_lanes(&onehot, lanes);
                Ok(Step::More(Box::new(BitInject::start(ctx, &bits)?)))
            }
        }
    }
}

/// `base + LTZ(x)·diff`: ReLU is (x, x, −x), max(a, b) is (a − b, a, b − a), min(a, b) is
/// (a − b, b, a − b). The sign bit is multiplied into `diff` while it is injected
/// ([`super::bit_inject::InjectBlend`]): 10 rounds. `diff` may be a multiple of x's length
/// (argmax multiplies value and index differences by the same bit).
pub fn ltz_blend(
    ctx: &mut PartyCtx,
    x: &Shares,
    base: Shares,
    diff: Shares,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let m = super::msb::Msb::start_blend(ctx, x, diff)?;
    Ok(Then::boxed(m, move |_, prod| {
        Ok(Step::Done(base.add(&prod)))
    }))
}

/// Tournament maximum (and, with `indices`, argmax) of a vector of n ≥ 2 elements: each level
/// pairs elements 2j and 2j+1, the right one wins iff left < right (ties keep the lower index),
/// an odd last element passes through. ⌈log2 n⌉ levels of 10 rounds. The result is the max
/// (one element), or its index when `indices` is given.
pub fn tournament(
    ctx: &mut PartyCtx,
    values: Shares,
    indices: Option<Shares>,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let pick = |s: &Shares, parity: usize| Shares {
        own: s.own.iter().skip(parity).step_by(2).copied().collect(),
        next: s.next.iter().skip(parity).step_by(2).copied().collect(),
    };
    let n = values.len();
    let m = n / 2;
    let take = |s: Shares, len: usize| Shares {
        own: s.own[..len].to_vec(),
        next: s.next[..len].to_vec(),
    };
    let odd = |s: &Shares| Shares {
        own: s.own[n - 1..].to_vec(),
        next: s.next[n - 1..].to_vec(),
    };
    let (lv, rv) = (take(pick(&values, 0), m), take(pick(&values, 1), m));
    let leftover_v = (n % 2 == 1).then(|| odd(&values));
    let (base, diff, leftover_i) = match &indices {
        Some(idx) => {
            let (li, ri) = (take(pick(idx, 0), m), take(pick(idx, 1), m));
            (
                lv.concat(&li),
                rv.sub(&lv).concat(&ri.sub(&li)),
                (n % 2 == 1).then(|| odd(idx)),
            )
        }
        None => (lv.clone(), rv.sub(&lv), None),
    };
    let level = ltz_blend(ctx, &lv.sub(&rv), base, diff)?;
    Ok(Then::boxed(level, move |ctx, winners| {
        let (mut v, mut i) = if indices.is_some() {
            let (v, i) = split(winners, m);
            (v, Some(i))
        } else {
            (winners, None)
        };
        if let Some(lv) = leftover_v {
            v = v.concat(&lv);
        }
        if let (Some(i), Some(li)) = (i.as_mut(), leftover_i) {
            *i = i.concat(&li);
        }
        if v.len() == 1 {
            return Ok(Step::Done(i.unwrap_or(v)));
        }
        Ok(Step::More(tournament(ctx, v, i)?))
    }))
}

/// The public indices 0..n as shares (P0 holds them in component x_0).
pub fn index_shares(me: PartyId, n: usize) -> Shares {
    Shares::from_public(me, &(0..n as u64).collect::<Vec<u64>>())
}

/// Bit decomposition (`Target::Bits`) or MSB one-hot (`Target::MsbOneHot`) of shares: a
/// full 64-bit two-way-split adder (8 rounds), for the one-hot a 6-level suffix OR (6 rounds),
/// then bit injection of every reported lane (2 rounds). Results are n × lanes, row-major.
pub fn decompose(
    ctx: &mut PartyCtx,
    x: &Shares,
    target: Target,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    Decompose::start_for(ctx, x, target)
}

/// LTZ of shares, as one [`MultiRound`] (boxed for the engine).
pub fn ltz(ctx: &mut PartyCtx, x: &Shares) -> Result<Box<dyn MultiRound>, ProtocolError> {
    super::msb::Msb::start(ctx, x)
}

/// Levels of [`tournament`] on `n` elements (each level is 10 rounds).
pub fn tournament_levels(n: usize) -> u32 {
    let (mut len, mut levels) = (n, 0);
    while len > 1 {
        len = len.div_ceil(2);
        levels += 1;
    }
    levels
}
