//! Comparisons and what is built on them. On secret operands: the sign test
//! ([`compare::ltz`], 8 rounds) and its compositions (`Eq` batches both directions, ReLU and
//! max/min multiply the sign into a difference: [`compare::ltz_blend`]), the tournaments of
//! `MaxAll`/`ArgMax`, and the bit decompositions of `Bits`/`MsbOneHot`. On public operands the
//! result is the plaintext semantics, computed by [`veil_circuits::eval`] itself.

use super::{Operands, Pending};
use crate::engine::value::Val;
use crate::error::EngineError;
use crate::party::PartyCtx;
use crate::protocols::Step;
use crate::protocols::compare::{self, Target};
use crate::protocols::compose::Then;
use crate::sharing::Shares;
use veil_circuits::{Op, eval};

pub(super) fn start(ctx: &mut PartyCtx, x: &Operands) -> Result<Pending, EngineError> {
    let me = x.me;
    let n = x.n();
    let m = match x.op() {
        Op::Ltz(a) => compare::ltz(ctx, &*x.shares(*a)?),
        Op::Lt(a, b) | Op::Ge(a, b) | Op::Gt(b, a) | Op::Le(b, a) => {
            // lt(a, b) = LTZ(a − b); ge = 1 − lt; gt(x, y) = lt(y, x); le = 1 − gt.
            let d = x.shares(*a)?.sub(&*x.shares(*b)?);
            let lt = x.protocol(compare::ltz(ctx, &d))?;
            return Ok(Pending::Multi(match x.op() {
                Op::Ge(..) | Op::Le(..) => {
                    Then::boxed(lt, move |_, l| Ok(Step::Done(l.one_minus(me))))
                }
                _ => lt,
            }));
        }
        Op::Eq(a, b) => {
            // eq = 1 − lt(a, b) − lt(b, a), both comparisons in one batch.
            let d = x.shares(*a)?.sub(&*x.shares(*b)?);
            let both = d.concat(&d.neg());
            let lt = x.protocol(compare::ltz(ctx, &both))?;
            return Ok(Pending::Multi(Then::boxed(lt, move |_, l| {
                let (lt, gt) = (l.slice(0, n), l.slice(n, 2 * n));
                Ok(Step::Done(lt.one_minus(me).sub(&gt)))
            })));
        }
        Op::Relu(a) => {
            let v = x.shares(*a)?;
            let neg = v.neg();
            compare::ltz_blend(ctx, &v, v.clone().into_owned(), neg)
        }
        Op::Max(a, b) | Op::Min(a, b) => {
            let (sa, sb) = (x.shares(*a)?, x.shares(*b)?);
            let d = sa.sub(&sb);
            let (base, diff) = match x.op() {
                Op::Max(..) => (sa.into_owned(), d.neg()), // max = a + lt·(b − a)
                _ => (sb.into_owned(), d.clone()),         // min = b + lt·(a − b)
            };
            compare::ltz_blend(ctx, &d, base, diff)
        }
        Op::MaxAll(a) => compare::tournament(ctx, x.secret(*a)?.clone(), None),
        Op::ArgMax(a) => {
            let v = x.secret(*a)?.clone();
            let idx = compare::index_shares(me, v.len());
            compare::tournament(ctx, v, Some(idx))
        }
        Op::Bits(a) => compare::decompose(ctx, x.secret(*a)?, Target::Bits),
        Op::MsbOneHot { a, lanes } => {
            compare::decompose(ctx, x.secret(*a)?, Target::MsbOneHot { lanes: *lanes })
        }
        _ => return Err(x.no_protocol()),
    };
    Ok(Pending::Multi(x.protocol(m)?))
}

pub(super) fn local(x: &Operands) -> Result<Val, EngineError> {
    let words = |w: &[u64], f: fn(u64) -> u64| Val::Public(w.iter().map(|&v| f(v)).collect());
    let zip = |(p, q): (Vec<u64>, Vec<u64>), f: fn(u64, u64) -> u64| {
        Val::Public(p.iter().zip(&q).map(|(a, b)| f(*a, *b)).collect())
    };
    Ok(match x.op() {
        Op::Ltz(a) => words(x.public(*a)?, eval::ltz),
        Op::Relu(a) => words(x.public(*a)?, eval::relu),
        Op::Lt(a, b) => zip(x.public2(*a, *b)?, eval::lt),
        Op::Le(a, b) => zip(x.public2(*a, *b)?, eval::le),
        Op::Gt(a, b) => zip(x.public2(*a, *b)?, eval::gt),
        Op::Ge(a, b) => zip(x.public2(*a, *b)?, eval::ge),
        Op::Eq(a, b) => zip(x.public2(*a, *b)?, eval::eq),
        Op::Max(a, b) => zip(x.public2(*a, *b)?, eval::max),
        Op::Min(a, b) => zip(x.public2(*a, *b)?, eval::min),
        // A one-element secret is its own maximum, at index 0.
        Op::MaxAll(a) => match x.val(*a)? {
            Val::Secret(s) if s.len() == 1 => Val::Secret(s.clone()),
            _ => Val::Public(vec![eval::tournament(x.public(*a)?).0]),
        },
        Op::ArgMax(a) => match x.val(*a)? {
            Val::Secret(s) if s.len() == 1 => Val::secret(Shares::from_public(x.me, &[0])),
            _ => Val::Public(vec![eval::tournament(x.public(*a)?).1 as u64]),
        },
        Op::Bits(a) => Val::Public(eval::bits(x.public(*a)?)),
        Op::MsbOneHot { a, lanes } => Val::Public(eval::msb_onehot(x.public(*a)?, *lanes)),
        _ => return Err(x.schedule_error("not a comparison")),
    })
}
