//! Oblivious selection: the best k by a comparator network and rank selection
//! ([`select::best_k`]), one-hot rows from a range of bits ([`select::onehot_bits`]). On public operands
//! the result is the plaintext plan of [`veil_circuits::selection`], the one the protocol
//! follows.

use super::{Operands, Pending};
use crate::engine::value::Val;
use crate::error::EngineError;
use crate::party::PartyCtx;
use crate::protocols::select;
use veil_circuits::{Op, selection};

pub(super) fn start(ctx: &mut PartyCtx, x: &Operands) -> Result<Pending, EngineError> {
    let m = match x.op() {
        Op::BestK {
            a,
            k,
            largest,
            groups,
        } => select::best_k(ctx, x.secret(*a)?.clone(), *k, *largest, groups.as_deref()),
        Op::OneHotLow { a, bits, n, skip } => {
            select::onehot_bits(ctx, x.secret(*a)?, *skip, *bits, *n)
        }
        _ => return Err(x.no_protocol()),
    };
    Ok(Pending::Multi(x.protocol(m)?))
}

pub(super) fn local(x: &Operands) -> Result<Val, EngineError> {
    Ok(Val::Public(match x.op() {
        Op::BestK {
            a,
            k,
            largest,
            groups,
        } => selection::best_k_plain_with(x.public(*a)?, *k, *largest, groups.as_deref()),
        Op::OneHotLow { a, bits, n, skip } => {
            selection::onehot_bits_plain(x.public(*a)?, *skip, *bits, *n)
        }
        _ => return Err(x.schedule_error("not a selection")),
    }))
}
