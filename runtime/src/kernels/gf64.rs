//! Arithmetic in GF(2^64) = GF(2)\[X\]/(X^64 + X^4 + X^3 + X + 1), the field of the malicious
//! mode's proof of AND gates (`crate::verify::and_dzkp`). An element is a u64 whose bit l is
//! the coefficient of X^l; addition is XOR.
//!
//! Products are carry-less multiplications (`pclmulqdq` on x86-64 when the CPU has it, detected
//! once; a shift-and-XOR loop otherwise) followed by one reduction. Sums of products (inner
//! products) XOR the 128-bit products and reduce once at the end.

use std::sync::OnceLock;

/// The low part of the modulus: X^64 ≡ X^4 + X^3 + X + 1.
const LOW: u64 = 0x1b;

/// g(h) = h·(X^4 + X^3 + X + 1) truncated to 64 bits.
#[inline(always)]
fn times_low(h: u64) -> u64 {
    h ^ (h << 1) ^ (h << 3) ^ (h << 4)
}

/// Reduce the 128-bit carry-less product hi·X^64 + lo. hi·X^64 ≡ hi·(X^4 + X^3 + X + 1), whose
/// bits above X^63 are t = (hi ≫ 60) ⊕ (hi ≫ 61) ⊕ (hi ≫ 63) (≤ 4 bits), and t·X^64 reduces
/// without overflow; both parts are linear in their input, so the sum is g(hi ⊕ t).
#[inline(always)]
pub fn reduce(lo: u64, hi: u64) -> u64 {
    let t = (hi >> 60) ^ (hi >> 61) ^ (hi >> 63);
    lo ^ times_low(hi ^ t)
}

/// Carry-less 64×64 → 128-bit product (lo, hi), portable.
#[inline(always)]
fn clmul_soft(a: u64, b: u64) -> (u64, u64) {
    let (mut lo, mut hi) = (0u64, 0u64);
    for i in 0..64 {
        let m = ((b >> i) & 1).wrapping_neg();
        lo ^= (a << i) & m;
        if i > 0 {
            hi ^= (a >> (64 - i)) & m;
        }
    }
    (lo, hi)
}

#[cfg(target_arch = "x86_64")]
mod clmul {
    use core::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_cvtsi64_si128, _mm_cvtsi128_si64, _mm_unpackhi_epi64,
    };

    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn product(a: u64, b: u64) -> (u64, u64) {
        let p = _mm_clmulepi64_si128(_mm_cvtsi64_si128(a as i64), _mm_cvtsi64_si128(b as i64), 0);
        (
            _mm_cvtsi128_si64(p) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(p, p)) as u64,
        )
    }

    #[target_feature(enable = "pclmulqdq")]
    pub(super) fn mul(a: u64, b: u64) -> u64 {
        let (lo, hi) = product(a, b);
        super::reduce(lo, hi)
    }

    #[target_feature(enable = "pclmulqdq")]
    pub(super) fn dot(a: &[u64], b: &[u64]) -> u64 {
        let (mut lo, mut hi) = (0u64, 0u64);
        for (&x, &y) in a.iter().zip(b) {
            let (l, h) = product(x, y);
            lo ^= l;
            hi ^= h;
        }
        super::reduce(lo, hi)
    }

    #[target_feature(enable = "pclmulqdq")]
    pub(super) fn fold(lo: &mut [u64], hi: &[u64], rho: u64, left: bool) {
        for (a, &b) in lo.iter_mut().zip(hi) {
            *a = if left {
                *a ^ mul(rho, b)
            } else {
                mul(rho, *a) ^ b
            };
        }
    }
}

fn has_clmul() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("pclmulqdq")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// a·b (portable path).
fn mul_soft(a: u64, b: u64) -> u64 {
    let (lo, hi) = clmul_soft(a, b);
    reduce(lo, hi)
}

/// a·b in GF(2^64).
pub fn gf64_mul(a: u64, b: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if has_clmul() {
        // SAFETY: the CPU supports pclmulqdq (checked above).
        return unsafe { clmul::mul(a, b) };
    }
    mul_soft(a, b)
}

/// Σ_k a_k·b_k in GF(2^64) (one reduction). Panics if the lengths differ.
pub fn gf64_dot(a: &[u64], b: &[u64]) -> u64 {
    assert_eq!(a.len(), b.len(), "gf64_dot: operands of different lengths");
    #[cfg(target_arch = "x86_64")]
    if has_clmul() {
        // SAFETY: as in `gf64_mul`.
        return unsafe { clmul::dot(a, b) };
    }
    let (mut lo, mut hi) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let (l, h) = clmul_soft(x, y);
        lo ^= l;
        hi ^= h;
    }
    reduce(lo, hi)
}

/// One fold of a proof vector's halves: lo_k ← lo_k + ρ·hi_k (`left`) or ρ·lo_k + hi_k.
/// Panics if the lengths differ.
pub fn gf64_fold(lo: &mut [u64], hi: &[u64], rho: u64, left: bool) {
    assert_eq!(lo.len(), hi.len(), "gf64_fold: halves of different lengths");
    #[cfg(target_arch = "x86_64")]
    if has_clmul() {
        // SAFETY: as in `gf64_mul`.
        return unsafe { clmul::fold(lo, hi, rho, left) };
    }
    for (a, &b) in lo.iter_mut().zip(hi) {
        *a = if left {
            *a ^ mul_soft(rho, b)
        } else {
            mul_soft(rho, *a) ^ b
        };
    }
}

/// x·X in GF(2^64) (a shift and a conditional reduction).
#[inline(always)]
pub fn gf64_times_x(x: u64) -> u64 {
    (x << 1) ^ ((x >> 63).wrapping_neg() & LOW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;
    use rand::Rng;

    /// Schoolbook reference: multiply by X bit by bit.
    fn mul_reference(a: u64, b: u64) -> u64 {
        let (mut acc, mut p) = (0u64, a);
        for i in 0..64 {
            if (b >> i) & 1 == 1 {
                acc ^= p;
            }
            p = gf64_times_x(p);
        }
        acc
    }

    #[test]
    fn products_equal_the_reference_on_every_path() {
        let mut rng = test_rng();
        let edges = [0u64, 1, 2, u64::MAX, 1 << 63, 0x1b, (1 << 63) | 1];
        let mut pairs: Vec<(u64, u64)> = edges
            .iter()
            .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
            .collect();
        pairs.extend((0..500).map(|_| (rng.random(), rng.random())));
        for &(a, b) in &pairs {
            let want = mul_reference(a, b);
            assert_eq!(mul_soft(a, b), want, "{a:#x}·{b:#x}");
            assert_eq!(gf64_mul(a, b), want, "{a:#x}·{b:#x}");
            assert_eq!(gf64_mul(b, a), want);
        }
        let (a, b): (Vec<u64>, Vec<u64>) = pairs.iter().copied().unzip();
        let want = pairs.iter().fold(0, |s, &(x, y)| s ^ mul_reference(x, y));
        assert_eq!(gf64_dot(&a, &b), want);
        let rho = rng.random();
        for left in [true, false] {
            let mut lo = a.clone();
            gf64_fold(&mut lo, &b, rho, left);
            for (k, got) in lo.iter().enumerate() {
                let want = if left {
                    a[k] ^ mul_reference(rho, b[k])
                } else {
                    mul_reference(rho, a[k]) ^ b[k]
                };
                assert_eq!(*got, want);
            }
        }
    }

    /// The modulus is irreducible (Rabin's test for degree 64 = 2^6: X^(2^64) ≡ X mod f and
    /// gcd(X^(2^32) − X, f) = 1), so every non-zero element is invertible and a non-zero
    /// polynomial of degree d has at most d roots.
    #[test]
    fn the_modulus_is_irreducible() {
        let x = 2u64;
        let frobenius = |k: u32| (0..k).fold(x, |y, _| gf64_mul(y, y));
        assert_eq!(frobenius(64), x, "X^(2^64) ≡ X");
        // gcd over GF(2)[X] of f (degree 64, as u128) and g = X^(2^32) − X mod f.
        let f: u128 = (1u128 << 64) | u128::from(LOW);
        let g = u128::from(frobenius(32) ^ x);
        let degree = |p: u128| 127 - p.leading_zeros();
        let (mut a, mut b) = (f, g);
        while b != 0 {
            while a != 0 && degree(a) >= degree(b) {
                a ^= b << (degree(a) - degree(b));
            }
            (a, b) = (b, a);
        }
        assert_eq!(a, 1, "gcd(X^(2^32) − X, f) = 1");
    }
}
