//! Scalar references of every kernel: the obvious one-element-at-a-time code, written for clarity,
//! not speed. The dispatched kernels must equal these bit for bit (tests check it); the bench
//! `kernels/gemm` uses [`gemm_u64_add_assign`] as its `naive` baseline.

// Indexed loops on purpose: the references should read like the formulas.
#![allow(clippy::needless_range_loop)]

/// Reference of [`super::ring_add_assign`].
pub fn ring_add_assign(out: &mut [u64], a: &[u64]) {
    assert_eq!(out.len(), a.len());
    for i in 0..out.len() {
        out[i] = out[i].wrapping_add(a[i]);
    }
}

/// Reference of [`super::ring_sub_assign`].
pub fn ring_sub_assign(out: &mut [u64], a: &[u64]) {
    assert_eq!(out.len(), a.len());
    for i in 0..out.len() {
        out[i] = out[i].wrapping_sub(a[i]);
    }
}

/// Reference of [`super::ring_rsub_assign`].
pub fn ring_rsub_assign(out: &mut [u64], a: &[u64]) {
    assert_eq!(out.len(), a.len());
    for i in 0..out.len() {
        out[i] = a[i].wrapping_sub(out[i]);
    }
}

/// Reference of [`super::ring_neg_assign`].
pub fn ring_neg_assign(out: &mut [u64]) {
    for x in out.iter_mut() {
        *x = 0u64.wrapping_sub(*x);
    }
}

/// Reference of [`super::ring_mul_assign`].
pub fn ring_mul_assign(out: &mut [u64], a: &[u64]) {
    assert_eq!(out.len(), a.len());
    for i in 0..out.len() {
        out[i] = out[i].wrapping_mul(a[i]);
    }
}

/// Reference of [`super::ring_mul_add_assign`].
pub fn ring_mul_add_assign(out: &mut [u64], a: &[u64], b: &[u64]) {
    assert_eq!(out.len(), a.len());
    assert_eq!(out.len(), b.len());
    for i in 0..out.len() {
        out[i] = out[i].wrapping_add(a[i].wrapping_mul(b[i]));
    }
}

/// Reference of [`super::ring_scale_assign`].
pub fn ring_scale_assign(out: &mut [u64], c: u64) {
    for x in out.iter_mut() {
        *x = x.wrapping_mul(c);
    }
}

/// Reference of [`super::ring_add_scalar_assign`].
pub fn ring_add_scalar_assign(out: &mut [u64], c: u64) {
    for x in out.iter_mut() {
        *x = x.wrapping_add(c);
    }
}

/// Reference of [`super::ring_dot`].
pub fn ring_dot(a: &[u64], b: &[u64]) -> u64 {
    assert_eq!(a.len(), b.len());
    let mut s = 0u64;
    for i in 0..a.len() {
        s = s.wrapping_add(a[i].wrapping_mul(b[i]));
    }
    s
}

/// Reference of [`super::ring_sum`].
pub fn ring_sum(a: &[u64]) -> u64 {
    let mut s = 0u64;
    for &x in a {
        s = s.wrapping_add(x);
    }
    s
}

/// Reference of [`super::rep3_cross_add_assign`]: `x0·y0 + x0·y1 + x1·y0`, term by term.
pub fn rep3_cross_add_assign(out: &mut [u64], x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) {
    for len in [x0.len(), x1.len(), y0.len(), y1.len()] {
        assert_eq!(out.len(), len);
    }
    for i in 0..out.len() {
        let t = x0[i]
            .wrapping_mul(y0[i])
            .wrapping_add(x0[i].wrapping_mul(y1[i]))
            .wrapping_add(x1[i].wrapping_mul(y0[i]));
        out[i] = out[i].wrapping_add(t);
    }
}

/// Reference of [`super::rep3_dot_cross`].
pub fn rep3_dot_cross(x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) -> u64 {
    let mut t = vec![0u64; x0.len()];
    rep3_cross_add_assign(&mut t, x0, x1, y0, y1);
    ring_sum(&t)
}

/// Reference of [`super::ring_shr_arith_assign`]: floor division of the signed value by 2^d.
pub fn ring_shr_arith_assign(out: &mut [u64], d: u32) {
    assert!(d < 64);
    for x in out.iter_mut() {
        *x = (*x as i64 as i128).div_euclid(1i128 << d) as i64 as u64;
    }
}

/// Reference of [`super::gemm_u64_add_assign`]: the naive triple loop, `c[i,j] += Σ_p a[i,p]·b[p,j]`.
pub fn gemm_u64_add_assign(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    assert_eq!(a.len(), m * k);
    assert_eq!(b.len(), k * n);
    assert_eq!(c.len(), m * n);
    for i in 0..m {
        for j in 0..n {
            let mut s = 0u64;
            for p in 0..k {
                s = s.wrapping_add(a[i * k + p].wrapping_mul(b[p * n + j]));
            }
            c[i * n + j] = c[i * n + j].wrapping_add(s);
        }
    }
}
