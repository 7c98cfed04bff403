//! Replicated matrix-product terms over Z_2^32 whose operands may be streamed: the local work
//! of a mod-2^32 matrix product ([`crate::sharing::compact`]) where a component is explicit
//! words or a seeded PRG stream that is never expanded whole.
//!
//! P_i holds (X_i, X_{i+1}) and (Y_i, Y_{i+1}); its term of Z = X·Y is
//! Z_i = X_i·(Y_i + Y_{i+1}) + X_{i+1}·Y_i (mod 2^32) (Araki et al., CCS 2016, §2.2, as in
//! [`super::rep3_matmul_add_assign`]); the three parties' terms cover all nine X_j·Y_k once.
//!
//! # Streaming
//! A component is a [`Src32`]: a slice, or a [`Words32`] stream that writes any range of its
//! words into a buffer (a seeded component expands its keystream there). The kernel keeps one
//! operand whole and streams the other through bounded per-thread scratch:
//! - *row mode*: Y (and Y_i + Y_{i+1}) whole, X streamed in chunks of rows ([`SCRATCH`] words
//!   per component), rayon over the chunks, each writing its own rows of `out`;
//! - *inner mode*: X whole, Y streamed in chunks of rows (the inner dimension), rayon over one
//!   contiguous range of chunks per thread, each into its own m×n accumulator, summed at the end.
//!
//! It picks the mode that materialises fewer words (an explicit component costs nothing to
//! keep whole): for scores `E·q` (E seeded, huge; q small) row mode, for the fetch `onehot·T`
//! (T seeded, huge; the one-hot rows few) inner mode. Wrapping addition is associative and
//! commutative, so every chunking equals the naive triple loop bit for bit.

use rayon::prelude::*;

use super::rep3::check_shape;
use super::simd::multiversion;

/// Words of a streamed component per chunk (per thread): 64 KiB, stays in L2 beside the other
/// component's chunk.
pub const SCRATCH: usize = 1 << 14;
/// Below this many multiply-adds (`m·k·n`) the kernel runs on the calling thread.
const PAR_MIN_WORK: u128 = 1 << 18;
/// Independent accumulators of the dot products (two AVX2 vectors of u32).
const ACC: usize = 16;

/// A component the kernel reads in ranges, produced on demand (e.g. a seeded keystream).
pub trait Words32: Sync {
    /// Number of words.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Words `start..start + out.len()` into `out` (the caller keeps the range in bounds).
    fn read_into(&self, start: usize, out: &mut [u32]);
}

/// One component of an operand: words in memory or a stream.
#[derive(Clone, Copy)]
pub enum Src32<'a> {
    /// Words in memory (read in place).
    Slice(&'a [u32]),
    /// Words produced on demand, a bounded chunk at a time.
    Stream(&'a dyn Words32),
}

impl Src32<'_> {
    /// Number of words.
    pub fn len(&self) -> usize {
        match self {
            Src32::Slice(s) => s.len(),
            Src32::Stream(s) => s.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Words `start..start + len`: borrowed from a slice, or read into `buf` (resized).
    fn read<'b>(&'b self, start: usize, len: usize, buf: &'b mut Vec<u32>) -> &'b [u32] {
        match self {
            Src32::Slice(s) => &s[start..start + len],
            Src32::Stream(s) => {
                buf.resize(len, 0);
                s.read_into(start, buf);
                buf
            }
        }
    }

    /// Words to keep whole if this source is the one materialised.
    fn whole_cost(&self) -> u128 {
        match self {
            Src32::Slice(_) => 0,
            Src32::Stream(s) => s.len() as u128,
        }
    }
}

/// `o[t] += a·p[t] + b·q[t]` (mod 2^32).
#[inline(always)]
fn axpy2(o: &mut [u32], a: u32, p: &[u32], b: u32, q: &[u32]) {
    for ((o, &p), &q) in o.iter_mut().zip(p).zip(q) {
        *o = o
            .wrapping_add(a.wrapping_mul(p))
            .wrapping_add(b.wrapping_mul(q));
    }
}

/// `Σ_t x[t]·p[t] + y[t]·q[t]` (mod 2^32), [`ACC`] independent accumulators.
#[inline(always)]
fn dot2(x: &[u32], p: &[u32], y: &[u32], q: &[u32]) -> u32 {
    let (xc, xr) = x.as_chunks::<ACC>();
    let (pc, pr) = p.as_chunks::<ACC>();
    let (yc, yr) = y.as_chunks::<ACC>();
    let (qc, qr) = q.as_chunks::<ACC>();
    let mut acc = [0u32; ACC];
    for (((x, p), y), q) in xc.iter().zip(pc).zip(yc).zip(qc) {
        for l in 0..ACC {
            acc[l] = acc[l]
                .wrapping_add(x[l].wrapping_mul(p[l]))
                .wrapping_add(y[l].wrapping_mul(q[l]));
        }
    }
    let mut s = acc.iter().fold(0u32, |s, &v| s.wrapping_add(v));
    for (((x, p), y), q) in xr.iter().zip(pr).zip(yr).zip(qr) {
        s = s
            .wrapping_add(x.wrapping_mul(*p))
            .wrapping_add(y.wrapping_mul(*q));
    }
    s
}

/// Row mode on one chunk: `out` (rows × n) += x0·ys + x1·y0 for the chunk's rows `x0`, `x1`
/// (rows × k) and the whole `ys` = y0 + y1 and `y0` (k × n).
#[inline(always)]
fn rows_body(
    (k, n): (usize, usize),
    [x0, x1]: [&[u32]; 2],
    ys: &[u32],
    y0: &[u32],
    out: &mut [u32],
) {
    if n == 1 {
        for ((o, a), b) in out
            .iter_mut()
            .zip(x0.chunks_exact(k))
            .zip(x1.chunks_exact(k))
        {
            *o = o.wrapping_add(dot2(a, ys, b, y0));
        }
        return;
    }
    for ((o, a), b) in out
        .chunks_exact_mut(n)
        .zip(x0.chunks_exact(k))
        .zip(x1.chunks_exact(k))
    {
        for (j, (p, q)) in ys.chunks_exact(n).zip(y0.chunks_exact(n)).enumerate() {
            axpy2(o, a[j], p, b[j], q);
        }
    }
}

/// Inner mode on one chunk of Y's rows `j0..j0 + rows`: `acc` (m × n) += X0[:, J]·ys + X1[:, J]·y0
/// with `x0`, `x1` the whole m × k components of X and `ys`, `y0` the chunk (rows × n).
#[inline(always)]
fn inner_body(
    (k, n, j0): (usize, usize, usize),
    [x0, x1]: [&[u32]; 2],
    ys: &[u32],
    y0: &[u32],
    acc: &mut [u32],
) {
    for ((o, a), b) in acc
        .chunks_exact_mut(n)
        .zip(x0.chunks_exact(k))
        .zip(x1.chunks_exact(k))
    {
        let (a, b) = (&a[j0..], &b[j0..]);
        for (j, (p, q)) in ys.chunks_exact(n).zip(y0.chunks_exact(n)).enumerate() {
            axpy2(o, a[j], p, b[j], q);
        }
    }
}

/// `o[t] += a[t]` (mod 2^32).
#[inline(always)]
fn add_body(o: &mut [u32], a: &[u32]) {
    for (o, &a) in o.iter_mut().zip(a) {
        *o = o.wrapping_add(a);
    }
}

multiversion! {
    fn rows32(kn: (usize, usize), x: [&[u32]; 2], ys: &[u32], y0: &[u32], out: &mut [u32])
        => rows_body;
    fn inner32(knj: (usize, usize, usize), x: [&[u32]; 2], ys: &[u32], y0: &[u32],
        acc: &mut [u32]) => inner_body;
    fn add32(o: &mut [u32], a: &[u32]) => add_body;
}

/// Replicated matrix-product terms mod 2^32: `out += x0·(y0 + y1) + x1·y0` with `x` m×k, `y`
/// k×n, `out` m×n, all row-major, any component a slice or a stream. Panics if a component or
/// `out` does not match its dimensions (shapes are validated upstream).
/// # Performance
/// Streams the operand that would cost more to keep whole in chunks of [`SCRATCH`] words (see
/// the module docs), rayon over the chunks above 2^18 multiply-adds. Inner loops are `u32`
/// wrapping multiply-adds over contiguous words (AVX2 `vpmulld`, 8 lanes; AVX-512 16): a dot
/// product per row for n = 1, `out_row += a·p + b·q` otherwise. A seeded operand is bound by
/// its AES-CTR expansion. Bench: `kernels/gemm32`.
pub fn rep3_matmul32_add_assign(
    (m, k, n): (usize, usize, usize),
    x0: Src32,
    x1: Src32,
    y0: Src32,
    y1: Src32,
    out: &mut [u32],
) {
    const OP: &str = "rep3_matmul32_add_assign";
    check_shape(OP, "x0", x0.len(), m, k);
    check_shape(OP, "x1", x1.len(), m, k);
    check_shape(OP, "y0", y0.len(), k, n);
    check_shape(OP, "y1", y1.len(), k, n);
    check_shape(OP, "out", out.len(), m, n);
    let work = m as u128 * k as u128 * n as u128;
    let par = work >= PAR_MIN_WORK && rayon::current_num_threads() > 1;
    // Row mode keeps Y whole plus Y_i + Y_{i+1}; inner mode keeps X whole plus one m×n
    // accumulator per thread.
    let row_cost = y0.whole_cost() + (k * n) as u128;
    let threads = if par { rayon::current_num_threads() } else { 1 };
    let inner_cost = x0.whole_cost() + x1.whole_cost() + (threads * m * n) as u128;
    if row_cost <= inner_cost {
        row_mode((m, k, n), [x0, x1], [y0, y1], out, par);
    } else {
        inner_mode((m, k, n), [x0, x1], [y0, y1], out, threads);
    }
}

/// A stream of zeros (the missing components of a plain product).
struct Zeros(usize);

impl Words32 for Zeros {
    fn len(&self) -> usize {
        self.0
    }

    fn read_into(&self, _: usize, out: &mut [u32]) {
        out.fill(0);
    }
}

/// Plain matrix product mod 2^32: `out += x·y` with `x` m×k, `y` k×n, `out` m×n (row-major),
/// either operand a slice or a stream, e.g. one component times public words. Panics if a slice
/// does not match its dimensions.
/// # Performance
/// [`rep3_matmul32_add_assign`] with zero second components (`x·(y + 0) + 0·y`): twice the
/// multiply-adds of a dedicated GEMM, for the rare products with a public operand.
pub fn matmul32_add_assign((m, k, n): (usize, usize, usize), x: Src32, y: Src32, out: &mut [u32]) {
    let (zx, zy) = (Zeros(x.len()), Zeros(y.len()));
    rep3_matmul32_add_assign((m, k, n), x, Src32::Stream(&zx), y, Src32::Stream(&zy), out);
}

/// Y whole, X streamed by row chunks.
fn row_mode(
    (m, k, n): (usize, usize, usize),
    [x0, x1]: [Src32; 2],
    [y0, y1]: [Src32; 2],
    out: &mut [u32],
    par: bool,
) {
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    let y0w = y0.read(0, k * n, &mut b0);
    let mut ys = y1.read(0, k * n, &mut b1).to_vec();
    add32::dispatch(&mut ys, y0w);
    let rows = (SCRATCH / k).max(1);
    let chunk = |(c, o): (usize, &mut [u32])| {
        let (r0, r) = (c * rows, o.len() / n);
        let (mut s0, mut s1) = (Vec::new(), Vec::new());
        let a = x0.read(r0 * k, r * k, &mut s0);
        let b = x1.read(r0 * k, r * k, &mut s1);
        rows32::dispatch((k, n), [a, b], &ys, y0w, o);
    };
    debug_assert_eq!(out.len(), m * n);
    if par {
        out.par_chunks_mut(rows * n).enumerate().for_each(chunk);
    } else {
        out.chunks_mut(rows * n).enumerate().for_each(chunk);
    }
}

/// X whole, Y streamed by chunks of its rows, one contiguous range of chunks per thread.
fn inner_mode(
    (m, k, n): (usize, usize, usize),
    [x0, x1]: [Src32; 2],
    [y0, y1]: [Src32; 2],
    out: &mut [u32],
    threads: usize,
) {
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    let x0w = x0.read(0, m * k, &mut b0);
    let x1w = x1.read(0, m * k, &mut b1);
    let rows = (SCRATCH / n).max(1);
    let per_thread = k.div_ceil(threads).max(1);
    let part = |t: usize, acc: &mut [u32]| {
        let (mut s0, mut s1) = (Vec::new(), Vec::new());
        let end = ((t + 1) * per_thread).min(k);
        let mut j0 = t * per_thread;
        while j0 < end {
            let r = rows.min(end - j0);
            let q = y0.read(j0 * n, r * n, &mut s0);
            let mut p = y1.read(j0 * n, r * n, &mut s1).to_vec();
            add32::dispatch(&mut p, q);
            inner32::dispatch((k, n, j0), [x0w, x1w], &p, q, acc);
            j0 += r;
        }
    };
    if threads == 1 {
        return part(0, out);
    }
    let parts: Vec<Vec<u32>> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut acc = vec![0u32; m * n];
            part(t, &mut acc);
            acc
        })
        .collect();
    for acc in &parts {
        add32::dispatch(out, acc);
    }
}

/// The kernel bodies at an explicit [`SimdLevel`](super::SimdLevel), for tests comparing levels.
#[cfg(test)]
mod at_level {
    pub(super) use super::inner32::at as inner32;
    pub(super) use super::rows32::at as rows32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::supported_simd_levels;
    use crate::kernels::test_support::rng;
    use rand::Rng;

    /// A stream over words in memory, read in ranges (stands in for a seeded component).
    struct Streamed(Vec<u32>);

    impl Words32 for Streamed {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn read_into(&self, start: usize, out: &mut [u32]) {
            out.copy_from_slice(&self.0[start..start + out.len()]);
        }
    }

    fn words(rng: &mut impl Rng, n: usize) -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).map(|_| rng.random()).collect();
        for (x, e) in v.iter_mut().zip([u32::MAX, 1 << 31, 0, 1]) {
            *x = e;
        }
        v
    }

    /// Naive `out += x0·(y0 + y1) + x1·y0`, term by term.
    fn reference((m, k, n): (usize, usize, usize), [x0, x1, y0, y1]: [&[u32]; 4], out: &mut [u32]) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0u32;
                for p in 0..k {
                    let (a, b) = (x0[i * k + p], x1[i * k + p]);
                    let (c, d) = (y0[p * n + j], y1[p * n + j]);
                    s = s
                        .wrapping_add(a.wrapping_mul(c))
                        .wrapping_add(a.wrapping_mul(d))
                        .wrapping_add(b.wrapping_mul(c));
                }
                out[i * n + j] = out[i * n + j].wrapping_add(s);
            }
        }
    }

    fn check(dims: (usize, usize, usize)) {
        let (m, k, n) = dims;
        let mut rng = rng();
        let xs = [words(&mut rng, m * k), words(&mut rng, m * k)];
        let ys = [words(&mut rng, k * n), words(&mut rng, k * n)];
        let start = words(&mut rng, m * n);
        let mut want = start.clone();
        reference(dims, [&xs[0], &xs[1], &ys[0], &ys[1]], &mut want);
        let streams = [&xs[0], &xs[1], &ys[0], &ys[1]].map(|w| Streamed(w.clone()));
        // Every combination of slice / stream components.
        for mask in 0..16u32 {
            let pick = |i: usize| -> Src32<'_> {
                if mask >> i & 1 == 1 {
                    Src32::Stream(&streams[i])
                } else {
                    Src32::Slice([&xs[0], &xs[1], &ys[0], &ys[1]][i])
                }
            };
            let mut got = start.clone();
            rep3_matmul32_add_assign(dims, pick(0), pick(1), pick(2), pick(3), &mut got);
            assert_eq!(got, want, "{m}×{k}×{n}, streams {mask:04b}");
        }
        // Both modes on their own, at every SIMD level, and on a 3-thread pool.
        let all = [0, 1, 2, 3].map(|i| Src32::Stream(&streams[i]));
        let mut got = start.clone();
        row_mode(dims, [all[0], all[1]], [all[2], all[3]], &mut got, false);
        assert_eq!(got, want, "row mode {m}×{k}×{n}");
        let mut got = start.clone();
        inner_mode(dims, [all[0], all[1]], [all[2], all[3]], &mut got, 1);
        assert_eq!(got, want, "inner mode {m}×{k}×{n}");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let mut got = start.clone();
            row_mode(dims, [all[0], all[1]], [all[2], all[3]], &mut got, true);
            assert_eq!(got, want, "par row mode {m}×{k}×{n}");
            let mut got = start.clone();
            inner_mode(dims, [all[0], all[1]], [all[2], all[3]], &mut got, 3);
            assert_eq!(got, want, "par inner mode {m}×{k}×{n}");
        });
        if m > 0 && k > 0 && n > 0 {
            let mut ysum = ys[1].clone();
            add_body(&mut ysum, &ys[0]);
            for level in supported_simd_levels() {
                let mut got = start.clone();
                at_level::rows32(level, (k, n), [&xs[0], &xs[1]], &ysum, &ys[0], &mut got);
                assert_eq!(got, want, "{level:?} rows {m}×{k}×{n}");
                let mut got = start.clone();
                at_level::inner32(level, (k, n, 0), [&xs[0], &xs[1]], &ysum, &ys[0], &mut got);
                assert_eq!(got, want, "{level:?} inner {m}×{k}×{n}");
            }
        }
    }

    #[test]
    fn matmul32_matches_reference() {
        for dims in [
            (0, 0, 0),
            (0, 3, 4),
            (3, 0, 4),
            (3, 4, 0),
            (1, 1, 1),
            (3, 5, 7),
            (17, 15, 1),
            (17, 16, 1),
            (33, 17, 1),
            (2, 300, 65),
            (5, 20_000, 2),
            (300, 384, 1),
            (40, 1000, 1),
        ] {
            check(dims);
        }
    }

    #[test]
    fn large_products_take_the_parallel_paths() {
        // Scores (E·q: row mode, E streamed) and a fetch (onehot·T: inner mode, T streamed).
        for dims in [(3000, 96, 1), (4, 9000, 40)] {
            check(dims);
        }
    }

    #[test]
    fn plain_product_matches_reference() {
        let mut rng = rng();
        for (m, k, n) in [(0, 2, 3), (3, 5, 7), (40, 30, 1), (2, 100, 9)] {
            let (x, y) = (words(&mut rng, m * k), words(&mut rng, k * n));
            let zero = (vec![0u32; m * k], vec![0u32; k * n]);
            let mut want = words(&mut rng, m * n);
            let mut got = want.clone();
            reference((m, k, n), [&x, &zero.0, &y, &zero.1], &mut want);
            let ys = Streamed(y.clone());
            matmul32_add_assign((m, k, n), Src32::Slice(&x), Src32::Stream(&ys), &mut got);
            assert_eq!(got, want, "{m}×{k}×{n}");
        }
    }

    #[test]
    #[should_panic(expected = "rep3_matmul32_add_assign: y1 has 5 elements, expected 2×3")]
    fn matmul32_rejects_bad_shape() {
        let (x, y, y1) = ([0u32; 2], [0u32; 6], [0u32; 5]);
        rep3_matmul32_add_assign(
            (1, 2, 3),
            Src32::Slice(&x),
            Src32::Slice(&x),
            Src32::Slice(&y),
            Src32::Slice(&y1),
            &mut [0; 3],
        );
    }
}
