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
//! 3. The result lanes are turned into arithmetic 0/1 by opening them under random mask bits
//!    ([`super::masked_bit`]; the masks' injection runs beside rounds 1–2): the last AND level
//!    is not reshared, since the result is linear in it, so each party opens its share of
//!    result ⊕ mask — no injection rounds. `Bits` opens all 64 lanes at prefix level 32 (8
//!    rounds). `LowBits { lanes }` needs carries into lanes < `lanes` only, so it stops at
//!    the first prefix level whose spans cover `lanes − 1` lanes (4 rounds for 5 lanes);
//!    `BitRange { skip, lanes }` runs the adder to the level that covers lane `skip + lanes − 1`
//!    (the carries into a lane come from every lane below it) but opens and injects only
//!    lanes `skip..skip + lanes`.
//!    `MsbOneHot` runs a suffix OR (6 AND rounds) after the full adder, keeps the lane where
//!    it steps, and opens the low `lanes` lanes at the last OR level (14 rounds).
//!
//! **Comparisons** use lt(a, b) = LTZ(a − b), exact whenever |a − b| < 2^63; ReLU, max and min
//! add one multiplication ("base + LTZ·diff").
//!
//! Malicious mode (security with abort, [`crate::verify`]): the split is [`super::msb`]'s
//! carry-save AND round; every AND word (the prefix levels with their operands written out,
//! the last level opened on its result lanes, shifted by one) is proven in the proof of AND
//! gates; `MsbOneHot` reshares its last suffix-OR level and opens the one-hot in one more round,
//! checked by each share's other holder; `TruncCarries` opens the carries exact truncation
//! reads ([`super::trunc`]).
//!
//! Security: semi-honest, honest majority. Every message is P0's masked input share
//! (one-time-padded by PRF streams each receiver lacks one key of), an AND / multiplication
//! message masked by a fresh zero-sharing, or a share of result ⊕ mask in the result lanes only
//! (the others are cleared before sending), whose opened value is uniform because no party
//! knows the mask ([`super::masked_bit`]); so a single party's view is independent of the
//! inputs, and the number of rounds and bytes depends only on n.
//!
//! Cost: see `veil_circuits::cost` (`ltz_bytes`, `tournament_bytes`, `BIT_DECOMPOSE_BYTES`).

use super::boolean::{AndRound, shl, shr_mask, xor, xor_assign};
use super::compose::Then;
use super::masked_bit::{Framed, Mask, OpenCheck};
use super::msb::Split;
use super::{Expect, MultiRound, RoundProtocol, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;
use veil_circuits::PartyId;
use veil_circuits::cost::low_bits_prefix_levels;

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
    /// Bits `skip..skip + lanes`, injected to arithmetic 0/1: n × lanes results, row-major
    /// (bit `skip + i` of element j at j·lanes + i). `skip + lanes ≤ 64`.
    BitRange {
        /// Low bits computed (for the carries) but not reported.
        skip: u32,
        /// Bit positions reported, from bit `skip`.
        lanes: u32,
    },
    /// One-hot of the highest set bit among the low `lanes` positions (n × lanes results).
    MsbOneHot {
        /// Bit positions reported.
        lanes: u32,
    },
    /// The five carry bits exact truncation by `d` (1 ≤ d ≤ 62) reads, malicious mode only (it
    /// needs the adder split's carry word m): G_{d−1}, m_{d−1}, G_63, m_63 and the sign bit
    /// (n × 5 results) — see [`super::trunc::exact`].
    TruncCarries {
        /// The truncation's shift.
        d: u32,
    },
}

/// One party's state of a bit decomposition (two-way-split Kogge–Stone adder) on a vector.
pub struct Decompose {
    stage: Stage,
    plan: Plan,
    /// This round's words: the stage's, then the mask side's.
    framed: Framed,
}

/// What a decomposition keeps from round to round besides its stage.
struct Plan {
    target: Target,
    /// The prefix level that ends the adder: 32 for all 64 bits, less for low bits only.
    last_k: u32,
    /// Mask bits opened with the result lanes, injected beside rounds 1–2.
    mask: Mask,
    /// The adder split's carry word (malicious mode), for `TruncCarries`.
    carry: Option<Shares>,
}

enum Stage {
    /// Round 1: the split x = s + t.
    Split(Split),
    /// Round 2: G = s ∧ t.
    Generate { and: AndRound, p: Shares },
    /// Prefix level k; `p0` is the original propagate word s ⊕ t.
    Prefix {
        k: u32,
        and: AndRound,
        g: Shares,
        p0: Shares,
    },
    /// MsbOneHot only: suffix OR y ← y ∨ (y ≫ k), k = 1, 2, …, 16.
    SuffixOr { k: u32, and: AndRound, y: Shares },
    /// This party's share of the result lanes ⊕ the mask, one word per element, sent to both
    /// peers, and how its receivers verify it: the last AND level's gates left as 3-out-of-3
    /// XOR shares, or (`MsbOneHot` in malicious mode) a reshared value's own component.
    Open { v: Vec<u64>, check: OpenCheck },
}

impl Stage {
    fn words(&self) -> (&[u64], &[u64], Expect) {
        match self {
            Stage::Split(split) => split.words(),
            Stage::Generate { and, .. }
            | Stage::Prefix { and, .. }
            | Stage::SuffixOr { and, .. } => (and.to_next(), and.to_prev(), and.expect()),
            Stage::Open { v, .. } => (
                v,
                v,
                Expect {
                    from_next: v.len(),
                    from_prev: v.len(),
                },
            ),
        }
    }
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

impl Target {
    /// Result lanes per element (bits opened and injected).
    pub fn lanes(self) -> u32 {
        match self {
            Target::Bits => 64,
            Target::TruncCarries { .. } => 5,
            Target::LowBits { lanes }
            | Target::BitRange { lanes, .. }
            | Target::MsbOneHot { lanes } => lanes,
        }
    }

    /// The lowest result lane (0 unless a `BitRange` skips some).
    fn skip(self) -> u32 {
        match self {
            Target::BitRange { skip, .. } => skip,
            _ => 0,
        }
    }

    /// The prefix level that ends the adder: carries into lanes < L need prefix spans of
    /// L − 1 lanes, levels 1, 2, …, last_k (32 for all 64 bits).
    fn last_k(self) -> u32 {
        match self {
            Target::LowBits { lanes } => 1 << (low_bits_prefix_levels(lanes) - 1),
            Target::BitRange { skip, lanes } => 1 << (low_bits_prefix_levels(skip + lanes) - 1),
            _ => 32,
        }
    }

    /// AND words of a decomposition of `n` elements (malicious mode, adder split included):
    /// split and generate, two batches per prefix level below the last, one at the last, and
    /// six suffix-OR levels for `MsbOneHot`.
    pub fn and_words(self, n: usize) -> usize {
        let levels = self.last_k().trailing_zeros() as usize + 1;
        let suffix = if matches!(self, Target::MsbOneHot { .. }) {
            6
        } else {
            0
        };
        n * (2 + 2 * (levels - 1) + 1 + suffix)
    }

    /// The opened lane of each result bit, in result order.
    fn result_lanes(self) -> Vec<u32> {
        match self {
            // G_{d−1}, m_{d−1} (a free low lane), G_63, m_63 (another), sign bit (lane 62).
            Target::TruncCarries { d } => {
                let mut free = (0..4).filter(|&l| l != d - 1);
                let (f1, f2) = (free.next().unwrap_or(0), free.next().unwrap_or(1));
                vec![d - 1, f1, 63, f2, 62]
            }
            t => (t.skip()..t.skip() + t.lanes()).collect(),
        }
    }

    /// Bit mask of the result lanes.
    fn lane_mask(self) -> u64 {
        self.result_lanes().iter().fold(0, |m, &l| m | (1 << l))
    }
}

impl Decompose {
    /// Start the two-way-split adder on `x` and turn its output into `target`.
    pub fn start_for(
        ctx: &mut PartyCtx,
        x: &Shares,
        target: Target,
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        let (skip, lanes) = (target.skip(), target.lanes());
        if !(1..=64).contains(&lanes) || skip.saturating_add(lanes) > 64 {
            return Err(ProtocolError::Argument {
                op: "bit decomposition",
                what: format!(
                    "{lanes} result lanes from bit {skip} (1 to 64 lanes, ending by bit 64)"
                ),
            });
        }
        if let Target::TruncCarries { d } = target
            && (!(1..=62).contains(&d) || !ctx.verified())
        {
            return Err(ProtocolError::Argument {
                op: "exact truncation",
                what: format!(
                    "the carries of a truncation by {d} bits (1 to 62, malicious mode only)"
                ),
            });
        }
        let split = Split::start(ctx, x)?;
        let last_k = target.last_k();
        let order = target.result_lanes();
        let mask = Mask::start(
            ctx,
            x.len(),
            |_| target.lane_mask(),
            |r| unpack_lanes(r, &order),
            None,
        )?;
        let plan = Plan {
            target,
            last_k,
            mask,
            carry: None,
        };
        Ok(plan.assemble(Stage::Split(split)))
    }
}

impl Plan {
    fn assemble(self, stage: Stage) -> Box<dyn MultiRound> {
        let (next, prev, expect) = stage.words();
        let framed = self.mask.frame(next, prev, expect);
        Box::new(Decompose {
            stage,
            plan: self,
            framed,
        })
    }

    /// Send this party's share `v` of the result lanes, masked (the other lanes cleared), to
    /// both peers.
    fn open(self, mut v: Vec<u64>, check: OpenCheck) -> Box<dyn MultiRound> {
        self.mask.mask(&mut v);
        self.assemble(Stage::Open { v, check })
    }

    /// The AND round of prefix level `k`: G and P below the last level, only G at the last.
    /// `Bits` and `LowBits` open at their last level: the sum P⁽⁰⁾ ⊕ (G ≪ 1) is linear in
    /// the gate, so each party's share is its own components with its cross term XORed in.
    fn prefix_level(
        self,
        ctx: &mut PartyCtx,
        k: u32,
        g: Shares,
        p: &Shares,
        p0: Shares,
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        let last = k == self.last_k;
        if let (true, Target::TruncCarries { d }) = (last, self.target) {
            return self.open_carries(ctx, d, (g, p, p0));
        }
        if last && !matches!(self.target, Target::MsbOneHot { .. }) {
            // The opened word is p0 ⊕ ((G ⊕ z) ≪ 1) = lin ⊕ (z ≪ 1): the gate P ∧ (G ≪ k) is
            // opened shifted by one lane.
            let and = AndRound::start_opened(ctx, p, &shl(&g, k), self.mask.keep(), 1)?;
            let (z, slot) = and.into_opened();
            let lin = xor(&p0, &shl(&g, 1));
            let v = z.iter().zip(&lin.own).map(|(z, l)| l ^ (z << 1)).collect();
            return Ok(self.open(v, OpenCheck::Gate { lin, slot }));
        }
        let and = AndRound::start_prefix(ctx, p, &g, k, !last)?;
        Ok(self.assemble(Stage::Prefix { k, and, g, p0 }))
    }

    /// The AND round of suffix-OR level `k`: y ∧ (y ≫ k). At the last level (k = 32) the
    /// one-hot u ⊕ (u ≫ 1) of u = y ⊕ (y ≫ 32) ⊕ (the gate) is linear in the gate: open it.
    /// In malicious mode that gate is reshared instead and the one-hot opened in one more
    /// round ([`Plan::open_onehot`]): an opened z ⊕ (z ≫ 1) mixes lanes, which the proof of
    /// AND gates does not express.
    fn suffix_or_level(
        self,
        ctx: &mut PartyCtx,
        k: u32,
        y: Shares,
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        let and = AndRound::start(ctx, &y, &shr_mask(&y, k, u64::MAX))?;
        if k == 32 && !ctx.verified() {
            let z = and.into_masked();
            let v = z
                .iter()
                .zip(&y.own)
                .map(|(z, y)| {
                    let u = y ^ (y >> 32) ^ z;
                    u ^ (u >> 1)
                })
                .collect();
            return Ok(self.open(v, OpenCheck::Digests));
        }
        Ok(self.assemble(Stage::SuffixOr { k, and, y }))
    }

    /// `TruncCarries`' last prefix level: the gate P ∧ (G ≪ 32) on lanes d − 1, 62 and 63,
    /// opened with G XORed in (so lanes d − 1 and 63 open G_{d−1} and G_63, the carries out of
    /// those bits), P⁽⁰⁾_63 moved into lane 62 (which then opens the sign bit
    /// P⁽⁰⁾_63 ⊕ G_62), and the carry word's bits m_{d−1} and m_63 moved into two free low lanes
    /// where the gate is cleared (its zero-sharing opens to 0 there). The proof of AND gates
    /// covers all five lanes.
    fn open_carries(
        self,
        ctx: &mut PartyCtx,
        d: u32,
        (g, p, p0): (Shares, &Shares, Shares),
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        let Some(m) = self.carry.clone() else {
            return Err(ProtocolError::Argument {
                op: "exact truncation",
                what: "the carries need the malicious mode's adder split".into(),
            });
        };
        let order = self.target.result_lanes();
        let (f1, f2) = (order[1], order[3]);
        let gate_lanes = (1u64 << (d - 1)) | (3 << 62);
        let keep = self.mask.keep().to_vec();
        let gated = p.map(|c| c.iter().map(|w| w & gate_lanes).collect());
        let and = AndRound::start_opened(ctx, &gated, &shl(&g, 32), &keep, 0)?;
        let (z, slot) = and.into_opened();
        // lin = G ⊕ (P⁽⁰⁾_63 → lane 62) ⊕ (m_{d−1} → f1) ⊕ (m_63 → f2), per component.
        let place = |c: &[u64], from: u32, to: u32| -> Vec<u64> {
            c.iter().map(|w| ((w >> from) & 1) << to).collect()
        };
        let lin_of = |g: &[u64], p0: &[u64], m: &[u64]| -> Vec<u64> {
            let (a, b, c) = (place(p0, 63, 62), place(m, d - 1, f1), place(m, 63, f2));
            g.iter()
                .zip(a.iter().zip(b.iter().zip(&c)))
                .map(|(g, (a, (b, c)))| (g & gate_lanes) ^ a ^ b ^ c)
                .collect()
        };
        let lin = Shares {
            own: lin_of(&g.own, &p0.own, &m.own),
            next: lin_of(&g.next, &p0.next, &m.next),
        };
        let v = z.iter().zip(&lin.own).map(|(z, l)| z ^ l).collect();
        Ok(self.open(v, OpenCheck::Gate { lin, slot }))
    }

    /// Malicious mode's last step of `MsbOneHot`: the one-hot y ⊕ (y ≫ 1) of the reshared
    /// suffix OR `y`, each party's own component opened under the mask (1 round, 16 bytes per
    /// element); its receiver P_{i−1} holds that component and checks it.
    fn open_onehot(self, y: &Shares) -> Box<dyn MultiRound> {
        let onehot = xor(y, &shr_mask(y, 1, u64::MAX));
        let v = onehot.own.clone();
        self.open(v, OpenCheck::Linear(onehot))
    }
}

/// The lanes `order` of every word as separate one-lane words (element j·|order| + i holds
/// lane order[i] of word j in lane 0), the order of the results. Local: lane selection is
/// XOR-linear.
fn unpack_lanes(v: &[u64], order: &[u32]) -> Vec<u64> {
    v.iter()
        .flat_map(|x| order.iter().map(move |&i| (x >> i) & 1))
        .collect()
}

impl MultiRound for Decompose {
    fn to_next(&self) -> &[u64] {
        &self.framed.to_next
    }

    fn to_prev(&self) -> &[u64] {
        &self.framed.to_prev
    }

    fn expect(&self) -> Expect {
        self.framed.expect
    }

    fn step(
        self: Box<Self>,
        ctx: &mut PartyCtx,
        mut from_next: Vec<u64>,
        mut from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Step, ProtocolError> {
        let Decompose {
            stage, mut plan, ..
        } = *self;
        let (_, _, main) = stage.words();
        plan.mask = plan
            .mask
            .step(ctx, &mut from_next, &mut from_prev, main, round)?;
        match stage {
            Stage::Split(split) => {
                let (and, p, carry) = split.generate(ctx, from_next, from_prev, round)?;
                plan.carry = carry;
                Ok(Step::More(plan.assemble(Stage::Generate { and, p })))
            }
            Stage::Generate { and, p } => {
                let g = and.finish(from_next, from_prev, round)?;
                Ok(Step::More(plan.prefix_level(ctx, 1, g, &p, p.clone())?))
            }
            Stage::Prefix { k, and, g, p0 } => {
                let res = and.finish(from_next, from_prev, round)?;
                let mut g = g;
                xor_assign(&mut g, &res);
                if k < plan.last_k {
                    // res = [P ∧ (G ≪ k) | P ∧ (P ≪ k)]: G ⊕= the first half, P = the second.
                    let (_, p) = split(res, g.len());
                    return Ok(Step::More(plan.prefix_level(ctx, 2 * k, g, &p, p0)?));
                }
                // MsbOneHot: G lane i = carry out of bits 0..=i, so x = P⁽⁰⁾ ⊕ (G ≪ 1).
                let sum = xor(&p0, &shl(&g, 1));
                Ok(Step::More(plan.suffix_or_level(ctx, 1, sum)?))
            }
            Stage::SuffixOr { k, and, y } => {
                // y ∨ z = y ⊕ z ⊕ (y ∧ z) with z = y ≫ k; lane i of the final y is 1 iff some
                // bit ≥ i is set, so the top set bit is where it steps.
                let both = and.finish(from_next, from_prev, round)?;
                let y = xor(&xor(&y, &shr_mask(&y, k, u64::MAX)), &both);
                if k == 32 {
                    return Ok(Step::More(plan.open_onehot(&y)));
                }
                Ok(Step::More(plan.suffix_or_level(ctx, 2 * k, y)?))
            }
            Stage::Open { v, check } => {
                let order = plan.target.result_lanes();
                let lanes = order.len();
                let bit = |c: &[u64], e: usize| (c[e / lanes] >> order[e % lanes]) & 1 == 1;
                plan.mask
                    .record_open(ctx, check, (&v, &from_next, &from_prev), round)?;
                let out = plan.mask.finish(ctx.id, &v, &from_next, &from_prev, bit)?;
                Ok(Step::Done(out))
            }
        }
    }
}

/// `base + LTZ(x)·diff`: ReLU is (x, x, −x), max(a, b) is (a − b, a, b − a), min(a, b) is
/// (a − b, b, a − b). The sign bit's mask is multiplied into `diff` beside the boolean work
/// ([`super::msb`]): 8 rounds. `diff` may be a multiple of x's length
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
/// an odd last element passes through. ⌈log2 n⌉ levels of 8 rounds. The result is the max
/// (one element), or its index when `indices` is given.
pub fn tournament(
    ctx: &mut PartyCtx,
    values: Shares,
    indices: Option<Shares>,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let n = values.len();
    let m = n / 2;
    // The first m elements of parity `parity` (pair j is elements 2j and 2j + 1).
    let pick = |s: &Shares, parity: usize| s.gather((0..m).map(move |j| 2 * j + parity));
    let odd = |s: &Shares| s.slice(n - 1, n);
    let (lv, rv) = (pick(&values, 0), pick(&values, 1));
    let leftover_v = (n % 2 == 1).then(|| odd(&values));
    let (base, diff, leftover_i) = match &indices {
        Some(idx) => {
            let (li, ri) = (pick(idx, 0), pick(idx, 1));
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

/// Bit decomposition (`Target::Bits`, `LowBits`, `BitRange`) or MSB one-hot
/// (`Target::MsbOneHot`) of shares: the two-way-split adder (8 rounds for all 64 bits, fewer for
/// low bits), for the one-hot a 6-level suffix OR (6 rounds), each reported lane opened under a
/// mask whose injection runs beside. Results are n × lanes, row-major.
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

/// Levels of [`tournament`] on `n` elements (each level is 8 rounds).
pub fn tournament_levels(n: usize) -> u32 {
    let (mut len, mut levels) = (n, 0);
    while len > 1 {
        len = len.div_ceil(2);
        levels += 1;
    }
    levels
}
