//! Blocked u64 GEMM over Z_2^64 (BLAS has no wrapping integers).
//!
//! Loop nest: blocks of `NC` columns × `KC` depth of `b` (512 KiB, stays in L2); inside, `MR = 4`
//! rows of `c` at a time, and for each `p` of the block the broadcast update
//! `c[i+r, j..] += a[i+r, p] · b[p, j..]` for the four rows at once (one load of `b` feeds four
//! multiply-adds; the four `c` row segments, 8 KiB, stay in L1). The innermost loop runs over
//! contiguous columns, which LLVM vectorises. Wrapping addition is associative and commutative,
//! so any blocking gives the naive triple loop's result bit for bit.
//!
//! (A register-tiled `MR × NR` micro-kernel over packed strips was tried first: LLVM then
//! vectorises across `p` with shuffles and spills the 32 accumulators, 1.4× over scalar only.)

use rayon::prelude::*;

use super::simd::multiversion;

/// Rows of `c` updated together (broadcasts of `a` sharing each load of `b`).
const MR: usize = 4;
/// Depth of a block of `b`.
const KC: usize = 256;
/// Width of a block of `b`: `KC × NC` u64 = 512 KiB stays in L2; `MR` rows of `c` of this width
/// (8 KiB) stay in L1.
const NC: usize = 256;
/// Below this many multiply-adds (`m·k·n`) the parallel GEMM runs serially.
const PAR_MIN_WORK: u128 = 1 << 18;

fn check_dims(op: &str, m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &[u64]) {
    for (name, rows, cols, len) in [
        ("a", m, k, a.len()),
        ("b", k, n, b.len()),
        ("c", m, n, c.len()),
    ] {
        assert!(
            rows.checked_mul(cols) == Some(len),
            "{op}: {name} has {len} elements, expected {rows}×{cols}"
        );
    }
}

/// `c_r[j] += a[r] · b[j]` for four rows `c_r`, all of `b`'s length.
#[inline(always)]
fn axpy4(c: [&mut [u64]; 4], a: [u64; 4], b: &[u64]) {
    let [c0, c1, c2, c3] = c;
    let rows = c0
        .iter_mut()
        .zip(c1.iter_mut())
        .zip(c2.iter_mut())
        .zip(c3.iter_mut());
    for ((((x0, x1), x2), x3), &y) in rows.zip(b) {
        *x0 = x0.wrapping_add(a[0].wrapping_mul(y));
        *x1 = x1.wrapping_add(a[1].wrapping_mul(y));
        *x2 = x2.wrapping_add(a[2].wrapping_mul(y));
        *x3 = x3.wrapping_add(a[3].wrapping_mul(y));
    }
}

/// `c[j] += a · b[j]`.
#[inline(always)]
fn axpy1(c: &mut [u64], a: u64, b: &[u64]) {
    for (x, &y) in c.iter_mut().zip(b) {
        *x = x.wrapping_add(a.wrapping_mul(y));
    }
}

/// `c[r] += a_r · b` for every row `a_r` of `a` (the matrix–vector case n = 1, where the blocked
/// path's column loop has length 1 and stays scalar): eight independent accumulators per row,
/// which LLVM keeps in vector registers, streaming `a` once.
#[inline(always)]
fn gemv_rows(k: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    let (b8, b_tail) = b.as_chunks::<8>();
    for (c, row) in c.iter_mut().zip(a.chunks_exact(k)) {
        let (r8, r_tail) = row.as_chunks::<8>();
        let mut acc = [0u64; 8];
        for (x, y) in r8.iter().zip(b8) {
            for l in 0..8 {
                acc[l] = acc[l].wrapping_add(x[l].wrapping_mul(y[l]));
            }
        }
        let mut sum = acc.iter().fold(0u64, |s, &v| s.wrapping_add(v));
        for (x, y) in r_tail.iter().zip(b_tail) {
            sum = sum.wrapping_add(x.wrapping_mul(*y));
        }
        *c = c.wrapping_add(sum);
    }
}

#[inline(always)]
fn gemm_body(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    check_dims("gemm_u64_add_assign", m, k, n, a, b, c);
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    if n == 1 {
        return gemv_rows(k, a, b, c);
    }
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let b_rows = || b[pc * n..].chunks(n).take(kc).map(|row| &row[jc..jc + nc]);
            let mut c_blocks = c.chunks_exact_mut(MR * n);
            let mut a_blocks = a.chunks_exact(MR * k);
            for (c_blk, a_blk) in c_blocks.by_ref().zip(a_blocks.by_ref()) {
                let (c01, c23) = c_blk.split_at_mut(2 * n);
                let (c0, c1) = c01.split_at_mut(n);
                let (c2, c3) = c23.split_at_mut(n);
                let [c0, c1, c2, c3] = [c0, c1, c2, c3].map(|row| &mut row[jc..jc + nc]);
                for (p, b_row) in (pc..).zip(b_rows()) {
                    let av = [a_blk[p], a_blk[k + p], a_blk[2 * k + p], a_blk[3 * k + p]];
                    axpy4([&mut *c0, &mut *c1, &mut *c2, &mut *c3], av, b_row);
                }
            }
            let c_rest = c_blocks.into_remainder().chunks_exact_mut(n);
            for (c_row, a_row) in c_rest.zip(a_blocks.remainder().chunks_exact(k)) {
                let c_row = &mut c_row[jc..jc + nc];
                for (p, b_row) in (pc..).zip(b_rows()) {
                    axpy1(c_row, a_row[p], b_row);
                }
            }
        }
    }
}

multiversion! {
    fn gemm_u64_add_assign(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64])
        => gemm_body;
}

/// `c += a · b` with `a` m×k, `b` k×n, `c` m×n, all row-major, wrapping arithmetic.
/// Panics if slice lengths do not match the dimensions.
/// # Performance
/// Cache-blocked (`KC = NC = 256`), four rows of `c` per pass: the innermost loop is
/// `c_r[j] += a_r · b[j]` for `r = 0..4` over contiguous `j`, which LLVM vectorises (AVX2: 4
/// lanes, multiply emulated with three `vpmuludq`, the broadcasts' high halves hoisted and
/// `b[j] >> 32` shared by the four rows; AVX-512DQ: 8 lanes, `vpmullq`). Compute-bound on AVX2.
/// Bench: `kernels/gemm`.
pub fn gemm_u64_add_assign(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    gemm_u64_add_assign::dispatch(m, k, n, a, b, c)
}

/// Same as [`gemm_u64_add_assign`], parallel over row blocks of `c` with rayon when the product
/// is large enough to pay for it; bit-for-bit equal to the serial version.
/// # Performance
/// Below `m·k·n = 2^18` multiply-adds, or with fewer than 8 rows, it runs serially. Otherwise
/// rows are split into about two blocks per rayon thread (a multiple of 4 rows, at least 16), each
/// a serial GEMM that packs its own copy of `b`'s blocks. Bench: `kernels/gemm`, id `par`.
pub fn par_gemm_u64_add_assign(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    check_dims("par_gemm_u64_add_assign", m, k, n, a, b, c);
    let work = m as u128 * k as u128 * n as u128;
    let threads = rayon::current_num_threads();
    if work < PAR_MIN_WORK || m < 2 * MR || threads == 1 {
        return gemm_u64_add_assign(m, k, n, a, b, c);
    }
    // `work > 0` here, so `k` and `n` are non-zero and the chunk sizes are too.
    let rows = m.div_ceil(2 * threads).next_multiple_of(MR).max(4 * MR);
    c.par_chunks_mut(rows * n)
        .zip(a.par_chunks(rows * k))
        .for_each(|(c_blk, a_blk)| gemm_u64_add_assign(c_blk.len() / n, k, n, a_blk, b, c_blk));
}

/// [`gemm_u64_add_assign`] at an explicit [`SimdLevel`](super::SimdLevel), for tests and benches
/// comparing levels.
pub mod at_level {
    pub use super::gemm_u64_add_assign::at as gemm_u64_add_assign;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::scalar;
    use crate::kernels::simd::supported_simd_levels;
    use crate::kernels::test_support::{rng, vec_with_edges};

    fn check_shape(m: usize, k: usize, n: usize) {
        let mut rng = rng();
        let a = vec_with_edges(&mut rng, m * k);
        let b = vec_with_edges(&mut rng, k * n);
        let c0 = vec_with_edges(&mut rng, m * n);
        let mut want = c0.clone();
        scalar::gemm_u64_add_assign(m, k, n, &a, &b, &mut want);
        let mut got = c0.clone();
        gemm_u64_add_assign(m, k, n, &a, &b, &mut got);
        assert_eq!(got, want, "dispatched gemm {m}×{k}×{n}");
        for level in supported_simd_levels() {
            let mut got = c0.clone();
            at_level::gemm_u64_add_assign(level, m, k, n, &a, &b, &mut got);
            assert_eq!(got, want, "{level:?} gemm {m}×{k}×{n}");
        }
        let mut got = c0;
        par_gemm_u64_add_assign(m, k, n, &a, &b, &mut got);
        assert_eq!(got, want, "par gemm {m}×{k}×{n}");
    }

    #[test]
    fn gemm_matches_naive() {
        for (m, k, n) in [
            (1, 1, 1),
            (0, 0, 0),
            (0, 3, 4),
            (3, 0, 4),
            (3, 4, 0),
            (3, 5, 7),
            (4, 8, 8),
            (5, 9, 9),
            (17, 33, 65),
            (65, 257, 3),
            (2, 300, 513),
            (128, 128, 128),
            // Matrix–vector (n = 1): row lengths around the 8-word accumulator block.
            (9, 7, 1),
            (5, 8, 1),
            (33, 17, 1),
            (3000, 384, 1),
        ] {
            check_shape(m, k, n);
        }
    }

    #[test]
    fn par_gemm_matches_serial_on_large() {
        let (m, k, n) = (200, 96, 130); // ≈ 2.5 M multiply-adds: takes the parallel path
        let mut rng = rng();
        let a = vec_with_edges(&mut rng, m * k);
        let b = vec_with_edges(&mut rng, k * n);
        let c0 = vec_with_edges(&mut rng, m * n);
        let mut serial = c0.clone();
        gemm_u64_add_assign(m, k, n, &a, &b, &mut serial);
        let mut par = c0.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| par_gemm_u64_add_assign(m, k, n, &a, &b, &mut par));
        assert_eq!(par, serial);
        let mut naive = c0;
        scalar::gemm_u64_add_assign(m, k, n, &a, &b, &mut naive);
        assert_eq!(par, naive);
    }

    #[test]
    #[should_panic(expected = "gemm_u64_add_assign: b has 5 elements, expected 2×3")]
    fn gemm_rejects_bad_shape() {
        gemm_u64_add_assign(1, 2, 3, &[0; 2], &[0; 5], &mut [0; 3]);
    }
}
