//! Linear ops and products. Sums, differences and negations are local
//! ([`crate::sharing::Shares`] arithmetic); a product with a public factor is local too (each
//! component times the public words); two secret factors take one round of [`MulRound`]
//! (elementwise, row-wise dot, matrix), a secret rescale one round of [`TruncRound`], a matrix
//! product and its rescale one fused round ([`MulTruncRound`]). `Select` is
//! `b + cond·(a − b)`: one multiplication.

use super::{Operands, Pending, one};
use crate::engine::value::{Val, broadcast};
use crate::error::EngineError;
use crate::kernels;
use crate::party::PartyCtx;
use crate::protocols::compose::{OneRound, Then};
use crate::protocols::mul_trunc::MulTruncRound;
use crate::protocols::{MulRound, Step, TruncRound, trunc};
use veil_circuits::{Op, PartyId};

pub(super) fn start(ctx: &mut PartyCtx, x: &Operands) -> Result<Pending, EngineError> {
    let n = x.n();
    match x.op() {
        Op::Mul(a, b) => {
            let (p, q) = (x.secret(*a)?.broadcast(n), x.secret(*b)?.broadcast(n));
            Ok(one(x.protocol(MulRound::mul(ctx, &p, &q))?))
        }
        Op::Dot(a, b) => {
            let (rows, cols) = x.rows_cols(*a);
            let (p, q) = (x.secret(*a)?, x.secret(*b)?);
            Ok(one(x.protocol(MulRound::dot(ctx, p, q, rows, cols))?))
        }
        Op::MatMul(a, b) => {
            let ((m, k), (_, nn)) = (x.matrix(*a)?, x.matrix(*b)?);
            let (p, q) = (x.secret(*a)?, x.secret(*b)?);
            Ok(one(x.protocol(MulRound::matmul(ctx, p, q, m, k, nn))?))
        }
        // Malicious mode: exact truncation, whose every message is verified.
        Op::Rescale { a, bits } if ctx.verified() => Ok(Pending::Multi(
            x.protocol(trunc::exact(ctx, x.secret(*a)?, *bits))?,
        )),
        Op::Rescale { a, bits } => Ok(one(x.protocol(TruncRound::start(
            ctx,
            x.secret(*a)?,
            *bits,
        ))?)),
        Op::MatMulRescale { a, b, bits } if ctx.verified() => {
            let ((m, k), (_, nn)) = (x.matrix(*a)?, x.matrix(*b)?);
            let d = *bits;
            match (x.val(*a)?, x.val(*b)?) {
                (Val::Secret(p), Val::Secret(q)) => {
                    let mul = x.protocol(MulRound::matmul(ctx, p, q, m, k, nn))?;
                    Ok(Pending::Multi(Then::boxed(
                        Box::new(OneRound(mul)),
                        move |ctx, prod| Ok(Step::More(trunc::exact(ctx, &prod, d)?)),
                    )))
                }
                (p, q) => match matmul_public(p, q, (m, k, nn)) {
                    Some(Val::Secret(prod)) => {
                        Ok(Pending::Multi(x.protocol(trunc::exact(ctx, &prod, d))?))
                    }
                    _ => Err(x.schedule_error(
                        "the cost model gives it rounds, but both operands are public",
                    )),
                },
            }
        }
        Op::MatMulRescale { a, b, bits } => {
            let ((m, k), (_, nn)) = (x.matrix(*a)?, x.matrix(*b)?);
            match (x.val(*a)?, x.val(*b)?) {
                (Val::Secret(p), Val::Secret(q)) => Ok(one(x.protocol(MulTruncRound::matmul(
                    ctx,
                    p,
                    q,
                    (m, k, nn),
                    *bits,
                ))?)),
                // One public operand: the product is local, then one truncation round.
                (p, q) => match matmul_public(p, q, (m, k, nn)) {
                    Some(Val::Secret(prod)) => {
                        Ok(one(x.protocol(TruncRound::start(ctx, &prod, *bits))?))
                    }
                    _ => Err(x.schedule_error(
                        "the cost model gives it a round, but both operands are public",
                    )),
                },
            }
        }
        Op::Select { cond, a, b } => {
            let c = x.shares(*cond)?;
            let (sa, sb) = (x.shares(*a)?, x.shares(*b)?);
            let mul = x.protocol(MulRound::mul(ctx, &c, &sa.sub(&sb)))?;
            let sb = sb.into_owned();
            Ok(Pending::Multi(Then::boxed(
                Box::new(OneRound(mul)),
                move |_, prod| Ok(Step::Done(prod.add(&sb))),
            )))
        }
        _ => Err(x.no_protocol()),
    }
}

pub(super) fn local(x: &Operands) -> Result<Val, EngineError> {
    let (me, n) = (x.me, x.n());
    let both_secret = || x.schedule_error("scheduled local, but both factors are secret");
    match x.op() {
        Op::Add(a, b) => add(me, x.val(*a)?, x.val(*b)?, n, false).ok_or_else(|| x.not_ring32()),
        Op::Sub(a, b) => add(me, x.val(*a)?, x.val(*b)?, n, true).ok_or_else(|| x.not_ring32()),
        Op::Neg(a) => neg(x.val(*a)?).ok_or_else(|| x.not_ring32()),
        Op::Mul(a, b) => mul_public(x.val(*a)?, x.val(*b)?, n).ok_or_else(both_secret),
        Op::Dot(a, b) => {
            let (rows, cols) = x.rows_cols(*a);
            dot_public(x.val(*a)?, x.val(*b)?, rows, cols).ok_or_else(both_secret)
        }
        Op::MatMul(a, b) => {
            let ((m, k), (_, nn)) = (x.matrix(*a)?, x.matrix(*b)?);
            matmul_public(x.val(*a)?, x.val(*b)?, (m, k, nn)).ok_or_else(both_secret)
        }
        Op::MatMulRescale { a, b, bits } => {
            let ((m, k), (_, nn)) = (x.matrix(*a)?, x.matrix(*b)?);
            match matmul_public(x.val(*a)?, x.val(*b)?, (m, k, nn)) {
                Some(Val::Public(p)) => Ok(Val::Public(shr_arith(&p, *bits))),
                _ => Err(x.schedule_error(
                    "scheduled local, but a secret product needs a truncation round",
                )),
            }
        }
        // A secret rescale is a truncation protocol; locally only public words are shifted.
        Op::Rescale { a, bits } => Ok(Val::Public(shr_arith(x.public(*a)?, *bits))),
        Op::Select { cond, a, b } => {
            let diff = add(me, x.val(*a)?, x.val(*b)?, n, true).ok_or_else(|| x.not_ring32())?;
            let prod = mul_public(x.val(*cond)?, &diff, n).ok_or_else(|| {
                x.schedule_error("scheduled local, but the condition and a branch are secret")
            })?;
            add(me, &prod, x.val(*b)?, n, false).ok_or_else(|| x.not_ring32())
        }
        _ => Err(x.schedule_error("not a linear op")),
    }
}

/// a + b (or a − b when `negate_b`), broadcasting a scalar operand to `n` elements. A public
/// operand of a secret sum is added to component x_0 only. `None` for a compact operand.
fn add(me: PartyId, a: &Val, b: &Val, n: usize, negate_b: bool) -> Option<Val> {
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => {
            let mut out = broadcast(x, n);
            let y = broadcast(y, n);
            if negate_b {
                kernels::ring_sub_assign(&mut out, &y);
            } else {
                kernels::ring_add_assign(&mut out, &y);
            }
            Val::Public(out)
        }
        _ => {
            let mut out = a.shares(me, n)?.into_owned();
            let y = b.shares(me, n)?;
            if negate_b {
                out.sub_assign(&y);
            } else {
                out.add_assign(&y);
            }
            Val::secret(out)
        }
    })
}

/// −a (`None` for a compact operand).
fn neg(a: &Val) -> Option<Val> {
    Some(match a {
        Val::Public(x) => {
            let mut out = x.clone();
            kernels::ring_neg_assign(&mut out);
            Val::Public(out)
        }
        Val::Secret(s) => Val::secret(s.neg()),
        Val::Secret32(_) => return None,
    })
}

/// Elementwise product with at least one public operand (`None` for two secrets, which is
/// interactive, or a compact operand).
fn mul_public(a: &Val, b: &Val, n: usize) -> Option<Val> {
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => {
            let mut out = broadcast(x, n);
            kernels::ring_mul_assign(&mut out, &broadcast(y, n));
            Val::Public(out)
        }
        (Val::Secret(s), Val::Public(c)) | (Val::Public(c), Val::Secret(s)) => {
            Val::secret(s.broadcast(n).mul_public(&broadcast(c, n)))
        }
        _ => return None,
    })
}

fn row_dots(x: &[u64], y: &[u64], rows: usize, cols: usize) -> Vec<u64> {
    (0..rows)
        .map(|r| kernels::ring_dot(&x[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]))
        .collect()
}

/// Row-wise dot products with at least one public operand (`None` otherwise).
fn dot_public(a: &Val, b: &Val, rows: usize, cols: usize) -> Option<Val> {
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => Val::Public(row_dots(x, y, rows, cols)),
        (Val::Secret(s), Val::Public(c)) | (Val::Public(c), Val::Secret(s)) => {
            Val::secret(s.map(|x| row_dots(x, c, rows, cols)))
        }
        _ => return None,
    })
}

fn gemm(m: usize, k: usize, n: usize, a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut c = vec![0u64; m * n];
    kernels::par_gemm_u64_add_assign(m, k, n, a, b, &mut c);
    c
}

/// Matrix product with at least one public operand: componentwise GEMMs (`None` otherwise).
fn matmul_public(a: &Val, b: &Val, (m, k, n): (usize, usize, usize)) -> Option<Val> {
    Some(match (a, b) {
        (Val::Public(x), Val::Public(y)) => Val::Public(gemm(m, k, n, x, y)),
        (Val::Secret(s), Val::Public(p)) => Val::secret(s.map(|x| gemm(m, k, n, x, p))),
        (Val::Public(p), Val::Secret(s)) => Val::secret(s.map(|y| gemm(m, k, n, p, y))),
        _ => return None,
    })
}

/// Arithmetic shift right by `bits` of every public word: the plaintext `Rescale`.
fn shr_arith(w: &[u64], bits: u32) -> Vec<u64> {
    let mut out = w.to_vec();
    kernels::ring_shr_arith_assign(&mut out, bits);
    out
}
