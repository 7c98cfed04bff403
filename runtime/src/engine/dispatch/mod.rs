//! Per-op dispatch: what one op does at one party once its operands are ready. The scheduler
//! ([`super::schedule`]) decides *when* each op runs and *whether* it talks (from the cost
//! model); here each family of ops says *how*, in two forms:
//!
//! - `start`: the op's protocol, as a state machine the scheduler drives one round at a time
//!   together with every other op of the round;
//! - `local`: the op without communication (linear ops, a public factor, public operands).
//!
//! | family | module | ops |
//! |---|---|---|
//! | inputs, constants, reveals | [`io`] | `Input`, `Constant`, `Reveal` |
//! | linear ops and products | [`linear`] | `Add`, `Sub`, `Neg`, `Mul`, `Dot`, `MatMul`, `Rescale`, `MatMulRescale`, `Select` |
//! | comparisons | [`compare`] | `Ltz`, `Lt`, `Le`, `Gt`, `Ge`, `Eq`, `Relu`, `Max`, `Min`, `MaxAll`, `ArgMax`, `Bits`, `MsbOneHot` |
//! | selection | [`select`] | `BestK`, `OneHotLow` |
//! | data movement | [`data`] | `Sum`, `Reshape`, `Slice`, `Concat`, `Transpose`, `Im2Col` |
//! | compact Z_2^32 values | [`ring32`] | every op with a Ring32 result (`Add`, `Sub`, `Neg`, `MatMul`, data movement, `Narrow`) and `Widen` |
//!
//! Where the schedule and an op disagree (a local op whose operands need a protocol, a missing
//! operand, an operand of the wrong kind) the op fails with a typed [`EngineError`]: the session
//! fails, the node does not panic. Public operands follow the plaintext semantics of
//! [`veil_circuits::eval`], which the non-linear families call directly.

mod compare;
mod data;
mod io;
mod linear;
mod ring32;
mod select;

use super::value::{InputValue, Val};
use crate::error::{EngineError, ProtocolError};
use crate::party::PartyCtx;
use crate::protocols::compose::OneRound;
use crate::protocols::{Expect, MultiRound, RevealRound, RoundProtocol};
use crate::sharing::{Shares, Shares32};
use std::borrow::Cow;
use veil_circuits::{ElemType, Op, PartyId, Shape, ValidatedProgram, ValueId};

/// A protocol in flight for an op: arithmetic-share protocols of any number of rounds, or a
/// reveal (whose result is public).
pub(super) enum Pending {
    Multi(Box<dyn MultiRound>),
    Reveal(RevealRound),
}

impl Pending {
    pub(super) fn to_next(&self) -> &[u64] {
        match self {
            Pending::Multi(p) => p.to_next(),
            Pending::Reveal(p) => p.to_next(),
        }
    }

    pub(super) fn to_prev(&self) -> &[u64] {
        match self {
            Pending::Multi(p) => p.to_prev(),
            Pending::Reveal(p) => p.to_prev(),
        }
    }

    pub(super) fn expect(&self) -> Expect {
        match self {
            Pending::Multi(p) => p.expect(),
            Pending::Reveal(p) => p.expect(),
        }
    }
}

/// A one-round protocol as a boxed [`MultiRound`].
fn one<P: RoundProtocol<Output = Shares> + 'static>(p: P) -> Pending {
    Pending::Multi(Box::new(OneRound(p)))
}

/// What op `op` reads: the program and the values computed so far at this party.
pub(super) struct Operands<'a> {
    pub(super) program: &'a ValidatedProgram,
    pub(super) vals: &'a [Option<Val>],
    pub(super) op: usize,
    pub(super) me: PartyId,
}

impl Operands<'_> {
    fn op(&self) -> &Op {
        &self.program.program().ops[self.op]
    }

    fn name(&self) -> &'static str {
        self.op().name()
    }

    /// Elements of the op's result.
    fn n(&self) -> usize {
        self.program.types()[self.op].shape.len()
    }

    fn shape(&self, v: ValueId) -> Shape {
        self.program.types()[v.index()].shape
    }

    /// `(rows, cols)` of a row-wise operand: a matrix, or a vector as one row.
    fn rows_cols(&self, v: ValueId) -> (usize, usize) {
        match self.shape(v) {
            Shape::Matrix(r, c) => (r, c),
            s => (1, s.len()),
        }
    }

    /// `(rows, cols)` of an operand that must be a matrix.
    fn matrix(&self, v: ValueId) -> Result<(usize, usize), EngineError> {
        match self.shape(v) {
            Shape::Matrix(r, c) => Ok((r, c)),
            _ => Err(EngineError::OperandShape {
                op: self.op,
                name: self.name(),
                operand: v,
                expected: "matrix",
            }),
        }
    }

    fn val(&self, v: ValueId) -> Result<&Val, EngineError> {
        self.vals
            .get(v.index())
            .and_then(Option::as_ref)
            .ok_or(EngineError::MissingValue {
                op: self.op,
                name: self.name(),
                operand: v,
            })
    }

    fn kind_error(&self, v: ValueId, expected: &'static str, found: &Val) -> EngineError {
        EngineError::OperandKind {
            op: self.op,
            name: self.name(),
            operand: v,
            expected,
            found: found.kind(),
        }
    }

    /// An operand that must be secret (its protocol runs on shares).
    fn secret(&self, v: ValueId) -> Result<&Shares, EngineError> {
        match self.val(v)? {
            Val::Secret(s) => Ok(s),
            other => Err(self.kind_error(v, "secret", other)),
        }
    }

    /// An operand that must be a secret Ring32 value (compact shares).
    fn secret32(&self, v: ValueId) -> Result<&Shares32, EngineError> {
        match self.val(v)? {
            Val::Secret32(s) => Ok(s),
            other => Err(self.kind_error(v, "secret Ring32", other)),
        }
    }

    /// A Ring32 operand as this party's compact shares (trivial for public words), a scalar
    /// repeated to `n` elements.
    fn shares32(&self, v: ValueId, n: usize) -> Result<Cow<'_, Shares32>, EngineError> {
        let val = self.val(v)?;
        val.shares32(self.me, n)
            .ok_or_else(|| self.kind_error(v, "secret Ring32 or public", val))
    }

    /// An operand that must be public (the op is local only on public words).
    fn public(&self, v: ValueId) -> Result<&[u64], EngineError> {
        match self.val(v)? {
            Val::Public(w) => Ok(w),
            other => Err(self.kind_error(v, "public", other)),
        }
    }

    /// Both operands public, a scalar repeated to the result's length.
    fn public2(&self, a: ValueId, b: ValueId) -> Result<(Vec<u64>, Vec<u64>), EngineError> {
        let n = self.n();
        let (x, y) = (self.public(a)?, self.public(b)?);
        Ok((super::value::broadcast(x, n), super::value::broadcast(y, n)))
    }

    /// An operand as this party's shares (trivial for public words), a scalar repeated to the
    /// result's length.
    fn shares(&self, v: ValueId) -> Result<Cow<'_, Shares>, EngineError> {
        let val = self.val(v)?;
        val.shares(self.me, self.n())
            .ok_or_else(|| self.kind_error(v, "secret or public", val))
    }

    /// The schedule and the op disagree.
    fn schedule_error(&self, what: impl Into<String>) -> EngineError {
        EngineError::Schedule {
            op: self.op,
            name: self.name(),
            what: what.into(),
        }
    }

    /// The cost model gave the op rounds, but it has no protocol (or none for these operands).
    fn no_protocol(&self) -> EngineError {
        self.schedule_error("the cost model gives it rounds, but it has no protocol")
    }

    /// An operand held as compact Ring32 shares where the op works on Z_2^64 (a fault in
    /// veil: validation keeps Ring32 values away from such ops).
    fn not_ring32(&self) -> EngineError {
        self.schedule_error("a compact Ring32 operand reached an op over Z_2^64")
    }

    /// True when the op's result is a Ring32 value.
    fn is_ring32(&self) -> bool {
        self.program.types()[self.op].elem == ElemType::Ring32
    }

    /// A protocol's own error, tagged with this op.
    fn protocol<T>(&self, r: Result<T, ProtocolError>) -> Result<T, EngineError> {
        r.map_err(|source| EngineError::Protocol {
            op: self.op,
            name: self.name(),
            source,
        })
    }
}

/// The families of ops, one module each.
enum Family {
    Io,
    Linear,
    Compare,
    Select,
    Data,
    Ring32,
}

/// The family of op `x`: every op with a Ring32 result (inputs and constants aside) and the
/// conversions are [`ring32`]'s.
fn family_of(x: &Operands) -> Family {
    match x.op() {
        Op::Input { .. } | Op::Constant { .. } => Family::Io,
        _ if x.is_ring32() => Family::Ring32,
        op => family(op),
    }
}

fn family(op: &Op) -> Family {
    match op {
        Op::Input { .. } | Op::Constant { .. } | Op::Reveal(_) => Family::Io,
        Op::Add(..)
        | Op::Sub(..)
        | Op::Neg(_)
        | Op::Mul(..)
        | Op::Dot(..)
        | Op::MatMul(..)
        | Op::Rescale { .. }
        | Op::MatMulRescale { .. }
        | Op::Select { .. } => Family::Linear,
        Op::Ltz(_)
        | Op::Lt(..)
        | Op::Le(..)
        | Op::Gt(..)
        | Op::Ge(..)
        | Op::Eq(..)
        | Op::Relu(_)
        | Op::Max(..)
        | Op::Min(..)
        | Op::MaxAll(_)
        | Op::ArgMax(_)
        | Op::Bits(_)
        | Op::MsbOneHot { .. } => Family::Compare,
        Op::BestK { .. } | Op::OneHotLow { .. } => Family::Select,
        Op::Widen { .. } | Op::Narrow { .. } => Family::Ring32,
        Op::Sum { .. }
        | Op::Reshape { .. }
        | Op::Slice { .. }
        | Op::Concat(_)
        | Op::Transpose(_)
        | Op::Im2Col { .. } => Family::Data,
    }
}

/// Start the protocol of an op the schedule marks interactive.
pub(super) fn start(
    ctx: &mut PartyCtx,
    x: &Operands,
    op_inputs: &mut [Option<InputValue>],
) -> Result<Pending, EngineError> {
    match family_of(x) {
        Family::Io => io::start(ctx, x, op_inputs),
        Family::Linear => linear::start(ctx, x),
        Family::Compare => compare::start(ctx, x),
        Family::Select => select::start(ctx, x),
        Family::Ring32 => ring32::start(ctx, x),
        Family::Data => Err(x.no_protocol()),
    }
}

/// Compute an op the schedule marks local.
pub(super) fn local(
    x: &Operands,
    op_inputs: &mut [Option<InputValue>],
) -> Result<Val, EngineError> {
    match family_of(x) {
        Family::Io => io::local(x, op_inputs),
        Family::Linear => linear::local(x),
        Family::Compare => compare::local(x),
        Family::Select => select::local(x),
        Family::Ring32 => ring32::local(x),
        Family::Data => data::local(x),
    }
}
