//! Plaintext int8 dot product (i32 accumulation): the clear twin of the TFHE scoring scan,
//! so benchmarks compare the encrypted path with a vectorised plaintext search, not a naive one.

use super::simd::multiversion;

/// Σ a_j·b_j over int8 vectors of equal length (panics otherwise), exact in i32 for lengths
/// up to 2^17 (|a_j·b_j| ≤ 2^14).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "dot_i8: operands of different lengths");
    dot_i8_mv::dispatch(a, b)
}

/// Products are formed in i16 (exact: |a·b| ≤ 2^14) so LLVM emits `pmaddwd`.
#[inline(always)]
fn dot_i8_body(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(i16::from(x) * i16::from(y)))
        .fold(0i32, i32::wrapping_add)
}

multiversion! {
    fn dot_i8_mv(a: &[i8], b: &[i8]) -> i32 => dot_i8_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::supported_simd_levels;
    use rand::{Rng, SeedableRng};

    #[test]
    fn every_level_equals_the_scalar_sum() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for n in [0, 1, 15, 16, 17, 384, 1000] {
            let a: Vec<i8> = (0..n).map(|_| rng.random()).collect();
            let mut b: Vec<i8> = (0..n).map(|_| rng.random()).collect();
            if n > 0 {
                b[0] = i8::MIN;
            }
            let want: i64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| i64::from(x) * i64::from(y))
                .sum();
            for level in supported_simd_levels() {
                assert_eq!(
                    i64::from(dot_i8_mv::at(level, &a, &b)),
                    want,
                    "n={n} {level:?}"
                );
            }
        }
    }
}
