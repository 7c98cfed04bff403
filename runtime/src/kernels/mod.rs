//! Pure slice kernels over Z_2^64 (and Z_2^32, [`gemm32`]): the only home of SIMD dispatch and `unsafe` in veil-runtime.
//!
//! Every kernel has a scalar reference ([`scalar`]); SIMD variants are chosen at run time (widest
//! first, see [`simd`]) and must equal the scalar version bit for bit.

pub mod aes_ctr;
pub mod bytes;
pub mod dot_i8;
pub mod galois;
pub mod gemm;
pub mod gemm32;
pub mod gemv_i8;
pub mod gf64;
pub mod rep3;
pub mod ring;
pub mod scalar;
pub mod simd;

pub use aes_ctr::{AesCtr, AesCtrPath, aes_ctr_path, supported_aes_ctr_paths};
pub use bytes::{extend_le_bytes, le_bytes_to_words, words_to_le_bytes};
pub use dot_i8::dot_i8;
pub use galois::{gr_exceptional_sums_add, gr_products_add, gr_shifts_add};
pub use gemm::{gemm_u64_add_assign, par_gemm_u64_add_assign};
pub use gemm32::{Src32, Words32, matmul32_add_assign, rep3_matmul32_add_assign};
pub use gemv_i8::{
    PreparedVector, gemv_i8_u64, gemv_i8_u64_scalar, par_gemm_i8_u64, par_gemv_i8_u64,
};
pub use gf64::{gf64_dot, gf64_fold, gf64_mul, gf64_times_x};
pub use rep3::{
    rep3_and_cross_xor_assign, rep3_and_prefix_xor_assign, rep3_dot_rows_add_assign,
    rep3_matmul_add_assign,
};
pub use ring::*;
pub use simd::{SimdLevel, simd_level, supported_simd_levels};

#[cfg(test)]
pub(crate) mod test_support {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Edge values of Z_2^64: 0, 1, -1, 2^63 (and its neighbours).
    pub const EDGES: [u64; 6] = [0, 1, u64::MAX, 1 << 63, (1 << 63) - 1, (1 << 63) + 1];

    /// Fixed-seed generator (tests are deterministic).
    pub fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x7665_696c)
    }

    /// `n` values: mostly uniform, with every edge value somewhere (if `n` allows).
    pub fn vec_with_edges(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).map(|_| rng.random()).collect();
        for (i, &e) in EDGES.iter().enumerate() {
            if n > 0 && rng.random_bool(0.5) {
                let at = (i * 7919 + rng.random_range(0..n)) % n;
                v[at] = e;
            }
        }
        v
    }
}
