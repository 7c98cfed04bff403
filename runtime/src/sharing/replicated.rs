//! Replicated 2-of-3 secret sharing over Z_2^64.
//!
//! Construction: Araki, Furukawa, Lindell, Nof, Ohara, CCS 2016 (eprint 2016/768, §2.1), as in
//! ABY3 (Mohassel & Rindal, CCS 2018, §2.2). A secret x is split as x = x_0 + x_1 + x_2
//! (mod 2^64) and P_i holds the pair (x_i, x_{i+1}) ([`Shares`] `{ own, next }`):
//!
//! | party | `own` | `next` | missing |
//! |-------|-------|--------|---------|
//! | P0    | x_0   | x_1    | x_2     |
//! | P1    | x_1   | x_2    | x_0     |
//! | P2    | x_2   | x_0    | x_1     |
//!
//! Every component is held by two parties, so any two parties reconstruct, and [`reconstruct`]
//! from all three checks both copies of each component and blames the party whose two
//! components disagree with its neighbours.
//!
//! Security: [`share3`] draws x_0, x_1 uniformly and sets x_2 = x − x_0 − x_1, so any two
//! components are independent and uniform. A single party sees exactly two components and thus
//! learns nothing about x (perfect privacy against one semi-honest party); it learns the length.
//!
//! Local operations (no communication) are the methods of [`Shares`], and nowhere else:
//! [`Shares::add`], [`Shares::sub`], [`Shares::neg`], [`Shares::add_public`],
//! [`Shares::mul_public`], [`Shares::scale`], [`Shares::one_minus`] (and their `_assign`
//! forms), [`Shares::from_public`], [`Shares::zeros`], and the data movements
//! ([`Shares::slice`], [`Shares::gather`], [`Shares::concat`], [`Shares::repeat`],
//! [`Shares::broadcast`], [`Shares::map`]). Each applies componentwise; public constants are
//! added to x_0 only.

use crate::kernels;
use std::borrow::Cow;
use std::fmt;
use veil_circuits::PartyId;

/// One party's replicated shares of a vector: P_i holds (x_i, x_{i+1}), x = x_0 + x_1 + x_2.
/// `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Shares {
    /// x_i.
    pub own: Vec<u64>,
    /// x_{i+1}.
    pub next: Vec<u64>,
}

impl fmt::Debug for Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shares")
            .field("len", &self.own.len())
            .finish_non_exhaustive()
    }
}

/// Reconstruction failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconstructError {
    /// A party's shares do not have the expected number of elements.
    #[error("{party} sent shares of {got} elements, expected {expected}")]
    Length {
        /// The party at fault.
        party: PartyId,
        /// Element count agreed by the others.
        expected: usize,
        /// Element count of that party's `own` or `next` (whichever differs).
        got: usize,
    },
    /// Two copies of a component disagree. `party` is the one party whose both components are
    /// inconsistent, when a single party explains every mismatch; `None` when ambiguous.
    #[error("replicated shares are inconsistent at element {element} (blamed: {party:?})")]
    Inconsistent {
        /// The party at fault, if it can be identified.
        party: Option<PartyId>,
        /// First element index where some component disagrees.
        element: usize,
    },
}

/// Split `values` into three parties' replicated shares (client side).
///
/// x_0, x_1 are uniform from `rng`, x_2 = v − x_0 − x_1; entry `i` of the result is P_i's shares.
pub fn share3<R: rand::CryptoRng + rand::RngCore>(values: &[u64], rng: &mut R) -> [Shares; 3] {
    let n = values.len();
    let mut x0 = vec![0u64; n];
    let mut x1 = vec![0u64; n];
    fill_u64(rng, &mut x0);
    fill_u64(rng, &mut x1);
    let x2: Vec<u64> = values
        .iter()
        .zip(x0.iter().zip(&x1))
        .map(|(v, (a, b))| v.wrapping_sub(*a).wrapping_sub(*b))
        .collect();
    [
        Shares {
            own: x0.clone(),
            next: x1.clone(),
        },
        Shares {
            own: x1,
            next: x2.clone(),
        },
        Shares { own: x2, next: x0 },
    ]
}

/// Uniform words from `rng` (8 LE bytes each).
pub(crate) fn fill_u64<R: rand::RngCore + ?Sized>(rng: &mut R, out: &mut [u64]) {
    let mut buf = [0u8; 512];
    for chunk in out.chunks_mut(buf.len() / 8) {
        let bytes = &mut buf[..chunk.len() * 8];
        rng.fill_bytes(bytes);
        for (w, b) in chunk.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
    }
}

/// Reconstruct from all three parties' shares, checking both copies of every component.
///
/// Component j is P_j's `own` and P_{j−1}'s `next`. If they differ anywhere, the error names the
/// first such element and blames P_k when exactly components k and k+1 disagree (P_k tampered
/// with both of its components); with one or three inconsistent components no single party is
/// identifiable and `party` is `None`.
pub fn reconstruct(shares: &[Shares; 3]) -> Result<Vec<u64>, ReconstructError> {
    // Expected length: the median of the three `own` lengths (what two honest parties agree on).
    let mut lens = shares.each_ref().map(|s| s.own.len());
    lens.sort_unstable();
    let expected = lens[1];
    for (s, party) in shares.iter().zip(PartyId::ALL) {
        for got in [s.own.len(), s.next.len()] {
            if got != expected {
                return Err(ReconstructError::Length {
                    party,
                    expected,
                    got,
                });
            }
        }
    }

    // Component j: P_j.own vs P_{j-1}.next.
    let first_mismatch = |j: usize| {
        let a = &shares[j].own;
        let b = &shares[(j + 2) % 3].next;
        a.iter().zip(b).position(|(x, y)| x != y)
    };
    let bad = [first_mismatch(0), first_mismatch(1), first_mismatch(2)];
    if let Some(element) = bad.iter().flatten().min().copied() {
        let inconsistent = bad.map(|m| m.is_some());
        // P_k holds components k and k+1: blame it when exactly those two disagree.
        let party = PartyId::ALL.into_iter().find(|k| {
            let i = k.index();
            inconsistent[i] && inconsistent[(i + 1) % 3] && !inconsistent[(i + 2) % 3]
        });
        return Err(ReconstructError::Inconsistent { party, element });
    }

    Ok(shares[0]
        .own
        .iter()
        .zip(&shares[1].own)
        .zip(&shares[2].own)
        .map(|((a, b), c)| a.wrapping_add(*b).wrapping_add(*c))
        .collect())
}

/// Panics unless `a` and `b` have the same length (shapes are validated upstream).
fn assert_same_len(op: &'static str, a: usize, b: usize) {
    assert_eq!(a, b, "{op}: operands have {a} and {b} elements");
}

/// The component that holds x_0 at `party` (P0's `own`, P2's `next`; P1 holds neither).
fn x0_component(party: PartyId, s: &mut Shares) -> Option<&mut Vec<u64>> {
    match party {
        PartyId::P0 => Some(&mut s.own),
        PartyId::P1 => None,
        PartyId::P2 => Some(&mut s.next),
    }
}

/// The local share arithmetic of veil: every op on replicated shares that needs no
/// communication lives here (the engine and the protocols call it; the kernels do the words).
impl Shares {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.own.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.own.is_empty()
    }

    /// `self` followed by `other` (local; both components).
    pub fn concat(&self, other: &Shares) -> Shares {
        let mut out = self.clone();
        out.own.extend_from_slice(&other.own);
        out.next.extend_from_slice(&other.next);
        out
    }

    /// Elements `start..end` (local; both components).
    pub fn slice(&self, start: usize, end: usize) -> Shares {
        Shares {
            own: self.own[start..end].to_vec(),
            next: self.next[start..end].to_vec(),
        }
    }

    /// Elements `idx`, in that order (local; both components).
    pub fn gather(&self, idx: impl Iterator<Item = usize> + Clone) -> Shares {
        Shares {
            own: idx.clone().map(|i| self.own[i]).collect(),
            next: idx.map(|i| self.next[i]).collect(),
        }
    }

    /// `self` repeated until it is `len` long (`len` a multiple of its length).
    pub fn repeat(&self, len: usize) -> Shares {
        let mut out = self.clone();
        while out.len() < len {
            out = out.concat(self);
        }
        out
    }

    /// A one-element sharing repeated to `n` elements (scalar broadcast); any other sharing is
    /// borrowed as it is.
    pub fn broadcast(&self, n: usize) -> Cow<'_, Shares> {
        if self.len() == 1 && n != 1 {
            Cow::Owned(Shares {
                own: vec![self.own[0]; n],
                next: vec![self.next[0]; n],
            })
        } else {
            Cow::Borrowed(self)
        }
    }

    /// `f` applied to each component alike: a data movement (slice, transpose, patches) or a
    /// map that is linear in the components (sums, products with public words).
    pub fn map(&self, f: impl Fn(&[u64]) -> Vec<u64>) -> Shares {
        Shares {
            own: f(&self.own),
            next: f(&self.next),
        }
    }

    /// Shares of a public value held by `party` (x_0 = c, x_1 = x_2 = 0):
    /// P0 gets (c, 0), P1 gets (0, 0), P2 gets (0, c).
    pub fn from_public(party: PartyId, values: &[u64]) -> Shares {
        let mut out = Shares::zeros(values.len());
        if let Some(t) = x0_component(party, &mut out) {
            t.copy_from_slice(values);
        }
        out
    }

    /// Shares of `n` zeros (all components zero; same for every party).
    pub fn zeros(n: usize) -> Shares {
        Shares {
            own: vec![0; n],
            next: vec![0; n],
        }
    }

    /// [x] += [y]. Panics if lengths differ (shapes are validated upstream).
    pub fn add_assign(&mut self, other: &Shares) {
        assert_same_len("add", self.len(), other.len());
        kernels::ring_add_assign(&mut self.own, &other.own);
        kernels::ring_add_assign(&mut self.next, &other.next);
    }

    /// [x] −= [y]. Panics if lengths differ.
    pub fn sub_assign(&mut self, other: &Shares) {
        assert_same_len("sub", self.len(), other.len());
        kernels::ring_sub_assign(&mut self.own, &other.own);
        kernels::ring_sub_assign(&mut self.next, &other.next);
    }

    /// [x] ← [−x]: both components negated.
    pub fn neg_assign(&mut self) {
        kernels::ring_neg_assign(&mut self.own);
        kernels::ring_neg_assign(&mut self.next);
    }

    /// [x] += c for public `c`, as computed by `party`: c is added to component x_0 only
    /// (P0's `own`, P2's `next`). Panics if lengths differ.
    pub fn add_public_assign(&mut self, party: PartyId, c: &[u64]) {
        assert_same_len("add_public", self.len(), c.len());
        if let Some(t) = x0_component(party, self) {
            kernels::ring_add_assign(t, c);
        }
    }

    /// [x] ·= c for public `c`, elementwise on both components. Panics if lengths differ.
    pub fn mul_public_assign(&mut self, c: &[u64]) {
        assert_same_len("mul_public", self.len(), c.len());
        kernels::ring_mul_assign(&mut self.own, c);
        kernels::ring_mul_assign(&mut self.next, c);
    }

    /// [x + y]: componentwise sum. Panics if lengths differ (shapes are validated upstream).
    pub fn add(&self, other: &Shares) -> Shares {
        let mut out = self.clone();
        out.add_assign(other);
        out
    }

    /// [x − y]: componentwise difference. Panics if lengths differ.
    pub fn sub(&self, other: &Shares) -> Shares {
        let mut out = self.clone();
        out.sub_assign(other);
        out
    }

    /// [−x]: both components negated.
    pub fn neg(&self) -> Shares {
        let mut out = self.clone();
        out.neg_assign();
        out
    }

    /// [x + c] for public `c`, as computed by `party` (see [`Shares::add_public_assign`]).
    pub fn add_public(&self, party: PartyId, c: &[u64]) -> Shares {
        let mut out = self.clone();
        out.add_public_assign(party, c);
        out
    }

    /// [1 − x] as computed by `party` (e.g. `ge = 1 − lt` for shares of 0/1 values).
    pub fn one_minus(&self, party: PartyId) -> Shares {
        self.neg().add_public(party, &vec![1u64; self.len()])
    }

    /// [x · c] for public `c`, elementwise on both components. Panics if lengths differ.
    pub fn mul_public(&self, c: &[u64]) -> Shares {
        let mut out = self.clone();
        out.mul_public_assign(c);
        out
    }

    /// [c · x] for a public scalar `c`.
    pub fn scale(&self, c: u64) -> Shares {
        let mut out = self.clone();
        kernels::ring_scale_assign(&mut out.own, c);
        kernels::ring_scale_assign(&mut out.next, c);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ring_vec_with_edges, test_rng};

    const SIZES: [usize; 6] = [0, 1, 63, 64, 65, 1000];

    fn per_party(s: &[Shares; 3], f: impl Fn(PartyId, &Shares) -> Shares) -> [Shares; 3] {
        [
            f(PartyId::P0, &s[0]),
            f(PartyId::P1, &s[1]),
            f(PartyId::P2, &s[2]),
        ]
    }

    fn plain(a: &[u64], b: &[u64], f: impl Fn(u64, u64) -> u64) -> Vec<u64> {
        a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()
    }

    #[test]
    fn share_reconstruct_round_trip() {
        let mut rng = test_rng();
        for n in SIZES {
            let x = ring_vec_with_edges(&mut rng, n);
            let s = share3(&x, &mut rng);
            for (i, p) in s.iter().enumerate() {
                assert_eq!((p.own.len(), p.next.len()), (n, n));
                assert_eq!(p.next, s[(i + 1) % 3].own, "P{i}.next is x_{{i+1}}");
            }
            assert_eq!(reconstruct(&s).unwrap(), x, "n = {n}");
        }
    }

    #[test]
    fn tampering_is_detected_and_blamed() {
        let mut rng = test_rng();
        let x = ring_vec_with_edges(&mut rng, 100);
        let s = share3(&x, &mut rng);
        for k in PartyId::ALL {
            // P_k shifts both of its components (at different elements).
            let mut t = s.clone();
            t[k.index()].own[17] ^= 1;
            t[k.index()].next[40] = t[k.index()].next[40].wrapping_add(5);
            assert_eq!(
                reconstruct(&t),
                Err(ReconstructError::Inconsistent {
                    party: Some(k),
                    element: 17
                })
            );
            // One tampered component is detected but cannot be attributed.
            let mut t = s.clone();
            t[k.index()].next[99] = t[k.index()].next[99].wrapping_sub(1);
            assert_eq!(
                reconstruct(&t),
                Err(ReconstructError::Inconsistent {
                    party: None,
                    element: 99
                })
            );
        }
    }

    #[test]
    fn length_mismatch_is_rejected() {
        let mut rng = test_rng();
        let s = share3(&ring_vec_with_edges(&mut rng, 10), &mut rng);
        for k in PartyId::ALL {
            let mut t = s.clone();
            t[k.index()].own.pop();
            assert_eq!(
                reconstruct(&t),
                Err(ReconstructError::Length {
                    party: k,
                    expected: 10,
                    got: 9
                })
            );
            let mut t = s.clone();
            t[k.index()].next.push(0);
            assert_eq!(
                reconstruct(&t),
                Err(ReconstructError::Length {
                    party: k,
                    expected: 10,
                    got: 11
                })
            );
        }
        let err = ReconstructError::Length {
            party: PartyId::P1,
            expected: 10,
            got: 9,
        };
        assert_eq!(err.to_string(), "P1 sent shares of 9 elements, expected 10");
    }

    #[test]
    fn local_ops_match_plaintext() {
        let mut rng = test_rng();
        for n in SIZES {
            let x = ring_vec_with_edges(&mut rng, n);
            let y: Vec<u64> = ring_vec_with_edges(&mut rng, n).into_iter().rev().collect();
            let c = ring_vec_with_edges(&mut rng, n);
            let k = 0xdead_beef_0123_4567u64;
            let (xs, ys) = (share3(&x, &mut rng), share3(&y, &mut rng));
            let open = |s: [Shares; 3]| reconstruct(&s).unwrap();

            assert_eq!(
                open(per_party(&xs, |p, s| s.add(&ys[p.index()]))),
                plain(&x, &y, u64::wrapping_add)
            );
            assert_eq!(
                open(per_party(&xs, |p, s| s.sub(&ys[p.index()]))),
                plain(&x, &y, u64::wrapping_sub)
            );
            assert_eq!(
                open(per_party(&xs, |_, s| s.neg())),
                plain(&x, &x, |a, _| a.wrapping_neg())
            );
            assert_eq!(
                open(per_party(&xs, |p, s| s.add_public(p, &c))),
                plain(&x, &c, u64::wrapping_add)
            );
            assert_eq!(
                open(per_party(&xs, |_, s| s.mul_public(&c))),
                plain(&x, &c, u64::wrapping_mul)
            );
            assert_eq!(
                open(per_party(&xs, |_, s| s.scale(k))),
                plain(&x, &x, |a, _| a.wrapping_mul(k))
            );
            assert_eq!(open(per_party(&xs, |p, _| Shares::from_public(p, &c))), c);
            assert_eq!(open(per_party(&xs, |_, _| Shares::zeros(n))), vec![0; n]);
            // Secret + public-as-shares equals add_public.
            let cs = per_party(&xs, |p, _| Shares::from_public(p, &c));
            assert_eq!(
                per_party(&xs, |p, s| s.add(&cs[p.index()])),
                per_party(&xs, |p, s| s.add_public(p, &c))
            );
        }
    }

    #[test]
    #[should_panic(expected = "add: operands have 3 and 2 elements")]
    fn add_rejects_length_mismatch() {
        let _ = Shares::zeros(3).add(&Shares::zeros(2));
    }

    #[test]
    fn debug_is_redacted() {
        let mut rng = test_rng();
        let s = share3(&[1, 2, 3, 4, 5], &mut rng);
        assert_eq!(format!("{:?}", s[1]), "Shares { len: 5, .. }");
    }

    /// Wilson–Hilferty normal approximation of a chi-square statistic with `df` degrees of freedom.
    fn chi2_z(chi2: f64, df: f64) -> f64 {
        let v = 2.0 / (9.0 * df);
        ((chi2 / df).cbrt() - (1.0 - v)) / v.sqrt()
    }

    /// Bit frequencies within 5σ of 1/2 and top-byte chi-square with |z| < 4.75 (two-sided p ≈ 2e-6).
    fn assert_uniform(words: &[u64], what: &str) {
        let n = words.len() as f64;
        let sigma = (n * 0.25).sqrt();
        for bit in 0..64 {
            let ones = words.iter().filter(|w| (*w >> bit) & 1 == 1).count() as f64;
            assert!(
                (ones - n / 2.0).abs() < 5.0 * sigma,
                "{what}: bit {bit} set {ones} of {n} times"
            );
        }
        let mut buckets = [0u64; 256];
        for w in words {
            buckets[(w >> 56) as usize] += 1;
        }
        let expected = n / 256.0;
        let chi2: f64 = buckets
            .iter()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum();
        let z = chi2_z(chi2, 255.0);
        assert!(
            z.abs() < 4.75,
            "{what}: top-byte chi-square {chi2:.1} (z = {z:.2}) over 255 df"
        );
    }

    #[test]
    fn single_party_view_is_uniform() {
        let mut rng = test_rng();
        let n = 20_000;
        let nonzero: Vec<u64> = (0..n as u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
            .collect();
        for (name, secret) in [
            ("zeros", vec![0u64; n]),
            ("fixed nonzero", nonzero),
            ("all ones", vec![u64::MAX; n]),
        ] {
            let first = share3(&secret, &mut rng);
            let second = share3(&secret, &mut rng);
            for p in PartyId::ALL {
                let view = &first[p.index()];
                assert_uniform(&view.own, &format!("{name}: {p} own"));
                assert_uniform(&view.next, &format!("{name}: {p} next"));
                // The pair jointly: own − next is also uniform (no linear relation to the secret).
                let diff: Vec<u64> = view
                    .own
                    .iter()
                    .zip(&view.next)
                    .map(|(a, b)| a.wrapping_sub(*b))
                    .collect();
                assert_uniform(&diff, &format!("{name}: {p} own − next"));
                // A fresh sharing of the same secret gives an unrelated view.
                let again = &second[p.index()];
                let same = view
                    .own
                    .iter()
                    .zip(&again.own)
                    .filter(|(a, b)| a == b)
                    .count()
                    + view
                        .next
                        .iter()
                        .zip(&again.next)
                        .filter(|(a, b)| a == b)
                        .count();
                assert_eq!(same, 0, "{name}: {p} view repeats across sharings");
            }
        }
    }
}
