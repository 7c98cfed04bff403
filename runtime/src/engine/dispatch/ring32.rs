//! Compact Z_2^32 values ([`veil_circuits::ElemType::Ring32`]): every op with a Ring32 result,
//! and the conversions.
//!
//! A secret Ring32 value is held as compact shares mod 2^32 ([`Shares32`], seeded components
//! as they came from the client until an op needs their words); a public one as words below
//! 2^32. Sums, differences, negations and data movement are local and componentwise (a row
//! slice of a seeded component stays a seed); a matrix product of two secrets is one round of
//! [`MulRound::matmul32`] (one word below 2^32 per output, the engine narrows the finished
//! shares), with a public factor it is local. `Widen` (x ↦ x·2^32 into Z_2^64) and `Narrow`
//! (x ↦ x mod 2^32) are local and exact on shares ([`Shares32::widen`], [`Shares32::narrow`]).
//! Public operands follow the plaintext semantics of [`veil_circuits::eval`]: Ring32 results
//! reduced mod 2^32.

use super::data::{slice, transpose};
use super::{Operands, Pending, one};
use crate::engine::value::{Val, broadcast};
use crate::error::EngineError;
use crate::kernels::{Src32, matmul32_add_assign};
use crate::party::PartyCtx;
use crate::protocols::MulRound;
use crate::sharing::{Comp32, Shares32};
use veil_circuits::{Op, RING32_MASK, Shape};

pub(super) fn start(ctx: &mut PartyCtx, x: &Operands) -> Result<Pending, EngineError> {
    match x.op() {
        Op::MatMul(a, b) => {
            let ((m, k), (_, n)) = (x.matrix(*a)?, x.matrix(*b)?);
            let (p, q) = (x.secret32(*a)?, x.secret32(*b)?);
            Ok(one(x.protocol(MulRound::matmul32(ctx, p, q, (m, k, n)))?))
        }
        _ => Err(x.no_protocol()),
    }
}

pub(super) fn local(x: &Operands) -> Result<Val, EngineError> {
    let n = x.n();
    Ok(match x.op() {
        Op::Add(a, b) | Op::Sub(a, b) => {
            let sub = matches!(x.op(), Op::Sub(..));
            match (x.val(*a)?, x.val(*b)?) {
                (Val::Public(p), Val::Public(q)) => {
                    let f = if sub {
                        u32::wrapping_sub
                    } else {
                        u32::wrapping_add
                    };
                    let (p, q) = (broadcast(p, n), broadcast(q, n));
                    Val::Public(
                        p.iter()
                            .zip(&q)
                            .map(|(a, b)| word(f(*a as u32, *b as u32)))
                            .collect(),
                    )
                }
                _ => {
                    let (p, q) = (x.shares32(*a, n)?, x.shares32(*b, n)?);
                    Val::secret32(if sub { p.sub(&q) } else { p.add(&q) })
                }
            }
        }
        Op::Neg(a) => match x.val(*a)? {
            Val::Public(p) => {
                Val::Public(p.iter().map(|&w| word((w as u32).wrapping_neg())).collect())
            }
            Val::Secret32(s) => Val::secret32(s.neg()),
            other => return Err(x.kind_error(*a, "secret Ring32 or public", other)),
        },
        Op::MatMul(a, b) => {
            let ((m, k), (_, nn)) = (x.matrix(*a)?, x.matrix(*b)?);
            matmul_public(x, (x.val(*a)?, x.val(*b)?), (m, k, nn))?
        }
        Op::Reshape { a, .. } => x.val(*a)?.clone(),
        Op::Slice { a, start, end } => {
            let shape = x.shape(*a);
            match x.val(*a)? {
                // Rows of a seeded component stay a seed with a moved offset.
                Val::Secret32(s) => {
                    let w = match shape {
                        Shape::Matrix(_, c) => c,
                        _ => 1,
                    };
                    let rows = s
                        .rows(start * w..end * w)
                        .map_err(|e| x.schedule_error(format!("slice of a Ring32 value: {e}")))?;
                    Val::secret32(rows)
                }
                v => v.map(|w| slice(w, shape, *start, *end)),
            }
        }
        Op::Transpose(a) => {
            let (r, c) = x.matrix(*a)?;
            match x.val(*a)? {
                Val::Secret32(s) => Val::secret32(s.map(|w| transpose(w, r, c))),
                v => v.map(|w| transpose(w, r, c)),
            }
        }
        Op::Concat(parts) => {
            let vals = parts
                .iter()
                .map(|p| x.val(*p))
                .collect::<Result<Vec<&Val>, _>>()?;
            if vals.iter().all(|v| matches!(v, Val::Public(_))) {
                Val::Public(
                    vals.iter()
                        .flat_map(|v| match v {
                            Val::Public(w) => w.as_slice(),
                            _ => &[],
                        })
                        .copied()
                        .collect(),
                )
            } else {
                let shares = parts
                    .iter()
                    .map(|p| x.shares32(*p, x.shape(*p).len()))
                    .collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<&Shares32> = shares.iter().map(|s| &**s).collect();
                Val::secret32(Shares32::concat(&refs))
            }
        }
        Op::Widen { a } => match x.val(*a)? {
            Val::Public(p) => Val::Public(p.iter().map(|&w| (w & RING32_MASK) << 32).collect()),
            Val::Secret32(s) => Val::secret(s.widen()),
            other => return Err(x.kind_error(*a, "secret Ring32 or public", other)),
        },
        Op::Narrow { a } => match x.val(*a)? {
            Val::Public(p) => Val::Public(p.iter().map(|&w| w & RING32_MASK).collect()),
            Val::Secret(s) => Val::secret32(Shares32::narrow(s)),
            other => return Err(x.kind_error(*a, "secret or public", other)),
        },
        _ => return Err(x.schedule_error("not an op on Ring32 values")),
    })
}

/// A Ring32 word as the engine keeps it (below 2^32).
fn word(w: u32) -> u64 {
    u64::from(w)
}

/// Public words (below 2^32) as u32.
fn words32(w: &[u64]) -> Vec<u32> {
    w.iter().map(|&v| v as u32).collect()
}

/// `a · b` mod 2^32 for an m×k and a k×n operand.
fn gemm32((m, k, n): (usize, usize, usize), a: Src32, b: Src32) -> Vec<u32> {
    let mut out = vec![0u32; m * n];
    matmul32_add_assign((m, k, n), a, b, &mut out);
    out
}

/// A Ring32 matrix product with at least one public factor: local, each component times the
/// public words (two secret factors scheduled local are a schedule error).
fn matmul_public(
    x: &Operands,
    (a, b): (&Val, &Val),
    dims: (usize, usize, usize),
) -> Result<Val, EngineError> {
    let comp = |c: &Comp32, p: &[u32], left: bool| -> Comp32 {
        let p = Src32::Slice(p);
        Comp32::words(if left {
            gemm32(dims, c.src(), p)
        } else {
            gemm32(dims, p, c.src())
        })
    };
    Ok(match (a, b) {
        (Val::Public(p), Val::Public(q)) => {
            let (p, q) = (words32(p), words32(q));
            let out = gemm32(dims, Src32::Slice(&p), Src32::Slice(&q));
            Val::Public(out.into_iter().map(word).collect())
        }
        (Val::Secret32(s), Val::Public(q)) => {
            let q = words32(q);
            Val::secret32(Shares32 {
                own: comp(&s.own, &q, true),
                next: comp(&s.next, &q, true),
            })
        }
        (Val::Public(p), Val::Secret32(s)) => {
            let p = words32(p);
            Val::secret32(Shares32 {
                own: comp(&s.own, &p, false),
                next: comp(&s.next, &p, false),
            })
        }
        (Val::Secret32(_), Val::Secret32(_)) => {
            return Err(x.schedule_error("scheduled local, but both factors are secret"));
        }
        _ => return Err(x.schedule_error("a Z_2^64 operand of a Ring32 product")),
    })
}
