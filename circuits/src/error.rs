//! Errors of validation and plaintext evaluation.
//!
//! Messages name ops (index and name), inputs, outputs, shapes and element types; they never
//! contain values, which may be secret.

use crate::fixed::FixedError;
use crate::program::ValueId;
use crate::types::{ElemType, Shape, ValueType};

/// Why a program is malformed. Every variant is the caller's fault (the program's author).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The text is not a JSON program.
    #[error("program JSON is malformed: {reason}")]
    Json {
        /// serde_json's description (line and column).
        reason: String,
    },
    /// `version` is not [`crate::PROGRAM_VERSION`].
    #[error("unsupported program version {found} (this build reads version {expected})")]
    UnsupportedVersion {
        /// Version in the program.
        found: u32,
        /// Version this crate reads.
        expected: u32,
    },
    /// More ops than `ValueId` (u32) can name.
    #[error("program has {count} ops; at most 2^32 are allowed")]
    TooManyOps {
        /// Number of ops.
        count: usize,
    },
    /// An input, output or client name is empty.
    #[error("{what} {index} has an empty name")]
    EmptyName {
        /// "input", "output", "input owner" or "output recipient".
        what: &'static str,
        /// Position in `inputs` or `outputs`.
        index: usize,
    },
    /// Two inputs share a name.
    #[error("duplicate input name '{name}'")]
    DuplicateInput {
        /// The name.
        name: String,
    },
    /// Two outputs share a name.
    #[error("duplicate output name '{name}'")]
    DuplicateOutput {
        /// The name.
        name: String,
    },
    /// A declared input has a shape with too many elements.
    #[error("input '{name}': shape {shape} has more than 2^32 elements")]
    InputShapeTooLarge {
        /// Input name.
        name: String,
        /// Its shape.
        shape: Shape,
    },
    /// A declared input has more than 62 fractional bits.
    #[error("input '{name}': {frac_bits} fractional bits exceed the maximum of 62")]
    InputFracBits {
        /// Input name.
        name: String,
        /// Its fractional bits.
        frac_bits: u32,
    },
    /// Secret bit inputs need boolean sharing, which is not implemented yet.
    #[error("input '{name}': secret bit inputs are not supported yet")]
    SecretBitInput {
        /// Input name.
        name: String,
    },
    /// A declared input is read by no `Input` op.
    #[error("input '{name}' is declared but no op reads it")]
    InputUnused {
        /// Input name.
        name: String,
    },
    /// An op refers to a value not defined before it.
    #[error("op {op} ({name}): value {value} is not defined before this op")]
    UnknownValue {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The reference.
        value: ValueId,
    },
    /// `Input { input }` with `input` out of range.
    #[error("op {op} ({name}): input index {input} out of range ({count} inputs declared)")]
    InputIndex {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The index.
        input: usize,
        /// Number of declared inputs.
        count: usize,
    },
    /// Two `Input` ops read the same input.
    #[error("op {op} ({name}): input '{input}' is already read by op {first}")]
    InputReadTwice {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Input name.
        input: String,
        /// The earlier op.
        first: usize,
    },
    /// A constant's shape has too many elements, or an op's result would.
    #[error("op {op} ({name}): shape {shape} has more than 2^32 elements")]
    ShapeTooLarge {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The shape (for concat, the first part's shape).
        shape: Shape,
    },
    /// A constant has the wrong number of words.
    #[error("op {op} ({name}): shape {shape} needs {expected} values, found {found}")]
    ConstantLength {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Declared shape.
        shape: Shape,
        /// `shape.len()`.
        expected: usize,
        /// Number of words given.
        found: usize,
    },
    /// A bit constant holds a word other than 0 or 1.
    #[error("op {op} ({name}): bit constant element {position} is neither 0 nor 1")]
    BitConstant {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Element position.
        position: usize,
    },
    /// The builder could not encode a fixed-point constant.
    #[error("op {op} (constant): {source}")]
    FixedConstant {
        /// Op index.
        op: usize,
        /// Why.
        source: FixedError,
    },
    /// An op that does arithmetic got a bit operand.
    #[error(
        "op {op} ({name}): bit values not supported by op {name}; boolean ops come with comparisons"
    )]
    BitUnsupported {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
    },
    /// Operand element types do not combine.
    #[error("op {op} ({name}): element types differ: {left} and {right}")]
    ElemMismatch {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// First operand's element type.
        left: ElemType,
        /// Other operand's element type.
        right: ElemType,
    },
    /// Fractional bits exceed 62 (constant type or product type).
    #[error("op {op} ({name}): {frac_bits} fractional bits exceed the maximum of 62")]
    FracBitsTooLarge {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The fractional bits (sum of both operands' for a product).
        frac_bits: u64,
    },
    /// Elementwise operands neither have equal shapes nor include a scalar.
    #[error("op {op} ({name}): shapes differ and neither is a scalar: {left} and {right}")]
    ShapeMismatch {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// First operand's shape.
        left: Shape,
        /// Second operand's shape.
        right: Shape,
    },
    /// Dot operands are not two equal-length vectors or two equal-shape matrices.
    #[error(
        "op {op} ({name}): needs vector[n]·vector[n] or matrix[m×n]·matrix[m×n], got {left} · {right}"
    )]
    DotShape {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// First operand's shape.
        left: Shape,
        /// Second operand's shape.
        right: Shape,
    },
    /// Matrix product with mismatched inner dimensions.
    #[error("op {op} ({name}): inner dimensions differ: {left} · {right}")]
    InnerDim {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// First operand's shape.
        left: Shape,
        /// Second operand's shape.
        right: Shape,
    },
    /// An op that needs a matrix got another shape.
    #[error("op {op} ({name}): needs a matrix, got {shape}")]
    NotMatrix {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The shape given.
        shape: Shape,
    },
    /// Rescale of a non-fixed-point value.
    #[error("op {op} ({name}): needs a fixed-point operand, got {elem}")]
    RescaleNotFixed {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Element type given.
        elem: ElemType,
    },
    /// Rescale drops more bits than the operand has fractional bits.
    #[error("op {op} ({name}): cannot drop {bits} bits from {elem}")]
    RescaleTooMany {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Bits to drop.
        bits: u32,
        /// Operand element type.
        elem: ElemType,
    },
    /// Reshape to a shape with another element count.
    #[error("op {op} ({name}): cannot reshape {from} into {to}")]
    ReshapeLen {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Operand shape.
        from: Shape,
        /// Requested shape.
        to: Shape,
    },
    /// Slice bounds outside the operand, or `start > end`.
    #[error("op {op} ({name}): range {start}..{end} is not within {shape}")]
    SliceRange {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// First index.
        start: usize,
        /// One past the last.
        end: usize,
        /// Operand shape.
        shape: Shape,
    },
    /// An unusable convolution geometry, or an operand that is not a matrix of such images.
    #[error("op {op} ({name}): {what}")]
    Im2Col {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// What is wrong.
        what: String,
    },
    /// Slice of a scalar.
    #[error("op {op} ({name}): cannot slice a scalar")]
    SliceScalar {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
    },
    /// Concat of no parts.
    #[error("op {op} ({name}): needs at least one part")]
    ConcatEmpty {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
    },
    /// Concat parts that are not all vectors or all matrices with equal column counts.
    #[error(
        "op {op} ({name}): part {part} is {found}, incompatible with part 0 ({first}); \
         join vectors or matrices with equal column counts"
    )]
    ConcatShape {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Offending part position.
        part: usize,
        /// Shape of part 0.
        first: Shape,
        /// Shape of the offending part.
        found: Shape,
    },
    /// Reveal of a value that is already public.
    #[error("op {op} ({name}): operand is already public")]
    RevealPublic {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
    },
    /// `Select` with a condition that is not a ring value.
    #[error("op {op} ({name}): the condition must be ring (0/1 words), got {elem}")]
    CondNotRing {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Element type of the condition.
        elem: ElemType,
    },
    /// A reduction (`MaxAll`) of a value with no element.
    #[error("op {op} ({name}): operand {shape} has no elements")]
    EmptyOperand {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The operand's shape.
        shape: Shape,
    },
    /// An op that needs a non-empty vector (`ArgMax`) got another shape.
    #[error("op {op} ({name}): needs a non-empty vector, got {shape}")]
    NotNonEmptyVector {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The shape given.
        shape: Shape,
    },
    /// A builder lowering that needs an index (`onehot`, `gather_row`) got something other
    /// than a ring scalar.
    #[error("op {op} ({name}): the index must be a ring scalar, got {ty}")]
    IndexNotRingScalar {
        /// Op index (the first op the lowering would have emitted).
        op: usize,
        /// Lowering name.
        name: &'static str,
        /// The index's type.
        ty: ValueType,
    },
    /// `BestK` lists rank-stage groups that are not a plan for its sizes.
    #[error("op {op} (best_k): invalid rank-selection groups: {reason}")]
    BestKGroups {
        /// Op index.
        op: usize,
        /// What is wrong with them.
        reason: crate::selection::RankGroupsError,
    },
    /// `topk` asked for a count outside `1..=len`.
    #[error("op {op} ({name}): cannot take the {k} largest of {len} elements; needs 1 ≤ k ≤ {len}")]
    CountRange {
        /// Op index (the first op the lowering would have emitted).
        op: usize,
        /// Lowering name.
        name: &'static str,
        /// Requested count.
        k: usize,
        /// Number of elements of the operand.
        len: usize,
    },
    /// A builder lowering got an operand larger than it supports (`softmax_rows` with more
    /// than 256 columns).
    #[error("op {op} ({name}): {what} is {got}, at most {max} supported")]
    SizeLimit {
        /// Op index (the first op the lowering would have emitted).
        op: usize,
        /// Lowering name.
        name: &'static str,
        /// What is too large.
        what: &'static str,
        /// The size given.
        got: usize,
        /// The largest size supported.
        max: usize,
    },
    /// An op that has no Ring32 form got a Ring32 operand.
    #[error(
        "op {op} ({name}): not supported on ring32 values; widen it first (Widen: ring32 → ring)"
    )]
    Ring32Unsupported {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
    },
    /// Ring32 combined with another element type.
    #[error(
        "op {op} ({name}): element types {left} and {right} do not mix; convert with Widen \
         (ring32 → ring) or Narrow (ring → ring32)"
    )]
    Ring32Mix {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// First operand's element type.
        left: ElemType,
        /// Other operand's element type.
        right: ElemType,
    },
    /// A Ring32 constant holds a word that is not reduced mod 2^32.
    #[error("op {op} ({name}): ring32 constant element {position} is not below 2^32")]
    Ring32Constant {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// Element position.
        position: usize,
    },
    /// `Widen` or `Narrow` got an operand of the wrong element type.
    #[error("op {op} ({name}): needs a {expected} operand, got {found}")]
    ConvertElem {
        /// Op index.
        op: usize,
        /// Op name.
        name: &'static str,
        /// The element type the op converts from.
        expected: ElemType,
        /// The operand's element type.
        found: ElemType,
    },
    /// An output names a value no op defines.
    #[error("output '{output}': value {value} is not defined")]
    OutputUndefined {
        /// Output name.
        output: String,
        /// The reference.
        value: ValueId,
    },
}

/// Why plaintext evaluation failed: the inputs do not match the program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A declared input was not given.
    #[error("input '{name}' is missing (expected {expected} elements)")]
    MissingInput {
        /// Input name.
        name: String,
        /// Its element count.
        expected: usize,
    },
    /// A given input is not declared by the program.
    #[error("input '{name}' is not declared by the program")]
    UnknownInput {
        /// The name given.
        name: String,
    },
    /// An input has the wrong number of elements.
    #[error("input '{name}' has {found} elements, expected {expected}")]
    InputLength {
        /// Input name.
        name: String,
        /// Declared element count.
        expected: usize,
        /// Given element count.
        found: usize,
    },
    /// A bit input holds a word other than 0 or 1.
    #[error("input '{name}': bit element {position} is neither 0 nor 1")]
    BitInput {
        /// Input name.
        name: String,
        /// Element position.
        position: usize,
    },
    /// A Ring32 input holds a word that is not reduced mod 2^32.
    #[error("input '{name}': ring32 element {position} is not below 2^32")]
    Ring32Input {
        /// Input name.
        name: String,
        /// Element position.
        position: usize,
    },
}
