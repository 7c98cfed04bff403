//! Distributed zero-knowledge proof that every product word a party sent was computed
//! correctly: one batched proof per prover per session, over GR(2^64, 47) ([`super::galois`]).
//!
//! Construction: the fully linear proof of an inner-product relation distributed between two
//! verifiers, Boyle, Gilboa, Ishai, Nof, "Practical fully secure three-party computation via
//! sublinear distributed zero-knowledge proofs", CCS 2019 (eprint 2019/1390), §4 with the
//! recursive halving of §4.3, lifted to rings as in Boyle, Gilboa, Ishai, Nof, "Efficient fully
//! secure computation via distributed zero-knowledge proofs", ASIACRYPT 2020 (eprint
//! 2020/1451): challenges from the exceptional set of a Galois-ring extension.
//!
//! **The statement.** In a product round P_j sends P_{j−1} the word
//! z_j = x_j·y_j + x_j·y_{j+1} + x_{j+1}·y_j + F_{j,j+1} − F_{j−1,j} (mul.rs; for a dot product or
//! matrix product, sums of such terms). Its verifiers are A = P_{j−1}, which knows x_j, y_j, z_j
//! and F_{j−1,j}, and B = P_{j+1}, which knows x_{j+1}, y_{j+1} and F_{j,j+1}. The word is correct
//! iff the cross terms x_j·y_{j+1} + x_{j+1}·y_j equal c_A + c_B with
//! c_A = z_j + F_{j−1,j} − x_j·y_j (known to A) and c_B = −F_{j,j+1} (known to B).
//!
//! **Batching.** Each output word w gets a coefficient r_w from the exceptional set (a matrix
//! product gets r = α_a·β_b, a tensor, so its k-term sums batch to one k-term inner product);
//! all relations of the session become one: ⟨u, v⟩ = t_A + t_B, where u (at A and the prover)
//! holds r_w·x_j and r_w·y_j terms, v (at B and the prover) the matching y_{j+1}, x_{j+1} terms,
//! and t_A, t_B are the batched c_A, c_B. If some word is wrong by e ≠ 0, the batched relation
//! fails except with probability ≤ 2^−47 for a Dot word (a single coefficient times e: the
//! set of bad r_w is a coset of the annihilator of e, which has at most one exceptional point)
//! and ≤ 2·2^−47 for a matrix product (degree 2 in α, β).
//!
//! **Recursion.** With u = (u1, u2), v = (v1, v2): the prover sends the cross terms
//! C_L = ⟨u1, v2⟩ and C_R = ⟨u2, v1⟩ secret-shared between A and B (A's share from the PRF
//! key A shares with the prover, B's share in the message); the verifiers draw a challenge ρ
//! from their own key (unknown to the prover, revealed after its message) and fold
//! u' = u1 + ρ·u2, v' = ρ·v1 + v2, t' = ρ·t + C_L + ρ²·C_R, which preserves
//! ⟨u', v'⟩ = ρ⟨u1,v1⟩ + C_L + ρ²C_R + ρ⟨u2,v2⟩. A false claim stays false except when ρ is a
//! root of a non-zero polynomial of degree ≤ 2: probability ≤ 2·2^−47 per level. After
//! log2(N) levels A and B exchange u″, v″ and their claim shares and check u″·v″ = t_A + t_B.
//!
//! **Zero knowledge.** σ_A (from the prover–A key) is added to u[0] and σ_B (from the prover–B
//! key) to v[N−1]; since index 0 is always in the first half and index N−1 in the second, the
//! folds keep coefficient 1 on both, so u″ = σ_A + … and v″ = σ_B + … are uniform to the
//! verifier that receives them. The masks add δ = σ_A·v[0] + u[N−1]·σ_B to ⟨u, v⟩; the prover
//! shares δ like the cross terms (A's share from the PRF, B's in the first message). B's shares of C_L, C_R are masked by A's PRF
//! shares; the claim shares it receives are determined by what it already knows when the
//! prover is honest. Both verifiers send the prover the same challenges and the prover checks
//! they agree, so a corrupt verifier cannot make an honest prover prove a different statement.
//!
//! **Soundness** of one prover's proof of a session with N ≤ 2^L entries (L ≤ 40 under the
//! limits on a session): ≤ 2·2^−47 (batching) + L·2·2^−47 ≤ 82·2^−47 < 2^−40. A wrong δ is
//! just another wrong claim.

use super::galois::{Acc, D, EXCEPTIONAL_MASK, Gr};
use super::tape::{Form, Product, Tape};
use crate::error::EngineError;
use crate::prf::{Domain, Prf, PrfKey};
use crate::sharing::Shares;
use rayon::prelude::*;

/// PRF domains of the verification streams (under keys derived for it, so they never meet the
/// protocols' streams).
pub(crate) mod domain {
    use crate::prf::Domain;

    const fn d(op: u64) -> Domain {
        Domain { op, worker: 0 }
    }
    /// The batching seed (verifiers' key).
    pub(crate) const SEED: Domain = d(0);
    /// σ_A, σ_B (prover–verifier keys).
    pub(crate) const MASK: Domain = d(1);
    /// A's share of the masks' contribution δ (prover–A key).
    pub(crate) const DELTA: Domain = d(2);
    /// A's shares of level ℓ's cross terms (prover–A key).
    pub(crate) const fn share(level: u32) -> Domain {
        d(16 + level as u64)
    }
    /// The challenge of level ℓ (verifiers' key).
    pub(crate) const fn challenge(level: u32) -> Domain {
        d(4096 + level as u64)
    }
}

/// One entry of a proof vector before the first fold: most are a base-ring word or an
/// exceptional coefficient times one, which need 1 word, not 47.
#[derive(Clone)]
pub(crate) enum Entry {
    /// x ∈ Z_2^64.
    Base(u64),
    /// exc(bits)·x.
    Scaled { bits: u64, x: u64 },
    /// Any element.
    Dense(Box<Gr>),
}

impl Entry {
    fn gr(&self) -> Gr {
        match self {
            Entry::Base(x) => Gr::base(*x),
            Entry::Scaled { bits, x } => Gr::exceptional_times(*bits, *x),
            Entry::Dense(g) => **g,
        }
    }

    /// ρ·self for an exceptional challenge ρ (its bits): additions and popcounts, no dense
    /// multiplication.
    fn times(&self, rho: u64) -> Gr {
        match self {
            Entry::Base(x) => Gr::exceptional_times(rho, *x),
            Entry::Scaled { bits, x } => Gr::exceptional_product(*bits, rho, *x),
            Entry::Dense(g) => g.mul_exceptional(rho),
        }
    }
}

/// Add a·b to `acc`, fast where one side is a base word.
fn add_entry_product(acc: &mut Acc, a: &Entry, b: &Entry) {
    match (a, b) {
        (Entry::Base(x), Entry::Base(y)) => acc.add(&Gr::base(x.wrapping_mul(*y))),
        (Entry::Scaled { bits, x }, Entry::Base(y))
        | (Entry::Base(y), Entry::Scaled { bits, x }) => {
            acc.add_exceptional(*bits, x.wrapping_mul(*y))
        }
        (Entry::Dense(g), Entry::Base(y)) | (Entry::Base(y), Entry::Dense(g)) => {
            acc.add_scaled(g, *y)
        }
        (a, b) => acc.add_product(&a.gr(), &b.gr()),
    }
}

/// A proof vector: entries before the first fold, the entries and the first challenge after
/// it, elements after the second.
pub(crate) enum Vector {
    /// Level 0.
    Entries(Vec<Entry>),
    /// After the first fold, kept symbolic: element k is e[k] + ρ·e[k+H] (`left`) or
    /// ρ·e[k] + e[k+H], H = e.len()/2. Level 1's cross terms are then sums of entry products
    /// (1 word each, not 47) and the vector is never stored at its largest dense size.
    Folded { e: Vec<Entry>, rho: u64, left: bool },
    /// After the second fold.
    Dense(Vec<Gr>),
}

impl Vector {
    fn len(&self) -> usize {
        match self {
            Vector::Entries(e) => e.len(),
            Vector::Folded { e, .. } => e.len() / 2,
            Vector::Dense(g) => g.len(),
        }
    }
}

/// Entries per rayon task in the proof's loops.
const CHUNK: usize = 1 << 12;

/// log2 of the block a verifier folds on its own in [`Vector::fold_all`] (2^10 entries: the
/// block's first fold is 512 elements, 188 KiB).
const BLOCK_LEVELS: usize = 10;

/// Whether a loop over `n` items goes to rayon: handing work to the pool from a session's
/// thread costs a wake-up (tens of µs on a loaded machine), more than a loop this short, and a
/// proof runs ~2·log2(N) such loops per party.
fn parallel(n: usize) -> bool {
    n >= 2 * CHUNK
}

/// (C_L, C_R) = (⟨u1, v2⟩, ⟨u2, v1⟩) for the halves of u and v (rayon over chunks when long;
/// each chunk sums unreduced, one reduction at the end).
pub(crate) fn cross_terms(u: &Vector, v: &Vector) -> (Gr, Gr) {
    let h = u.len() / 2;
    let chunk = |c: usize| {
        let (mut l, mut r) = (Acc::default(), Acc::default());
        let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(h));
        match (u, v) {
            // The hot case: one kernel call per chunk.
            (Vector::Dense(u), Vector::Dense(v)) => {
                l.add_products(&u[lo..hi], &v[h + lo..h + hi]);
                r.add_products(&u[h + lo..h + hi], &v[lo..hi]);
            }
            (Vector::Entries(u), Vector::Entries(v)) => {
                for k in lo..hi {
                    add_entry_product(&mut l, &u[k], &v[h + k]);
                    add_entry_product(&mut r, &u[h + k], &v[k]);
                }
            }
            // Level 1: with U, V the entries and H = 2h, u_k = U_k + ρU_{k+H} and
            // v_k = ρV_k + V_{k+H}, so each cross term is a polynomial in ρ of degree 2
            // whose coefficients are sums of entry products.
            (
                Vector::Folded {
                    e: uu,
                    rho,
                    left: true,
                },
                Vector::Folded {
                    e: vv,
                    rho: rv,
                    left: false,
                },
            ) if rho == rv => {
                let hh = 2 * h;
                let (mut l1, mut l2, mut r1, mut r2) = (
                    Acc::default(),
                    Acc::default(),
                    Acc::default(),
                    Acc::default(),
                );
                for k in lo..hi {
                    // C_L: Σ (U_k + ρU_{k+H})(ρV_{k+h} + V_{k+h+H}).
                    add_entry_product(&mut l, &uu[k], &vv[k + h + hh]);
                    add_entry_product(&mut l1, &uu[k], &vv[k + h]);
                    add_entry_product(&mut l1, &uu[k + hh], &vv[k + h + hh]);
                    add_entry_product(&mut l2, &uu[k + hh], &vv[k + h]);
                    // C_R: Σ (U_{k+h} + ρU_{k+h+H})(ρV_k + V_{k+H}).
                    add_entry_product(&mut r, &uu[k + h], &vv[k + hh]);
                    add_entry_product(&mut r1, &uu[k + h], &vv[k]);
                    add_entry_product(&mut r1, &uu[k + h + hh], &vv[k + hh]);
                    add_entry_product(&mut r2, &uu[k + h + hh], &vv[k]);
                }
                let poly = |c0: &Acc, c1: Acc, c2: Acc| {
                    let c12 = c1.reduce() + c2.reduce().mul_exceptional(*rho);
                    let mut c = c0.clone();
                    c.add(&c12.mul_exceptional(*rho));
                    c
                };
                (l, r) = (poly(&l, l1, l2), poly(&r, r1, r2));
            }
            // Both sides fold together, so they are always of the same kind; a mixed pair
            // would still be computed correctly.
            _ => {
                for k in lo..hi {
                    l.add_product(&u.at(k), &v.at(h + k));
                    r.add_product(&u.at(h + k), &v.at(k));
                }
            }
        }
        (l, r)
    };
    let merge = |(mut l, mut r): (Acc, Acc), (l2, r2): (Acc, Acc)| {
        l.merge(&l2);
        r.merge(&r2);
        (l, r)
    };
    let zero = || (Acc::default(), Acc::default());
    let chunks = 0..h.div_ceil(CHUNK);
    let (l, r) = if parallel(h) {
        chunks.into_par_iter().map(chunk).reduce(zero, merge)
    } else {
        chunks.map(chunk).fold(zero(), merge)
    };
    (l.reduce(), r.reduce())
}

impl Vector {
    #[cfg(test)]
    fn dense(&self) -> Vec<Gr> {
        match self {
            Vector::Dense(g) => g.clone(),
            v => (0..v.len()).map(|k| v.at(k)).collect(),
        }
    }

    /// u' = u1 + ρ·u2 (the prover's and A's side), ρ exceptional (given by its bits).
    pub(crate) fn fold_left(self, rho: u64) -> Vector {
        self.fold(rho, true)
    }

    /// v' = ρ·v1 + v2 (the prover's and B's side).
    pub(crate) fn fold_right(self, rho: u64) -> Vector {
        self.fold(rho, false)
    }

    /// Halve with challenge `rho`: entries become [`Vector::Folded`] (no work), a folded
    /// vector is evaluated two levels at once into elements, elements fold in place (rayon
    /// over chunks).
    fn fold(self, rho: u64, left: bool) -> Vector {
        let h = self.len() / 2;
        let combine = |a: &mut Gr, b: &Gr| {
            *a = if left {
                *a + b.mul_exceptional(rho)
            } else {
                a.mul_exceptional(rho) + *b
            }
        };
        match self {
            Vector::Entries(e) => Vector::Folded { e, rho, left },
            Vector::Dense(mut g) => {
                let (lo, hi) = g.split_at_mut(h);
                if parallel(h) {
                    lo.par_iter_mut()
                        .with_min_len(CHUNK)
                        .zip(hi.par_iter())
                        .for_each(|(a, b)| combine(a, b));
                } else {
                    lo.iter_mut()
                        .zip(hi.iter())
                        .for_each(|(a, b)| combine(a, b));
                }
                g.truncate(h);
                Vector::Dense(g)
            }
            folded => {
                let element = |k: usize| {
                    let mut a = folded.at(k);
                    combine(&mut a, &folded.at(h + k));
                    a
                };
                Vector::Dense(if parallel(h) {
                    (0..h)
                        .into_par_iter()
                        .with_min_len(CHUNK)
                        .map(element)
                        .collect()
                } else {
                    (0..h).map(element).collect()
                })
            }
        }
    }

    /// The single element left after folding with every challenge of `rhos` in turn (level 0
    /// first), `left` for [`Vector::fold_left`], else [`Vector::fold_right`] — without
    /// materialising the folded vectors: a verifier needs only this last element, so it waits
    /// for all challenges and evaluates blockwise.
    ///
    /// Level ℓ pairs the entries whose indices differ in bit L−1−ℓ, so the last `K` levels act
    /// within aligned blocks of 2^K consecutive entries: each block is folded on its own
    /// (cache-resident), and the blocks' values are folded with the first L−K challenges. The
    /// fold is multilinear in the entries, so this equals folding level by level.
    pub(crate) fn fold_all(self, rhos: &[u64], left: bool) -> Gr {
        let fold = |v: Vector, rhos: &[u64]| rhos.iter().fold(v, |v, &rho| v.fold(rho, left));
        let levels = rhos.len();
        debug_assert_eq!(self.len(), 1 << levels);
        let k = levels.min(BLOCK_LEVELS);
        let (top, inner) = rhos.split_at(levels - k);
        let block = |b: &[Entry]| fold(Vector::Entries(b.to_vec()), inner).last();
        let blocks = match self {
            Vector::Entries(e) if parallel(e.len()) => e.par_chunks(1 << k).map(block).collect(),
            Vector::Entries(e) => e.chunks(1 << k).map(block).collect(),
            dense => return fold(dense, rhos).last(),
        };
        fold(Vector::Dense(blocks), top).last()
    }

    /// Element `k`.
    fn at(&self, k: usize) -> Gr {
        match self {
            Vector::Entries(e) => e[k].gr(),
            Vector::Folded { e, rho, left } => {
                let h = e.len() / 2;
                if *left {
                    e[k].gr() + e[h + k].times(*rho)
                } else {
                    e[k].times(*rho) + e[h + k].gr()
                }
            }
            Vector::Dense(g) => g[k],
        }
    }

    /// The single element left after the last fold.
    pub(crate) fn last(&self) -> Gr {
        self.at(0)
    }
}

/// t' = ρ·t + C_L + ρ²·C_R on a claim share.
pub(crate) fn fold_claim(t: &Gr, rho: &Gr, (cl, cr): (Gr, Gr)) -> Gr {
    let rho2 = rho.mul(rho);
    rho.mul(t) + cl + rho2.mul(&cr)
}

/// Length of the proof vectors of `tape`: every product's entries, rounded up to a power of two
/// (≥ 2: every product has at least two).
pub(crate) fn proof_len(tape: &Tape) -> usize {
    let body: usize = tape.products.iter().map(|p| p.form.proof_len()).sum();
    body.max(2).next_power_of_two()
}

/// The batching coefficients of each product, from the seed the two verifiers agree on.
pub(crate) struct Batch {
    prf: Prf,
}

impl Batch {
    /// Coefficients from a 128-bit seed (two words).
    pub(crate) fn new(seed: [u64; 2]) -> Self {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&seed[0].to_le_bytes());
        key[8..].copy_from_slice(&seed[1].to_le_bytes());
        Batch {
            prf: Prf::new(&PrfKey::from_bytes(key)),
        }
    }

    /// The `count` GF(2^64) coefficients of AND batch `q` ([`super::and_dzkp`]).
    pub(crate) fn and_coefficients(&self, q: usize, count: usize) -> Vec<u64> {
        let mut c = vec![0u64; count];
        self.prf.fill(
            Domain {
                op: q as u64,
                worker: 1,
            },
            &mut c,
        );
        c
    }

    /// The `count` exceptional coefficients of product `q` (their bits).
    fn coefficients(&self, q: usize, count: usize) -> Vec<u64> {
        let mut c = vec![0u64; count];
        self.prf.fill(
            Domain {
                op: q as u64,
                worker: 0,
            },
            &mut c,
        );
        c.iter_mut().for_each(|w| *w &= EXCEPTIONAL_MASK);
        c
    }
}

/// Σ_k exc(bits_k)·x_k: coefficient t is the sum of the x_k whose bit t is set.
fn exceptional_sum(bits: &[u64], xs: &[u64]) -> Gr {
    let n = bits.len().min(xs.len());
    let mut acc = Acc::default();
    acc.add_exceptional_sums(&bits[..n], &xs[..n]);
    acc.reduce()
}

/// For an m×k matrix X: (α^T X)_c for each column c.
fn left_batch(alpha: &[u64], x: &[u64], k: usize) -> Vec<Gr> {
    (0..k)
        .map(|c| {
            let column: Vec<u64> = (0..alpha.len()).map(|a| x[a * k + c]).collect();
            exceptional_sum(alpha, &column)
        })
        .collect()
}

/// For a k×n matrix Y: (Y β)_c for each row c.
fn right_batch(beta: &[u64], y: &[u64], n: usize) -> Vec<Gr> {
    y.chunks(n.max(1))
        .map(|row| exceptional_sum(beta, row))
        .collect()
}

/// α^T M β for an m×n matrix M.
fn bilinear(alpha: &[u64], m: &[u64], beta: &[u64]) -> Gr {
    let mb = right_batch(beta, m, beta.len());
    let mut acc = Acc::default();
    for (&al, row) in alpha.iter().zip(&mb) {
        acc.add_product(&Gr::exceptional(al), row);
    }
    acc.reduce()
}

/// The side of a product's operands a role builds from: `own` = the prover's own components
/// (x_j, y_j), `next` = its next ones (x_{j+1}, y_{j+1}).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Own,
    Next,
}

fn comps(s: &Shares, side: Side) -> &[u64] {
    match side {
        Side::Own => &s.own,
        Side::Next => &s.next,
    }
}

/// Append a product's u entries (prover's own-side components `side` of this party's shares).
fn push_u(out: &mut Vec<Entry>, p: &Product, side: Side, batch: &Batch, q: usize) {
    let (x, y) = (comps(&p.x, side), comps(&p.y, side));
    match p.form {
        Form::Dot { rows, cols } => {
            let r = batch.coefficients(q, rows);
            for part in [x, y] {
                for (w, row) in part.chunks(cols.max(1)).enumerate() {
                    out.extend(row.iter().map(|&x| Entry::Scaled { bits: r[w], x }));
                }
            }
        }
        Form::MatMul { m, k, n } => {
            let c = batch.coefficients(q, m + n);
            let (alpha, beta) = c.split_at(m);
            let ax = left_batch(alpha, x, k);
            let yb = right_batch(beta, y, n);
            out.extend(ax.into_iter().chain(yb).map(|g| Entry::Dense(Box::new(g))));
        }
    }
}

/// Append a product's v entries (the prover's next-side components).
fn push_v(out: &mut Vec<Entry>, p: &Product, side: Side, batch: &Batch, q: usize) {
    let (x, y) = (comps(&p.x, side), comps(&p.y, side));
    match p.form {
        Form::Dot { .. } => {
            out.extend(y.iter().map(|&w| Entry::Base(w)));
            out.extend(x.iter().map(|&w| Entry::Base(w)));
        }
        Form::MatMul { m, k, n } => {
            let c = batch.coefficients(q, m + n);
            let (alpha, beta) = c.split_at(m);
            let yb = right_batch(beta, y, n);
            let ax = left_batch(alpha, x, k);
            out.extend(yb.into_iter().chain(ax).map(|g| Entry::Dense(Box::new(g))));
        }
    }
}

/// A product's finished result, or an engine error when the round never ended.
fn result(p: &Product, q: usize) -> Result<&Shares, EngineError> {
    p.out.get().ok_or_else(|| EngineError::Plan {
        what: format!("product {q} was recorded for verification but never finished"),
    })
}

/// Pad a proof vector with zeros to `n` entries.
fn padded(mut body: Vec<Entry>, n: usize) -> Vec<Entry> {
    body.resize(n, Entry::Base(0));
    body
}

/// `e + σ` as an entry.
fn masked(e: &Entry, sigma: &Gr) -> Entry {
    Entry::Dense(Box::new(e.gr() + *sigma))
}

fn mask(prf: &Prf) -> Gr {
    let mut w = [0u64; D];
    prf.fill(domain::MASK, &mut w);
    Gr::from_words(&w)
}

/// A's share of the masks' contribution δ (the prover sends B the rest).
pub(crate) fn delta_share(prover_a: &Prf) -> Gr {
    let mut w = [0u64; D];
    prover_a.fill(domain::DELTA, &mut w);
    Gr::from_words(&w)
}

/// The prover's (u, v) and the masks' contribution δ = σ_A·v[0] + u[N−1]·σ_B to ⟨u, v⟩ (it
/// sends B δ minus A's share); `to_a` / `to_b` are its PRFs shared with A (= P_{i−1}) and B.
pub(crate) fn prover_vectors(
    tape: &Tape,
    batch: &Batch,
    to_a: &Prf,
    to_b: &Prf,
) -> (Vector, Vector, Gr) {
    let n = proof_len(tape);
    let (mut u, mut v) = (Vec::new(), Vec::new());
    for (q, p) in tape.products.iter().enumerate() {
        push_u(&mut u, p, Side::Own, batch, q);
        push_v(&mut v, p, Side::Next, batch, q);
    }
    let (mut u, mut v) = (padded(u, n), padded(v, n));
    let (sa, sb) = (mask(to_a), mask(to_b));
    let delta = sa.mul(&v[0].gr()) + u[n - 1].gr().mul(&sb);
    u[0] = masked(&u[0], &sa);
    v[n - 1] = masked(&v[n - 1], &sb);
    (Vector::Entries(u), Vector::Entries(v), delta)
}

/// Verifier A's (u, t_A) for prover P_{i+1}: A holds the prover's own components as its `next`
/// ones. `to_prover` is the PRF A shares with the prover (mask); `stream` gives
/// F_{j−1,j} = A's protocol stream with the prover for a product's domain.
pub(crate) fn verifier_a(
    tape: &Tape,
    batch: &Batch,
    to_prover: &Prf,
    stream: impl Fn(Domain, usize) -> Vec<u64>,
) -> Result<(Vector, Gr), EngineError> {
    let n = proof_len(tape);
    let mut u = Vec::new();
    let mut t = Acc::default();
    for (q, p) in tape.products.iter().enumerate() {
        let start = u.len();
        push_u(&mut u, p, Side::Next, batch, q);
        let z = &result(p, q)?.next;
        let f = stream(p.domain, p.form.outputs());
        let (x, y) = (&p.x.next, &p.y.next);
        match p.form {
            Form::Dot { rows, cols } => {
                let r = batch.coefficients(q, rows);
                for w in 0..rows {
                    let xy = (0..cols).fold(0u64, |s, c| {
                        s.wrapping_add(x[w * cols + c].wrapping_mul(y[w * cols + c]))
                    });
                    let c_a = p.lift(z[w].wrapping_add(f[w])).wrapping_sub(xy);
                    t.add_exceptional(r[w], c_a);
                }
            }
            Form::MatMul { m, k, n: cols } => {
                let c = batch.coefficients(q, m + cols);
                let (alpha, beta) = c.split_at(m);
                let zf: Vec<u64> = z
                    .iter()
                    .zip(&f)
                    .map(|(a, b)| p.lift(a.wrapping_add(*b)))
                    .collect();
                t.add(&bilinear(alpha, &zf, beta));
                // α^T X and Y β, as `push_u` just appended them (batching them again would
                // double A's work on a wide matrix).
                let (ax, yb) = u[start..].split_at(k);
                let mut xy = Acc::default();
                for (a, b) in ax.iter().zip(yb) {
                    xy.add_product(&a.gr(), &b.gr());
                }
                t.add(&(Gr::ZERO - xy.reduce()));
            }
        }
    }
    let mut u = padded(u, n);
    u[0] = masked(&u[0], &mask(to_prover));
    t.add(&delta_share(to_prover));
    Ok((Vector::Entries(u), t.reduce()))
}

/// Verifier B's (v, t_B) for prover P_{i−1}: B holds the prover's next components as its own.
/// `to_prover` is the PRF B shares with the prover (mask); `stream` gives F_{j,j+1} = B's
/// protocol stream with the prover. B adds the prover's δ message to t_B.
pub(crate) fn verifier_b(
    tape: &Tape,
    batch: &Batch,
    to_prover: &Prf,
    stream: impl Fn(Domain, usize) -> Vec<u64>,
) -> (Vector, Gr) {
    let n = proof_len(tape);
    let mut v = Vec::new();
    let mut t = Acc::default();
    for (q, p) in tape.products.iter().enumerate() {
        push_v(&mut v, p, Side::Own, batch, q);
        let f = stream(p.domain, p.form.outputs());
        match p.form {
            Form::Dot { rows, .. } => {
                let r = batch.coefficients(q, rows);
                for w in 0..rows {
                    t.add_exceptional(r[w], p.lift(f[w].wrapping_neg()));
                }
            }
            Form::MatMul { m, n: cols, .. } => {
                let c = batch.coefficients(q, m + cols);
                let (alpha, beta) = c.split_at(m);
                let neg: Vec<u64> = f.iter().map(|w| p.lift(w.wrapping_neg())).collect();
                t.add(&bilinear(alpha, &neg, beta));
            }
        }
    }
    let mut v = padded(v, n);
    v[n - 1] = masked(&v[n - 1], &mask(to_prover));
    (Vector::Entries(v), t.reduce())
}

/// A's shares of level `level`'s cross terms (the prover sends B the rest).
pub(crate) fn a_shares(to_prover_or_a: &Prf, level: u32) -> (Gr, Gr) {
    let mut w = [0u64; 2 * D];
    to_prover_or_a.fill(domain::share(level), &mut w);
    (Gr::from_words(&w[..D]), Gr::from_words(&w[D..]))
}

/// The challenge of level `level` (the two verifiers derive the same one).
pub(crate) fn challenge(verifiers: &Prf, level: u32) -> u64 {
    let mut w = [0u64; 1];
    verifiers.fill(domain::challenge(level), &mut w);
    w[0] & EXCEPTIONAL_MASK
}

/// The batching seed (the two verifiers derive the same one).
pub(crate) fn seed(verifiers: &Prf) -> [u64; 2] {
    let mut w = [0u64; 2];
    verifiers.fill(domain::SEED, &mut w);
    w
}

#[cfg(test)]
mod tests {
    //! The proof on its own, all three roles in one thread: an honest prover's claim checks, and
    //! a claim off by any error (high bits included) does not.

    use super::*;
    use crate::testing::test_rng;
    use rand::Rng;

    /// Run the recursion on (u, v) with claim shares (ta, tb); true iff the final check holds.
    fn prove(mut u: Vector, mut v: Vector, mut ta: Gr, mut tb: Gr, rng: &mut impl Rng) -> bool {
        while u.len() > 1 {
            let (cl, cr) = cross_terms(&u, &v);
            let share_a = (Gr::random(rng), Gr::base(rng.random()));
            let share_b = (cl - share_a.0, cr - share_a.1);
            let bits = rng.random::<u64>() & EXCEPTIONAL_MASK;
            let rho = Gr::exceptional(bits);
            ta = fold_claim(&ta, &rho, share_a);
            tb = fold_claim(&tb, &rho, share_b);
            u = u.fold_left(bits);
            v = v.fold_right(bits);
        }
        u.last().mul(&v.last()) == ta + tb
    }

    fn random_vectors(rng: &mut impl Rng, n: usize) -> (Vector, Vector, Gr) {
        let u: Vec<Entry> = (0..n)
            .map(|k| match k % 3 {
                0 => Entry::Scaled {
                    bits: rng.random::<u64>() & EXCEPTIONAL_MASK,
                    x: rng.random(),
                },
                1 => Entry::Base(rng.random()),
                _ => Entry::Dense(Box::new(Gr::random(rng))),
            })
            .collect();
        let v: Vec<Entry> = (0..n).map(|_| Entry::Base(rng.random())).collect();
        let mut acc = Acc::default();
        for (a, b) in u.iter().zip(&v) {
            add_entry_product(&mut acc, a, b);
        }
        (Vector::Entries(u), Vector::Entries(v), acc.reduce())
    }

    #[test]
    fn honest_claims_verify() {
        let mut rng = test_rng();
        for n in [1, 2, 4, 64] {
            let (u, v, t) = random_vectors(&mut rng, n);
            let ta = Gr::random(&mut rng);
            assert!(prove(u, v, ta, t - ta, &mut rng), "n = {n}");
        }
    }

    #[test]
    fn false_claims_fail() {
        let mut rng = test_rng();
        for (n, e) in [
            (2, 1u64),
            (64, 1 << 63),
            (16, rng.random::<u64>() | 1),
            (8, 3 << 62),
        ] {
            let (u, v, t) = random_vectors(&mut rng, n);
            assert!(!prove(u, v, Gr::ZERO, t + Gr::base(e), &mut rng), "n = {n}");
        }
    }

    #[test]
    fn blockwise_folds_equal_level_by_level_folds() {
        let mut rng = test_rng();
        for levels in [0usize, 1, 5, 12] {
            let (u, v, _) = random_vectors(&mut rng, 1 << levels);
            let rhos: Vec<u64> = (0..levels)
                .map(|_| rng.random::<u64>() & EXCEPTIONAL_MASK)
                .collect();
            let (u2, v2) = (Vector::Dense(u.dense()), Vector::Dense(v.dense()));
            let stepwise = |mut x: Vector, left: bool| {
                for &r in &rhos {
                    x = if left {
                        x.fold_left(r)
                    } else {
                        x.fold_right(r)
                    };
                }
                x.last()
            };
            assert_eq!(u.fold_all(&rhos, true), stepwise(u2, true), "{levels}");
            assert_eq!(v.fold_all(&rhos, false), stepwise(v2, false), "{levels}");
        }
    }

    #[test]
    fn fold_preserves_the_inner_product_relation() {
        // Through every representation: entries, the symbolic first fold, elements.
        let mut rng = test_rng();
        let (mut u, mut v, mut t) = random_vectors(&mut rng, 16);
        while u.len() > 1 {
            let (cl, cr) = cross_terms(&u, &v);
            let dense = (Vector::Dense(u.dense()), Vector::Dense(v.dense()));
            assert_eq!(
                (cl, cr),
                cross_terms(&dense.0, &dense.1),
                "at length {}",
                u.len()
            );
            let bits = rng.random::<u64>() & EXCEPTIONAL_MASK;
            t = fold_claim(&t, &Gr::exceptional(bits), (cl, cr));
            (u, v) = (u.fold_left(bits), v.fold_right(bits));
            assert_eq!(super::super::galois::inner(&u.dense(), &v.dense()), t);
        }
    }
}
