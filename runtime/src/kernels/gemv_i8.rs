//! Wrapping i8 × u64 matrix–vector products over Z_2^64: the server kernel of the TFHE
//! private-retrieval path, `s[r] = Σ_j D[r, j] · b[j] mod 2^64` with `D` a row-major `rows × cols`
//! matrix of i8 (the corpus) and `b` a vector of `cols` u64 (GLWE ciphertext bodies).
//!
//! # Limb math
//! Each `b[j]` is split once per query ([`PreparedVector::new`]) into four balanced signed
//! 16-bit limbs, `b ≡ l0 + l1·2^16 + l2·2^32 + l3·2^48 (mod 2^64)` with `l_k ∈ [−2^15, 2^15)`
//! (take the low 16 bits as an i16, subtract, shift, repeat; the final carry vanishes mod 2^64).
//! Then `s ≡ A0 + A1·2^16 + A2·2^32 + A3·2^48 (mod 2^64)` with `A_k = Σ_j D[j]·l_k[j]`, and each
//! `A_k` is a sum of i8 × i16 products, which `vpmaddwd` (`_mm256_madd_epi16`) computes 16 at a
//! time after sign-extending 16 bytes of `D` to i16 (`vpmovsxbw`), adding adjacent pairs into
//! 8 i32 lanes. Ranges:
//! - one pair sum is in `[−2·127·2^15, 2·128·2^15] = [−2^23 + 2^16, 2^23]`, so an i32 lane holds
//!   the exact sum of 128 of them (`|·| ≤ 2^30`); `A0` and `A1` are widened to i64 at least that
//!   often (once per column block of at most 2048 columns);
//! - `A2` only matters mod 2^32 and `A3` mod 2^16 (their weights are `2^32`, `2^48`), so their
//!   i32 lanes wrap freely; they are folded as `(A2 + A3·2^16) mod 2^32`, shifted by 32.
//!
//! Wrapping addition is associative and commutative, so every blocking and every path equals the
//! scalar definition [`gemv_i8_u64_scalar`] bit for bit (tested).
//!
//! # Loop nest
//! Rows are processed in panels (8 rows for one query, 32 for several); inside a panel, for each
//! block of columns (the limbs of every query for that block, `queries × block × 8` bytes, stay
//! in L1/L2), two rows at a time, and for each query the micro-kernel runs over the block: one
//! load of a limb vector feeds two multiply-adds, and the `2 × block` bytes of `D` stay in L1
//! while every query uses them. Columns past the last multiple of 16 are copied into a zero-padded 16-byte
//! buffer (the limbs are padded with zeros) and take the same path.
//!
//! Two paths, chosen at run time: AVX2 intrinsics ([`SimdLevel::Avx2`] and wider) and a portable
//! plain-Rust version of the same limb arithmetic (any CPU; LLVM vectorises it for the target
//! baseline). [`at_level`] runs an explicit one.

use rayon::prelude::*;

use super::simd::{SimdLevel, simd_level};

/// Columns per step: one `vpmovsxbw` of 16 bytes, four `vpmaddwd` (one per limb).
const LANES: usize = 16;
/// Rows of `D` per micro-kernel pass: each limb vector loaded feeds this many `vpmaddwd`.
/// Two rows keep 8 accumulators, 4 limb vectors and 2 temporaries in the 16 ymm registers.
const ROWS: usize = 2;
/// Steps of [`LANES`] columns between widenings of the i32 accumulators: `128 · 2^23 = 2^30`.
const MAX_STEPS: usize = 128;
/// Most columns in one block (one widening per row, query and block).
const MAX_BLOCK_COLS: usize = MAX_STEPS * LANES;
/// Fewest columns in one block (so widening and the horizontal sum stay a small cost).
const MIN_BLOCK_COLS: usize = 256;
/// Bytes of prepared limbs (all queries) one column block may take: they stay in L2 while a
/// panel's rows stream past.
const LIMB_BLOCK_BYTES: usize = 64 << 10;
/// Rows per panel: every column block of a panel is finished before the next panel starts.
/// One query: few rows, so `D` is read in few concurrent streams (the hardware prefetcher
/// keeps up); several queries: more rows share each query's limb block while it is in cache.
/// (On the 2-vCPU EPYC 7003 dev VM, 1000 × 49 152: 8 rows ~10% faster than 32 for one query,
/// 32 rows ~10% faster for four; noisy, shared machine.)
const PANEL_ROWS: [usize; 2] = [8, 32];
/// Below this many bytes of `D` times queries, the parallel kernels run serially.
const PAR_MIN_WORK: usize = 1 << 18;

const _: () = assert!(MAX_STEPS * (1 << 23) < i32::MAX as usize);
const _: () = assert!(MAX_BLOCK_COLS.is_multiple_of(LANES) && MIN_BLOCK_COLS.is_multiple_of(LANES));
const _: () = assert!(PANEL_ROWS[0].is_multiple_of(ROWS) && PANEL_ROWS[1].is_multiple_of(ROWS));

/// The four limbs of 16 consecutive columns, `[l0, l1, l2, l3]`, each 16 lanes (one ymm each;
/// the chunk is two cache lines).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct LimbChunk([[i16; LANES]; 4]);

/// A query vector pre-split into balanced i16 limbs (done once per query, reused for every row).
///
/// Layout: one 128-byte chunk `[l0, l1, l2, l3]` (16 lanes each) per 16 columns, the last one
/// padded with zero limbs, so the kernel reads whole vectors (8 bytes of limbs per column).
#[derive(Clone)]
pub struct PreparedVector {
    cols: usize,
    chunks: Vec<LimbChunk>,
}

impl PreparedVector {
    /// Splits `b` into balanced 16-bit limbs, `b[j] ≡ Σ_k l_k[j]·2^(16k)` with `l_k ∈ [−2^15, 2^15)`.
    pub fn new(b: &[u64]) -> Self {
        let mut chunks = vec![LimbChunk([[0; LANES]; 4]); b.len().div_ceil(LANES)];
        for (chunk, vals) in chunks.iter_mut().zip(b.chunks(LANES)) {
            for (lane, &v) in vals.iter().enumerate() {
                let mut x = v;
                for limb in &mut chunk.0 {
                    let l = x as u16 as i16;
                    limb[lane] = l;
                    // `x - l` is a multiple of 2^16 (same low 16 bits); the carry out of the
                    // top limb is a multiple of 2^64 and vanishes.
                    x = x.wrapping_sub(l as i64 as u64) >> 16;
                }
            }
        }
        PreparedVector {
            cols: b.len(),
            chunks,
        }
    }

    /// Number of columns (`b.len()`).
    pub fn len(&self) -> usize {
        self.cols
    }

    /// Whether the vector has no columns.
    pub fn is_empty(&self) -> bool {
        self.cols == 0
    }

    /// The vector `b` back from its limbs, `b[j] = Σ_k l_k[j]·2^(16k) mod 2^64` (for kernels
    /// that split it differently, such as the GPU's).
    pub fn to_words(&self) -> Vec<u64> {
        (0..self.cols)
            .map(|j| {
                let chunk = &self.chunks[j / LANES].0;
                (0..4).fold(0u64, |s, k| {
                    s.wrapping_add((chunk[k][j % LANES] as i64 as u64) << (16 * k))
                })
            })
            .collect()
    }
}

impl std::fmt::Debug for PreparedVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The limbs are large and say nothing useful in a log.
        f.debug_struct("PreparedVector")
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

/// Panics unless `d` holds `rows × cols` elements.
fn check_shape(op: &str, d_len: usize, rows: usize, cols: usize) {
    assert!(
        rows.checked_mul(cols) == Some(d_len),
        "{op}: d has {d_len} elements, expected {rows}×{cols}"
    );
}

/// Panics unless every query has the same number of columns; returns it (0 if there are none).
fn check_queries(op: &str, queries: &[PreparedVector]) -> usize {
    let cols = queries.first().map_or(0, PreparedVector::len);
    for (i, q) in queries.iter().enumerate() {
        assert!(
            q.len() == cols,
            "{op}: query {i} has {} columns, query 0 has {cols}",
            q.len()
        );
    }
    cols
}

/// Scalar reference: `s[r] = Σ_j D[r, j]·b[j] mod 2^64`, `D` row-major `rows × b.len()`.
/// Panics if `d.len() != rows · b.len()`.
pub fn gemv_i8_u64_scalar(d: &[i8], rows: usize, b: &[u64]) -> Vec<u64> {
    check_shape("gemv_i8_u64_scalar", d.len(), rows, b.len());
    if b.is_empty() {
        return vec![0; rows];
    }
    d.chunks_exact(b.len())
        .map(|row| {
            row.iter().zip(b).fold(0u64, |s, (&x, &y)| {
                s.wrapping_add((x as i64 as u64).wrapping_mul(y))
            })
        })
        .collect()
}

/// `s[r] = Σ_j D[r, j]·b[j] mod 2^64` on one thread, equal to [`gemv_i8_u64_scalar`] bit for bit.
/// Panics if `d.len() != rows · b.len()`.
/// # Performance
/// AVX2 (run-time dispatch): per 16 bytes of `D`, one `vpmovsxbw` and four `vpmaddwd`/`vpaddd`;
/// two rows share each limb load. Bench: `fhe_gemv`, id `single`.
pub fn gemv_i8_u64(d: &[i8], rows: usize, b: &PreparedVector) -> Vec<u64> {
    at_level::gemv_i8_u64(simd_level(), d, rows, b)
}

/// [`gemv_i8_u64`] for several queries in one pass over `D` (each block of `D` is loaded once and
/// used for every query), parallel over row blocks with rayon. Returns one `Vec` of `rows`
/// results per query, in order. Panics if the queries differ in length or `d.len()` is not
/// `rows · cols`.
/// # Performance
/// Rows are split into about four blocks per rayon thread (whole panels of 32 rows); below
/// 256 KiB of `D × queries` it runs serially. Bench: `fhe_gemv`, ids `par_q1`, `par_q4`.
pub fn par_gemm_i8_u64(d: &[i8], rows: usize, queries: &[PreparedVector]) -> Vec<Vec<u64>> {
    gemm("par_gemm_i8_u64", simd_level(), d, rows, queries, true)
}

/// [`par_gemm_i8_u64`] for one query: `s[r] = Σ_j D[r, j]·b[j] mod 2^64`, rayon-parallel.
/// Panics if `d.len() != rows · b.len()`.
pub fn par_gemv_i8_u64(d: &[i8], rows: usize, b: &PreparedVector) -> Vec<u64> {
    let mut out = gemm(
        "par_gemv_i8_u64",
        simd_level(),
        d,
        rows,
        std::slice::from_ref(b),
        true,
    );
    out.pop().expect("one query in, one result out")
}

/// The kernels of this module at an explicit [`SimdLevel`]: `Baseline` runs the portable path,
/// `Avx2` and wider the AVX2 one. For tests and benches; each panics if this CPU lacks `level`.
pub mod at_level {
    use super::{PreparedVector, SimdLevel, gemm};

    /// [`super::gemv_i8_u64`] at `level`.
    pub fn gemv_i8_u64(level: SimdLevel, d: &[i8], rows: usize, b: &PreparedVector) -> Vec<u64> {
        let mut out = gemm(
            "gemv_i8_u64",
            level,
            d,
            rows,
            std::slice::from_ref(b),
            false,
        );
        out.pop().expect("one query in, one result out")
    }

    /// [`super::par_gemm_i8_u64`] at `level`, on one thread.
    pub fn gemm_i8_u64(
        level: SimdLevel,
        d: &[i8],
        rows: usize,
        queries: &[PreparedVector],
    ) -> Vec<Vec<u64>> {
        gemm("gemm_i8_u64", level, d, rows, queries, false)
    }
}

/// Validates, runs the kernel at `level` (in parallel if `par`) and returns one `Vec` per query.
fn gemm(
    op: &str,
    level: SimdLevel,
    d: &[i8],
    rows: usize,
    queries: &[PreparedVector],
    par: bool,
) -> Vec<Vec<u64>> {
    assert!(
        level.is_supported(),
        "SIMD level {level:?} is not supported by this CPU"
    );
    let cols = check_queries(op, queries);
    let nq = queries.len();
    if nq == 0 {
        return Vec::new();
    }
    check_shape(op, d.len(), rows, cols);
    if rows == 0 || cols == 0 {
        return vec![vec![0; rows]; nq];
    }
    // Row-major `rows × nq`: row `r`'s result for query `q` is `out[r·nq + q]`.
    let mut out = vec![0u64; rows * nq];
    let threads = rayon::current_num_threads();
    let work = d.len().saturating_mul(nq);
    if !par || threads == 1 || work < PAR_MIN_WORK || rows <= PANEL_ROWS[1] {
        gemm_serial(level, d, cols, queries, &mut out);
    } else {
        let per_task = rows.div_ceil(4 * threads).next_multiple_of(PANEL_ROWS[1]);
        out.par_chunks_mut(per_task * nq)
            .zip(d.par_chunks(per_task * cols))
            .for_each(|(o, d)| gemm_serial(level, d, cols, queries, o));
    }
    if nq == 1 {
        return vec![out];
    }
    (0..nq)
        .map(|q| out.iter().skip(q).step_by(nq).copied().collect())
        .collect()
}

/// `out[r·nq + q] += Σ_j d[r, j]·queries[q][j]` at `level` (panics if this CPU lacks it); `d` is
/// `out.len() / nq` rows of `cols > 0` columns.
fn gemm_serial(
    level: SimdLevel,
    d: &[i8],
    cols: usize,
    queries: &[PreparedVector],
    out: &mut [u64],
) {
    assert!(
        level.is_supported(),
        "SIMD level {level:?} is not supported by this CPU"
    );
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 | SimdLevel::Avx512 => {
            // SAFETY: `level` is supported (asserted above), and both levels imply AVX2.
            unsafe { x86::gemm_avx2(d, cols, queries, out) }
        }
        _ => gemm_body(Portable, d, cols, queries, out),
    }
}

/// A micro-kernel: the partial dot products of `R` row segments of equal length `n ≤`
/// [`MAX_BLOCK_COLS`] with one query's limbs for those columns (`n.div_ceil(16)` chunks).
trait Micro: Copy {
    fn dot<const R: usize>(self, segs: [&[i8]; R], limbs: &[LimbChunk]) -> [u64; R];
}

/// Columns per block when `nq` queries share each block of `D`.
fn block_cols(nq: usize) -> usize {
    (LIMB_BLOCK_BYTES / (8 * nq)).clamp(MIN_BLOCK_COLS, MAX_BLOCK_COLS) / LANES * LANES
}

/// The loop nest (see the module doc), instantiated per path.
#[inline(always)]
fn gemm_body<M: Micro>(m: M, d: &[i8], cols: usize, queries: &[PreparedVector], out: &mut [u64]) {
    let nq = queries.len();
    let kc = block_cols(nq);
    let panel = PANEL_ROWS[usize::from(nq > 1)];
    for (d_panel, o_panel) in d.chunks(panel * cols).zip(out.chunks_mut(panel * nq)) {
        for c0 in (0..cols).step_by(kc) {
            let c1 = (c0 + kc).min(cols);
            let chunks = c0 / LANES..c1.div_ceil(LANES);
            let mut d_blocks = d_panel.chunks_exact(ROWS * cols);
            let mut o_blocks = o_panel.chunks_exact_mut(ROWS * nq);
            for (d_blk, o_blk) in d_blocks.by_ref().zip(o_blocks.by_ref()) {
                let mut segs: [&[i8]; ROWS] = [&[]; ROWS];
                for (i, seg) in segs.iter_mut().enumerate() {
                    *seg = &d_blk[i * cols + c0..i * cols + c1];
                }
                for (q, query) in queries.iter().enumerate() {
                    let sums = m.dot(segs, &query.chunks[chunks.clone()]);
                    for (i, s) in sums.into_iter().enumerate() {
                        let o = &mut o_blk[i * nq + q];
                        *o = o.wrapping_add(s);
                    }
                }
            }
            let rest = d_blocks.remainder().chunks_exact(cols);
            for (d_row, o_row) in rest.zip(o_blocks.into_remainder().chunks_exact_mut(nq)) {
                for (o, query) in o_row.iter_mut().zip(queries) {
                    let [s] = m.dot([&d_row[c0..c1]], &query.chunks[chunks.clone()]);
                    *o = o.wrapping_add(s);
                }
            }
        }
    }
}

/// `seg` (at most 16 bytes) zero-padded to 16.
#[inline(always)]
fn pad16(seg: &[i8]) -> [i8; LANES] {
    let mut buf = [0i8; LANES];
    buf[..seg.len()].copy_from_slice(seg);
    buf
}

/// Checks the [`Micro::dot`] contract; returns `(n, whole steps)`.
#[inline(always)]
fn check_block<const R: usize>(segs: &[&[i8]; R], limbs: &[LimbChunk]) -> (usize, usize) {
    let n = segs.first().map_or(0, |s| s.len());
    assert!(
        segs.iter().all(|s| s.len() == n)
            && n <= MAX_BLOCK_COLS
            && limbs.len() == n.div_ceil(LANES),
        "gemv_i8 micro-kernel: bad block"
    );
    (n, n / LANES)
}

/// The portable path: the limb arithmetic on plain arrays of 16 i32 lanes per limb, one row at
/// a time (LLVM vectorises the lane loop; x86-64 baseline: `pmaddwd` against zero-interleaved
/// operands).
#[derive(Clone, Copy)]
struct Portable;

impl Portable {
    /// `acc[k][i] += d[i]·l_k[i]` (wrapping: the `A2`, `A3` lanes may wrap).
    #[inline(always)]
    fn step(acc: &mut [[i32; LANES]; 4], d: &[i8; LANES], limbs: &LimbChunk) {
        for (acc_k, l_k) in acc.iter_mut().zip(&limbs.0) {
            for ((a, &x), &l) in acc_k.iter_mut().zip(d).zip(l_k) {
                *a = a.wrapping_add(i32::from(x) * i32::from(l));
            }
        }
    }

    /// `A0 + A1·2^16 + A2·2^32 + A3·2^48 mod 2^64` from the lanes (`A0`, `A1` exact in i64).
    #[inline(always)]
    fn fold(acc: &[[i32; LANES]; 4]) -> u64 {
        let exact = |a: &[i32; LANES]| a.iter().map(|&x| i64::from(x)).sum::<i64>() as u64;
        let wrapped = |a: &[i32; LANES]| a.iter().fold(0u32, |s, &x| s.wrapping_add(x as u32));
        let a23 = wrapped(&acc[2]).wrapping_add(wrapped(&acc[3]) << 16);
        exact(&acc[0])
            .wrapping_add(exact(&acc[1]) << 16)
            .wrapping_add(u64::from(a23) << 32)
    }
}

impl Micro for Portable {
    #[inline(always)]
    fn dot<const R: usize>(self, segs: [&[i8]; R], limbs: &[LimbChunk]) -> [u64; R] {
        check_block(&segs, limbs);
        let mut out = [0u64; R];
        for (o, seg) in out.iter_mut().zip(segs) {
            *o = Portable::dot_row(seg, limbs);
        }
        out
    }
}

impl Portable {
    /// One row of [`Micro::dot`] (`limbs.len() == seg.len().div_ceil(16)`). Kept out of line:
    /// inlined into the loop nest, LLVM no longer vectorises the lane loops.
    #[inline(never)]
    fn dot_row(seg: &[i8], limbs: &[LimbChunk]) -> u64 {
        let mut acc = [[0i32; LANES]; 4];
        let (whole, tail) = seg.as_chunks::<LANES>();
        for (d, l) in whole.iter().zip(limbs) {
            Self::step(&mut acc, d, l);
        }
        if !tail.is_empty() {
            Self::step(&mut acc, &pad16(tail), &limbs[whole.len()]);
        }
        Self::fold(&acc)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use super::{LANES, LimbChunk, Micro, PreparedVector, check_block, gemm_body, pad16};

    /// The AVX2 path. Only [`gemm_avx2`] creates it, so its holder may use AVX2.
    #[derive(Clone, Copy)]
    struct Avx2(());

    /// [`gemm_body`](super::gemm_body) on the AVX2 path.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn gemm_avx2(
        d: &[i8],
        cols: usize,
        queries: &[PreparedVector],
        out: &mut [u64],
    ) {
        gemm_body(Avx2(()), d, cols, queries, out)
    }

    impl Micro for Avx2 {
        #[inline(always)]
        fn dot<const R: usize>(self, segs: [&[i8]; R], limbs: &[LimbChunk]) -> [u64; R] {
            // SAFETY: an `Avx2` value exists only inside `gemm_avx2`, whose caller guarantees
            // that the CPU has AVX2.
            unsafe { dot_avx2(segs, limbs) }
        }
    }

    /// The four limb vectors of a chunk.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load_limbs(c: &LimbChunk) -> [__m256i; 4] {
        // SAFETY: each `c.0[k]` is 16 i16 = 32 readable bytes; `loadu` needs no alignment.
        c.0.each_ref()
            .map(|l| unsafe { _mm256_loadu_si256(l.as_ptr().cast()) })
    }

    /// 16 bytes of `D` at `p`, sign-extended to 16 i16.
    ///
    /// # Safety
    /// `p` must point to 16 readable bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load_d(p: *const i8) -> __m256i {
        // SAFETY: the caller guarantees 16 readable bytes; `loadu` needs no alignment.
        _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(p.cast()) })
    }

    /// `acc[k] += madd(d, l_k)` for the four limbs.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn step(acc: &mut [__m256i; 4], d: __m256i, l: &[__m256i; 4]) {
        for (a, &l) in acc.iter_mut().zip(l) {
            *a = _mm256_add_epi32(*a, _mm256_madd_epi16(d, l));
        }
    }

    /// Four u64 lanes summing to `A0 + A1·2^16 + (A2 + A3·2^16 mod 2^32)·2^32 mod 2^64`, from
    /// the 8 i32 lanes per limb of one row.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn fold(acc: &[__m256i; 4]) -> __m256i {
        // Exact i64 sums of the lane pairs (i, i + 4): 4 lanes.
        let widen = |v: __m256i| {
            let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
            let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v));
            _mm256_add_epi64(lo, hi)
        };
        let (a0, a1) = (widen(acc[0]), widen(acc[1]));
        // `c = A2 + A3·2^16` per i32 lane (wrapping); read as u64 lanes `c_lo + c_hi·2^32`, the
        // wanted `(c_lo + c_hi)·2^32 mod 2^64` is `(c << 32) + (c & 0xffff_ffff_0000_0000)`.
        let c = _mm256_add_epi32(acc[2], _mm256_slli_epi32::<16>(acc[3]));
        let hi_mask = _mm256_set1_epi64x(0xffff_ffff_0000_0000_u64 as i64);
        let c = _mm256_add_epi64(_mm256_slli_epi64::<32>(c), _mm256_and_si256(c, hi_mask));
        _mm256_add_epi64(_mm256_add_epi64(a0, _mm256_slli_epi64::<16>(a1)), c)
    }

    /// The lane sums of two rows' [`fold`]s, `[Σ t0, Σ t1]`, wrapping.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum2(t0: __m256i, t1: __m256i) -> [u64; 2] {
        // [t0₀+t0₁, t1₀+t1₁ | t0₂+t0₃, t1₂+t1₃], then the two halves added.
        let u = _mm256_add_epi64(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
        let h = _mm_add_epi64(_mm256_castsi256_si128(u), _mm256_extracti128_si256::<1>(u));
        [
            _mm_cvtsi128_si64(h) as u64,
            _mm_extract_epi64::<1>(h) as u64,
        ]
    }

    /// [`Micro::dot`] with AVX2 intrinsics.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dot_avx2<const R: usize>(segs: [&[i8]; R], limbs: &[LimbChunk]) -> [u64; R] {
        let (n, steps) = check_block(&segs, limbs);
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        for (s, chunk) in limbs[..steps].iter().enumerate() {
            let l = load_limbs(chunk);
            for (acc_r, seg) in acc.iter_mut().zip(&segs) {
                // SAFETY: `s < steps = n / 16` and every segment has `n` bytes (checked by
                // `check_block`), so bytes `16s..16s + 16` are in bounds.
                let d = unsafe { load_d(seg.as_ptr().add(s * LANES)) };
                step(acc_r, d, &l);
            }
        }
        if n > steps * LANES {
            let l = load_limbs(&limbs[steps]);
            for (acc_r, seg) in acc.iter_mut().zip(&segs) {
                let buf = pad16(&seg[steps * LANES..]);
                // SAFETY: `buf` is 16 readable bytes.
                let d = unsafe { load_d(buf.as_ptr()) };
                step(acc_r, d, &l);
            }
        }
        let mut out = [0u64; R];
        let (out_pairs, out_last) = out.as_chunks_mut::<2>();
        let (acc_pairs, acc_last) = acc.as_chunks::<2>();
        for (o, [a0, a1]) in out_pairs.iter_mut().zip(acc_pairs) {
            *o = hsum2(fold(a0), fold(a1));
        }
        if let ([o], [a]) = (out_last, acc_last) {
            *o = hsum2(fold(a), _mm256_setzero_si256())[0];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::supported_simd_levels;
    use crate::kernels::test_support::{rng, vec_with_edges};
    use rand::Rng;
    use rand_chacha::ChaCha20Rng;

    /// Edge values of an i8 matrix entry.
    const D_EDGES: [i8; 5] = [i8::MIN, i8::MAX, 0, -1, 1];

    /// `n` i8 values: uniform, with every edge value somewhere (if `n` allows).
    fn d_with_edges(rng: &mut ChaCha20Rng, n: usize) -> Vec<i8> {
        let mut d: Vec<i8> = (0..n).map(|_| rng.random()).collect();
        for (i, &e) in D_EDGES.iter().enumerate() {
            if n > 0 {
                d[(i * 7919 + rng.random_range(0..n)) % n] = e;
            }
        }
        d
    }

    /// Every path (dispatched, each supported level, parallel) against the scalar reference.
    fn check(d: &[i8], rows: usize, b: &[u64]) {
        let cols = b.len();
        let want = gemv_i8_u64_scalar(d, rows, b);
        let p = PreparedVector::new(b);
        assert_eq!(gemv_i8_u64(d, rows, &p), want, "dispatch {rows}×{cols}");
        for level in supported_simd_levels() {
            let got = at_level::gemv_i8_u64(level, d, rows, &p);
            assert_eq!(got, want, "{level:?} {rows}×{cols}");
        }
        assert_eq!(par_gemv_i8_u64(d, rows, &p), want, "par {rows}×{cols}");
    }

    #[test]
    fn limbs_are_balanced_and_reconstruct() {
        let mut rng = rng();
        let mut b = vec_with_edges(&mut rng, 1000);
        b.extend([
            0,
            1,
            u64::MAX,
            1 << 63,
            0x8000,
            0x7fff,
            0xffff,
            0x8000_8000_8000_8000,
            2,
        ]);
        let p = PreparedVector::new(&b);
        assert_eq!((p.len(), p.is_empty()), (b.len(), false));
        assert_eq!(p.chunks.len(), b.len().div_ceil(LANES));
        for (j, &v) in b.iter().enumerate() {
            let limbs = p.chunks[j / LANES].0.map(|l| l[j % LANES]);
            let back = (0..4).fold(0u64, |s, k| {
                s.wrapping_add((limbs[k] as i64 as u64) << (16 * k))
            });
            assert_eq!(back, v, "column {j}");
        }
        let padding = b.len() % LANES..LANES; // 1009 columns: 15 zero lanes
        let last = p.chunks.last().unwrap();
        assert!(
            last.0
                .iter()
                .all(|l| l[padding.clone()].iter().all(|&x| x == 0))
        );
        assert!(PreparedVector::new(&[]).is_empty());
        assert_eq!(p.to_words(), b);
    }

    #[test]
    fn gemv_matches_scalar_on_shapes() {
        let mut rng = rng();
        for cols in [0, 1, 15, 16, 17, 255, 256, 4095, 4096, 4097, 10_000] {
            for rows in [0, 1, 3, 4, 5, 33] {
                let d = d_with_edges(&mut rng, rows * cols);
                let b = vec_with_edges(&mut rng, cols);
                check(&d, rows, &b);
            }
        }
    }

    #[test]
    fn gemv_matches_scalar_on_extremes() {
        // All products at their extremes, long enough to need every widening: with `b` of
        // limbs −2^15 (`0x8000…`) and `D = −128`, each pair sum is +2^23.
        let cols = 70_001;
        for (dv, bv) in [
            (i8::MIN, 0x8000_8000_8000_8000),
            (i8::MIN, 1 << 63),
            (i8::MAX, u64::MAX),
            (i8::MIN, u64::MAX),
            (i8::MAX, 0x7fff_7fff_7fff_7fff),
            (-1, 0x8000),
        ] {
            let rows = 3;
            check(&vec![dv; rows * cols], rows, &vec![bv; cols]);
        }
        let mut rng = rng();
        let d = d_with_edges(&mut rng, 5 * 70_000);
        check(&d, 5, &vec_with_edges(&mut rng, 70_000));
    }

    #[test]
    fn gemm_batched_equals_single() {
        let mut rng = rng();
        for (rows, cols, nq) in [
            (0, 5, 3),
            (3, 0, 2),
            (5, 17, 3),
            (70, 4097, 4),
            (66, 300, 40),
        ] {
            let d = d_with_edges(&mut rng, rows * cols);
            let queries: Vec<PreparedVector> = (0..nq)
                .map(|_| PreparedVector::new(&vec_with_edges(&mut rng, cols)))
                .collect();
            let want: Vec<Vec<u64>> = queries.iter().map(|q| gemv_i8_u64(&d, rows, q)).collect();
            assert_eq!(
                par_gemm_i8_u64(&d, rows, &queries),
                want,
                "par {rows}×{cols}×{nq}"
            );
            for level in supported_simd_levels() {
                let got = at_level::gemm_i8_u64(level, &d, rows, &queries);
                assert_eq!(got, want, "{level:?} {rows}×{cols}×{nq}");
            }
        }
        assert!(par_gemm_i8_u64(&[], 0, &[]).is_empty());
    }

    #[test]
    fn par_gemm_splits_rows_like_serial() {
        let (rows, cols, nq) = (1000, 700, 2); // 1.4 MB × 2 queries: takes the parallel path
        let mut rng = rng();
        let d = d_with_edges(&mut rng, rows * cols);
        let bs: Vec<Vec<u64>> = (0..nq).map(|_| vec_with_edges(&mut rng, cols)).collect();
        let queries: Vec<PreparedVector> = bs.iter().map(|b| PreparedVector::new(b)).collect();
        let want: Vec<Vec<u64>> = bs.iter().map(|b| gemv_i8_u64_scalar(&d, rows, b)).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| par_gemm_i8_u64(&d, rows, &queries)), want);
        assert_eq!(par_gemm_i8_u64(&d, rows, &queries), want);
    }

    #[test]
    fn portable_path_matches_scalar() {
        // Runs even where the dispatched path is AVX2 (`check` covers it too, this is explicit).
        let mut rng = rng();
        for (rows, cols) in [(1, 1), (5, 17), (4, 4097), (3, 70_000)] {
            let d = d_with_edges(&mut rng, rows * cols);
            let b = vec_with_edges(&mut rng, cols);
            let got =
                at_level::gemv_i8_u64(SimdLevel::Baseline, &d, rows, &PreparedVector::new(&b));
            assert_eq!(got, gemv_i8_u64_scalar(&d, rows, &b), "{rows}×{cols}");
        }
    }

    #[test]
    #[should_panic(expected = "gemv_i8_u64: d has 10 elements, expected 3×3")]
    fn gemv_rejects_bad_shape() {
        gemv_i8_u64(&[0; 10], 3, &PreparedVector::new(&[1, 2, 3]));
    }

    #[test]
    #[should_panic(expected = "par_gemm_i8_u64: query 1 has 2 columns, query 0 has 3")]
    fn par_gemm_rejects_mixed_lengths() {
        let queries = [
            PreparedVector::new(&[1, 2, 3]),
            PreparedVector::new(&[1, 2]),
        ];
        par_gemm_i8_u64(&[0; 6], 2, &queries);
    }

    #[test]
    #[should_panic(expected = "gemv_i8_u64_scalar: d has 5 elements, expected 2×3")]
    fn scalar_rejects_bad_shape() {
        gemv_i8_u64_scalar(&[0; 5], 2, &[1, 2, 3]);
    }
}
