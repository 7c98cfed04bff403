//! The Galois ring GR(2^64, 47) = Z_2^64[X] / (f), f = X^47 + X^5 + 1: the extension of the
//! share ring Z_2^64 in which the malicious mode's proofs draw their challenges.
//!
//! Why an extension: over Z_2^64 a random challenge does not catch an error of 2^63 (half the
//! challenges kill it), and only two points have a unit difference, so polynomial checks are
//! unsound. GR(2^64, d) contains Z_2^64, its quotient mod 2 is the field GF(2^d) (f is
//! irreducible over GF(2); tested), and its *exceptional set* — the 2^d elements whose
//! coefficients are all 0 or 1 — has pairwise differences that are units. Hence (Abspoel,
//! Cramer, Damgård, Escudero, Yuan, TCC 2019, "Efficient information-theoretic secure
//! multiparty computation over Z/p^kZ via Galois rings", Lemma 2 style; Boyle, Gilboa, Ishai,
//! Nof, CRYPTO 2020 §2): a non-zero polynomial of degree D over GR(2^64, d) vanishes at no more
//! than D points of the exceptional set. Proof: write it as 2^t·g with g ≠ 0 mod 2; a root a
//! is a root of g mod 2 in GF(2^d), and distinct exceptional points stay distinct mod 2.
//!
//! Elements are 47 coefficients in Z_2^64 (376 bytes). Products are schoolbook with one
//! reduction by X^47 ≡ −X^5 − 1; [`Acc`] sums many products before reducing once.

use std::ops::{Add, AddAssign, Sub};

/// Degree of the extension.
pub const D: usize = 47;
/// The middle term of the modulus X^47 + X^5 + 1.
const F_MID: usize = 5;
/// Coefficient mask of an exceptional element drawn from one random word.
pub const EXCEPTIONAL_MASK: u64 = (1 << D) - 1;

/// An element of GR(2^64, 47): Σ c_t X^t, t < 47.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Gr(pub [u64; D]);

impl std::fmt::Debug for Gr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Proof values can be secret-dependent: never print them.
        f.write_str("Gr(..)")
    }
}

impl Default for Gr {
    fn default() -> Self {
        Gr::ZERO
    }
}

impl Gr {
    /// 0.
    pub const ZERO: Gr = Gr([0; D]);

    /// The embedding of x ∈ Z_2^64.
    pub fn base(x: u64) -> Gr {
        let mut c = [0u64; D];
        c[0] = x;
        Gr(c)
    }

    /// The exceptional element whose coefficient t is bit t of `bits` (bits ≥ 47 ignored).
    pub fn exceptional(bits: u64) -> Gr {
        let mut c = [0u64; D];
        for (t, c) in c.iter_mut().enumerate() {
            *c = (bits >> t) & 1;
        }
        Gr(c)
    }

    /// An element from 47 words (e.g. a PRF stream): uniform when the words are.
    pub fn from_words(w: &[u64]) -> Gr {
        let mut c = [0u64; D];
        c.copy_from_slice(&w[..D]);
        Gr(c)
    }

    /// This element times x ∈ Z_2^64.
    pub fn scale(&self, x: u64) -> Gr {
        let mut c = self.0;
        c.iter_mut().for_each(|c| *c = c.wrapping_mul(x));
        Gr(c)
    }

    /// Product in GR(2^64, 47).
    pub fn mul(&self, o: &Gr) -> Gr {
        let mut acc = Acc::default();
        acc.add_product(self, o);
        acc.reduce()
    }

    /// This element times the exceptional element `bits`: a sum of shifted copies (additions
    /// only, no multiplications; the SIMD kernel [`crate::kernels::gr_shifts_add`]), then one
    /// reduction.
    pub fn mul_exceptional(&self, bits: u64) -> Gr {
        let mut acc = Acc::default();
        crate::kernels::gr_shifts_add(&mut acc.0, self, bits);
        acc.reduce()
    }

    /// exc(a)·exc(b)·x: the product of two exceptional elements has small integer coefficients
    /// (coefficient m counts the pairs t + s = m), then times x ∈ Z_2^64.
    pub fn exceptional_product(a: u64, b: u64, x: u64) -> Gr {
        let (a, b) = (a & EXCEPTIONAL_MASK, b & EXCEPTIONAL_MASK);
        let mut acc = Acc::default();
        // Coefficient m = #{t : bit t of a and bit m − t of b}: a AND the bit-reversed b,
        // shifted; reversed over 47 bits so that bit (46 − s) of rb is bit s of b.
        let rb = b.reverse_bits() >> (64 - D);
        for (m, c) in acc.0.iter_mut().enumerate() {
            // Pairs (t, m − t) with 0 ≤ t, m − t < 47.
            let shifted = if m < D - 1 {
                rb >> (D - 1 - m)
            } else {
                rb << (m - (D - 1))
            };
            *c = u64::from((a & shifted & EXCEPTIONAL_MASK).count_ones());
        }
        acc.reduce().scale(x)
    }

    /// x·e for x ∈ Z_2^64 and an exceptional e given by its bits: the coefficients of e are
    /// 0 or 1, so this is x at the set bits.
    pub fn exceptional_times(bits: u64, x: u64) -> Gr {
        let mut c = [0u64; D];
        for (t, c) in c.iter_mut().enumerate() {
            *c = x & ((bits >> t) & 1).wrapping_neg();
        }
        Gr(c)
    }
}

impl Add for Gr {
    type Output = Gr;
    fn add(mut self, o: Gr) -> Gr {
        self += o;
        self
    }
}

impl AddAssign for Gr {
    fn add_assign(&mut self, o: Gr) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.wrapping_add(b);
        }
    }
}

impl Sub for Gr {
    type Output = Gr;
    fn sub(mut self, o: Gr) -> Gr {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.wrapping_sub(b);
        }
        self
    }
}

#[cfg(test)]
impl Gr {
    /// A uniformly random element (tests).
    pub(crate) fn random(rng: &mut impl rand::Rng) -> Gr {
        let mut c = [0u64; D];
        c.iter_mut().for_each(|c| *c = rng.random());
        Gr(c)
    }
}

/// An unreduced sum of products (degree ≤ 2·46): reduce once after many products.
#[derive(Clone)]
pub struct Acc([u64; 2 * D - 1]);

impl Acc {
    /// Add Σ_k a_k·b_k (the SIMD kernel [`crate::kernels::gr_products_add`]).
    pub fn add_products(&mut self, a: &[Gr], b: &[Gr]) {
        crate::kernels::gr_products_add(&mut self.0, a, b);
    }
}

impl Default for Acc {
    fn default() -> Self {
        Acc([0; 2 * D - 1])
    }
}

impl Acc {
    /// Add a·b.
    pub fn add_product(&mut self, a: &Gr, b: &Gr) {
        self.add_products(std::slice::from_ref(a), std::slice::from_ref(b));
    }

    /// Add a·x for x ∈ Z_2^64 (no reduction needed).
    pub fn add_scaled(&mut self, a: &Gr, x: u64) {
        for (r, &ai) in self.0.iter_mut().zip(&a.0) {
            *r = r.wrapping_add(ai.wrapping_mul(x));
        }
    }

    /// Add exc(bits)·x: x at the coefficients whose bit is set.
    pub fn add_exceptional(&mut self, bits: u64, x: u64) {
        self.add_exceptional_sums(&[bits], &[x]);
    }

    /// Add Σ_k exc(bits_k)·x_k (the SIMD kernel [`crate::kernels::gr_exceptional_sums_add`]).
    pub fn add_exceptional_sums(&mut self, bits: &[u64], xs: &[u64]) {
        crate::kernels::gr_exceptional_sums_add(&mut self.0, bits, xs);
    }

    /// Add an element.
    pub fn add(&mut self, a: &Gr) {
        for (r, &ai) in self.0.iter_mut().zip(&a.0) {
            *r = r.wrapping_add(ai);
        }
    }

    /// Merge another accumulator.
    pub fn merge(&mut self, o: &Acc) {
        for (r, &x) in self.0.iter_mut().zip(&o.0) {
            *r = r.wrapping_add(x);
        }
    }

    /// The sum mod f: X^k = X^(k−47)·X^47 ≡ −X^(k−42) − X^(k−47), highest degree first so
    /// the terms folded onto degrees ≥ 47 are folded again.
    pub fn reduce(mut self) -> Gr {
        for k in (D..2 * D - 1).rev() {
            let c = self.0[k];
            self.0[k - D] = self.0[k - D].wrapping_sub(c);
            self.0[k - D + F_MID] = self.0[k - D + F_MID].wrapping_sub(c);
        }
        let mut out = [0u64; D];
        out.copy_from_slice(&self.0[..D]);
        Gr(out)
    }
}

/// Σ a_k·b_k over GR(2^64, 47), reduced once.
pub fn inner(a: &[Gr], b: &[Gr]) -> Gr {
    let mut acc = Acc::default();
    for (x, y) in a.iter().zip(b) {
        acc.add_product(x, y);
    }
    acc.reduce()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;
    use rand::Rng;

    fn random(rng: &mut impl Rng) -> Gr {
        Gr::random(rng)
    }

    /// x·y mod (f, 2) for polynomials over GF(2) packed in a u64 (degree < 47).
    fn gf2_mulmod(a: u64, b: u64) -> u64 {
        let mut r: u128 = 0;
        for i in 0..D {
            if (a >> i) & 1 == 1 {
                r ^= u128::from(b) << i;
            }
        }
        for k in (D..2 * D - 1).rev() {
            if (r >> k) & 1 == 1 {
                r ^= (1u128 << k) | (1u128 << (k - D + F_MID)) | (1u128 << (k - D));
            }
        }
        r as u64
    }

    /// Rabin's test for prime degree 47: X^(2^47) ≡ X mod f, and f has no root in GF(2)
    /// (the only proper subfield of GF(2^47)), so f is irreducible over GF(2).
    #[test]
    fn modulus_is_irreducible_mod_2() {
        let x = 0b10u64;
        let mut p = x;
        for _ in 0..D {
            p = gf2_mulmod(p, p);
        }
        assert_eq!(p, x, "X^(2^47) mod f");
        // f(0) = 1 and f(1) = 1 + 1 + 1 = 1 over GF(2): no linear factor.
        let f_at = |v: u64| (v.pow(47) + v.pow(5) + 1) % 2;
        assert_eq!((f_at(0), f_at(1)), (1, 1));
    }

    #[test]
    fn ring_laws_hold() {
        let mut rng = test_rng();
        for _ in 0..20 {
            let (a, b, c) = (random(&mut rng), random(&mut rng), random(&mut rng));
            assert_eq!(a.mul(&b), b.mul(&a));
            assert_eq!(a.mul(&b).mul(&c), a.mul(&b.mul(&c)));
            assert_eq!(a.mul(&(b + c)), a.mul(&b) + a.mul(&c));
            assert_eq!(a.mul(&Gr::base(1)), a);
            let x: u64 = rng.random();
            assert_eq!(a.scale(x), a.mul(&Gr::base(x)));
            let bits: u64 = rng.random();
            assert_eq!(
                Gr::exceptional_times(bits, x),
                Gr::exceptional(bits).scale(x)
            );
            assert_eq!(a.mul_exceptional(bits), a.mul(&Gr::exceptional(bits)));
            let other: u64 = rng.random();
            assert_eq!(
                Gr::exceptional_product(bits, other, x),
                Gr::exceptional(bits).mul(&Gr::exceptional(other)).scale(x)
            );
        }
    }

    /// X^47 = −X^5 − 1, and the base ring embeds as a subring.
    #[test]
    fn reduction_matches_the_modulus() {
        let mut x46 = Gr::ZERO;
        x46.0[46] = 1;
        let mut x = Gr::ZERO;
        x.0[1] = 1;
        let mut want = Gr::ZERO;
        want.0[0] = u64::MAX;
        want.0[5] = u64::MAX;
        assert_eq!(x46.mul(&x), want);
        assert_eq!(
            Gr::base(u64::MAX).mul(&Gr::base(3)),
            Gr::base(u64::MAX.wrapping_mul(3))
        );
    }

    /// Differences of distinct exceptional elements are units: e·e' = 1 for some e', checked
    /// through the field mod 2 (a unit mod 2 lifts to a unit of GR(2^64, d)).
    #[test]
    fn exceptional_differences_are_units_mod_2() {
        let mut rng = test_rng();
        for _ in 0..20 {
            let (a, b): (u64, u64) = (rng.random(), rng.random());
            let diff = (a ^ b) & EXCEPTIONAL_MASK; // a − b mod 2
            if diff == 0 {
                continue;
            }
            // diff^(2^47 − 2) is its inverse in GF(2^47) when diff ≠ 0.
            let mut inv = 1u64;
            let mut sq = diff;
            let mut e: u64 = (1 << D) - 2;
            while e > 0 {
                if e & 1 == 1 {
                    inv = gf2_mulmod(inv, sq);
                }
                sq = gf2_mulmod(sq, sq);
                e >>= 1;
            }
            assert_eq!(gf2_mulmod(diff, inv), 1);
        }
    }

    #[test]
    fn inner_product_reduces_once() {
        let mut rng = test_rng();
        let a: Vec<Gr> = (0..9).map(|_| random(&mut rng)).collect();
        let b: Vec<Gr> = (0..9).map(|_| random(&mut rng)).collect();
        let slow = a.iter().zip(&b).fold(Gr::ZERO, |s, (x, y)| s + x.mul(y));
        assert_eq!(inner(&a, &b), slow);
    }
}
