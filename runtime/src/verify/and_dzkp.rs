//! Distributed zero-knowledge proof that every AND word a party sent was computed correctly:
//! one batched proof per prover per session over GF(2^64) ([`crate::kernels::gf64`]), run after
//! the proof of products ([`super::dzkp`]) with the same round structure.
//!
//! Construction: the fully linear proof of an inner-product relation distributed between two
//! verifiers with recursive halving of Boyle, Gilboa, Ishai, Nof, CCS 2019 (eprint 2019/1390)
//! §4 and §4.3 — the construction of [`super::dzkp`] — over the field GF(2^64), in which the
//! boolean relations of 64 bit lanes embed.
//!
//! **The statement.** In an AND round P_j sends P_{j−1} the word
//! z_j = a_j b_j ⊕ a_j b_{j+1} ⊕ a_{j+1} b_j ⊕ F_{j,j+1} ⊕ F_{j−1,j} (lane by lane,
//! [`crate::protocols::boolean`]). Its verifiers are A = P_{j−1}, which knows a_j, b_j, z_j and
//! F_{j−1,j}, and B = P_{j+1}, which knows a_{j+1}, b_{j+1} and F_{j,j+1}. The word is correct
//! iff (a_j ∧ b_{j+1}) ⊕ (a_{j+1} ∧ b_j) = c_A ⊕ c_B with c_A = z_j ⊕ F_{j−1,j} ⊕ (a_j ∧ b_j)
//! and c_B = F_{j,j+1}. A gate that is opened rather than reshared is proven on the lanes it
//! opens (its `keep` mask, which clears the other lanes of a and of the streams).
//!
//! **Batching.** Word w (64 gates) gets a uniform α_w ∈ GF(2^64) and lane l the power X^l, so
//! the words' relations become one: Σ_w α_w·E(e_w) = 0 where E(e) = Σ_l e_l X^l is the word
//! read as a field element — injective, so a wrong word (e_w ≠ 0) makes this a non-zero
//! polynomial of degree 1 in the α, which vanishes with probability 2^−64. As an inner product:
//! ⟨u, v⟩ = t_A + t_B with u = (α_w X^l a_{j,l} ‖ α_w X^l b_{j,l}) at the prover and A,
//! v = (b_{j+1,l} ‖ a_{j+1,l}) at the prover and B, t_A = Σ α_w E(c_A), t_B = Σ α_w E(c_B):
//! N = 2·64·W entries for W words (padded to a power of two), entry l + 64·(w + W·t) of term t.
//!
//! **Recursion, masks, claims** as in [`super::dzkp`], with challenges uniform in the field: a
//! false claim survives a level with probability ≤ 2·2^−64 (a root of a non-zero polynomial of
//! degree ≤ 2, the field has no zero divisors).
//!
//! **Cost.** Levels 0 and 1 are word arithmetic: the prover's level-0 cross terms are
//! Σ_w α_w·E(a_j ∧ a_{j+1}) and Σ_w α_w·E(b_j ∧ b_{j+1}) (one AND and one carry-less product per
//! word), and its level-1 cross terms, which pair word w with word w + W/2 lane by lane, are
//! degree-2 polynomials in the first challenge with three such sums each; the second fold
//! materialises 32 field elements per word and the remaining levels are dense (two products per
//! element and level). The verifiers never fold: the last element of a vector folded with
//! challenges ρ_0 … ρ_{L−1} is Σ_k c_k·u_k, with c_k the product over levels of ρ_ℓ or 1 by the
//! index bit, which factors as term × word × lane; the lane part Σ_l c_l X^l·bit_l(word) is a
//! GF(2)-linear map of the word, evaluated with eight byte tables — O(W) products per verifier.
//!
//! **Soundness** per prover and session, N = 2^L entries: 2^−64 (batching) + L·2·2^−64; under
//! [`MAX_AND_WORDS`] (L ≤ 27) below 2^−57.

use super::dzkp::Batch;
use super::tape::{AndGates, Tape};
use crate::error::EngineError;
use crate::kernels::{gf64_dot, gf64_fold, gf64_mul, gf64_times_x};
use crate::prf::{Domain, Prf};
use rayon::prelude::*;

/// PRF domains of this proof's streams (worker 1; the proof of products uses worker 0 under
/// the same keys, so no challenge, mask or share is shared between the two proofs).
mod domain {
    use crate::prf::Domain;

    const fn d(op: u64) -> Domain {
        Domain { op, worker: 1 }
    }
    pub(super) const MASK: Domain = d(1);
    pub(super) const DELTA: Domain = d(2);
    pub(super) const fn share(level: u32) -> Domain {
        d(16 + level as u64)
    }
    pub(super) const fn challenge(level: u32) -> Domain {
        d(4096 + level as u64)
    }
}

/// Most AND words (64 gates each) one session may prove: after its second fold the prover
/// holds two vectors of 32 field elements per word, so 2^20 words is 512 MiB.
pub const MAX_AND_WORDS: usize = 1 << 20;

/// Entries per rayon task.
const CHUNK: usize = 1 << 14;

/// The proof's word count W for `count` AND words: a power of two ≥ 1.
pub(crate) fn padded_words(count: usize) -> usize {
    count.max(1).next_power_of_two()
}

/// Levels of the proof of `count` AND words: log2(2·64·W).
pub(crate) fn levels(count: usize) -> u32 {
    7 + padded_words(count).trailing_zeros()
}

/// AND words recorded on `tape`.
pub(crate) fn count(tape: &Tape) -> usize {
    tape.ands.iter().map(|g| g.a.len()).sum()
}

/// One side of a proof vector as words: term 0 and term 1, W words each (zero-padded).
pub(crate) struct Terms {
    t0: Vec<u64>,
    t1: Vec<u64>,
}

impl Terms {
    fn gather(tape: &Tape, pick: impl Fn(&AndGates) -> (&[u64], &[u64])) -> Terms {
        let w = padded_words(count(tape));
        let (mut t0, mut t1) = (Vec::with_capacity(w), Vec::with_capacity(w));
        for g in &tape.ands {
            let (x, y) = pick(g);
            t0.extend_from_slice(x);
            t1.extend_from_slice(y);
        }
        t0.resize(w, 0);
        t1.resize(w, 0);
        Terms { t0, t1 }
    }
}

/// The batching coefficients α_w of every word (zero on padding).
fn alphas(tape: &Tape, batch: &Batch) -> Vec<u64> {
    let mut a = Vec::with_capacity(padded_words(count(tape)));
    for (q, g) in tape.ands.iter().enumerate() {
        a.extend(batch.and_coefficients(q, g.a.len()));
    }
    a.resize(padded_words(count(tape)), 0);
    a
}

fn prf_word(prf: &Prf, d: Domain) -> u64 {
    let mut w = [0u64; 1];
    prf.fill(d, &mut w);
    w[0]
}

/// Lane `l` of `word` as the field's 0 or 1.
fn bit(word: u64, l: u32) -> u64 {
    (word >> l) & 1
}

/// X^63·α: the coefficient of lane 63 of word α's entry.
fn top_lane(alpha: u64) -> u64 {
    (0..63).fold(alpha, |x, _| gf64_times_x(x))
}

/// Σ_k a_k·b_k over long slices, on rayon when long.
fn dot(a: &[u64], b: &[u64]) -> u64 {
    if a.len() < 2 * CHUNK {
        return gf64_dot(a, b);
    }
    a.par_chunks(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .map(|(x, y)| gf64_dot(x, y))
        .reduce(|| 0, |x, y| x ^ y)
}

/// The prover's vectors: words before the second fold (symbolic in the first challenge, when
/// there are at least two words), field elements after it.
pub(crate) enum Prover {
    /// Levels 0 and 1: the words, and `rho0` once the first fold is taken.
    Words {
        u: Terms,
        v: Terms,
        alpha: Vec<u64>,
        masks: (u64, u64),
        rho0: Option<u64>,
    },
    /// After the second fold (the first, for a single word).
    Dense { u: Vec<u64>, v: Vec<u64> },
}

/// Σ_w coefficient_w·E(x_w ∧ y_w) for word slices `x`, `y` of equal length.
fn and_sum(coef: &[u64], x: &[u64], y: &[u64]) -> u64 {
    let words: Vec<u64> = x.iter().zip(y).map(|(a, b)| a & b).collect();
    dot(coef, &words)
}

/// Fill `out` (64 elements) with Σ_s c_s·bit_l(word_s), times X^l when `powers`.
fn lanes(out: &mut [u64], words: &[u64], mut coefs: [u64; 4], powers: bool) {
    for (l, e) in out.iter_mut().enumerate() {
        let l = l as u32;
        *e = words
            .iter()
            .zip(&coefs)
            .fold(0, |acc, (&w, &c)| acc ^ (c & bit(w, l).wrapping_neg()));
        if powers {
            for c in &mut coefs {
                *c = gf64_times_x(*c);
            }
        }
    }
}

impl Prover {
    /// The prover's vectors for its AND words and the masks' contribution
    /// δ = σ_A·v[0] + u[N−1]·σ_B to ⟨u, v⟩ (it sends B δ minus A's share); `to_a` / `to_b` are
    /// its PRFs shared with A (= P_{i−1}) and B.
    pub(crate) fn new(tape: &Tape, batch: &Batch, to_a: &Prf, to_b: &Prf) -> (Prover, u64) {
        let u = Terms::gather(tape, |g| (&g.a.own, &g.b.own));
        let v = Terms::gather(tape, |g| (&g.b.next, &g.a.next));
        let alpha = alphas(tape, batch);
        let (sa, sb) = (prf_word(to_a, domain::MASK), prf_word(to_b, domain::MASK));
        let last = alpha.len() - 1;
        let u_last = gf64_mul(top_lane(alpha[last]), bit(u.t1[last], 63));
        let delta = gf64_mul(sa, bit(v.t0[0], 0)) ^ gf64_mul(u_last, sb);
        (
            Prover::Words {
                u,
                v,
                alpha,
                masks: (sa, sb),
                rho0: None,
            },
            delta,
        )
    }

    /// (C_L, C_R) = (⟨u1, v2⟩, ⟨u2, v1⟩) for the current halves.
    pub(crate) fn cross_terms(&self) -> (u64, u64) {
        match self {
            Prover::Words {
                u,
                v,
                alpha,
                masks: (sa, sb),
                rho0: None,
            } => {
                // Halves are the terms: entry (w, l) of term 0 meets entry (w, l) of term 1,
                // so Σ_l α_w X^l·(x ∧ y)_l = α_w·E(x ∧ y). The masks sit on u[0] (met by
                // v[H], lane 0 of term 1's word 0) and v[N−1] (met by u[H−1], lane 63 of
                // term 0's last word).
                let last = alpha.len() - 1;
                let cl = and_sum(alpha, &u.t0, &v.t1)
                    ^ gf64_mul(*sa, bit(v.t1[0], 0))
                    ^ gf64_mul(gf64_mul(top_lane(alpha[last]), bit(u.t0[last], 63)), *sb);
                (cl, and_sum(alpha, &u.t1, &v.t0))
            }
            Prover::Words {
                u,
                v,
                alpha,
                masks: (sa, sb),
                rho0: Some(r),
            } => {
                // Level 1 pairs word w with w' = w + W/2, lane by lane. With A, B the u terms
                // and C, D the v terms, u'(w, l) = α_w X^l (A + ρ0·B)_l and
                // v'(w, l) = (ρ0·C + D)_l, so Σ_l u'(w, l)·v'(w', l) =
                // α_w·(E(A_w ∧ D_w') + ρ0·E((A_w ∧ C_w') ⊕ (B_w ∧ D_w')) + ρ0²·E(B_w ∧ C_w')).
                let h = alpha.len() / 2;
                let (a, b) = (u.t0.split_at(h), u.t1.split_at(h));
                let (c, d) = (v.t0.split_at(h), v.t1.split_at(h));
                let pair = |coef: &[u64], (a, b): (&[u64], &[u64]), (c, d): (&[u64], &[u64])| {
                    let mixed: Vec<u64> = a
                        .iter()
                        .zip(c)
                        .zip(b.iter().zip(d))
                        .map(|((a, c), (b, d))| (a & c) ^ (b & d))
                        .collect();
                    and_sum(coef, a, d)
                        ^ gf64_mul(*r, dot(coef, &mixed))
                        ^ gf64_mul(gf64_mul(*r, *r), and_sum(coef, b, c))
                };
                let (lo, hi) = alpha.split_at(h);
                // Masks: σ_A on u'[0] meets v'(W/2, 0); σ_B on v'[last] meets u'(W/2 − 1, 63).
                let v_first = gf64_mul(*r, bit(c.1[0], 0)) ^ bit(d.1[0], 0);
                let u_last = gf64_mul(
                    top_lane(lo[h - 1]),
                    bit(a.0[h - 1], 63) ^ gf64_mul(*r, bit(b.0[h - 1], 63)),
                );
                let cl = pair(lo, (a.0, b.0), (c.1, d.1))
                    ^ gf64_mul(*sa, v_first)
                    ^ gf64_mul(u_last, *sb);
                let cr = pair(hi, (a.1, b.1), (c.0, d.0));
                (cl, cr)
            }
            Prover::Dense { u, v } => {
                let h = u.len() / 2;
                (dot(&u[..h], &v[h..]), dot(&u[h..], &v[..h]))
            }
        }
    }

    /// Fold with challenge ρ: u' = u1 + ρ·u2, v' = ρ·v1 + v2.
    pub(crate) fn fold(self, rho: u64) -> Prover {
        match self {
            // The first fold stays symbolic while there is a second word to pair with.
            Prover::Words {
                u,
                v,
                alpha,
                masks,
                rho0: None,
            } if alpha.len() >= 2 => Prover::Words {
                u,
                v,
                alpha,
                masks,
                rho0: Some(rho),
            },
            Prover::Words {
                u,
                v,
                alpha,
                masks: (sa, sb),
                rho0,
            } => {
                // Element (w, l), from the words it sums: one fold gives
                // u'(w, l) = α_w X^l (A + ρ·B)_l and v'(w, l) = (ρ·C + D)_l; two give
                // u″(w, l) = u'(w, l) + ρ1·u'(w', l) and v″(w, l) = ρ1·v'(w, l) + v'(w', l).
                let words = match rho0 {
                    None => alpha.len(),
                    Some(_) => alpha.len() / 2,
                };
                let h = alpha.len() / 2;
                let at = |w: usize| match rho0 {
                    None => (
                        [u.t0[w], u.t1[w], 0, 0],
                        [alpha[w], gf64_mul(alpha[w], rho), 0, 0],
                        [v.t0[w], v.t1[w], 0, 0],
                        [rho, 1, 0, 0],
                    ),
                    Some(r0) => {
                        let (aw, ah) = (alpha[w], gf64_mul(rho, alpha[w + h]));
                        (
                            [u.t0[w], u.t1[w], u.t0[w + h], u.t1[w + h]],
                            [aw, gf64_mul(aw, r0), ah, gf64_mul(ah, r0)],
                            [v.t0[w], v.t1[w], v.t0[w + h], v.t1[w + h]],
                            [gf64_mul(rho, r0), rho, r0, 1],
                        )
                    }
                };
                let (mut du, mut dv) = (vec![0u64; 64 * words], vec![0u64; 64 * words]);
                let per = CHUNK / 64;
                du.par_chunks_mut(64)
                    .zip(dv.par_chunks_mut(64))
                    .with_min_len(per)
                    .enumerate()
                    .for_each(|(w, (ou, ov))| {
                        let (uw, uc, vw, vc) = at(w);
                        lanes(ou, &uw, uc, true);
                        lanes(ov, &vw, vc, false);
                    });
                du[0] ^= sa;
                let last = dv.len() - 1;
                dv[last] ^= sb;
                Prover::Dense { u: du, v: dv }
            }
            Prover::Dense { mut u, mut v } => {
                for (x, left) in [(&mut u, true), (&mut v, false)] {
                    let h = x.len() / 2;
                    let (lo, hi) = x.split_at_mut(h);
                    lo.par_chunks_mut(CHUNK)
                        .zip(hi.par_chunks(CHUNK))
                        .for_each(|(a, b)| gf64_fold(a, b, rho, left));
                    x.truncate(h);
                }
                Prover::Dense { u, v }
            }
        }
    }
}

/// c_k for every index of `rhos.len()` bits (the first challenge is the top bit): the product
/// of ρ_ℓ where the bit is 1 (`left`, u' = u1 + ρ·u2) or where it is 0 (v' = ρ·v1 + v2).
fn tensor(rhos: &[u64], left: bool) -> Vec<u64> {
    let mut c = vec![1u64];
    for &rho in rhos {
        c = c
            .iter()
            .flat_map(|&e| {
                let r = gf64_mul(e, rho);
                if left { [e, r] } else { [r, e] }
            })
            .collect();
    }
    c
}

/// word ↦ Σ_l γ_l·bit_l(word), by bytes.
struct LaneMap(Box<[[u64; 256]; 8]>);

impl LaneMap {
    fn new(gamma: &[u64]) -> LaneMap {
        let mut t = Box::new([[0u64; 256]; 8]);
        for (j, table) in t.iter_mut().enumerate() {
            for v in 1..256usize {
                table[v] = table[v & (v - 1)] ^ gamma[8 * j + v.trailing_zeros() as usize];
            }
        }
        LaneMap(t)
    }

    fn apply(&self, w: u64) -> u64 {
        self.0
            .iter()
            .enumerate()
            .fold(0, |acc, (j, t)| acc ^ t[((w >> (8 * j)) & 0xff) as usize])
    }
}

/// The last element of a side folded with every challenge: Σ_t c_t Σ_w c_w·β_w·Λ(word) plus
/// the mask, whose index folds with coefficient 1. `scale` gives β_w (α_w on u, 1 on v) and
/// `x_power` whether lane l carries X^l (u).
fn fold_all(terms: &Terms, alpha: Option<&[u64]>, mask: u64, rhos: &[u64], left: bool) -> u64 {
    let words = terms.t0.len();
    let lw = words.trailing_zeros() as usize;
    let c_t = tensor(&rhos[..1], left);
    let c_w = tensor(&rhos[1..1 + lw], left);
    let c_l = tensor(&rhos[1 + lw..], left);
    let mut xl = 1u64;
    let gamma: Vec<u64> = c_l
        .iter()
        .map(|&c| {
            let g = if alpha.is_some() { gf64_mul(c, xl) } else { c };
            xl = gf64_times_x(xl);
            g
        })
        .collect();
    let map = LaneMap::new(&gamma);
    let beta: Vec<u64> = match alpha {
        Some(a) => c_w.iter().zip(a).map(|(&c, &a)| gf64_mul(c, a)).collect(),
        None => c_w,
    };
    let side = |t: &[u64]| -> u64 {
        let lanes: Vec<u64> = t.iter().map(|&w| map.apply(w)).collect();
        dot(&beta, &lanes)
    };
    gf64_mul(c_t[0], side(&terms.t0)) ^ gf64_mul(c_t[1], side(&terms.t1)) ^ mask
}

/// A gate batch's result words, or an engine error when its round never ended.
fn result(g: &AndGates, q: usize) -> Result<&crate::sharing::Shares, EngineError> {
    g.out.get().ok_or_else(|| EngineError::Plan {
        what: format!("AND batch {q} was recorded for verification but never finished"),
    })
}

/// Verifier A's side for prover P_{i+1} (A holds the prover's own components as its `next`).
pub(crate) struct VerifierA {
    u: Terms,
    alpha: Vec<u64>,
    sa: u64,
}

impl VerifierA {
    /// A's side and claim share t_A. `to_prover` is the PRF A shares with the prover;
    /// `stream` gives F_{j−1,j}, A's protocol stream with the prover.
    pub(crate) fn new(
        tape: &Tape,
        batch: &Batch,
        to_prover: &Prf,
        stream: impl Fn(Domain, usize) -> Vec<u64>,
    ) -> Result<(VerifierA, u64), EngineError> {
        let alpha = alphas(tape, batch);
        let mut c_a = Vec::with_capacity(alpha.len());
        for (q, g) in tape.ands.iter().enumerate() {
            let z = &result(g, q)?.next;
            let f = g.kept(stream(g.domain, g.a.len()));
            c_a.extend(
                z.iter()
                    .zip(&f)
                    .zip(g.a.next.iter().zip(&g.b.next))
                    .map(|((z, f), (a, b))| z ^ f ^ (a & b)),
            );
        }
        c_a.resize(alpha.len(), 0);
        let t = dot(&alpha, &c_a) ^ prf_word(to_prover, domain::DELTA);
        let u = Terms::gather(tape, |g| (&g.a.next, &g.b.next));
        let sa = prf_word(to_prover, domain::MASK);
        Ok((VerifierA { u, alpha, sa }, t))
    }

    /// u″, the last element of u folded with `rhos`.
    pub(crate) fn last(&self, rhos: &[u64]) -> u64 {
        fold_all(&self.u, Some(&self.alpha), self.sa, rhos, true)
    }
}

/// Verifier B's side for prover P_{i−1} (B holds the prover's next components as its own).
pub(crate) struct VerifierB {
    v: Terms,
    sb: u64,
}

impl VerifierB {
    /// B's side and claim share t_B (before the prover's δ message). `stream` gives
    /// F_{j,j+1}, B's protocol stream with the prover.
    pub(crate) fn new(
        tape: &Tape,
        batch: &Batch,
        to_prover: &Prf,
        stream: impl Fn(Domain, usize) -> Vec<u64>,
    ) -> (VerifierB, u64) {
        let alpha = alphas(tape, batch);
        let mut c_b = Vec::with_capacity(alpha.len());
        for g in &tape.ands {
            c_b.extend(g.kept(stream(g.domain, g.a.len())));
        }
        c_b.resize(alpha.len(), 0);
        let t = dot(&alpha, &c_b);
        let v = Terms::gather(tape, |g| (&g.b.own, &g.a.own));
        let sb = prf_word(to_prover, domain::MASK);
        (VerifierB { v, sb }, t)
    }

    /// v″, the last element of v folded with `rhos`.
    pub(crate) fn last(&self, rhos: &[u64]) -> u64 {
        fold_all(&self.v, None, self.sb, rhos, false)
    }
}

/// A's share of the masks' contribution δ.
pub(crate) fn delta_share(prover_a: &Prf) -> u64 {
    prf_word(prover_a, domain::DELTA)
}

/// A's shares of level `level`'s cross terms (the prover sends B the rest).
pub(crate) fn a_shares(prover_a: &Prf, level: u32) -> (u64, u64) {
    let mut w = [0u64; 2];
    prover_a.fill(domain::share(level), &mut w);
    (w[0], w[1])
}

/// The challenge of level `level` (the two verifiers derive the same one).
pub(crate) fn challenge(verifiers: &Prf, level: u32) -> u64 {
    prf_word(verifiers, domain::challenge(level))
}

/// t' = ρ·t + C_L + ρ²·C_R on a claim share.
pub(crate) fn fold_claim(t: u64, rho: u64, (cl, cr): (u64, u64)) -> u64 {
    gf64_mul(rho, t) ^ cl ^ gf64_mul(gf64_mul(rho, rho), cr)
}

#[cfg(test)]
mod tests {
    //! The proof on its own, all three roles in one thread, on recorded AND batches: an honest
    //! prover's claim checks, a wrong word in any lane does not.

    use super::*;
    use crate::prf::PrfKey;
    use crate::sharing::Shares;
    use crate::testing::test_rng;
    use rand::Rng;
    use std::sync::{Arc, OnceLock};

    fn prf(rng: &mut impl Rng) -> Prf {
        Prf::new(&PrfKey::from_bytes(rng.random()))
    }

    /// Three parties' tapes of `batches` random AND batches (lengths in `lens`), honest, and
    /// the pairwise PRFs k_{i,i+1} of the zero-sharings.
    fn tapes(rng: &mut impl Rng, lens: &[usize]) -> ([Tape; 3], [Prf; 3]) {
        let keys: [Prf; 3] = std::array::from_fn(|_| prf(rng));
        let mut tapes: [Tape; 3] = Default::default();
        for (q, &n) in lens.iter().enumerate() {
            let comps = |rng: &mut dyn rand::RngCore| -> [Vec<u64>; 3] {
                std::array::from_fn(|_| (0..n).map(|_| rng.next_u64()).collect())
            };
            let (a, b) = (comps(rng), comps(rng));
            let keep: Option<Vec<u64>> =
                (q % 2 == 1).then(|| (0..n).map(|_| rng.random()).collect());
            let kept = |w: &[u64]| -> Vec<u64> {
                match &keep {
                    Some(k) => w.iter().zip(k).map(|(x, k)| x & k).collect(),
                    None => w.to_vec(),
                }
            };
            let a = a.map(|c| kept(&c));
            let domain = Domain {
                op: q as u64,
                worker: 0,
            };
            let stream = |j: usize| {
                let mut f = vec![0u64; n];
                keys[j].fill(domain, &mut f);
                f
            };
            // z_j = a_j b_j ⊕ a_j b_{j+1} ⊕ a_{j+1} b_j ⊕ F_{j,j+1} ⊕ F_{j−1,j}, kept lanes.
            let z: Vec<Vec<u64>> = (0..3)
                .map(|j| {
                    let (k, p) = ((j + 1) % 3, (j + 2) % 3);
                    let (f1, f0) = (stream(j), stream(p));
                    kept(
                        &(0..n)
                            .map(|w| {
                                (a[j][w] & b[j][w])
                                    ^ (a[j][w] & b[k][w])
                                    ^ (a[k][w] & b[j][w])
                                    ^ f1[w]
                                    ^ f0[w]
                            })
                            .collect::<Vec<u64>>(),
                    )
                })
                .collect();
            for (i, tape) in tapes.iter_mut().enumerate() {
                let k = (i + 1) % 3;
                let pair = |c: &[Vec<u64>; 3]| Shares {
                    own: c[i].clone(),
                    next: c[k].clone(),
                };
                let out = Arc::new(OnceLock::new());
                let _ = out.set(Shares {
                    own: z[i].clone(),
                    next: z[k].clone(),
                });
                tape.ands.push(AndGates {
                    a: pair(&a),
                    b: pair(&b),
                    domain,
                    keep: keep.clone(),
                    shl: 0,
                    out,
                });
            }
        }
        (tapes, keys)
    }

    /// The proof of P0's words with A = P2, B = P1, run in one thread; true iff it verifies.
    fn prove_p0(tapes: &[Tape; 3], keys: &[Prf; 3], rng: &mut impl Rng) -> bool {
        let batch = Batch::new(rng.random());
        let (to_a, to_b) = (prf(rng), prf(rng));
        let (mut p, delta) = Prover::new(&tapes[0], &batch, &to_a, &to_b);
        // A = P2 (its stream with P0 is k_{2,0}); B = P1 (its stream with P0 is k_{0,1}).
        let stream = |j: usize| {
            move |d: Domain, n: usize| {
                let mut f = vec![0u64; n];
                keys[j].fill(d, &mut f);
                f
            }
        };
        let (a, mut ta) = VerifierA::new(&tapes[2], &batch, &to_a, stream(2)).expect("A");
        let (b, mut tb) = VerifierB::new(&tapes[1], &batch, &to_b, stream(0));
        tb ^= delta ^ delta_share(&to_a);
        let levels = levels(count(&tapes[0]));
        let mut rhos = Vec::new();
        for level in 0..levels {
            let (cl, cr) = p.cross_terms();
            let (sl, sr) = a_shares(&to_a, level);
            let rho: u64 = rng.random();
            ta = fold_claim(ta, rho, (sl, sr));
            tb = fold_claim(tb, rho, (cl ^ sl, cr ^ sr));
            rhos.push(rho);
            if level + 1 < levels {
                p = p.fold(rho);
            }
        }
        let (u, v) = (a.last(&rhos), b.last(&rhos));
        if let Prover::Dense { u: pu, v: pv } = p.fold(*rhos.last().expect("levels")) {
            assert_eq!(
                (pu[0], pv[0]),
                (u, v),
                "the verifiers' folds equal the prover's"
            );
        }
        gf64_mul(u, v) == ta ^ tb
    }

    #[test]
    fn honest_and_words_verify_and_any_wrong_lane_fails() {
        let mut rng = test_rng();
        for lens in [vec![1], vec![3, 2], vec![5, 1, 9, 4]] {
            let (tapes, keys) = tapes(&mut rng, &lens);
            assert!(prove_p0(&tapes, &keys, &mut rng), "honest, {lens:?}");
            // One wrong lane in the word A received from P0 (a kept lane of a kept batch).
            for trial in 0..8 {
                let (mut bad, keys) = (tapes_clone(&tapes), &keys);
                let q = trial % lens.len();
                let w = rng.random_range(0..lens[q]);
                let g = &mut bad[2].ands[q];
                let lanes = g.keep.as_ref().map_or(u64::MAX, |k| k[w]);
                if lanes == 0 {
                    continue;
                }
                let mut lane = rng.random_range(0..64);
                while (lanes >> lane) & 1 == 0 {
                    lane = rng.random_range(0..64);
                }
                let mut out = result(g, q).expect("set").clone();
                out.next[w] ^= 1 << lane;
                let slot = Arc::new(OnceLock::new());
                let _ = slot.set(out);
                g.out = slot;
                assert!(!prove_p0(&bad, keys, &mut rng), "lane {lane} of word {w}");
            }
        }
    }

    fn tapes_clone(t: &[Tape; 3]) -> [Tape; 3] {
        std::array::from_fn(|i| Tape {
            ands: t[i]
                .ands
                .iter()
                .map(|g| AndGates {
                    a: g.a.clone(),
                    b: g.b.clone(),
                    domain: g.domain,
                    keep: g.keep.clone(),
                    shl: g.shl,
                    out: {
                        let s = Arc::new(OnceLock::new());
                        let _ = s.set(g.out.get().expect("set").clone());
                        s
                    },
                })
                .collect(),
            ..Default::default()
        })
    }
}
