//! This party's inputs, checked against the program's declarations before any round.

use super::value::InputValue;
use crate::error::EngineError;
use crate::sharing::CompactError;
use std::collections::HashMap;
use veil_circuits::{ElemType, Op, Owner, PartyId, RING32_MASK, ValidatedProgram, Visibility};

/// Check this party's inputs against the program and place them at their `Input` ops.
///
/// A Ring32 input's plaintext words must be below 2^32, and a client-owned Ring32 secret comes
/// as compact shares ([`InputValue::Compact`], both components of the declared length); a
/// compact sharing for any other input, or Z_2^64 shares for a Ring32 one, is an
/// [`EngineError::InputKind`].
pub(super) fn take_inputs(
    me: PartyId,
    program: &ValidatedProgram,
    inputs: &mut HashMap<String, InputValue>,
) -> Result<Vec<Option<InputValue>>, EngineError> {
    let prog = program.program();
    let declared: std::collections::HashSet<&str> =
        prog.inputs.iter().map(|d| d.name.as_str()).collect();
    if let Some(name) = inputs.keys().find(|k| !declared.contains(k.as_str())) {
        return Err(EngineError::UnknownInput {
            party: me,
            name: name.clone(),
        });
    }
    let mut placed: Vec<Option<InputValue>> = vec![None; prog.ops.len()];
    for (i, op) in prog.ops.iter().enumerate() {
        let Op::Input { input } = op else { continue };
        let decl = &prog.inputs[*input];
        let n = decl.ty.shape.len();
        let name = decl.name.clone();
        let given = inputs.remove(&decl.name);
        let kind_err = |expected| EngineError::InputKind {
            party: me,
            name: name.clone(),
            expected,
        };
        let ring32 = decl.ty.elem == ElemType::Ring32;
        let check_words = |v: &[u64]| {
            if ring32 && v.iter().any(|&w| w > RING32_MASK) {
                Err(kind_err("words below 2^32 (it is Ring32)"))
            } else {
                Ok(())
            }
        };
        let check_len = |actual: usize| {
            if actual == n {
                Ok(())
            } else {
                Err(EngineError::InputLength {
                    party: me,
                    name: name.clone(),
                    expected: n,
                    actual,
                })
            }
        };
        placed[i] = match (decl.ty.vis, &decl.owner, given) {
            (Visibility::Public, _, Some(InputValue::Plain(v))) => {
                check_len(v.len())?;
                check_words(&v)?;
                Some(InputValue::Plain(v))
            }
            (Visibility::Public, _, Some(_)) => return Err(kind_err("plaintext (it is public)")),
            (Visibility::Secret, Owner::Party(p), Some(InputValue::Plain(v))) if *p == me => {
                check_len(v.len())?;
                check_words(&v)?;
                Some(InputValue::Plain(v))
            }
            (Visibility::Secret, Owner::Party(p), None) if *p != me => None,
            (Visibility::Secret, Owner::Party(p), Some(_)) if *p != me => {
                return Err(kind_err("nothing (another party owns it)"));
            }
            (Visibility::Secret, Owner::Party(_), Some(_)) => {
                return Err(kind_err("plaintext (this party owns it)"));
            }
            (Visibility::Secret, Owner::Client(_), Some(InputValue::Compact(s))) if ring32 => {
                s.check_len(n).map_err(|e| match e {
                    CompactError::Length { got, .. } => EngineError::InputLength {
                        party: me,
                        name: name.clone(),
                        expected: n,
                        actual: got,
                    },
                    _ => kind_err("compact shares within their keystream"),
                })?;
                Some(InputValue::Compact(s))
            }
            (Visibility::Secret, Owner::Client(_), Some(_)) if ring32 => {
                return Err(kind_err("compact shares (it is Ring32)"));
            }
            (Visibility::Secret, Owner::Client(_), Some(InputValue::Compact(_))) => {
                return Err(kind_err(
                    "shares over Z_2^64 (compact shares are for Ring32 inputs)",
                ));
            }
            (Visibility::Secret, Owner::Client(_), Some(InputValue::Shares(s))) => {
                check_len(s.own.len())?;
                check_len(s.next.len())?;
                Some(InputValue::Shares(s))
            }
            (Visibility::Secret, Owner::Client(_), Some(InputValue::Held(s))) => {
                check_len(s.own.len())?;
                check_len(s.next.len())?;
                Some(InputValue::Held(s))
            }
            (Visibility::Secret, Owner::Client(_), Some(_)) => {
                return Err(kind_err("shares (a client owns it)"));
            }
            (_, _, None) => {
                return Err(EngineError::MissingInput { party: me, name });
            }
        };
    }
    Ok(placed)
}
