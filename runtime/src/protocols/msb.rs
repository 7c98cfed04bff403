//! The sign bit of arithmetic shares by an MSB-only carry tree with packed AND rounds.
//!
//! Construction: ABY3's two-way split (Mohassel & Rindal, CCS 2018, §5.3): x = s + t with
//! s = x_0 + x_1 boolean-shared by P0 and t = x_2 trivially boolean-shared, so
//! msb(x) = s_63 ⊕ t_63 ⊕ carry_63. Only the carry into bit 63 is needed, so instead of a full
//! Kogge–Stone adder this runs a binary tree of (generate, propagate) combinations (the
//! "MSB-only parallel-prefix adder" of the design brief):
//! lane 63 is first forced to (g, p) = (0, 1), so the group generate of all 64 lanes equals
//! the carry out of bits 0..=62; each level pairs lanes (2j, 2j+1) into
//! (G_hi ⊕ P_hi·G_lo, P_hi·P_lo), halving the lanes (64 → 32 → … → 1). G and P stay packed
//! densely across elements (element j's w lanes at bits j·w..), and taking the even or odd
//! lanes of a packed vector is a per-word bit compression, so every level moves and sends
//! half the data of the one before.
//!
//! The bit is turned into arithmetic shares by opening it under a random mask bit
//! ([`super::masked_bit`]): the mask's injection runs beside rounds 1–2, and the last tree
//! level is not reshared but opened as msb ⊕ r, so no injection rounds follow.
//!
//! Rounds: 1 (P0's input) + 1 (G = s ∧ t) + 5 levels + 1 (last level, opened) = 8.
//! Bytes per party for n elements: P0 16n for its input; everyone 8n for G, then
//! 2·8·⌈n·w/64⌉ per level with w = 32, 16, 8, 4, 2 lanes, 2·8·⌈n/64⌉ for the opened last level
//! (to both peers), and 16n for the mask's injection — ≈ 40 bytes per element (56 at P0) for
//! large n, against 120 (136) for the full-word Kogge–Stone adder used by `Bits`.
//!
//! Security: semi-honest, honest majority. Packing and lane selection are local linear maps on
//! each component; every message is an AND or multiplication word masked by a fresh
//! zero-sharing, P0's one-time-padded input, or a share of msb ⊕ r, which is uniform given the
//! opened value and that value is uniform because no party knows r (see
//! [`super::masked_bit`]); the transcript's shape depends only on n.
//!
//! Malicious mode (security with abort, [`crate::verify`]): the split is a carry-save AND
//! round instead of P0's input ([`Split::Adder`]: same rounds; every party sends 8n, P0 no
//! more 16n), every AND word — the last level's opened one on its kept lanes — is proven in
//! the session's proof of AND gates, the opened shares are checked and compared between their
//! recipients, and the mask's injection products are proven with the session's products.

use super::boolean::{AndRound, shl, trivial_component, xor};
use super::masked_bit::{Framed, Mask, OpenCheck};
use super::{Expect, InputRound, MultiRound, RoundProtocol, Step};
use crate::error::ProtocolError;
use crate::party::PartyCtx;
use crate::sharing::Shares;
use crate::transport::RoundId;
use std::sync::{Arc, OnceLock};
use veil_circuits::PartyId;

/// Bits 0, 2, 4, … of `x` moved to bits 0, 1, 2, … (a GF(2)-linear bit permutation).
fn compress_even(mut x: u64) -> u64 {
    x &= 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    (x | (x >> 16)) & 0x0000_0000_ffff_ffff
}

/// The even (`odd` = false) or odd lanes of a packed bit vector whose elements are an even
/// number of lanes wide: element boundaries are even, so these are the even / odd bit
/// positions, and the result is the same elements at half the width, still packed.
fn half_lanes(v: &[u64], odd: bool) -> Vec<u64> {
    let shift = u32::from(odd);
    v.chunks(2)
        .map(|c| {
            let lo = compress_even(c[0] >> shift);
            let hi = c.get(1).map_or(0, |x| compress_even(x >> shift));
            lo | (hi << 32)
        })
        .collect()
}

fn half_lanes_shares(s: &Shares, odd: bool) -> Shares {
    Shares {
        own: half_lanes(&s.own, odd),
        next: half_lanes(&s.next, odd),
    }
}

/// Bit 63 of each of `n` words, packed one bit per element.
fn pack_top_bits(v: &[u64]) -> Vec<u64> {
    v.chunks(64)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u64, |acc, (k, x)| acc | ((x >> 63) << k))
        })
        .collect()
}

/// Bit j of a packed bit vector as word j (lane 0), for `n` elements.
fn unpack_bits(d: &[u64], n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    for w in d {
        for k in 0..64 {
            if out.len() == n {
                break;
            }
            out.push((w >> k) & 1);
        }
    }
    out
}

/// One party's state of an MSB extraction.
pub struct Msb {
    stage: Stage,
    n: usize,
    /// The mask bits opened with the msb, and their injection run beside rounds 1–2.
    mask: Mask,
    /// This round's words: the stage's, then the mask side's.
    framed: Framed,
}

enum Stage {
    /// Round 1: the split x = s + t.
    Split(Split),
    /// Round 2: G = s ∧ t.
    Generate { and: AndRound, p: Shares },
    /// Rounds 3–7: tree level producing `w` lanes per element.
    Level {
        w: u32,
        and: AndRound,
        g_hi: Shares,
        p63: Shares,
    },
    /// Round 8: the last level's gate left as 3-out-of-3 XOR shares; this party's share of
    /// msb ⊕ r (packed) goes to both peers. `lin` is what was XORed into the gate (G_hi and
    /// s_63 ⊕ t_63), `slot` the gate's record for the verification.
    Open {
        v: Vec<u64>,
        lin: Shares,
        slot: Option<Arc<OnceLock<Shares>>>,
    },
}

impl Stage {
    fn words(&self) -> (&[u64], &[u64], Expect) {
        match self {
            Stage::Split(split) => split.words(),
            Stage::Generate { and, .. } | Stage::Level { and, .. } => {
                (and.to_next(), and.to_prev(), and.expect())
            }
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

/// x = s + t for two boolean-shared words s, t, whose adder gives x's bits.
pub(super) enum Split {
    /// Semi-honest, ABY3's two-way split (§5.3): P0 boolean-shares s = x_0 + x_1 (1 round, P0
    /// sends 16 bytes per element); t = x_2 — component 2, which P1 holds as `next` and P2 as
    /// `own` — has the trivial boolean sharing.
    Input { input: InputRound, t: Shares },
    /// Malicious mode: each component x_j has the trivial boolean sharing held by the two
    /// parties that hold x_j, and one carry-save layer (a full adder per lane) makes them two:
    /// s = x_0 ⊕ x_1 ⊕ x_2 and t = maj(x_0, x_1, x_2) ≪ 1, with
    /// maj(a, b, c) = ((a ⊕ c) ∧ (b ⊕ c)) ⊕ c — 1 AND round, 8 bytes per element per party.
    /// Every word sent is an AND word, which the proof of AND gates covers (P0's input of
    /// x_0 + x_1 could not be checked by anyone).
    Adder { and: AndRound, s: Shares, c: Shares },
}

impl Split {
    /// Start splitting the arithmetic shares `x` (the adder in malicious mode).
    pub(super) fn start(ctx: &mut PartyCtx, x: &Shares) -> Result<Split, ProtocolError> {
        let me = ctx.id;
        if ctx.verified() {
            let [a, b, c] = PartyId::ALL.map(|j| trivial_component(me, x, j));
            let and = AndRound::start(ctx, &xor(&a, &c), &xor(&b, &c))?;
            return Ok(Split::Adder {
                and,
                s: xor(&xor(&a, &b), &c),
                c,
            });
        }
        let n = x.len();
        let sum = (me == PartyId::P0).then(|| {
            x.own
                .iter()
                .zip(&x.next)
                .map(|(a, b)| a.wrapping_add(*b))
                .collect::<Vec<u64>>()
        });
        let input = InputRound::start_xor(ctx, PartyId::P0, n, sum.as_deref())?;
        let t = trivial_component(me, x, PartyId::P2);
        Ok(Split::Input { input, t })
    }

    /// This round's words and the words expected.
    pub(super) fn words(&self) -> (&[u64], &[u64], Expect) {
        match self {
            Split::Input { input, .. } => (input.to_next(), input.to_prev(), input.expect()),
            Split::Adder { and, .. } => (and.to_next(), and.to_prev(), and.expect()),
        }
    }

    /// Finish the split and start the generate round: returns the AND computing G = s ∧ t, the
    /// propagate word P = s ⊕ t and, for the adder, the carry word maj(x_0, x_1, x_2) before
    /// its shift (over the integers x_0 + x_1 + x_2 = s + 2·maj, which exact truncation reads).
    pub(super) fn generate(
        self,
        ctx: &mut PartyCtx,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<(AndRound, Shares, Option<Shares>), ProtocolError> {
        let (s, t, carry) = match self {
            Split::Input { input, t } => (input.finish(from_next, from_prev, round)?, t, None),
            Split::Adder { and, s, c } => {
                let carry = xor(&and.finish(from_next, from_prev, round)?, &c);
                (s, shl(&carry, 1), Some(carry))
            }
        };
        Ok((AndRound::start(ctx, &s, &t)?, xor(&s, &t), carry))
    }
}

/// AND words of an MSB extraction of `n` elements (malicious mode, adder split included):
/// what the session's proof of AND gates covers for it.
pub fn and_words(n: usize) -> usize {
    // Split and generate: n words each; levels 64 → 2 lanes: two batches of half the words;
    // the last level (2 → 1 lanes, opened): one.
    let mut words = n;
    let mut total = 2 * n;
    for _ in 0..5 {
        words = words.div_ceil(2);
        total += 2 * words;
    }
    total + words.div_ceil(2)
}

impl Msb {
    /// Start extracting the sign bits of the arithmetic shares `x` (result: arithmetic 0/1).
    pub fn start(ctx: &mut PartyCtx, x: &Shares) -> Result<Box<dyn MultiRound>, ProtocolError> {
        Self::begin(ctx, x, None)
    }

    /// MSB of `x` times `diff` (whose length is a multiple of x's; the bit repeats), as
    /// arithmetic shares, in the same 8 rounds: the mask is multiplied into `diff` beside the
    /// boolean work ([`Mask`]).
    pub fn start_blend(
        ctx: &mut PartyCtx,
        x: &Shares,
        diff: Shares,
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        Self::begin(ctx, x, Some(diff))
    }

    fn begin(
        ctx: &mut PartyCtx,
        x: &Shares,
        d: Option<Shares>,
    ) -> Result<Box<dyn MultiRound>, ProtocolError> {
        let n = x.len();
        let split = Split::start(ctx, x)?;
        let tail = |w: usize| match (w + 1 == n.div_ceil(64), n % 64) {
            (true, r) if r != 0 => (1u64 << r) - 1,
            _ => u64::MAX,
        };
        let mask = Mask::start(ctx, n.div_ceil(64), tail, |r| unpack_bits(r, n), d)?;
        Ok(Self::assemble(Stage::Split(split), n, mask))
    }

    fn assemble(stage: Stage, n: usize, mask: Mask) -> Box<dyn MultiRound> {
        let (next, prev, expect) = stage.words();
        let framed = mask.frame(next, prev, expect);
        Box::new(Msb {
            stage,
            n,
            mask,
            framed,
        })
    }
}

/// The tree level that turns packed `w_in`-lane (g, p) vectors into `w_in / 2` lanes: the
/// gates P_hi ∧ G_lo and (except at the last level) P_hi ∧ P_lo, two packed batches. The last
/// level (w_in = 2) does not reshare its gate: each party XORs its masked cross term with its
/// own components of G_hi and s_63 ⊕ t_63, a 3-out-of-3 XOR share of the msb, to open it
/// under the mask.
fn level(
    ctx: &mut PartyCtx,
    n: usize,
    w_in: u32,
    g: &Shares,
    p: &Shares,
    p63: Shares,
    mask: Mask,
) -> Result<Box<dyn MultiRound>, ProtocolError> {
    let (g_lo, g_hi) = (half_lanes_shares(g, false), half_lanes_shares(g, true));
    let p_hi = half_lanes_shares(p, true);
    let w = w_in / 2;
    if w == 1 {
        let and = AndRound::start_opened(ctx, &p_hi, &g_lo, mask.keep(), 0)?;
        let (mut v, slot) = and.into_opened();
        let lin = xor(&g_hi, &p63);
        for (v, l) in v.iter_mut().zip(&lin.own) {
            *v ^= l;
        }
        mask.mask(&mut v);
        return Ok(Msb::assemble(Stage::Open { v, lin, slot }, n, mask));
    }
    let a = p_hi.concat(&p_hi);
    let b = g_lo.concat(&half_lanes_shares(p, false));
    let and = AndRound::start(ctx, &a, &b)?;
    Ok(Msb::assemble(Stage::Level { w, and, g_hi, p63 }, n, mask))
}

/// Force lane 63 to (g, p) = (0, 1) so the tree's group generate is the carry into bit 63.
fn force_top_lane(me: PartyId, g: &Shares, p: &Shares) -> (Shares, Shares) {
    const TOP: u64 = 1 << 63;
    let clear_top = |c: &[u64]| c.iter().map(|&x| x & !TOP).collect();
    let g = g.map(clear_top);
    let mut p = p.map(clear_top);
    // XOR the public bit into component 0 only (P0's own, P2's next).
    match me {
        PartyId::P0 => p.own.iter_mut().for_each(|x| *x |= TOP),
        PartyId::P2 => p.next.iter_mut().for_each(|x| *x |= TOP),
        PartyId::P1 => {}
    }
    (g, p)
}

impl MultiRound for Msb {
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
        let Msb { stage, n, mask, .. } = *self;
        let (_, _, main) = stage.words();
        let mask = mask.step(ctx, &mut from_next, &mut from_prev, main, round)?;
        match stage {
            Stage::Split(split) => {
                let (and, p, _) = split.generate(ctx, from_next, from_prev, round)?;
                Ok(Step::More(Msb::assemble(
                    Stage::Generate { and, p },
                    n,
                    mask,
                )))
            }
            Stage::Generate { and, p } => {
                let g = and.finish(from_next, from_prev, round)?;
                let p63 = Shares {
                    own: pack_top_bits(&p.own),
                    next: pack_top_bits(&p.next),
                };
                let (g, p) = force_top_lane(ctx.id, &g, &p);
                Ok(Step::More(level(ctx, n, 64, &g, &p, p63, mask)?))
            }
            Stage::Level { w, and, g_hi, p63 } => {
                // res = [P_hi ∧ G_lo | P_hi ∧ P_lo], each packed at w lanes.
                let res = and.finish(from_next, from_prev, round)?;
                let half = g_hi.len();
                let g = xor(&g_hi, &res.slice(0, half));
                let p = res.slice(half, res.len());
                Ok(Step::More(level(ctx, n, w, &g, &p, p63, mask)?))
            }
            Stage::Open { v, lin, slot } => {
                let check = OpenCheck::Gate { lin, slot };
                mask.record_open(ctx, check, (&v, &from_next, &from_prev), round)?;
                // Bit j of c = msb_j ⊕ r_j; a blended result repeats bit e mod n.
                let bit = |c: &[u64], e: usize| {
                    let j = e % n;
                    (c[j / 64] >> (j % 64)) & 1 == 1
                };
                let out = mask.finish(ctx.id, &v, &from_next, &from_prev, bit)?;
                Ok(Step::Done(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_halving_and_bit_packing() {
        assert_eq!(compress_even(0b1011_0101), 0b0111);
        assert_eq!(compress_even(u64::MAX), u64::from(u32::MAX));
        // Two words of 2-lane elements (lanes 0b10 and 0b01 alternating).
        let v = [0x9999_9999_9999_9999u64, 0x6666_6666_6666_6666];
        let (even, odd) = (half_lanes(&v, false), half_lanes(&v, true));
        for (k, (e, o)) in (0..64)
            .map(|k| ((even[0] >> k) & 1, (odd[0] >> k) & 1))
            .enumerate()
        {
            let word = v[k / 32];
            let j = (k % 32) as u32;
            assert_eq!((e, o), ((word >> (2 * j)) & 1, (word >> (2 * j + 1)) & 1));
        }
        let words: Vec<u64> = (0..77u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let top = pack_top_bits(&words);
        assert_eq!(top.len(), 2);
        assert_eq!(
            unpack_bits(&top, 77),
            words.iter().map(|w| w >> 63).collect::<Vec<_>>()
        );
    }
}
