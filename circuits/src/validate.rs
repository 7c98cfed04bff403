//! Validation (type inference), content-hash ids and JSON serialisation of programs.
//!
//! # Type rules
//! - **Visibility**: a result is secret when any operand is secret; `Reveal` needs a secret
//!   operand and yields a public value. Constants are public; inputs have their declared type.
//! - **Bits**: only `Input` (public only, for now), `Constant`, `Reshape`, `Slice`, `Concat`,
//!   `Transpose` and `Reveal` accept bit values; arithmetic on bits arrives with comparisons.
//! - **Add, Sub, Max, Min**: equal element types (`Fixed(f)` needs equal `f`); the result has
//!   that element type. **Neg, Relu**: any non-bit, same type.
//! - **Comparisons** (Ltz, Lt, Le, Gt, Ge, Eq): operands as for Add; the result is **ring**
//!   (0/1 words) with the broadcast shape.
//! - **Select{cond, a, b}**: `cond` must be ring; `a`, `b` as for Add; the three broadcast
//!   together (equal shapes or scalars); the result has `a`'s element type.
//! - **MaxAll**: any non-empty shape → scalar, same element type. **ArgMax**: a non-empty
//!   vector → ring scalar. **BestK{k}**: a `vector[n]` with `1 ≤ k ≤ n` → `vector[k]`, same
//!   element type. **OneHotLow{bits, n, skip}**: any m elements, `1 ≤ bits ≤ 32`,
//!   `skip + bits ≤ 62`, `1 ≤ n ≤ 2^bits` → ring `matrix[m×n]`.
//! - **Ring32** (compact Z_2^32 values): accepted only by `Input`, `Constant` (words < 2^32),
//!   `Add`, `Sub`, `Neg`, `MatMul` (both operands Ring32 → Ring32), `Reshape`, `Slice`,
//!   `Transpose`, `Concat`, `Widen` and outputs. Any other op on a Ring32 operand is
//!   [`ValidationError::Ring32Unsupported`]; Ring32 combined with another element type is
//!   [`ValidationError::Ring32Mix`]. **Widen**: Ring32 → Ring, **Narrow**: Ring → Ring32, same
//!   shape and visibility ([`ValidationError::ConvertElem`] otherwise).
//! - **Mul, Dot, MatMul**: ring·ring → ring; `Fixed(f)·Fixed(g)` → `Fixed(f+g)` (needs
//!   `f+g ≤ 62`); ring·`Fixed(f)` and `Fixed(f)`·ring → `Fixed(f)`.
//! - **Broadcast** (Add, Sub, Mul, Max, Min, comparisons, Select): equal shapes, or one scalar operand (the result takes the
//!   other's shape).
//! - **Dot**: `vector[n]`·`vector[n]` → scalar; `matrix[m×n]`·`matrix[m×n]` → `vector[m]`
//!   (row-wise).
//! - **MatMul**: `matrix[m×k]`·`matrix[k×n]` → `matrix[m×n]`.
//! - **Sum**: `All` → scalar; `Rows` needs a `matrix[m×n]` → `vector[m]`.
//! - **Rescale{bits}**: `Fixed(f)` with `bits ≤ f` → `Fixed(f − bits)`.
//! - **Reshape**: equal element count. **Slice**: `start ≤ end ≤ len` over vector elements or
//!   matrix rows. **Concat**: ≥ 1 part, equal element types, all vectors or all matrices with
//!   equal column counts. **Transpose**: `matrix[r×c]` → `matrix[c×r]`.
//!
//! # Structural rules
//! Every op may only read values defined before it. Input and output names are non-empty and
//! unique; client names are non-empty. Each declared input is read by **exactly one** `Input`
//! op (reading it twice or never is an error), so inputs and `Input` ops correspond one to one.
//! Every shape (declared, constant or result) has at most [`MAX_ELEMENTS`] elements; zero-length
//! vectors and matrices are allowed. Fractional bits never exceed
//! [`MAX_MAGNITUDE_BITS`] (62).

use crate::error::ValidationError;
use crate::fixed::MAX_MAGNITUDE_BITS;
use crate::program::{InputDecl, Op, Owner, PROGRAM_VERSION, Program, Recipient, SumAxis};
use crate::selection;
use crate::types::{ElemType, Shape, ValueType, Visibility};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// Largest element count of any value (2^32 words = 32 GiB); larger shapes are rejected.
pub const MAX_ELEMENTS: usize = 1 << 32;

/// Largest `skip + bits` of [`Op::OneHotLow`]: the index bits lie within the low 62 bits.
pub const MAX_ONEHOT_LANES: u32 = 62;

/// Domain separation prefix of [`ProgramId`] hashes.
const ID_DOMAIN: &[u8] = b"veil/program/v1\0";

/// Content hash of a program: SHA-256 over a domain prefix and its compact serde JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramId(pub [u8; 32]);

impl fmt::Display for ProgramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a string is not a [`ProgramId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a program id is 64 hex digits")]
pub struct ParseProgramIdError;

impl FromStr for ProgramId {
    type Err = ParseProgramIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseProgramIdError)?;
        Ok(ProgramId(out))
    }
}

impl Serialize for ProgramId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ProgramId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A program that passed [`Program::validate`], with the type of every value and its id.
#[derive(Clone, Debug)]
pub struct ValidatedProgram {
    program: Program,
    types: Vec<ValueType>,
    id: ProgramId,
    input_index: HashMap<String, usize>,
}

impl ValidatedProgram {
    /// The program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Type of every value: `types()[i]` is the type of `ValueId(i)`.
    pub fn types(&self) -> &[ValueType] {
        &self.types
    }

    /// Content hash.
    pub fn id(&self) -> &ProgramId {
        &self.id
    }

    /// Position in `program().inputs` of the input with this name.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.input_index.get(name).copied()
    }

    /// The program, dropping the validation results.
    pub fn into_program(self) -> Program {
        self.program
    }

    /// The same computation with every output addressed to `recipient` (a new program, so a
    /// new content-hash id): how a client runs a shared program JSON for itself.
    pub fn with_outputs_to(
        &self,
        recipient: &Recipient,
    ) -> Result<ValidatedProgram, ValidationError> {
        let mut program = self.program.clone();
        for out in &mut program.outputs {
            out.recipient = recipient.clone();
        }
        program.validate()
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    version: u32,
}

impl Program {
    /// An empty program of the current version.
    pub fn new() -> Self {
        Program {
            version: PROGRAM_VERSION,
            inputs: vec![],
            ops: vec![],
            outputs: vec![],
        }
    }

    /// Content hash (no validation): SHA-256 of `b"veil/program/v1\0"` ‖ compact serde JSON.
    pub fn id(&self) -> ProgramId {
        // Invariant: these plain derived types (no maps, no floats) always serialise.
        let json = serde_json::to_vec(self).expect("a Program always serialises to JSON");
        let mut h = Sha256::new();
        h.update(ID_DOMAIN);
        h.update(&json);
        ProgramId(h.finalize().into())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Program always serialises to JSON")
    }

    /// Parses JSON; a `version` other than [`PROGRAM_VERSION`] is rejected before anything
    /// else. The result is not validated yet.
    pub fn from_json(s: &str) -> Result<Program, ValidationError> {
        let json_err = |e: serde_json::Error| ValidationError::Json {
            reason: e.to_string(),
        };
        let probe: VersionProbe = serde_json::from_str(s).map_err(json_err)?;
        if probe.version != PROGRAM_VERSION {
            return Err(ValidationError::UnsupportedVersion {
                found: probe.version,
                expected: PROGRAM_VERSION,
            });
        }
        serde_json::from_str(s).map_err(json_err)
    }

    /// Checks structure and types (see the [module docs](self)) and computes the id.
    pub fn validate(&self) -> Result<ValidatedProgram, ValidationError> {
        if self.version != PROGRAM_VERSION {
            return Err(ValidationError::UnsupportedVersion {
                found: self.version,
                expected: PROGRAM_VERSION,
            });
        }
        if self.ops.len() as u64 > u64::from(u32::MAX) + 1 {
            return Err(ValidationError::TooManyOps {
                count: self.ops.len(),
            });
        }
        let mut input_index = HashMap::with_capacity(self.inputs.len());
        for (i, decl) in self.inputs.iter().enumerate() {
            check_input_decl(i, decl)?;
            if input_index.insert(decl.name.clone(), i).is_some() {
                return Err(ValidationError::DuplicateInput {
                    name: decl.name.clone(),
                });
            }
        }
        let mut types = Vec::with_capacity(self.ops.len());
        let mut reader: Vec<Option<usize>> = vec![None; self.inputs.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let ty = infer_op(i, op, &self.inputs, &types)?;
            if let Op::Input { input } = op {
                // infer_op checked the index.
                if let Some(first) = reader[*input] {
                    return Err(ValidationError::InputReadTwice {
                        op: i,
                        name: op.name(),
                        input: self.inputs[*input].name.clone(),
                        first,
                    });
                }
                reader[*input] = Some(i);
            }
            types.push(ty);
        }
        if let Some(i) = reader.iter().position(Option::is_none) {
            return Err(ValidationError::InputUnused {
                name: self.inputs[i].name.clone(),
            });
        }
        let mut names = HashSet::with_capacity(self.outputs.len());
        for (i, out) in self.outputs.iter().enumerate() {
            if out.name.is_empty() {
                return Err(ValidationError::EmptyName {
                    what: "output",
                    index: i,
                });
            }
            if matches!(&out.recipient, Recipient::Client(c) if c.is_empty()) {
                return Err(ValidationError::EmptyName {
                    what: "output recipient",
                    index: i,
                });
            }
            if !names.insert(out.name.as_str()) {
                return Err(ValidationError::DuplicateOutput {
                    name: out.name.clone(),
                });
            }
            if out.value.index() >= types.len() {
                return Err(ValidationError::OutputUndefined {
                    output: out.name.clone(),
                    value: out.value,
                });
            }
        }
        Ok(ValidatedProgram {
            program: self.clone(),
            types,
            id: self.id(),
            input_index,
        })
    }
}

impl Default for Program {
    fn default() -> Self {
        Self::new()
    }
}

fn check_input_decl(i: usize, decl: &InputDecl) -> Result<(), ValidationError> {
    if decl.name.is_empty() {
        return Err(ValidationError::EmptyName {
            what: "input",
            index: i,
        });
    }
    if matches!(&decl.owner, Owner::Client(c) if c.is_empty()) {
        return Err(ValidationError::EmptyName {
            what: "input owner",
            index: i,
        });
    }
    if checked_len(decl.ty.shape).is_none() {
        return Err(ValidationError::InputShapeTooLarge {
            name: decl.name.clone(),
            shape: decl.ty.shape,
        });
    }
    match decl.ty.elem {
        ElemType::Fixed(f) if f.0 > MAX_MAGNITUDE_BITS => Err(ValidationError::InputFracBits {
            name: decl.name.clone(),
            frac_bits: f.0,
        }),
        ElemType::Bit if decl.ty.vis == Visibility::Secret => {
            Err(ValidationError::SecretBitInput {
                name: decl.name.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Element count if it is at most [`MAX_ELEMENTS`].
pub(crate) fn checked_len(shape: Shape) -> Option<usize> {
    shape.checked_len().filter(|&n| n <= MAX_ELEMENTS)
}

/// Differing element types: [`ValidationError::Ring32Mix`] when Ring32 is involved (naming the
/// conversions), else [`ValidationError::ElemMismatch`].
fn elem_mismatch(
    op: usize,
    name: &'static str,
    left: ElemType,
    right: ElemType,
) -> ValidationError {
    if left == ElemType::Ring32 || right == ElemType::Ring32 {
        ValidationError::Ring32Mix {
            op,
            name,
            left,
            right,
        }
    } else {
        ValidationError::ElemMismatch {
            op,
            name,
            left,
            right,
        }
    }
}

fn join(a: Visibility, b: Visibility) -> Visibility {
    if a == Visibility::Secret || b == Visibility::Secret {
        Visibility::Secret
    } else {
        Visibility::Public
    }
}

/// Infers the type of op number `op` given the types of all earlier values. Input declarations
/// are assumed checked; `Input` ops are not checked for double reads here.
pub(crate) fn infer_op(
    op: usize,
    o: &Op,
    inputs: &[InputDecl],
    types: &[ValueType],
) -> Result<ValueType, ValidationError> {
    let name = o.name();
    let get = |v: crate::program::ValueId| {
        if v.index() < op && v.index() < types.len() {
            Ok(types[v.index()])
        } else {
            Err(ValidationError::UnknownValue { op, name, value: v })
        }
    };
    let no_bit = |t: &ValueType| {
        if t.elem == ElemType::Bit {
            Err(ValidationError::BitUnsupported { op, name })
        } else {
            Ok(())
        }
    };
    let sized = |shape: Shape| {
        if checked_len(shape).is_some() {
            Ok(shape)
        } else {
            Err(ValidationError::ShapeTooLarge { op, name, shape })
        }
    };
    let mul_elem = |a: ElemType, b: ElemType| match (a, b) {
        (ElemType::Ring, ElemType::Ring) => Ok(ElemType::Ring),
        (ElemType::Ring32, ElemType::Ring32) => Ok(ElemType::Ring32),
        (ElemType::Ring32, _) | (_, ElemType::Ring32) => Err(ValidationError::Ring32Mix {
            op,
            name,
            left: a,
            right: b,
        }),
        (ElemType::Fixed(f), ElemType::Fixed(g)) => {
            let sum = u64::from(f.0) + u64::from(g.0);
            if sum > u64::from(MAX_MAGNITUDE_BITS) {
                Err(ValidationError::FracBitsTooLarge {
                    op,
                    name,
                    frac_bits: sum,
                })
            } else {
                Ok(ElemType::Fixed(crate::types::FracBits(f.0 + g.0)))
            }
        }
        (ElemType::Ring, ElemType::Fixed(f)) | (ElemType::Fixed(f), ElemType::Ring) => {
            Ok(ElemType::Fixed(f))
        }
        _ => Err(ValidationError::BitUnsupported { op, name }),
    };
    let broadcast = |a: Shape, b: Shape| {
        if a == b || b == Shape::Scalar {
            Ok(a)
        } else if a == Shape::Scalar {
            Ok(b)
        } else {
            Err(ValidationError::ShapeMismatch {
                op,
                name,
                left: a,
                right: b,
            })
        }
    };

    // Add-like: no bits, equal element types, broadcast shapes.
    let same_elem = |a: crate::program::ValueId, b: crate::program::ValueId| {
        let (ta, tb) = (get(a)?, get(b)?);
        no_bit(&ta)?;
        no_bit(&tb)?;
        if ta.elem != tb.elem {
            return Err(elem_mismatch(op, name, ta.elem, tb.elem));
        }
        Ok(ValueType {
            vis: join(ta.vis, tb.vis),
            elem: ta.elem,
            shape: broadcast(ta.shape, tb.shape)?,
        })
    };

    // Ring32 values are accepted by a few ops only (see the module docs).
    let ring32_ok = matches!(
        o,
        Op::Input { .. }
            | Op::Constant { .. }
            | Op::Add(..)
            | Op::Sub(..)
            | Op::Neg(_)
            | Op::MatMul(..)
            | Op::Reshape { .. }
            | Op::Slice { .. }
            | Op::Transpose(_)
            | Op::Concat(_)
            | Op::Widen { .. }
            | Op::Narrow { .. }
    );
    if !ring32_ok {
        for v in o.operands() {
            if get(v)?.elem == ElemType::Ring32 {
                return Err(ValidationError::Ring32Unsupported { op, name });
            }
        }
    }
    let convert = |a: crate::program::ValueId, from: ElemType, to: ElemType| {
        let ta = get(a)?;
        if ta.elem != from {
            return Err(ValidationError::ConvertElem {
                op,
                name,
                expected: from,
                found: ta.elem,
            });
        }
        Ok(ValueType { elem: to, ..ta })
    };

    Ok(match o {
        Op::Widen { a } => convert(*a, ElemType::Ring32, ElemType::Ring)?,
        Op::Narrow { a } => convert(*a, ElemType::Ring, ElemType::Ring32)?,
        Op::Input { input } => match inputs.get(*input) {
            Some(decl) => decl.ty,
            None => {
                return Err(ValidationError::InputIndex {
                    op,
                    name,
                    input: *input,
                    count: inputs.len(),
                });
            }
        },
        Op::Constant {
            elem,
            shape,
            values,
        } => {
            if let ElemType::Fixed(f) = elem
                && f.0 > MAX_MAGNITUDE_BITS
            {
                return Err(ValidationError::FracBitsTooLarge {
                    op,
                    name,
                    frac_bits: u64::from(f.0),
                });
            }
            let expected = checked_len(*shape).ok_or(ValidationError::ShapeTooLarge {
                op,
                name,
                shape: *shape,
            })?;
            if values.len() != expected {
                return Err(ValidationError::ConstantLength {
                    op,
                    name,
                    shape: *shape,
                    expected,
                    found: values.len(),
                });
            }
            if *elem == ElemType::Bit
                && let Some(position) = values.iter().position(|&v| v > 1)
            {
                return Err(ValidationError::BitConstant { op, name, position });
            }
            if *elem == ElemType::Ring32
                && let Some(position) = values.iter().position(|&v| v > crate::types::RING32_MASK)
            {
                return Err(ValidationError::Ring32Constant { op, name, position });
            }
            ValueType {
                vis: Visibility::Public,
                elem: *elem,
                shape: *shape,
            }
        }
        Op::Add(a, b) | Op::Sub(a, b) | Op::Max(a, b) | Op::Min(a, b) => same_elem(*a, *b)?,
        Op::Lt(a, b) | Op::Le(a, b) | Op::Gt(a, b) | Op::Ge(a, b) | Op::Eq(a, b) => ValueType {
            elem: ElemType::Ring,
            ..same_elem(*a, *b)?
        },
        Op::Neg(a) | Op::Relu(a) => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            ta
        }
        Op::Ltz(a) => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            ValueType {
                elem: ElemType::Ring,
                ..ta
            }
        }
        Op::Select { cond, a, b } => {
            let tc = get(*cond)?;
            no_bit(&tc)?;
            if tc.elem != ElemType::Ring {
                return Err(ValidationError::CondNotRing {
                    op,
                    name,
                    elem: tc.elem,
                });
            }
            let tab = same_elem(*a, *b)?;
            ValueType {
                vis: join(tc.vis, tab.vis),
                elem: tab.elem,
                shape: broadcast(tc.shape, tab.shape)?,
            }
        }
        Op::MaxAll(a) => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            if ta.shape.is_empty() {
                return Err(ValidationError::EmptyOperand {
                    op,
                    name,
                    shape: ta.shape,
                });
            }
            ValueType {
                shape: Shape::Scalar,
                ..ta
            }
        }
        Op::Bits(a) | Op::MsbOneHot { a, .. } => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            let lanes = match o {
                Op::MsbOneHot { lanes, .. } => *lanes,
                _ => 64,
            };
            if lanes == 0 || lanes > 64 {
                return Err(ValidationError::SizeLimit {
                    op,
                    name,
                    what: "lanes",
                    got: lanes as usize,
                    max: 64,
                });
            }
            ValueType {
                vis: ta.vis,
                elem: ElemType::Ring,
                shape: sized(Shape::Matrix(ta.shape.len(), lanes as usize))?,
            }
        }
        Op::BestK { a, k, groups, .. } => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            let Shape::Vector(len) = ta.shape else {
                return Err(ValidationError::NotNonEmptyVector {
                    op,
                    name,
                    shape: ta.shape,
                });
            };
            if *k == 0 || *k > len {
                return Err(ValidationError::CountRange {
                    op,
                    name,
                    k: *k,
                    len,
                });
            }
            if let Some(groups) = groups {
                selection::check_rank_groups(len, *k, groups)
                    .map_err(|reason| ValidationError::BestKGroups { op, reason })?;
            }
            ValueType {
                shape: Shape::Vector(*k),
                ..ta
            }
        }
        Op::OneHotLow { a, bits, n, skip } => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            if *bits == 0 || *bits > 32 {
                return Err(ValidationError::SizeLimit {
                    op,
                    name,
                    what: "bits",
                    got: *bits as usize,
                    max: 32,
                });
            }
            if u64::from(*skip) + u64::from(*bits) > u64::from(MAX_ONEHOT_LANES) {
                return Err(ValidationError::SizeLimit {
                    op,
                    name,
                    what: "skip + bits",
                    got: (u64::from(*skip) + u64::from(*bits)) as usize,
                    max: MAX_ONEHOT_LANES as usize,
                });
            }
            if *n == 0 || *n > 1usize << bits {
                return Err(ValidationError::SizeLimit {
                    op,
                    name,
                    what: "columns (1 ≤ n ≤ 2^bits)",
                    got: *n,
                    max: 1usize << bits,
                });
            }
            ValueType {
                vis: ta.vis,
                elem: ElemType::Ring,
                shape: sized(Shape::Matrix(ta.shape.len(), *n))?,
            }
        }
        Op::ArgMax(a) => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            if !matches!(ta.shape, Shape::Vector(n) if n > 0) {
                return Err(ValidationError::NotNonEmptyVector {
                    op,
                    name,
                    shape: ta.shape,
                });
            }
            ValueType {
                vis: ta.vis,
                elem: ElemType::Ring,
                shape: Shape::Scalar,
            }
        }
        Op::Mul(a, b) => {
            let (ta, tb) = (get(*a)?, get(*b)?);
            no_bit(&ta)?;
            no_bit(&tb)?;
            ValueType {
                vis: join(ta.vis, tb.vis),
                elem: mul_elem(ta.elem, tb.elem)?,
                shape: broadcast(ta.shape, tb.shape)?,
            }
        }
        Op::Dot(a, b) => {
            let (ta, tb) = (get(*a)?, get(*b)?);
            no_bit(&ta)?;
            no_bit(&tb)?;
            let shape = match (ta.shape, tb.shape) {
                (Shape::Vector(n), Shape::Vector(m)) if n == m => Shape::Scalar,
                (Shape::Matrix(r, c), Shape::Matrix(r2, c2)) if r == r2 && c == c2 => {
                    Shape::Vector(r)
                }
                (left, right) => {
                    return Err(ValidationError::DotShape {
                        op,
                        name,
                        left,
                        right,
                    });
                }
            };
            ValueType {
                vis: join(ta.vis, tb.vis),
                elem: mul_elem(ta.elem, tb.elem)?,
                shape,
            }
        }
        Op::MatMul(a, b) | Op::MatMulRescale { a, b, .. } => {
            let (ta, tb) = (get(*a)?, get(*b)?);
            no_bit(&ta)?;
            no_bit(&tb)?;
            let shape = match (ta.shape, tb.shape) {
                (Shape::Matrix(m, k), Shape::Matrix(k2, n)) => {
                    if k != k2 {
                        return Err(ValidationError::InnerDim {
                            op,
                            name,
                            left: ta.shape,
                            right: tb.shape,
                        });
                    }
                    sized(Shape::Matrix(m, n))?
                }
                (Shape::Matrix(..), shape) | (shape, _) => {
                    return Err(ValidationError::NotMatrix { op, name, shape });
                }
            };
            let ty = ValueType {
                vis: join(ta.vis, tb.vis),
                elem: mul_elem(ta.elem, tb.elem)?,
                shape,
            };
            match (o, ty.elem) {
                (Op::MatMulRescale { bits, .. }, ElemType::Fixed(f)) if *bits <= f.0 => ValueType {
                    elem: ElemType::Fixed(crate::types::FracBits(f.0 - bits)),
                    ..ty
                },
                (Op::MatMulRescale { bits, .. }, ElemType::Fixed(_)) => {
                    return Err(ValidationError::RescaleTooMany {
                        op,
                        name,
                        bits: *bits,
                        elem: ty.elem,
                    });
                }
                (Op::MatMulRescale { .. }, elem) => {
                    return Err(ValidationError::RescaleNotFixed { op, name, elem });
                }
                _ => ty,
            }
        }
        Op::Sum { a, axis } => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            let shape = match (axis, ta.shape) {
                (SumAxis::All, _) => Shape::Scalar,
                (SumAxis::Rows, Shape::Matrix(m, _)) => Shape::Vector(m),
                (SumAxis::Rows, shape) => {
                    return Err(ValidationError::NotMatrix { op, name, shape });
                }
            };
            ValueType { shape, ..ta }
        }
        Op::Rescale { a, bits } => {
            let ta = get(*a)?;
            no_bit(&ta)?;
            match ta.elem {
                ElemType::Fixed(f) if *bits <= f.0 => ValueType {
                    elem: ElemType::Fixed(crate::types::FracBits(f.0 - bits)),
                    ..ta
                },
                ElemType::Fixed(_) => {
                    return Err(ValidationError::RescaleTooMany {
                        op,
                        name,
                        bits: *bits,
                        elem: ta.elem,
                    });
                }
                elem => return Err(ValidationError::RescaleNotFixed { op, name, elem }),
            }
        }
        Op::Reshape { a, shape } => {
            let ta = get(*a)?;
            let to = sized(*shape)?;
            if checked_len(to) != checked_len(ta.shape) {
                return Err(ValidationError::ReshapeLen {
                    op,
                    name,
                    from: ta.shape,
                    to,
                });
            }
            ValueType { shape: to, ..ta }
        }
        Op::Slice { a, start, end } => {
            let ta = get(*a)?;
            let (n, make): (usize, &dyn Fn(usize) -> Shape) = match ta.shape {
                Shape::Scalar => return Err(ValidationError::SliceScalar { op, name }),
                Shape::Vector(n) => (n, &Shape::Vector),
                Shape::Matrix(r, c) => (r, &move |rows| Shape::Matrix(rows, c)),
            };
            if start > end || *end > n {
                return Err(ValidationError::SliceRange {
                    op,
                    name,
                    start: *start,
                    end: *end,
                    shape: ta.shape,
                });
            }
            ValueType {
                shape: make(end - start),
                ..ta
            }
        }
        Op::Concat(parts) => {
            let Some(first) = parts.first() else {
                return Err(ValidationError::ConcatEmpty { op, name });
            };
            let t0 = get(*first)?;
            let mut vis = t0.vis;
            let mut total: usize = 0;
            for (part, v) in parts.iter().enumerate() {
                let t = get(*v)?;
                if t.elem != t0.elem {
                    return Err(elem_mismatch(op, name, t0.elem, t.elem));
                }
                let n = match (t0.shape, t.shape) {
                    (Shape::Vector(_), Shape::Vector(n)) => n,
                    (Shape::Matrix(_, c0), Shape::Matrix(r, c)) if c == c0 => r,
                    (first, found) => {
                        return Err(ValidationError::ConcatShape {
                            op,
                            name,
                            part,
                            first,
                            found,
                        });
                    }
                };
                total = total.checked_add(n).ok_or(ValidationError::ShapeTooLarge {
                    op,
                    name,
                    shape: t0.shape,
                })?;
                vis = join(vis, t.vis);
            }
            let shape = match t0.shape {
                Shape::Matrix(_, c) => Shape::Matrix(total, c),
                _ => Shape::Vector(total),
            };
            if checked_len(shape).is_none() {
                return Err(ValidationError::ShapeTooLarge {
                    op,
                    name,
                    shape: t0.shape,
                });
            }
            ValueType {
                vis,
                elem: t0.elem,
                shape,
            }
        }
        Op::Im2Col { a, geometry: g } => {
            let ta = get(*a)?;
            let bad = |what: String| ValidationError::Im2Col { op, name, what };
            let (oh, ow) = g.output_size().map_err(bad)?;
            let image = g
                .height
                .checked_mul(g.width)
                .and_then(|n| n.checked_mul(g.channels));
            let batch = match ta.shape {
                Shape::Matrix(b, c) if Some(c) == image => b,
                shape => {
                    return Err(bad(format!(
                        "operand is {shape}, expected a matrix of images with {}×{}×{} = {} columns",
                        g.height,
                        g.width,
                        g.channels,
                        image.map_or("too many".to_string(), |n| n.to_string())
                    )));
                }
            };
            let rows = batch.checked_mul(oh).and_then(|n| n.checked_mul(ow));
            let cols = g
                .kernel_h
                .checked_mul(g.kernel_w)
                .and_then(|n| n.checked_mul(g.channels));
            let (Some(rows), Some(cols)) = (rows, cols) else {
                return Err(ValidationError::ShapeTooLarge {
                    op,
                    name,
                    shape: ta.shape,
                });
            };
            ValueType {
                shape: sized(Shape::Matrix(rows, cols))?,
                ..ta
            }
        }
        Op::Transpose(a) => {
            let ta = get(*a)?;
            match ta.shape {
                Shape::Matrix(r, c) => ValueType {
                    shape: Shape::Matrix(c, r),
                    ..ta
                },
                shape => return Err(ValidationError::NotMatrix { op, name, shape }),
            }
        }
        Op::Reveal(a) => {
            let ta = get(*a)?;
            if ta.vis == Visibility::Public {
                return Err(ValidationError::RevealPublic { op, name });
            }
            ValueType {
                vis: Visibility::Public,
                ..ta
            }
        }
    })
}
