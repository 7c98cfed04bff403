//! Elementwise and reduction kernels over Z_2^64 (wrapping u64 arithmetic).
//! All slice arguments must have equal lengths (validated upstream); kernels panic otherwise.
//!
//! Each kernel is one `#[inline(always)]` plain loop (`*_body`) instantiated per
//! [`SimdLevel`](super::SimdLevel) and dispatched at run time (see [`super::simd`]);
//! [`at_level`] runs a kernel at an explicit level and [`super::scalar`] holds the references.

use super::simd::multiversion;

/// Independent accumulators of the reductions: 2 AVX2 vectors or 1 AVX-512 vector per step, so
/// the loop-carried add is not the bottleneck (wrapping add is associative, the result is exact).
const ACC: usize = 8;

#[inline(always)]
fn same_len(op: &str, left: usize, right: usize) {
    assert!(
        left == right,
        "{op}: slices have {left} and {right} elements"
    );
}

#[inline(always)]
fn add_assign_body(out: &mut [u64], a: &[u64]) {
    same_len("ring_add_assign", out.len(), a.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = o.wrapping_add(x);
    }
}

#[inline(always)]
fn sub_assign_body(out: &mut [u64], a: &[u64]) {
    same_len("ring_sub_assign", out.len(), a.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = o.wrapping_sub(x);
    }
}

#[inline(always)]
fn rsub_assign_body(out: &mut [u64], a: &[u64]) {
    same_len("ring_rsub_assign", out.len(), a.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = x.wrapping_sub(*o);
    }
}

#[inline(always)]
fn neg_assign_body(out: &mut [u64]) {
    for o in out.iter_mut() {
        *o = o.wrapping_neg();
    }
}

#[inline(always)]
fn mul_assign_body(out: &mut [u64], a: &[u64]) {
    same_len("ring_mul_assign", out.len(), a.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = o.wrapping_mul(x);
    }
}

#[inline(always)]
fn mul_add_assign_body(out: &mut [u64], a: &[u64], b: &[u64]) {
    same_len("ring_mul_add_assign", out.len(), a.len());
    same_len("ring_mul_add_assign", out.len(), b.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = o.wrapping_add(x.wrapping_mul(y));
    }
}

#[inline(always)]
fn scale_assign_body(out: &mut [u64], c: u64) {
    for o in out.iter_mut() {
        *o = o.wrapping_mul(c);
    }
}

#[inline(always)]
fn add_scalar_assign_body(out: &mut [u64], c: u64) {
    for o in out.iter_mut() {
        *o = o.wrapping_add(c);
    }
}

#[inline(always)]
fn dot_body(a: &[u64], b: &[u64]) -> u64 {
    same_len("ring_dot", a.len(), b.len());
    let (ac, ar) = a.as_chunks::<ACC>();
    let (bc, br) = b.as_chunks::<ACC>();
    let mut acc = [0u64; ACC];
    for (x, y) in ac.iter().zip(bc) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s = s.wrapping_add(x.wrapping_mul(y));
        }
    }
    let tail = ar
        .iter()
        .zip(br)
        .fold(0u64, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
    acc.iter().fold(tail, |s, &x| s.wrapping_add(x))
}

#[inline(always)]
fn sum_body(a: &[u64]) -> u64 {
    let (ac, ar) = a.as_chunks::<ACC>();
    let mut acc = [0u64; ACC];
    for x in ac {
        for (s, &x) in acc.iter_mut().zip(x) {
            *s = s.wrapping_add(x);
        }
    }
    let tail = ar.iter().fold(0u64, |s, &x| s.wrapping_add(x));
    acc.iter().fold(tail, |s, &x| s.wrapping_add(x))
}

/// `x0·(y0 + y1) + x1·y0`: the local part of a replicated product.
#[inline(always)]
fn cross(x0: u64, x1: u64, y0: u64, y1: u64) -> u64 {
    x0.wrapping_mul(y0.wrapping_add(y1))
        .wrapping_add(x1.wrapping_mul(y0))
}

#[inline(always)]
fn rep3_cross_add_assign_body(out: &mut [u64], x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) {
    let n = out.len();
    for len in [x0.len(), x1.len(), y0.len(), y1.len()] {
        same_len("rep3_cross_add_assign", n, len);
    }
    for ((((o, &a0), &a1), &b0), &b1) in out.iter_mut().zip(x0).zip(x1).zip(y0).zip(y1) {
        *o = o.wrapping_add(cross(a0, a1, b0, b1));
    }
}

#[inline(always)]
fn rep3_dot_cross_body(x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) -> u64 {
    let n = x0.len();
    for len in [x1.len(), y0.len(), y1.len()] {
        same_len("rep3_dot_cross", n, len);
    }
    let (x0c, x0r) = x0.as_chunks::<ACC>();
    let (x1c, x1r) = x1.as_chunks::<ACC>();
    let (y0c, y0r) = y0.as_chunks::<ACC>();
    let (y1c, y1r) = y1.as_chunks::<ACC>();
    let mut acc = [0u64; ACC];
    for (((a0, a1), b0), b1) in x0c.iter().zip(x1c).zip(y0c).zip(y1c) {
        for ((((s, &a0), &a1), &b0), &b1) in acc.iter_mut().zip(a0).zip(a1).zip(b0).zip(b1) {
            *s = s.wrapping_add(cross(a0, a1, b0, b1));
        }
    }
    let tail = x0r
        .iter()
        .zip(x1r)
        .zip(y0r)
        .zip(y1r)
        .fold(0u64, |s, (((&a0, &a1), &b0), &b1)| {
            s.wrapping_add(cross(a0, a1, b0, b1))
        });
    acc.iter().fold(tail, |s, &x| s.wrapping_add(x))
}

#[inline(always)]
fn shr_arith_assign_body(out: &mut [u64], d: u32) {
    assert!(d < 64, "ring_shr_arith_assign: shift {d} is not below 64");
    for o in out.iter_mut() {
        *o = ((*o as i64) >> d) as u64;
    }
}

multiversion! {
    fn ring_add_assign(out: &mut [u64], a: &[u64]) => add_assign_body;
    fn ring_sub_assign(out: &mut [u64], a: &[u64]) => sub_assign_body;
    fn ring_rsub_assign(out: &mut [u64], a: &[u64]) => rsub_assign_body;
    fn ring_neg_assign(out: &mut [u64]) => neg_assign_body;
    fn ring_mul_assign(out: &mut [u64], a: &[u64]) => mul_assign_body;
    fn ring_mul_add_assign(out: &mut [u64], a: &[u64], b: &[u64]) => mul_add_assign_body;
    fn ring_scale_assign(out: &mut [u64], c: u64) => scale_assign_body;
    fn ring_add_scalar_assign(out: &mut [u64], c: u64) => add_scalar_assign_body;
    fn ring_dot(a: &[u64], b: &[u64]) -> u64 => dot_body;
    fn ring_sum(a: &[u64]) -> u64 => sum_body;
    fn rep3_cross_add_assign(out: &mut [u64], x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64])
        => rep3_cross_add_assign_body;
    fn rep3_dot_cross(x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) -> u64
        => rep3_dot_cross_body;
    fn ring_shr_arith_assign(out: &mut [u64], d: u32) => shr_arith_assign_body;
}

/// `out[i] += a[i]`. Panics if lengths differ.
/// # Performance
/// Plain zipped loop; LLVM vectorises it (`vpaddq`: AVX2 4 lanes, AVX-512 8 lanes), unrolled ×4.
/// Memory-bound past L2.
pub fn ring_add_assign(out: &mut [u64], a: &[u64]) {
    ring_add_assign::dispatch(out, a)
}

/// `out[i] -= a[i]`. Panics if lengths differ.
/// # Performance
/// Plain zipped loop; LLVM vectorises it (`vpsubq`: AVX2 4 lanes, AVX-512 8 lanes), unrolled ×4.
/// Memory-bound past L2.
pub fn ring_sub_assign(out: &mut [u64], a: &[u64]) {
    ring_sub_assign::dispatch(out, a)
}

/// `out[i] = a[i] - out[i]` (reverse subtraction, saves a copy). Panics if lengths differ.
/// # Performance
/// Plain zipped loop; LLVM vectorises it (`vpsubq`: AVX2 4 lanes, AVX-512 8 lanes), unrolled ×4.
/// Memory-bound past L2.
pub fn ring_rsub_assign(out: &mut [u64], a: &[u64]) {
    ring_rsub_assign::dispatch(out, a)
}

/// `out[i] = -out[i]`.
/// # Performance
/// Plain loop; LLVM vectorises it as `0 - x` (`vpsubq` from a zeroed register). Memory-bound.
pub fn ring_neg_assign(out: &mut [u64]) {
    ring_neg_assign::dispatch(out)
}

/// `out[i] *= a[i]`. Panics if lengths differ.
/// # Performance
/// Plain zipped loop; LLVM vectorises it (AVX2: 4 lanes, 64-bit multiply emulated with three
/// `vpmuludq` + shifts; AVX-512DQ: 8 lanes, `vpmullq`). Memory-bound past L2.
pub fn ring_mul_assign(out: &mut [u64], a: &[u64]) {
    ring_mul_assign::dispatch(out, a)
}

/// `out[i] += a[i] * b[i]`. Panics if lengths differ.
/// # Performance
/// Plain zipped loop; LLVM vectorises it (AVX2: 4 lanes, 64-bit multiply emulated with three
/// `vpmuludq` + shifts, then `vpaddq`; AVX-512DQ: 8 lanes, `vpmullq`). Memory-bound past L2.
/// Bench: `kernels/mul_add`.
pub fn ring_mul_add_assign(out: &mut [u64], a: &[u64], b: &[u64]) {
    ring_mul_add_assign::dispatch(out, a, b)
}

/// `out[i] *= c`.
/// # Performance
/// Plain loop with a broadcast constant; LLVM vectorises it (AVX2: `vpmuludq` emulation with the
/// constant's halves hoisted; AVX-512DQ: `vpmullq`). Memory-bound past L2.
pub fn ring_scale_assign(out: &mut [u64], c: u64) {
    ring_scale_assign::dispatch(out, c)
}

/// `out[i] += c`.
/// # Performance
/// Plain loop with a broadcast constant; LLVM vectorises it (`vpaddq`). Memory-bound.
pub fn ring_add_scalar_assign(out: &mut [u64], c: u64) {
    ring_add_scalar_assign::dispatch(out, c)
}

/// `Σ a[i] * b[i]`. Panics if lengths differ.
/// # Performance
/// Eight independent accumulators over `as_chunks::<8>` (exact: wrapping add is associative);
/// LLVM keeps them in 2 `ymm` (AVX2, multiply emulated with `vpmuludq`) or 1 `zmm` (AVX-512DQ,
/// `vpmullq`) registers, then reduces horizontally once. Bench: `kernels/dot`.
pub fn ring_dot(a: &[u64], b: &[u64]) -> u64 {
    ring_dot::dispatch(a, b)
}

/// `Σ a[i]`.
/// # Performance
/// Eight independent accumulators as in [`ring_dot`]; LLVM emits `vpaddq` on 2 `ymm` / 1 `zmm`
/// registers. Memory-bound past L2.
pub fn ring_sum(a: &[u64]) -> u64 {
    ring_sum::dispatch(a)
}

/// Replicated cross terms: `out[i] += x0[i]·(y0[i] + y1[i]) + x1[i]·y0[i]`
/// (= x_i·y_i + x_i·y_{i+1} + x_{i+1}·y_i for P_i holding (x_i, x_{i+1}), (y_i, y_{i+1})).
/// Panics if lengths differ.
/// # Performance
/// Plain zipped loop over five slices, two multiplies per element; LLVM vectorises it (AVX2:
/// 4 lanes, `vpmuludq` emulation; AVX-512DQ: 8 lanes, `vpmullq`). Compute-bound on AVX2.
pub fn rep3_cross_add_assign(out: &mut [u64], x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) {
    rep3_cross_add_assign::dispatch(out, x0, x1, y0, y1)
}

/// Replicated cross terms summed: `Σ x0[i]·(y0[i] + y1[i]) + x1[i]·y0[i]`.
/// Panics if lengths differ.
/// # Performance
/// Eight independent accumulators as in [`ring_dot`], two multiplies per element (AVX2:
/// `vpmuludq` emulation; AVX-512DQ: `vpmullq`).
pub fn rep3_dot_cross(x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) -> u64 {
    rep3_dot_cross::dispatch(x0, x1, y0, y1)
}

/// `out[i] = (out[i] as i64 >> d) as u64`: arithmetic shift, i.e. floor division by 2^d of the
/// signed value (plaintext fixed-point rescale). Panics unless `d < 64` (a shift by 64 or more is
/// not a fixed-point rescale; callers validate `d` upstream).
/// # Performance
/// Plain loop with a uniform shift count; AVX-512 has `vpsravq`, AVX2 has no 64-bit arithmetic
/// shift and LLVM emulates it as `((x >>> d) ^ s) - s` with `s = 2^63 >>> d` (`vpsrlvq`,
/// `vpxor`, `vpsubq`). Memory-bound.
pub fn ring_shr_arith_assign(out: &mut [u64], d: u32) {
    ring_shr_arith_assign::dispatch(out, d)
}

/// The kernels of this module at an explicit [`SimdLevel`](super::SimdLevel), for tests and
/// benches comparing levels. Each panics if this CPU does not support the level.
pub mod at_level {
    pub use super::rep3_cross_add_assign::at as rep3_cross_add_assign;
    pub use super::rep3_dot_cross::at as rep3_dot_cross;
    pub use super::ring_add_assign::at as ring_add_assign;
    pub use super::ring_add_scalar_assign::at as ring_add_scalar_assign;
    pub use super::ring_dot::at as ring_dot;
    pub use super::ring_mul_add_assign::at as ring_mul_add_assign;
    pub use super::ring_mul_assign::at as ring_mul_assign;
    pub use super::ring_neg_assign::at as ring_neg_assign;
    pub use super::ring_rsub_assign::at as ring_rsub_assign;
    pub use super::ring_scale_assign::at as ring_scale_assign;
    pub use super::ring_shr_arith_assign::at as ring_shr_arith_assign;
    pub use super::ring_sub_assign::at as ring_sub_assign;
    pub use super::ring_sum::at as ring_sum;
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;
    use crate::kernels::scalar;
    use crate::kernels::simd::{SimdLevel, supported_simd_levels};
    use crate::kernels::test_support::{EDGES, rng, vec_with_edges};
    use rand::Rng;

    const LENS: [usize; 12] = [0, 1, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000];

    /// How a kernel is run: the scalar reference, the dispatched kernel, or one explicit level.
    #[derive(Clone, Copy, Debug)]
    enum Via {
        Scalar,
        Dispatch,
        At(SimdLevel),
    }

    macro_rules! call {
        ($via:expr, $kernel:ident($($arg:expr),* $(,)?)) => {
            match $via {
                Via::Scalar => scalar::$kernel($($arg),*),
                Via::Dispatch => super::$kernel($($arg),*),
                Via::At(level) => at_level::$kernel(level, $($arg),*),
            }
        };
    }

    /// Runs `run` via the scalar reference, the dispatched kernel and every supported level;
    /// all must agree bit for bit.
    fn check<T: PartialEq + Debug>(what: &str, run: impl Fn(Via) -> T) {
        let want = run(Via::Scalar);
        let levels = supported_simd_levels().into_iter().map(Via::At);
        for via in std::iter::once(Via::Dispatch).chain(levels) {
            assert_eq!(run(via), want, "{what} via {via:?}");
        }
    }

    /// Five operand vectors per case: random ones with edge values for every length in `LENS`,
    /// plus one case where (`[1]`, `[2]`) run through every pair of edge values.
    fn cases() -> Vec<[Vec<u64>; 5]> {
        let mut rng = rng();
        let mut cases: Vec<[Vec<u64>; 5]> = LENS
            .iter()
            .map(|&n| std::array::from_fn(|_| vec_with_edges(&mut rng, n)))
            .collect();
        let pairs = EDGES.len() * EDGES.len();
        let x: Vec<u64> = (0..pairs).map(|i| EDGES[i / EDGES.len()]).collect();
        let y: Vec<u64> = (0..pairs).map(|i| EDGES[i % EDGES.len()]).collect();
        cases.push([y.clone(), x.clone(), y.clone(), x, y]);
        cases
    }

    #[test]
    fn elementwise_kernels_match_scalar() {
        for [o, a, b, c, d] in &cases() {
            let n = o.len();
            let assign1 = |via: Via, which: usize| {
                let mut o = o.clone();
                match which {
                    0 => call!(via, ring_add_assign(&mut o, a)),
                    1 => call!(via, ring_sub_assign(&mut o, a)),
                    2 => call!(via, ring_rsub_assign(&mut o, a)),
                    3 => call!(via, ring_mul_assign(&mut o, a)),
                    _ => call!(via, ring_neg_assign(&mut o)),
                }
                o
            };
            for (which, name) in ["add", "sub", "rsub", "mul", "neg"].iter().enumerate() {
                check(&format!("ring_{name}_assign n={n}"), |via| {
                    assign1(via, which)
                });
            }
            check(&format!("ring_mul_add_assign n={n}"), |via| {
                let mut o = o.clone();
                call!(via, ring_mul_add_assign(&mut o, a, b));
                o
            });
            check(&format!("rep3_cross_add_assign n={n}"), |via| {
                let mut o = o.clone();
                call!(via, rep3_cross_add_assign(&mut o, a, b, c, d));
                o
            });
        }
    }

    #[test]
    fn scalar_operand_kernels_match_scalar() {
        let mut consts = EDGES.to_vec();
        consts.extend((0..4).map(|_| rng().random::<u64>()));
        for [o, ..] in &cases() {
            let n = o.len();
            for &k in &consts {
                check(&format!("ring_scale_assign n={n} c={k}"), |via| {
                    let mut o = o.clone();
                    call!(via, ring_scale_assign(&mut o, k));
                    o
                });
                check(&format!("ring_add_scalar_assign n={n} c={k}"), |via| {
                    let mut o = o.clone();
                    call!(via, ring_add_scalar_assign(&mut o, k));
                    o
                });
            }
            for d in 0..64 {
                check(&format!("ring_shr_arith_assign n={n} d={d}"), |via| {
                    let mut o = o.clone();
                    call!(via, ring_shr_arith_assign(&mut o, d));
                    o
                });
            }
        }
    }

    #[test]
    fn reductions_match_scalar() {
        for [a, b, c, d, _] in &cases() {
            let n = a.len();
            check(&format!("ring_dot n={n}"), |via| call!(via, ring_dot(a, b)));
            check(&format!("ring_sum n={n}"), |via| call!(via, ring_sum(a)));
            check(&format!("rep3_dot_cross n={n}"), |via| {
                call!(via, rep3_dot_cross(a, b, c, d))
            });
        }
    }

    #[test]
    fn shr_arith_is_floor_division() {
        let mut v = vec![u64::MAX, 1 << 63, 5, (-5i64) as u64, 0];
        ring_shr_arith_assign(&mut v, 1);
        assert_eq!(v, [u64::MAX, 0xC000_0000_0000_0000, 2, (-3i64) as u64, 0]);
        let mut v = vec![1 << 63, (1 << 63) - 1];
        ring_shr_arith_assign(&mut v, 63);
        assert_eq!(v, [u64::MAX, 0]);
    }

    #[test]
    fn rep3_cross_terms_reconstruct_product() {
        // Three parties' cross terms sum to x·y (x = x0+x1+x2, y = y0+y1+y2).
        let mut rng = rng();
        let n = 65;
        let xs: [Vec<u64>; 3] = std::array::from_fn(|_| vec_with_edges(&mut rng, n));
        let ys: [Vec<u64>; 3] = std::array::from_fn(|_| vec_with_edges(&mut rng, n));
        let mut z = vec![0u64; n];
        let mut dots = 0u64;
        for i in 0..3 {
            let j = (i + 1) % 3;
            rep3_cross_add_assign(&mut z, &xs[i], &xs[j], &ys[i], &ys[j]);
            dots = dots.wrapping_add(rep3_dot_cross(&xs[i], &xs[j], &ys[i], &ys[j]));
        }
        let sum3 =
            |v: &[Vec<u64>; 3], e: usize| v[0][e].wrapping_add(v[1][e]).wrapping_add(v[2][e]);
        let want: Vec<u64> = (0..n)
            .map(|e| sum3(&xs, e).wrapping_mul(sum3(&ys, e)))
            .collect();
        assert_eq!(z, want);
        assert_eq!(dots, ring_sum(&want));
    }

    #[test]
    #[should_panic(expected = "ring_mul_add_assign: slices have 3 and 2 elements")]
    fn mul_add_rejects_length_mismatch() {
        ring_mul_add_assign(&mut [0; 3], &[0; 3], &[0; 2]);
    }

    #[test]
    #[should_panic(expected = "ring_shr_arith_assign: shift 64 is not below 64")]
    fn shr_arith_rejects_shift_64() {
        ring_shr_arith_assign(&mut [1], 64);
    }
}
