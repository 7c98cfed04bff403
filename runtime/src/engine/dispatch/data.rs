//! Data movement and sums: always local, applied to a public value's words or to each
//! component of a secret one alike (zero padding of `Im2Col` is a sharing of 0).

use super::Operands;
use crate::engine::value::Val;
use crate::error::EngineError;
use crate::kernels;
use crate::sharing::Shares;
use veil_circuits::{Op, Shape, SumAxis};

pub(super) fn local(x: &Operands) -> Result<Val, EngineError> {
    Ok(match x.op() {
        Op::Sum { a, axis } => {
            let shape = x.shape(*a);
            x.val(*a)?.map(|w| sum(w, *axis, shape))
        }
        Op::Reshape { a, .. } => x.val(*a)?.clone(),
        Op::Slice { a, start, end } => {
            let shape = x.shape(*a);
            x.val(*a)?.map(|w| slice(w, shape, *start, *end))
        }
        Op::Im2Col { a, geometry } => {
            let (batch, _) = x.matrix(*a)?;
            x.val(*a)?
                .map(|w| veil_circuits::conv::im2col(w, batch, geometry))
        }
        Op::Concat(parts) => {
            let parts = parts
                .iter()
                .map(|p| x.val(*p))
                .collect::<Result<Vec<&Val>, _>>()?;
            concat(x.me, &parts).ok_or_else(|| x.not_ring32())?
        }
        Op::Transpose(a) => {
            let (r, c) = x.matrix(*a)?;
            x.val(*a)?.map(|w| transpose(w, r, c))
        }
        _ => return Err(x.schedule_error("not a data movement")),
    })
}

/// Sum of all elements, or of each row of a `rows × cols` matrix.
fn sum(words: &[u64], axis: SumAxis, shape: Shape) -> Vec<u64> {
    match (axis, shape) {
        (SumAxis::Rows, Shape::Matrix(_, cols)) if cols > 0 => {
            words.chunks_exact(cols).map(kernels::ring_sum).collect()
        }
        (SumAxis::Rows, Shape::Matrix(rows, _)) => vec![0; rows],
        _ => vec![kernels::ring_sum(words)],
    }
}

/// Elements `start..end` of a vector, or rows `start..end` of a matrix.
pub(super) fn slice(words: &[u64], shape: Shape, start: usize, end: usize) -> Vec<u64> {
    let w = match shape {
        Shape::Matrix(_, c) => c,
        _ => 1,
    };
    words[start * w..end * w].to_vec()
}

/// Transpose of a row-major `rows × cols` matrix.
pub(super) fn transpose<T: Copy + Default>(words: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = vec![T::default(); words.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = words[r * cols + c];
        }
    }
    out
}

/// Concatenation of values; the result is secret if any part is (`None` for a compact part:
/// Ring32 concatenations are [`super::ring32`]'s).
fn concat(me: veil_circuits::PartyId, parts: &[&Val]) -> Option<Val> {
    if parts.iter().all(|p| matches!(p, Val::Public(_))) {
        let mut out = Vec::new();
        for p in parts {
            if let Val::Public(x) = p {
                out.extend_from_slice(x);
            }
        }
        return Some(Val::Public(out));
    }
    let mut out = Shares::default();
    for p in parts {
        let s = match p {
            Val::Secret(s) => std::borrow::Cow::Borrowed(&**s),
            Val::Public(x) => std::borrow::Cow::Owned(Shares::from_public(me, x)),
            Val::Secret32(_) => return None,
        };
        out.own.extend_from_slice(&s.own);
        out.next.extend_from_slice(&s.next);
    }
    Some(Val::secret(out))
}
