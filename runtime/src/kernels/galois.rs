//! Kernels of the malicious mode's proof arithmetic in GR(2^64, 47)
//! ([`crate::verify::galois`]): sums of unreduced products, products by an exceptional
//! element (sums of shifted copies), and sums of base words times exceptional elements (the
//! proof's batching).
//!
//! # Performance
//! Written as plain loops over the 47 coefficients and multiversioned: with AVX-512DQ LLVM
//! multiplies 8 coefficients per `vpmullq`; AVX2 and the baseline have no 64-bit multiply and
//! emulate it (`vpmuludq`). The shift-adds vectorise at every level (`vpaddq`).

use super::simd::multiversion;
use crate::verify::galois::{D, Gr};

/// acc[0..93] += Σ_k a_k·b_k (schoolbook, no reduction).
#[inline(always)]
fn products_add_body(acc: &mut [u64], a: &[Gr], b: &[Gr]) {
    assert_eq!(
        acc.len(),
        2 * D - 1,
        "gr_products_add: accumulator of 2·47 − 1 words"
    );
    assert_eq!(
        a.len(),
        b.len(),
        "gr_products_add: operands of different lengths"
    );
    for (x, y) in a.iter().zip(b) {
        for (i, &xi) in x.0.iter().enumerate() {
            for (r, &yj) in acc[i..i + D].iter_mut().zip(&y.0) {
                *r = r.wrapping_add(xi.wrapping_mul(yj));
            }
        }
    }
}

/// acc[0..93] += x·exc(bits): x shifted by every set bit of `bits` (bits ≥ 47 ignored).
#[inline(always)]
fn shifts_add_body(acc: &mut [u64], x: &Gr, bits: u64) {
    assert_eq!(
        acc.len(),
        2 * D - 1,
        "gr_shifts_add: accumulator of 2·47 − 1 words"
    );
    let mut rest = bits & ((1 << D) - 1);
    while rest != 0 {
        let t = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        for (r, &c) in acc[t..t + D].iter_mut().zip(&x.0) {
            *r = r.wrapping_add(c);
        }
    }
}

/// acc[t] += Σ_k x_k over the k whose `bits_k` has bit t set (t < 47): Σ_k exc(bits_k)·x_k,
/// whose coefficients are 0/1 multiples of each x_k, so no reduction is needed.
#[inline(always)]
fn exceptional_sums_add_body(acc: &mut [u64], bits: &[u64], xs: &[u64]) {
    assert_eq!(
        bits.len(),
        xs.len(),
        "gr_exceptional_sums_add: coefficients and words of different lengths"
    );
    let acc = &mut acc[..D];
    for (&b, &x) in bits.iter().zip(xs) {
        for (t, r) in acc.iter_mut().enumerate() {
            *r = r.wrapping_add(x & ((b >> t) & 1).wrapping_neg());
        }
    }
}

multiversion! {
    fn gr_products_add(acc: &mut [u64], a: &[Gr], b: &[Gr]) => products_add_body;
    fn gr_shifts_add(acc: &mut [u64], x: &Gr, bits: u64) => shifts_add_body;
    fn gr_exceptional_sums_add(acc: &mut [u64], bits: &[u64], xs: &[u64])
        => exceptional_sums_add_body;
}

/// `acc += Σ_k a_k·b_k` over GR(2^64, 47) before reduction (`acc`: 93 words). Panics if the
/// lengths differ.
pub fn gr_products_add(acc: &mut [u64], a: &[Gr], b: &[Gr]) {
    gr_products_add::dispatch(acc, a, b)
}

/// `acc += x·exc(bits)` before reduction (`acc`: 93 words).
pub fn gr_shifts_add(acc: &mut [u64], x: &Gr, bits: u64) {
    gr_shifts_add::dispatch(acc, x, bits)
}

/// `acc[..47] += Σ_k exc(bits_k)·x_k` over GR(2^64, 47) (bits ≥ 47 of each coefficient
/// ignored). Panics if the lengths differ or `acc` has fewer than 47 words.
pub fn gr_exceptional_sums_add(acc: &mut [u64], bits: &[u64], xs: &[u64]) {
    gr_exceptional_sums_add::dispatch(acc, bits, xs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::supported_simd_levels;
    use crate::testing::test_rng;
    use rand::Rng;

    /// Every SIMD level gives the scalar body's words.
    #[test]
    fn every_level_equals_the_plain_loop() {
        let mut rng = test_rng();
        let a: Vec<Gr> = (0..5).map(|_| Gr::random(&mut rng)).collect();
        let b: Vec<Gr> = (0..5).map(|_| Gr::random(&mut rng)).collect();
        let bits: u64 = rng.random();
        let mut want = vec![0u64; 2 * D - 1];
        products_add_body(&mut want, &a, &b);
        let mut want_shift = vec![0u64; 2 * D - 1];
        shifts_add_body(&mut want_shift, &a[0], bits);
        let (cs, xs): (Vec<u64>, Vec<u64>) = (0..9)
            .map(|_| (rng.random::<u64>(), rng.random::<u64>()))
            .unzip();
        let mut want_sums = vec![0u64; 2 * D - 1];
        exceptional_sums_add_body(&mut want_sums, &cs, &xs);
        for level in supported_simd_levels() {
            let mut got = vec![0u64; 2 * D - 1];
            gr_products_add::at(level, &mut got, &a, &b);
            assert_eq!(got, want, "{level:?}");
            let mut got = vec![0u64; 2 * D - 1];
            gr_shifts_add::at(level, &mut got, &a[0], bits);
            assert_eq!(got, want_shift, "{level:?}");
            let mut got = vec![0u64; 2 * D - 1];
            gr_exceptional_sums_add::at(level, &mut got, &cs, &xs);
            assert_eq!(got, want_sums, "{level:?}");
        }
    }
}
