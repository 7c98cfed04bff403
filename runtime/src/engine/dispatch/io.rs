//! Inputs: a party-owned secret input is shared by its owner in one round ([`InputRound`]);
//! public inputs, client-owned shares and constants are local. (`Reveal` is started in
//! [`super::start`]: one [`crate::protocols::RevealRound`].)

use super::{Operands, Pending, one};
use crate::engine::value::{InputValue, Val};
use crate::error::EngineError;
use crate::party::PartyCtx;
use crate::protocols::InputRound;
use veil_circuits::{Op, Owner};

/// The owner's sharing round of a party-owned secret input (the owner passes its plaintext, the
/// others nothing).
pub(super) fn start_input(
    ctx: &mut PartyCtx,
    x: &Operands,
    op_inputs: &mut [Option<InputValue>],
) -> Result<Pending, EngineError> {
    let Op::Input { input } = x.op() else {
        return Err(x.no_protocol());
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

/// A public input, or a client-owned secret given as this party's shares.
pub(super) fn local_input(
    x: &Operands,
    op_inputs: &mut [Option<InputValue>],
) -> Result<Val, EngineError> {
    match op_inputs[x.op].take() {
        Some(InputValue::Plain(v)) => Ok(Val::Public(v)),
        Some(InputValue::Shares(s)) => Ok(Val::secret(s)),
        Some(InputValue::Held(s)) => Ok(Val::Secret(s)),
        None => Err(x.schedule_error(
            "scheduled local, but this party holds no value for it (a party-owned secret input \
             needs its sharing round)",
        )),
    }
}
