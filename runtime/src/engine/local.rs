//! Ops that need no communication: linear ops on shares, products with public operands, and
//! data movement. Each works componentwise on (x_i, x_{i+1}); a public constant c is added to
//! component x_0 only (P0's `own`, P2's `next`), so the three components still sum to x + c.

use super::value::Val;
use crate::kernels;
use crate::sharing::Shares;
use veil_circuits::{PartyId, Shape, SumAxis};

/// Repeat a one-element vector to `n` elements (scalar broadcast); other lengths are returned as is.
fn broadcast(v: &[u64], n: usize) -> Vec<u64> {
    if v.len() == 1 && n != 1 {
        vec![v[0]; n]
    } else {
        v.to_vec()
    }
}

fn map_shares(s: &Shares, f: impl Fn(&[u64]) -> Vec<u64>) -> Shares {
    Shares {
        own: f(&s.own),
        next: f(&s.next),
    }
}

fn bcast_shares(s: &Shares, n: usize) -> Shares {
    map_shares(s, |c| broadcast(c, n))
}

/// Add public words `c` to this party's shares (only component x_0 changes).
fn add_public(me: PartyId, s: &mut Shares, c: &[u64]) {
    match me {
        PartyId::P0 => kernels::ring_add_assign(&mut s.own, c),
        PartyId::P2 => kernels::ring_add_assign(&mut s.next, c),
        PartyId::P1 => {}
    }
}

/// a + b (or a − b when `negate_b`), broadcasting a scalar operand to `n` elements.
pub(crate) fn add(me: PartyId, a: &Val, b: &Val, n: usize, negate_b: bool) -> Val {
    let sub = |out: &mut [u64], x: &[u64]| {
        if negate_b {
            kernels::ring_sub_assign(out, x)
        } else {
            kernels::ring_add_assign(out, x)
        }
    };
    match (a, b) {
        (Val::Public(x), Val::Public(y)) => {
            let mut out = broadcast(x, n);
            sub(&mut out, &broadcast(y, n));
            Val::Public(out)
        }
        (Val::Secret(x), Val::Secret(y)) => {
            let mut out = bcast_shares(x, n);
            let y = bcast_shares(y, n);
            sub(&mut out.own, &y.own);
            sub(&mut out.next, &y.next);
            Val::secret(out)
        }
        (Val::Secret(x), Val::Public(c)) => {
            let mut out = bcast_shares(x, n);
            let mut c = broadcast(c, n);
            if negate_b {
                kernels::ring_neg_assign(&mut c);
            }
            add_public(me, &mut out, &c);
            Val::secret(out)
        }
        (Val::Public(c), Val::Secret(y)) => {
            let mut out = bcast_shares(y, n);
            if negate_b {
                kernels::ring_neg_assign(&mut out.own);
                kernels::ring_neg_assign(&mut out.next);
            }
            add_public(me, &mut out, &broadcast(c, n));
            Val::secret(out)
        }
    }
}

/// −a.
pub(crate) fn neg(a: &Val) -> Val {
    match a {
        Val::Public(x) => {
            let mut out = x.clone();
            kernels::ring_neg_assign(&mut out);
            Val::Public(out)
        }
        Val::Secret(s) => {
            let mut out = Shares::clone(s);
            kernels::ring_neg_assign(&mut out.own);
            kernels::ring_neg_assign(&mut out.next);
            Val::secret(out)
        }
    }
}

/// Elementwise product with at least one public operand (secret × secret is interactive).
pub(crate) fn mul_public(a: &Val, b: &Val, n: usize) -> Option<Val> {
    let scale = |s: &Shares, c: &[u64]| {
        let c = broadcast(c, n);
        let mut out = bcast_shares(s, n);
        kernels::ring_mul_assign(&mut out.own, &c);
        kernels::ring_mul_assign(&mut out.next, &c);
        out
    };
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => {
            let mut out = broadcast(x, n);
            kernels::ring_mul_assign(&mut out, &broadcast(y, n));
            Val::Public(out)
        }
        (Val::Secret(s), Val::Public(c)) | (Val::Public(c), Val::Secret(s)) => {
            Val::secret(scale(s, c))
        }
        (Val::Secret(_), Val::Secret(_)) => return None,
    })
}

fn row_dots(x: &[u64], y: &[u64], rows: usize, cols: usize) -> Vec<u64> {
    (0..rows)
        .map(|r| kernels::ring_dot(&x[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]))
        .collect()
}

/// Row-wise dot products with at least one public operand.
pub(crate) fn dot_public(a: &Val, b: &Val, rows: usize, cols: usize) -> Option<Val> {
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => Val::Public(row_dots(x, y, rows, cols)),
        (Val::Secret(s), Val::Public(c)) | (Val::Public(c), Val::Secret(s)) => {
            Val::secret(map_shares(s, |x| row_dots(x, c, rows, cols)))
        }
        (Val::Secret(_), Val::Secret(_)) => return None,
    })
}

fn gemm(m: usize, k: usize, n: usize, a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut c = vec![0u64; m * n];
    kernels::par_gemm_u64_add_assign(m, k, n, a, b, &mut c);
    c
}

/// Matrix product with at least one public operand: componentwise GEMMs.
pub(crate) fn matmul_public(a: &Val, b: &Val, (m, k, n): (usize, usize, usize)) -> Option<Val> {
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => Val::Public(gemm(m, k, n, x, y)),
        (Val::Secret(s), Val::Public(p)) => Val::secret(map_shares(s, |x| gemm(m, k, n, x, p))),
        (Val::Public(p), Val::Secret(s)) => Val::secret(map_shares(s, |y| gemm(m, k, n, p, y))),
        (Val::Secret(_), Val::Secret(_)) => return None,
    })
}

/// Apply a componentwise data movement or reduction to a value.
pub(crate) fn map(a: &Val, f: impl Fn(&[u64]) -> Vec<u64>) -> Val {
    match a {
        Val::Public(x) => Val::Public(f(x)),
        Val::Secret(s) => Val::secret(map_shares(s, f)),
    }
}

/// Arithmetic shift right by `bits` of every word: the plaintext `Rescale` (a public value;
/// secret values are truncated by a protocol instead).
pub(crate) fn shr_arith(a: &Val, bits: u32) -> Val {
    map(a, |w| {
        let mut out = w.to_vec();
        crate::kernels::ring_shr_arith_assign(&mut out, bits);
        out
    })
}

/// Sum of all elements, or of each row of a `rows × cols` matrix.
pub(crate) fn sum(words: &[u64], axis: SumAxis, shape: Shape) -> Vec<u64> {
    match (axis, shape) {
        (SumAxis::Rows, Shape::Matrix(_, cols)) if cols > 0 => {
            words.chunks_exact(cols).map(kernels::ring_sum).collect()
        }
        (SumAxis::Rows, Shape::Matrix(rows, _)) => vec![0; rows],
        _ => vec![kernels::ring_sum(words)],
    }
}

/// Elements `start..end` of a vector, or rows `start..end` of a matrix.
pub(crate) fn slice(words: &[u64], shape: Shape, start: usize, end: usize) -> Vec<u64> {
    let w = match shape {
        Shape::Matrix(_, c) => c,
        _ => 1,
    };
    words[start * w..end * w].to_vec()
}

/// Transpose of a row-major `rows × cols` matrix.
pub(crate) fn transpose(words: &[u64], rows: usize, cols: usize) -> Vec<u64> {
    let mut out = vec![0u64; words.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = words[r * cols + c];
        }
    }
    out
}

/// Concatenation of values; the result is secret if any part is.
pub(crate) fn concat(me: PartyId, parts: &[&Val]) -> Val {
    if parts.iter().all(|p| matches!(p, Val::Public(_))) {
        let mut out = Vec::new();
        for p in parts {
            if let Val::Public(x) = p {
                out.extend_from_slice(x);
            }
        }
        return Val::Public(out);
    }
    let mut out = Shares::default();
    for p in parts {
        let s = match p {
            Val::Secret(s) => Shares::clone(s),
            Val::Public(x) => Shares::from_public(me, x),
        };
        out.own.extend_from_slice(&s.own);
        out.next.extend_from_slice(&s.next);
    }
    Val::secret(out)
}

/// Elementwise `f` of two values that are both public (broadcasting scalars).
pub(crate) fn zip_public(a: &Val, b: &Val, n: usize, f: impl Fn(u64, u64) -> u64) -> Val {
    match (a, b) {
        (Val::Public(x), Val::Public(y)) => {
            let (x, y) = (broadcast(x, n), broadcast(y, n));
            Val::Public(x.iter().zip(&y).map(|(p, q)| f(*p, *q)).collect())
        }
        _ => unreachable!("the cost model makes this op local only for public operands"),
    }
}

/// (max, argmax) of public words by the same tournament as the protocol: pairs (2j, 2j+1), the
/// right wins iff left − right is negative, an odd last element passes through.
pub(crate) fn tournament_public(w: &[u64]) -> (u64, u64) {
    let mut cur: Vec<(u64, u64)> = w.iter().enumerate().map(|(i, v)| (*v, i as u64)).collect();
    while cur.len() > 1 {
        cur = cur
            .chunks(2)
            .map(|c| match c {
                [l, r] if l.0.wrapping_sub(r.0) >> 63 == 1 => *r,
                [l, ..] => *l,
                [] => unreachable!("chunks are non-empty"),
            })
            .collect();
    }
    cur.first().copied().unwrap_or((0, 0))
}
