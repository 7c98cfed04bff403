//! Blocked u64 GEMM over Z_2^64 (BLAS has no wrapping integers).
//!
//! BLIS-style loop nest: `b` is packed per `KC × NC` block into `NR`-wide column strips (L2),
//! `a` per `MC × KC` block into `MR`-high row strips; a register-tiled `MR × NR` micro-kernel
//! accumulates a tile of `c` over `KC` and adds it to `c` once. Edge strips are zero-padded, so
//! the micro-kernel has no remainder loops. Wrapping addition is associative and commutative, so
//! any blocking gives the naive triple loop's result bit for bit.

use rayon::prelude::*;

use super::simd::multiversion;

/// Rows of the micro-kernel tile (broadcast values of `a`).
const MR: usize = 4;
/// Columns of the micro-kernel tile: 2 AVX2 or 1 AVX-512 vector per row, `MR·NR/4 = 8` `ymm`
/// accumulators on AVX2.
const NR: usize = 8;
/// Depth of a packed block: a `KC × NR` strip of `b` (16 KiB) stays in L1.
const KC: usize = 256;
/// Width of a packed block of `b`: `KC × NC` (512 KiB) stays in L2.
const NC: usize = 256;
/// Height of a packed block of `a`: `MC × KC` (128 KiB).
const MC: usize = 64;
/// Below this many multiply-adds (`m·k·n`) the parallel GEMM runs serially.
const PAR_MIN_WORK: u128 = 1 << 18;

fn check_dims(op: &str, m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &[u64]) {
    for (name, rows, cols, len) in [("a", m, k, a.len()), ("b", k, n, b.len()), ("c", m, n, c.len())] {
        assert!(
            rows.checked_mul(cols) == Some(len),
            "{op}: {name} has {len} elements, expected {rows}×{cols}"
        );
    }
}

/// Packs `b[pc..pc+kc, jc..jc+nc]` into `NR`-wide strips, each `kc` rows of `NR` values,
/// zero-padding the last strip.
#[inline(always)]
fn pack_b(b: &[u64], n: usize, pc: usize, kc: usize, jc: usize, nc: usize, bp: &mut [u64]) {
    for (s, strip) in bp.chunks_exact_mut(kc * NR).take(nc.div_ceil(NR)).enumerate() {
        let j0 = jc + s * NR;
        let w = NR.min(jc + nc - j0);
        for (p, dst) in strip.chunks_exact_mut(NR).enumerate() {
            let row = (pc + p) * n + j0;
            dst[..w].copy_from_slice(&b[row..row + w]);
            dst[w..].fill(0);
        }
    }
}

/// Packs `a[ic..ic+mc, pc..pc+kc]` into `MR`-high strips, each `kc` columns of `MR` values,
/// zero-padding the last strip.
#[inline(always)]
fn pack_a(a: &[u64], k: usize, ic: usize, mc: usize, pc: usize, kc: usize, ap: &mut [u64]) {
    for (s, strip) in ap.chunks_exact_mut(kc * MR).take(mc.div_ceil(MR)).enumerate() {
        let i0 = ic + s * MR;
        let h = MR.min(ic + mc - i0);
        for r in 0..MR {
            if r < h {
                let src = &a[(i0 + r) * k + pc..][..kc];
                for (dst, &v) in strip[r..].iter_mut().step_by(MR).zip(src) {
                    *dst = v;
                }
            } else {
                for dst in strip[r..].iter_mut().step_by(MR) {
                    *dst = 0;
                }
            }
        }
    }
}

/// `MR × NR` tile of `Σ_p ap[p]ᵀ · bp[p]` over one packed strip pair.
#[inline(always)]
fn micro_kernel(ap: &[u64], bp: &[u64]) -> [[u64; NR]; MR] {
    let (ach, _) = ap.as_chunks::<MR>();
    let (bch, _) = bp.as_chunks::<NR>();
    let mut acc = [[0u64; NR]; MR];
    for (av, bv) in ach.iter().zip(bch) {
        for (row, &x) in acc.iter_mut().zip(av) {
            for (s, &y) in row.iter_mut().zip(bv) {
                *s = s.wrapping_add(x.wrapping_mul(y));
            }
        }
    }
    acc
}

#[inline(always)]
fn gemm_body(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    check_dims("gemm_u64_add_assign", m, k, n, a, b, c);
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let kc_max = KC.min(k);
    let mut bp = vec![0u64; kc_max * NC.min(n).next_multiple_of(NR)];
    let mut ap = vec![0u64; kc_max * MC.min(m).next_multiple_of(MR)];
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b(b, n, pc, kc, jc, nc, &mut bp);
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(a, k, ic, mc, pc, kc, &mut ap);
                let b_strips = bp.chunks_exact(kc * NR).take(nc.div_ceil(NR));
                for (js, bstrip) in b_strips.enumerate() {
                    let j0 = jc + js * NR;
                    let w = NR.min(jc + nc - j0);
                    let a_strips = ap.chunks_exact(kc * MR).take(mc.div_ceil(MR));
                    for (is, astrip) in a_strips.enumerate() {
                        let i0 = ic + is * MR;
                        let h = MR.min(ic + mc - i0);
                        let acc = micro_kernel(astrip, bstrip);
                        for (r, tile_row) in acc.iter().enumerate().take(h) {
                            let c_row = &mut c[(i0 + r) * n + j0..][..w];
                            for (cv, &v) in c_row.iter_mut().zip(tile_row) {
                                *cv = cv.wrapping_add(v);
                            }
                        }
                    }
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
/// Packed, cache-blocked (`KC = 256`, `NC = 256`, `MC = 64`) with a `4 × 8` register tile:
/// per step of `k`, four broadcasts of `a` times one row of 8 of `b`. LLVM keeps the tile in
/// 8 `ymm` accumulators (AVX2; 64-bit multiply emulated with `vpmuludq`, the high halves of the
/// broadcasts hoisted) or 4 `zmm` (AVX-512DQ, `vpmullq`). Compute-bound. Bench: `kernels/gemm`.
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
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
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
