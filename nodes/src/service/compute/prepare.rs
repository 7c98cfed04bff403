//! Step one of an invoke: decode, limit and authorise the request before any session opens —
//! the program, its limits, its single client recipient, each input bound to a stored value
//! the caller may use (or an inline input), and the session binding hash.

use std::collections::HashMap;
use std::sync::Arc;

use veil_circuits::{ElemType, Op, Owner, Program, Recipient, ValidatedProgram, Visibility};
use veil_proto::binding::SessionBinding;
use veil_proto::convert::{check_id, node_shares};
use veil_proto::pb;
use veil_runtime::engine::InputValue;
use veil_runtime::sharing::PartyShares;

use super::{ComputeService, on_store};
use crate::error::NodeError;
use crate::policy::{Access, Refusal};
use crate::store::HeldValue;

/// What an invoke request resolves to before its session runs.
pub(super) struct Prepared {
    /// The stored program, validated.
    pub program: ValidatedProgram,
    /// The client every output goes to.
    pub recipient: String,
    /// Each declared input's shares.
    pub inputs: HashMap<String, InputValue>,
    /// The session binding hash the three nodes compare (it covers the security mode).
    pub binding: [u8; 32],
}

/// What one trip to the store finds for a request.
struct Lookup {
    program: ValidatedProgram,
    result_taken: bool,
    values: HashMap<String, Option<Arc<HeldValue>>>,
}

/// The answer for a value that is absent or that the caller may not use: the same for both,
/// so a client cannot probe which ids exist.
pub(super) fn no_value(id: &str, caller: &str) -> NodeError {
    NodeError::NotFound(format!(
        "no value '{id}' that '{caller}' may use in this program"
    ))
}

/// The single client every output of `p` goes to, refusing programs that reveal to the nodes.
pub(super) fn client_recipient(p: &ValidatedProgram) -> Result<String, NodeError> {
    let invalid = |m: String| Err(NodeError::Invalid(m));
    let prog = p.program();
    if prog.ops.iter().any(|op| matches!(op, Op::Reveal(_))) {
        return invalid(
            "programs that reveal values to the nodes (reveal ops) are not accepted over the \
             Compute API"
                .into(),
        );
    }
    let mut recipient: Option<&str> = None;
    for out in &prog.outputs {
        match &out.recipient {
            Recipient::Client(name) if recipient.is_none_or(|r| r == name.as_str()) => {
                recipient = Some(name)
            }
            Recipient::Client(_) => {
                return invalid("all outputs of a program must go to the same client".into());
            }
            _ => {
                return invalid(format!(
                    "output '{}' goes to a node; over the Compute API outputs must go to a client",
                    out.name
                ));
            }
        }
    }
    recipient
        .map(str::to_string)
        .ok_or_else(|| NodeError::Invalid("the program has no outputs".into()))
}

impl ComputeService {
    /// Decodes, limits and authorises an invoke request (see the module docs).
    pub(super) async fn prepare(
        &self,
        caller: &str,
        r: &pb::InvokeRequest,
    ) -> Result<Prepared, NodeError> {
        if !r.inline_outputs {
            check_id("result", &r.result_id)?;
        }
        let Lookup {
            program,
            result_taken,
            mut values,
        } = self.lookup(r).await?;
        // Sizes come from the types: refuse before expanding a seed or building anything. In
        // malicious mode an op without a verified protocol is refused here, before any round.
        self.admit(&program)?;
        let recipient = client_recipient(&program)?;
        if r.inline_outputs {
            if recipient != caller {
                return Err(NodeError::Forbidden(format!(
                    "inline outputs go to the caller, but the program's recipient is '{recipient}'"
                )));
            }
        } else if result_taken {
            return Err(NodeError::AlreadyExists(format!(
                "result '{}' exists",
                r.result_id
            )));
        }
        let program_id = program.id().to_string();
        let mut inputs = HashMap::new();
        for decl in &program.program().inputs {
            if !matches!(
                (decl.ty.vis, &decl.owner),
                (Visibility::Secret, Owner::Client(_))
            ) {
                return Err(NodeError::Invalid(format!(
                    "input '{}' must be a client-owned secret over the Compute API",
                    decl.name
                )));
            }
            let expected = decl.ty.shape.len();
            let shares = match (r.inputs.get(&decl.name), r.inline_inputs.get(&decl.name)) {
                (Some(_), Some(_)) => {
                    return Err(NodeError::Invalid(format!(
                        "program input '{}' is bound twice (stored and inline)",
                        decl.name
                    )));
                }
                (None, Some(s)) => {
                    if s.len != expected as u64 {
                        return Err(NodeError::Invalid(format!(
                            "inline input '{}' has {} elements, the program expects {expected}",
                            decl.name, s.len
                        )));
                    }
                    // An inline input is the caller's own: only it may receive what is
                    // derived from it.
                    if let Err(Refusal::Receive) =
                        Access::inline(caller).check(caller, &program_id, &recipient)
                    {
                        return Err(NodeError::Forbidden(format!(
                            "'{recipient}' may not receive outputs derived from inline input '{}'",
                            decl.name
                        )));
                    }
                    let field = format!("inline input '{}' ", decl.name);
                    node_shares(&field, s, expected)?
                }
                (Some(value_id), None) => {
                    // From the node's value cache when held: a corpus or a model's weights
                    // is neither re-read nor copied per request.
                    let v = values
                        .remove(&decl.name)
                        .flatten()
                        .ok_or_else(|| no_value(value_id, caller))?;
                    match v.access.check(caller, &program_id, &recipient) {
                        Ok(()) => {}
                        Err(Refusal::Compute) => return Err(no_value(value_id, caller)),
                        Err(Refusal::Receive) => {
                            return Err(NodeError::Forbidden(format!(
                                "'{recipient}' may not receive outputs derived from value '{value_id}'"
                            )));
                        }
                    }
                    if v.shares.len() != expected {
                        return Err(NodeError::Invalid(format!(
                            "value '{value_id}' has {} elements, input '{}' expects {expected}",
                            v.shares.len(),
                            decl.name
                        )));
                    }
                    v.shares.clone()
                }
                (None, None) => {
                    return Err(NodeError::Invalid(format!(
                        "program input '{}' is not bound",
                        decl.name
                    )));
                }
            };
            // The ring of the components must be the input's: compact Z_2^32 shares for a
            // `Ring32` input, Z_2^64 words for every other type.
            let wants32 = decl.ty.elem == ElemType::Ring32;
            if (shares.ring_bits() == 32) != wants32 {
                return Err(NodeError::Invalid(format!(
                    "input '{}' takes {} shares, but was given {} shares",
                    decl.name,
                    if wants32 { "Z_2^32 (Ring32)" } else { "Z_2^64" },
                    if wants32 { "Z_2^64" } else { "Z_2^32" }
                )));
            }
            let input = match shares {
                PartyShares::Ring64(s) => InputValue::Held(s),
                PartyShares::Ring32(s) => InputValue::Compact(s),
            };
            inputs.insert(decl.name.clone(), input);
        }
        if let Some(extra) = r
            .inputs
            .keys()
            .chain(r.inline_inputs.keys())
            .find(|k| !inputs.contains_key(*k))
        {
            return Err(NodeError::Invalid(format!(
                "'{extra}' is not an input of the program"
            )));
        }
        let binding = SessionBinding::of_request(r, &program_id, caller, self.security).hash();
        Ok(Prepared {
            program,
            recipient,
            inputs,
            binding,
        })
    }

    /// One trip to the store: the program, whether the result id is taken, and the stored
    /// values bound to the program's declared inputs (held ones come from the cache).
    async fn lookup(&self, r: &pb::InvokeRequest) -> Result<Lookup, NodeError> {
        let (program_id, result_id) = (r.program_id.clone(), r.result_id.clone());
        let check_result = !r.inline_outputs;
        let bound = r.inputs.clone();
        on_store(&self.store, move |s| {
            // Programs are public (List shows them all): NotFound is no oracle here.
            let json = s
                .get_program(&program_id)?
                .ok_or_else(|| NodeError::NotFound(format!("no program '{program_id}'")))?;
            let program = Program::from_json(&json)
                .and_then(|p| p.validate())
                .map_err(|e| NodeError::Internal(format!("stored program is invalid: {e}")))?;
            let result_taken = check_result && s.has_result(&result_id)?;
            let mut values = HashMap::new();
            for decl in &program.program().inputs {
                if let Some(value_id) = bound.get(&decl.name) {
                    values.insert(decl.name.clone(), s.get_value_held(value_id)?);
                }
            }
            Ok(Lookup {
                program,
                result_taken,
                values,
            })
        })
        .await
    }
}
