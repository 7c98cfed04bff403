//! Batched local terms of replicated-share products: the row-wise dot products and the fused
//! matrix product of [`crate::protocols::mul`], and the AND layers of the comparison circuits
//! ([`crate::protocols::boolean`]).
//!
//! These are the CPU twins of the GPU kernels (`crate::gpu`, feature `gpu`): each GPU kernel has
//! exactly the signature of the function here and equals it bit for bit.
//!
//! P_i holds (x_i, x_{i+1}) as `(x0, x1)` and (y_i, y_{i+1}) as `(y0, y1)`. The local term of a
//! product is z_i = x_i·y_i + x_i·y_{i+1} + x_{i+1}·y_i = x0·(y0 + y1) + x1·y0 (Araki et al.,
//! CCS 2016, §2.2); the three parties' terms cover all nine x_j·y_k exactly once. Over Z_2 (XOR
//! shares, 64 lanes per word) the same formula reads z = (x0 ∧ (y0 ⊕ y1)) ⊕ (x1 ∧ y0).
//! `out` holds the party's zero-sharing mask α_i on entry (from `PartyCtx::zero_share`), so
//! adding the terms into it is the mask add of the reshare, fused.

use super::{par_gemm_u64_add_assign, rep3_dot_cross, ring_add_assign};

/// Panics unless `len == rows · cols`: the contract of the replicated kernels and their GPU
/// twins (shapes are validated upstream, so a mismatch is a bug in the caller).
pub(crate) fn check_shape(op: &str, name: &str, len: usize, rows: usize, cols: usize) {
    assert!(
        rows.checked_mul(cols) == Some(len),
        "{op}: {name} has {len} elements, expected {rows}×{cols}"
    );
}

/// Panics unless every one of `lens` is `n` (the elementwise kernels' contract).
pub(crate) fn check_lens(op: &str, n: usize, lens: [usize; 4]) {
    for len in lens {
        assert!(len == n, "{op}: slices have {n} and {len} elements");
    }
}

/// The contract of [`rep3_and_prefix_xor_assign`] and its GPU twin: `k < 64`, equal input
/// lengths `n`, and `out` of `n` (or `2n` with `with_p`) words.
pub(crate) fn check_and_prefix(k: u32, with_p: bool, out: usize, lens: [usize; 4]) {
    const OP: &str = "rep3_and_prefix_xor_assign";
    assert!(k < 64, "{OP}: shift {k} is not below 64");
    let n = lens[0];
    check_lens(OP, n, lens);
    let want = if with_p { 2 * n } else { n };
    assert!(out == want, "{OP}: out has {out} elements, expected {want}");
}

/// Row-wise replicated dot products: `out[r] += Σ_j x0[r,j]·(y0[r,j] + y1[r,j]) + x1[r,j]·y0[r,j]`
/// for `out.len()` rows of `cols` columns (row-major). Panics if a slice is not `out.len() × cols`.
/// # Performance
/// One [`rep3_dot_cross`] per row (eight accumulators, SIMD-dispatched). Bench: `gpu/dot`.
pub fn rep3_dot_rows_add_assign(
    cols: usize,
    out: &mut [u64],
    x0: &[u64],
    x1: &[u64],
    y0: &[u64],
    y1: &[u64],
) {
    let rows = out.len();
    for (name, len) in [
        ("x0", x0.len()),
        ("x1", x1.len()),
        ("y0", y0.len()),
        ("y1", y1.len()),
    ] {
        check_shape("rep3_dot_rows_add_assign", name, len, rows, cols);
    }
    if cols == 0 {
        return;
    }
    for (r, o) in out.iter_mut().enumerate() {
        let s = r * cols..(r + 1) * cols;
        let t = rep3_dot_cross(&x0[s.clone()], &x1[s.clone()], &y0[s.clone()], &y1[s]);
        *o = o.wrapping_add(t);
    }
}

/// Replicated matrix product terms: `out += x0·(y0 + y1) + x1·y0` with `x` m×k, `y` k×n, `out`
/// m×n, all row-major. Panics if a slice does not match its dimensions.
/// # Performance
/// One elementwise sum `y0 + y1` (k·n), then two [`par_gemm_u64_add_assign`]. Bench: `gpu/matmul`.
pub fn rep3_matmul_add_assign(
    (m, k, n): (usize, usize, usize),
    x0: &[u64],
    x1: &[u64],
    y0: &[u64],
    y1: &[u64],
    out: &mut [u64],
) {
    assert_eq!(
        y0.len(),
        y1.len(),
        "rep3_matmul_add_assign: y0 and y1 differ in length"
    );
    let mut y_sum = y0.to_vec();
    ring_add_assign(&mut y_sum, y1);
    par_gemm_u64_add_assign(m, k, n, x0, &y_sum, out);
    par_gemm_u64_add_assign(m, k, n, x1, y0, out);
}

#[inline(always)]
fn and_cross(a0: u64, a1: u64, b0: u64, b1: u64) -> u64 {
    (a0 & (b0 ^ b1)) ^ (a1 & b0)
}

/// AND gates of XOR shares, 64 per word: `out[i] ^= (a0[i] ∧ (b0[i] ⊕ b1[i])) ⊕ (a1[i] ∧ b0[i])`.
/// Panics if lengths differ.
/// # Performance
/// Plain zipped loop; LLVM vectorises it (`vpand`/`vpxor`). Memory-bound. Bench: `gpu/and`.
pub fn rep3_and_cross_xor_assign(out: &mut [u64], a0: &[u64], a1: &[u64], b0: &[u64], b1: &[u64]) {
    let lens = [a0.len(), a1.len(), b0.len(), b1.len()];
    check_lens("rep3_and_cross_xor_assign", out.len(), lens);
    for ((((o, &x0), &x1), &y0), &y1) in out.iter_mut().zip(a0).zip(a1).zip(b0).zip(b1) {
        *o ^= and_cross(x0, x1, y0, y1);
    }
}

/// One level of a parallel-prefix carry computation (Kogge–Stone over 64 bit lanes): the `n`
/// gates P ∧ (G ≪ k) into `out[..n]`, then, when `with_p`, the `n` gates P ∧ (P ≪ k) into
/// `out[n..2n]`, where `n = p0.len()`; each gate as in [`rep3_and_cross_xor_assign`] (XORed into
/// `out`). Panics unless `k < 64`, the four inputs have equal lengths and `out` has `n` (or `2n`)
/// words.
/// # Performance
/// Two plain loops; LLVM vectorises them (`vpsllq`, `vpand`, `vpxor`). Memory-bound.
pub fn rep3_and_prefix_xor_assign(
    k: u32,
    with_p: bool,
    out: &mut [u64],
    p0: &[u64],
    p1: &[u64],
    g0: &[u64],
    g1: &[u64],
) {
    let n = p0.len();
    check_and_prefix(k, with_p, out.len(), [n, p1.len(), g0.len(), g1.len()]);
    let (zg, zp) = out.split_at_mut(n);
    for (j, z) in zg.iter_mut().enumerate() {
        *z ^= and_cross(p0[j], p1[j], g0[j] << k, g1[j] << k);
    }
    for (j, z) in zp.iter_mut().enumerate() {
        *z ^= and_cross(p0[j], p1[j], p0[j] << k, p1[j] << k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::scalar;
    use crate::kernels::test_support::{rng, vec_with_edges};

    #[test]
    fn dot_rows_matches_reference() {
        let mut rng = rng();
        for (rows, cols) in [(0, 0), (0, 5), (3, 0), (1, 1), (7, 13), (10, 384)] {
            let v = |rng: &mut _| vec_with_edges(rng, rows * cols);
            let (x0, x1, y0, y1) = (v(&mut rng), v(&mut rng), v(&mut rng), v(&mut rng));
            let start = vec_with_edges(&mut rng, rows);
            let mut got = start.clone();
            rep3_dot_rows_add_assign(cols, &mut got, &x0, &x1, &y0, &y1);
            let want: Vec<u64> = (0..rows)
                .map(|r| {
                    let s = r * cols..(r + 1) * cols;
                    let t = scalar::rep3_dot_cross(
                        &x0[s.clone()],
                        &x1[s.clone()],
                        &y0[s.clone()],
                        &y1[s],
                    );
                    start[r].wrapping_add(t)
                })
                .collect();
            assert_eq!(got, want, "{rows}×{cols}");
        }
    }

    #[test]
    fn matmul_matches_naive() {
        let mut rng = rng();
        for (m, k, n) in [(0, 0, 0), (1, 1, 1), (3, 5, 7), (17, 9, 1), (20, 33, 65)] {
            let x0 = vec_with_edges(&mut rng, m * k);
            let x1 = vec_with_edges(&mut rng, m * k);
            let y0 = vec_with_edges(&mut rng, k * n);
            let y1 = vec_with_edges(&mut rng, k * n);
            let start = vec_with_edges(&mut rng, m * n);
            let mut got = start.clone();
            rep3_matmul_add_assign((m, k, n), &x0, &x1, &y0, &y1, &mut got);
            let mut want = start;
            let y_sum: Vec<u64> = y0
                .iter()
                .zip(&y1)
                .map(|(a, b)| a.wrapping_add(*b))
                .collect();
            scalar::gemm_u64_add_assign(m, k, n, &x0, &y_sum, &mut want);
            scalar::gemm_u64_add_assign(m, k, n, &x1, &y0, &mut want);
            assert_eq!(got, want, "{m}×{k}×{n}");
        }
    }

    #[test]
    fn and_layers_match_bitwise_definition() {
        let mut rng = rng();
        for n in [0, 1, 2, 63, 64, 65, 1000] {
            let v = |rng: &mut _| vec_with_edges(rng, n);
            let (a0, a1, b0, b1) = (v(&mut rng), v(&mut rng), v(&mut rng), v(&mut rng));
            let start = vec_with_edges(&mut rng, 2 * n);
            let mut got = start[..n].to_vec();
            rep3_and_cross_xor_assign(&mut got, &a0, &a1, &b0, &b1);
            for i in 0..n {
                // x0·y0 ⊕ x0·y1 ⊕ x1·y0, term by term.
                let t = (a0[i] & b0[i]) ^ (a0[i] & b1[i]) ^ (a1[i] & b0[i]);
                assert_eq!(got[i], start[i] ^ t, "and n={n} i={i}");
            }
            for (k, with_p) in [(0, true), (1, false), (5, true), (63, true)] {
                let mut got = start[..if with_p { 2 * n } else { n }].to_vec();
                rep3_and_prefix_xor_assign(k, with_p, &mut got, &a0, &a1, &b0, &b1);
                let mut want = start[..got.len()].to_vec();
                let (g0, g1): (Vec<u64>, Vec<u64>) =
                    b0.iter().zip(&b1).map(|(x, y)| (x << k, y << k)).unzip();
                rep3_and_cross_xor_assign(&mut want[..n], &a0, &a1, &g0, &g1);
                if with_p {
                    let (q0, q1): (Vec<u64>, Vec<u64>) =
                        a0.iter().zip(&a1).map(|(x, y)| (x << k, y << k)).unzip();
                    rep3_and_cross_xor_assign(&mut want[n..], &a0, &a1, &q0, &q1);
                }
                assert_eq!(got, want, "prefix n={n} k={k} with_p={with_p}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "rep3_dot_rows_add_assign: y1 has 5 elements, expected 2×3")]
    fn dot_rows_rejects_bad_shape() {
        rep3_dot_rows_add_assign(3, &mut [0; 2], &[0; 6], &[0; 6], &[0; 6], &[0; 5]);
    }

    #[test]
    #[should_panic(expected = "rep3_and_prefix_xor_assign: out has 3 elements, expected 6")]
    fn prefix_rejects_bad_out() {
        rep3_and_prefix_xor_assign(1, true, &mut [0; 3], &[0; 3], &[0; 3], &[0; 3], &[0; 3]);
    }
}
