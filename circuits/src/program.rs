//! A program: named inputs, SSA ops, named outputs.
//!
//! Op `i` defines value `ValueId(i)`; an op may only use values defined before it, so the op list
//! is already a topological order of the DAG.

use crate::types::{ElemType, PartyId, Shape, ValueType};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Current serialisation format version of [`Program`].
pub const PROGRAM_VERSION: u32 = 1;

/// Reference to the value defined by op number `.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub u32);

impl ValueId {
    /// Position of the defining op.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// Who supplies an input.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Owner {
    /// A computing party holds the plaintext and secret-shares it inside the program (1 round).
    Party(PartyId),
    /// An external client secret-shares it locally and hands each party its two components
    /// before the program runs (no round inside the program).
    Client(String),
}

/// Who receives an output.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recipient {
    /// One computing party reconstructs it (1 round; it gets the missing component from both
    /// other parties and checks they agree).
    Party(PartyId),
    /// Every party reconstructs it (1 round).
    AllParties,
    /// An external client: each party hands it its two components and the client reconstructs
    /// (no round inside the program).
    Client(String),
}

/// A declared program input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDecl {
    /// Unique name.
    pub name: String,
    /// Who supplies it.
    pub owner: Owner,
    /// Its type (public inputs are given in the clear to every party).
    pub ty: ValueType,
}

/// A declared program output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDecl {
    /// Unique name.
    pub name: String,
    /// Value to output.
    pub value: ValueId,
    /// Who receives it.
    pub recipient: Recipient,
}

/// Which elements `Sum` adds up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SumAxis {
    /// All elements → scalar.
    All,
    /// Each row of a matrix → vector of `rows` elements.
    Rows,
}

/// One SSA operation. Binary elementwise ops accept equal shapes, or a scalar with any shape
/// (broadcast). The result is secret when any operand is secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The program input with this index in `Program::inputs`.
    Input {
        /// Index into `Program::inputs`.
        input: usize,
    },
    /// A public constant; `values` are ring words (fixed point already encoded).
    Constant {
        /// Element type.
        elem: ElemType,
        /// Shape.
        shape: Shape,
        /// `shape.len()` words, row-major.
        values: Vec<u64>,
    },
    /// a + b.
    Add(ValueId, ValueId),
    /// a − b.
    Sub(ValueId, ValueId),
    /// −a.
    Neg(ValueId),
    /// Elementwise a · b. Fixed(f) · Fixed(g) → Fixed(f + g) (exact; follow with `Rescale`).
    Mul(ValueId, ValueId),
    /// Dot product: vector·vector → scalar; matrix·matrix (same shape) → row-wise, `vector[rows]`.
    Dot(ValueId, ValueId),
    /// Matrix product (m×k)·(k×n) → m×n.
    MatMul(ValueId, ValueId),
    /// Fixed-point matrix product with the rescale fused in: `(a·b) / 2^bits` rounded toward
    /// −∞ (plaintext), `a` m×k, `b` k×n. With both operands secret the product's reshare and
    /// the truncation share **one** round (see `runtime::protocols::mul_trunc`); with one
    /// public operand it is a local product and one truncation round. Secret results are
    /// floor or floor + 1, as [`Op::Rescale`].
    MatMulRescale {
        /// Left operand (m×k).
        a: ValueId,
        /// Right operand (k×n).
        b: ValueId,
        /// Bits to drop (at most the product's fractional bits).
        bits: u32,
    },
    /// Sum of elements.
    Sum {
        /// Operand.
        a: ValueId,
        /// Which elements to add.
        axis: SumAxis,
    },
    /// Fixed-point rescale: Fixed(f) → Fixed(f − bits), value divided by 2^bits and rounded
    /// toward −∞ (plaintext); secret values use probabilistic truncation (floor or floor + 1).
    Rescale {
        /// Operand.
        a: ValueId,
        /// Bits to drop.
        bits: u32,
    },
    /// Same elements, new shape of equal length.
    Reshape {
        /// Operand.
        a: ValueId,
        /// New shape.
        shape: Shape,
    },
    /// Elements `start..end` of a vector, or rows `start..end` of a matrix.
    Slice {
        /// Operand.
        a: ValueId,
        /// First index (element or row).
        start: usize,
        /// One past the last index.
        end: usize,
    },
    /// Vectors joined end to end, or matrices with equal column counts stacked by rows.
    Concat(Vec<ValueId>),
    /// Patches of a batch of images for a 2-D convolution or pooling (im2col): the operand is
    /// a `Matrix(batch, height·width·channels)`, the result a
    /// `Matrix(batch·out_h·out_w, kernel_h·kernel_w·channels)` (see [`crate::conv`]). Local:
    /// it copies and zero-fills elements at public positions.
    Im2Col {
        /// Operand: one image per row.
        a: ValueId,
        /// Input size, window, stride, padding and layout.
        geometry: crate::conv::Conv2dGeometry,
    },
    /// Matrix transpose.
    Transpose(ValueId),
    /// Open a secret value to every party; the result is public.
    Reveal(ValueId),
    /// Sign test: 1 where the signed value is < 0, else 0 (exactly the most significant bit of
    /// the 64-bit word). Result element type: ring.
    Ltz(ValueId),
    /// a < b: `Ltz(a − b)` with the wrapping difference, exactly as the protocol computes it.
    /// Equals the true signed comparison whenever |a − b| < 2^63 (e.g. both operands in
    /// [−2^62, 2^62)). Result: ring words 0/1.
    Lt(ValueId, ValueId),
    /// a ≤ b: `1 − Gt(a, b)` (same range caveat as [`Op::Lt`]). Result: ring words 0/1.
    Le(ValueId, ValueId),
    /// a > b: `Ltz(b − a)` (same range caveat as [`Op::Lt`]). Result: ring words 0/1.
    Gt(ValueId, ValueId),
    /// a ≥ b: `1 − Lt(a, b)` (same range caveat as [`Op::Lt`]). Result: ring words 0/1.
    Ge(ValueId, ValueId),
    /// a = b: `1 − Lt(a, b) − Gt(a, b)` (wrapping). Exact equality (0/1) whenever
    /// |a − b| < 2^63; for a − b = −2^63 both comparisons are 1 and the word is 2^64 − 1.
    /// Result element type: ring.
    Eq(ValueId, ValueId),
    /// max(x, 0) of the signed value: x when its most significant bit is 0, else 0.
    Relu(ValueId),
    /// Elementwise `cond ? a : b`, defined as `b + cond·(a − b)` (wrapping): `a` where
    /// `cond` = 1, `b` where `cond` = 0. `cond` is a ring value that should hold 0/1 words.
    Select {
        /// Ring condition, 0/1 words.
        cond: ValueId,
        /// Chosen where `cond` = 1.
        a: ValueId,
        /// Chosen where `cond` = 0.
        b: ValueId,
    },
    /// Elementwise signed maximum: `a + Lt(a, b)·(b − a)` (wrapping); the true maximum in the
    /// range of [`Op::Lt`].
    Max(ValueId, ValueId),
    /// Elementwise signed minimum: `b + Lt(a, b)·(a − b)` (wrapping); the true minimum in the
    /// range of [`Op::Lt`].
    Min(ValueId, ValueId),
    /// Signed maximum of all elements → scalar, by a tournament: each level pairs elements
    /// 2j and 2j+1 with the [`Op::Max`] formula, an odd last element passes through, until one
    /// remains (`⌈log2 n⌉` levels).
    MaxAll(ValueId),
    /// Index (as a ring word) of the maximum element of a non-empty vector → ring scalar. Same
    /// tournament as [`Op::MaxAll`] carrying (value, index); the right element of a pair wins
    /// iff `Lt(left, right)` = 1, so ties go to the lowest index.
    ArgMax(ValueId),
    /// Full bit decomposition: element j of the operand (n elements) becomes row j of a
    /// Matrix(n, 64) of ring words 0/1, column i = bit i of the 64-bit word.
    Bits(ValueId),
    /// Position of the highest set bit as a one-hot row: element j becomes row j of a
    /// Matrix(n, lanes) of ring words 0/1 with a 1 in column i iff bit i is the highest set bit
    /// of the 64-bit word. All zeros when the word is 0 or its highest set bit is ≥ `lanes`
    /// (in particular for negative values). `lanes` ≤ 64. Used to normalise x into [2^i, 2^(i+1))
    /// before Goldschmidt / Newton iterations.
    MsbOneHot {
        /// Operand.
        a: ValueId,
        /// Number of low bit positions reported (columns of the result).
        lanes: u32,
    },
    /// The `k` best elements of a non-empty vector, best first: the largest in descending
    /// order (`largest`), or the smallest in ascending order. Values only (pack an index into
    /// the low bits to recover positions). Runs the oblivious comparator network of
    /// [`crate::selection`] (O(n) comparisons, O(log² k + log k·log(n/k)) layers); exact for
    /// elements in [−2^62, 2^62) (the padding sentinels sit at the ends of that range).
    BestK {
        /// Operand: a non-empty vector.
        a: ValueId,
        /// How many, `1 ≤ k ≤ len`.
        k: usize,
        /// Largest (true) or smallest (false).
        largest: bool,
        /// The plan: absent (the default, and how programs written before it read) is the
        /// comparator network with a rank-selection tail, fewest bytes; present is rank
        /// selection only, stage s comparing all pairs inside groups of `groups[s]` — fewer
        /// rounds, more bytes, for high-latency links (see [`crate::selection`] and
        /// [`crate::cost::best_k_groups_for`]). Same result either way. Absent fields are not
        /// serialised, so a program's JSON and id change only when this is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<usize>>,
    },
    /// One-hot rows: element r of the operand (m elements) becomes row r of a `Matrix(m, n)` of
    /// ring 0/1 words with a 1 in column `⌊a_r / 2^skip⌋ mod 2^bits` (bits `skip..skip + bits`
    /// of the word), or a zero row when that is ≥ `n`. Oblivious: built from those bits by a
    /// product tree (see [`crate::selection`]).
    OneHotLow {
        /// Operand.
        a: ValueId,
        /// Bits that form the index, `1..=32`.
        bits: u32,
        /// Columns, `1 ≤ n ≤ 2^bits`.
        n: usize,
        /// Low bits skipped below the index (`skip + bits ≤ 62`). Absent means 0 and is not
        /// serialised, so programs written before this field keep their JSON and id.
        #[serde(default, skip_serializing_if = "is_zero")]
        skip: u32,
    },
    /// Ring32 → Ring: the value times 2^32 (same shape and visibility). Local and exact on
    /// shares: if x_0 + x_1 + x_2 ≡ x (mod 2^32) then (x_0 + x_1 + x_2)·2^32 ≡ x·2^32
    /// (mod 2^64), since the unknown carries are multiplied by 2^64 ≡ 0. A signed Ring32 value
    /// s becomes exactly the signed ring value s·2^32.
    Widen {
        /// Ring32 operand.
        a: ValueId,
    },
    /// Ring → Ring32: the value mod 2^32 (same shape and visibility). Local on shares: each
    /// component is reduced mod 2^32.
    Narrow {
        /// Ring operand.
        a: ValueId,
    },
}

/// serde helper: a zero `skip` is not serialised.
fn is_zero(x: &u32) -> bool {
    *x == 0
}

impl Op {
    /// Short op name used in errors and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Constant { .. } => "constant",
            Op::Add(..) => "add",
            Op::Sub(..) => "sub",
            Op::Neg(..) => "neg",
            Op::Mul(..) => "mul",
            Op::Dot(..) => "dot",
            Op::MatMul(..) => "matmul",
            Op::MatMulRescale { .. } => "matmul_rescale",
            Op::Sum { .. } => "sum",
            Op::Rescale { .. } => "rescale",
            Op::Reshape { .. } => "reshape",
            Op::Slice { .. } => "slice",
            Op::Im2Col { .. } => "im2col",
            Op::Concat(..) => "concat",
            Op::Transpose(..) => "transpose",
            Op::Reveal(..) => "reveal",
            Op::Ltz(..) => "ltz",
            Op::Lt(..) => "lt",
            Op::Le(..) => "le",
            Op::Gt(..) => "gt",
            Op::Ge(..) => "ge",
            Op::Eq(..) => "eq",
            Op::Relu(..) => "relu",
            Op::Select { .. } => "select",
            Op::Max(..) => "max",
            Op::Min(..) => "min",
            Op::MaxAll(..) => "max_all",
            Op::ArgMax(..) => "argmax",
            Op::Bits(..) => "bits",
            Op::MsbOneHot { .. } => "msb_onehot",
            Op::BestK { .. } => "best_k",
            Op::OneHotLow { .. } => "onehot_low",
            Op::Widen { .. } => "widen",
            Op::Narrow { .. } => "narrow",
        }
    }

    /// The values this op reads.
    pub fn operands(&self) -> Vec<ValueId> {
        match self {
            Op::Input { .. } | Op::Constant { .. } => vec![],
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::Dot(a, b)
            | Op::MatMul(a, b)
            | Op::Lt(a, b)
            | Op::Le(a, b)
            | Op::Gt(a, b)
            | Op::Ge(a, b)
            | Op::Eq(a, b)
            | Op::Max(a, b)
            | Op::Min(a, b) => {
                vec![*a, *b]
            }
            Op::Neg(a)
            | Op::Transpose(a)
            | Op::Reveal(a)
            | Op::Ltz(a)
            | Op::Relu(a)
            | Op::MaxAll(a)
            | Op::ArgMax(a)
            | Op::Bits(a)
            | Op::MsbOneHot { a, .. }
            | Op::BestK { a, .. }
            | Op::OneHotLow { a, .. }
            | Op::Widen { a }
            | Op::Narrow { a } => vec![*a],
            Op::Select { cond, a, b } => vec![*cond, *a, *b],
            Op::MatMulRescale { a, b, .. } => vec![*a, *b],
            Op::Sum { a, .. }
            | Op::Rescale { a, .. }
            | Op::Reshape { a, .. }
            | Op::Slice { a, .. }
            | Op::Im2Col { a, .. } => {
                vec![*a]
            }
            Op::Concat(parts) => parts.clone(),
        }
    }
}

/// A complete program. Serialises with serde; [`Program::id`] is its content hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// Format version, [`PROGRAM_VERSION`].
    pub version: u32,
    /// Declared inputs.
    pub inputs: Vec<InputDecl>,
    /// SSA ops; op `i` defines `ValueId(i)`.
    pub ops: Vec<Op>,
    /// Declared outputs.
    pub outputs: Vec<OutputDecl>,
}
