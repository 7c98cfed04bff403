//! Values entering and leaving the secret world: a party-owned secret input is shared by its
//! owner in one round ([`InputRound`]); public inputs, client-owned shares and constants are
//! local; a reveal is one round ([`RevealRound`]).

use super::{Operands, Pending, one};
use crate::engine::value::{InputValue, Val};
use crate::error::EngineError;
use crate::party::PartyCtx;
use crate::protocols::{InputRound, RevealRound};
use veil_circuits::{Op, Owner};

/// A reveal to every party, or the owner's sharing round of a party-owned secret input (the
/// owner passes its plaintext, the others nothing).
pub(super) fn start(
    ctx: &mut PartyCtx,
    x: &Operands,
    op_inputs: &mut [Option<InputValue>],
) -> Result<Pending, EngineError> {
    let input = match x.op() {
        Op::Input { input } => input,
        Op::Reveal(a) => {
            let s = x.secret(*a)?.clone();
            return Ok(Pending::Reveal(RevealRound::start(ctx, s, None)));
        }
        _ => return Err(x.no_protocol()),
    };
    let decl = &x.program.program().inputs[*input];
    let Owner::Party(owner) = decl.owner else {
        return Err(x.schedule_error("the cost model gives a client-owned input a round"));
    };
    let plain = match op_inputs[x.op].take() {
        Some(InputValue::Plain(v)) => Some(v),
        _ => None,
    };
    let round = InputRound::start(ctx, owner, decl.ty.shape.len(), plain.as_deref());
    Ok(one(x.protocol(round)?))
}

/// A constant, a public input, or a client-owned secret given as this party's shares (compact
/// shares for a Ring32 input).
pub(super) fn local(
    x: &Operands,
    op_inputs: &mut [Option<InputValue>],
) -> Result<Val, EngineError> {
    match x.op() {
        Op::Input { .. } => {}
        Op::Constant { values, .. } => return Ok(Val::Public(values.clone())),
        Op::Reveal(_) => {
            return Err(x.schedule_error("scheduled local, but a reveal needs a round"));
        }
        _ => return Err(x.schedule_error("not an input, constant or reveal")),
    }
    match op_inputs[x.op].take() {
        Some(InputValue::Plain(v)) => Ok(Val::Public(v)),
        Some(InputValue::Shares(s)) => Ok(Val::secret(s)),
        Some(InputValue::Held(s)) => Ok(Val::Secret(s)),
        Some(InputValue::Compact(s)) => Ok(Val::Secret32(s)),
        None => Err(x.schedule_error(
            "scheduled local, but this party holds no value for it (a party-owned secret input \
             needs its sharing round)",
        )),
    }
}
