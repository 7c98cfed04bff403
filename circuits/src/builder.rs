//! Ergonomic program construction.
//!
//! ```
//! use veil_circuits::{Builder, Fixed};
//! let mut b = Builder::new();
//! let q = b.secret_vector("query", 384, Fixed::default());
//! let d = b.secret_matrix("docs", 100, 384, Fixed::default());
//! let qm = b.reshape(q, veil_circuits::Shape::Matrix(384, 1));
//! let scores = b.fixmatmul(d, qm); // matrix[100×1], Fixed(16)
//! b.output_to_client("scores", scores);
//! let p = b.finish().unwrap();
//! assert_eq!(p.program().ops.len(), 5);
//! ```
//!
//! The builder never panics. Every method records one op (or a few) and returns its [`Value`]
//! right away; the value's type is inferred with the same rules as [`Program::validate`]. A
//! mistake (mismatched shapes, an unencodable constant, …) is remembered and reported by
//! [`Builder::finish`], which returns the first error in op order, then validates the whole
//! program (duplicate names, unused inputs, …). A value whose op failed gets a placeholder
//! type (public ring scalar).
//!
//! Besides one method per op, the builder offers **lowerings** that emit several existing ops:
//! [`Builder::onehot`], [`Builder::gather_row`] and [`Builder::topk`] (oblivious indexing and
//! selection), and the fixed-point functions [`Builder::exp_neg`], [`Builder::reciprocal`],
//! [`Builder::div`], [`Builder::inv_sqrt`], [`Builder::sigmoid`] and
//! [`Builder::softmax_rows`]. They need no support beyond the ops they emit. A lowering given bad arguments
//! records its error like any op and returns a placeholder (a public ring scalar constant).

use crate::conv::Conv2dGeometry;
use crate::error::ValidationError;
use crate::fixed;
use crate::program::{
    InputDecl, Op, OutputDecl, Owner, PROGRAM_VERSION, Program, Recipient, SumAxis, ValueId,
};
use crate::types::{ElemType, Fixed, FracBits, Shape, ValueType, Visibility};
use crate::validate::{MAX_ELEMENTS, ValidatedProgram, infer_op};

/// Handle to a value under construction: its id and inferred type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value {
    id: ValueId,
    ty: ValueType,
}

impl Value {
    /// Id of the defining op.
    pub fn id(self) -> ValueId {
        self.id
    }

    /// Inferred type (a placeholder if its op was invalid).
    pub fn ty(self) -> ValueType {
        self.ty
    }
}

/// The word [`Builder::topk`] writes over chosen elements: −2^62 in two's complement (the same
/// raw word for ring and fixed-point vectors). Inputs of `topk` must be strictly greater.
pub const TOPK_SENTINEL: u64 = (-(1i64 << 62)) as u64;

/// Squarings in [`Builder::exp_neg`]: e^x ≈ (1 + x/2^m)^(2^m) with m = 8.
pub const EXP_NEG_SQUARINGS: u32 = 8;

/// Measured bound (with margin) on |`exp_neg`(x) − e^x| over x ∈ [−16, 0] at f = 16, plaintext.
pub const EXP_NEG_MAX_ABS_ERROR: f64 = 3e-3;

/// Goldschmidt iterations in [`Builder::reciprocal`] (and [`Builder::sigmoid`]).
pub const RECIPROCAL_ITERATIONS: u32 = 3;

/// Largest `f` accepted by [`Builder::reciprocal`], [`Builder::div`] and
/// [`Builder::inv_sqrt`]: the MSB normalisation's products reach 2^(2f+8) (2^40 at f = 16,
/// 2^48 at f = 20), and [`normalise_lanes`] must stay ≤ 64.
pub const NORMALISE_MAX_FRAC_BITS: u32 = 20;

/// Lanes of the `MsbOneHot` used to normalise a `Fixed(f)` operand: `2f + 8` (40 at f = 16),
/// so the normalising functions accept x ∈ [2^-f, 2^(f+8)).
pub const fn normalise_lanes(f: u32) -> u32 {
    2 * f + 8
}

/// Relative part of [`Builder::reciprocal`]'s error bound: at f = 16, plaintext, over the
/// whole domain x ∈ [2^-16, 2^24), |`reciprocal`(x) − 1/x| ≤ `RECIPROCAL_MAX_REL_ERROR`·(1/x)
/// + [`RECIPROCAL_MAX_ABS_ERROR`] (measured with margin).
pub const RECIPROCAL_MAX_REL_ERROR: f64 = 1e-4;

/// Absolute part of [`Builder::reciprocal`]'s error bound: 2^-15, two ulps at f = 16.
pub const RECIPROCAL_MAX_ABS_ERROR: f64 = 1.0 / 32768.0;

/// Newton steps in [`Builder::inv_sqrt`].
pub const INV_SQRT_ITERATIONS: u32 = 2;

/// Initial guess of [`Builder::inv_sqrt`] on v ∈ [0.5, 1): `y0 = INTERCEPT − SLOPE·v`
/// (minimax relative error 2.23%).
const INV_SQRT_INTERCEPT: f64 = 1.7877;
const INV_SQRT_SLOPE: f64 = 0.81;

/// Relative part of [`Builder::inv_sqrt`]'s error bound: at f = 16, plaintext, over the whole
/// domain x ∈ [2^-16, 2^24), |`inv_sqrt`(x) − 1/√x| ≤ `INV_SQRT_MAX_REL_ERROR`·(1/√x) +
/// [`INV_SQRT_MAX_ABS_ERROR`] (measured with margin).
pub const INV_SQRT_MAX_REL_ERROR: f64 = 1e-4;

/// Absolute part of [`Builder::inv_sqrt`]'s error bound: 2^-15, two ulps at f = 16.
pub const INV_SQRT_MAX_ABS_ERROR: f64 = 1.0 / 32768.0;

/// Measured bound (with margin) on |`sigmoid`(x) − σ(x)| over x ∈ [−16, 16] at f = 16,
/// plaintext.
pub const SIGMOID_MAX_ABS_ERROR: f64 = 2e-3;

/// Largest column count [`Builder::softmax_rows`] accepts (row sums must stay ≤ 256).
pub const SOFTMAX_MAX_COLS: usize = 256;

/// Measured bound (with margin) on |`softmax_rows` − softmax| for rows in [−8, 8] at f = 16,
/// plaintext.
pub const SOFTMAX_MAX_ABS_ERROR: f64 = 3e-3;

const PLACEHOLDER: ValueType = ValueType {
    vis: Visibility::Public,
    elem: ElemType::Ring,
    shape: Shape::Scalar,
};

/// Builds a [`Program`] op by op; see the [module docs](self).
#[derive(Debug, Default)]
pub struct Builder {
    inputs: Vec<InputDecl>,
    ops: Vec<Op>,
    types: Vec<ValueType>,
    outputs: Vec<OutputDecl>,
    first_error: Option<ValidationError>,
}

fn client() -> Owner {
    Owner::Client("client".into())
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, op: Op) -> Value {
        let index = self.ops.len();
        let ty = match infer_op(index, &op, &self.inputs, &self.types) {
            Ok(ty) => ty,
            Err(e) => {
                self.first_error.get_or_insert(e);
                PLACEHOLDER
            }
        };
        self.ops.push(op);
        self.types.push(ty);
        // Past 2^32 ops ids saturate; validation rejects such programs (TooManyOps).
        Value {
            id: ValueId(u32::try_from(index).unwrap_or(u32::MAX)),
            ty,
        }
    }

    /// Declares an input of any type and owner and reads it.
    pub fn input(&mut self, name: &str, owner: Owner, ty: ValueType) -> Value {
        let input = self.inputs.len();
        self.inputs.push(InputDecl {
            name: name.into(),
            owner,
            ty,
        });
        self.push(Op::Input { input })
    }

    fn client_input(&mut self, name: &str, vis: Visibility, elem: ElemType, shape: Shape) -> Value {
        self.input(name, client(), ValueType { vis, elem, shape })
    }

    /// Secret vector input owned by the client `"client"`.
    pub fn secret_vector(&mut self, name: &str, len: usize, elem: impl Into<ElemType>) -> Value {
        self.client_input(name, Visibility::Secret, elem.into(), Shape::Vector(len))
    }

    /// Secret matrix input owned by the client `"client"`.
    pub fn secret_matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        elem: impl Into<ElemType>,
    ) -> Value {
        self.client_input(
            name,
            Visibility::Secret,
            elem.into(),
            Shape::Matrix(rows, cols),
        )
    }

    /// Secret scalar input owned by the client `"client"`.
    pub fn secret_scalar(&mut self, name: &str, elem: impl Into<ElemType>) -> Value {
        self.client_input(name, Visibility::Secret, elem.into(), Shape::Scalar)
    }

    /// Public vector input (given in the clear to every party), owner `"client"`.
    pub fn public_vector(&mut self, name: &str, len: usize, elem: impl Into<ElemType>) -> Value {
        self.client_input(name, Visibility::Public, elem.into(), Shape::Vector(len))
    }

    /// Public matrix input, owner `"client"`.
    pub fn public_matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        elem: impl Into<ElemType>,
    ) -> Value {
        self.client_input(
            name,
            Visibility::Public,
            elem.into(),
            Shape::Matrix(rows, cols),
        )
    }

    /// Public scalar input, owner `"client"`.
    pub fn public_scalar(&mut self, name: &str, elem: impl Into<ElemType>) -> Value {
        self.client_input(name, Visibility::Public, elem.into(), Shape::Scalar)
    }

    /// Public constant of already encoded words.
    pub fn constant(&mut self, elem: impl Into<ElemType>, shape: Shape, values: Vec<u64>) -> Value {
        self.push(Op::Constant {
            elem: elem.into(),
            shape,
            values,
        })
    }

    /// Fixed-point scalar constant, encoded with [`fixed::encode`].
    pub fn const_fixed(&mut self, x: f64, t: Fixed) -> Value {
        self.const_fixed_shaped(&[x], t, Shape::Scalar)
    }

    /// Fixed-point vector constant, encoded with [`fixed::encode`].
    pub fn const_fixed_vector(&mut self, xs: &[f64], t: Fixed) -> Value {
        self.const_fixed_shaped(xs, t, Shape::Vector(xs.len()))
    }

    fn const_fixed_shaped(&mut self, xs: &[f64], t: Fixed, shape: Shape) -> Value {
        match fixed::encode_slice(xs, t.0) {
            Ok(values) => self.constant(t, shape, values),
            Err(source) => {
                let op = self.ops.len();
                self.first_error
                    .get_or_insert(ValidationError::FixedConstant { op, source });
                self.constant(t, shape, vec![0; xs.len()])
            }
        }
    }

    /// Ring scalar constant (two's complement).
    pub fn const_ring(&mut self, x: i64) -> Value {
        self.constant(ElemType::Ring, Shape::Scalar, vec![fixed::from_signed(x)])
    }

    /// Ring vector constant (two's complement).
    pub fn const_ring_vector(&mut self, xs: &[i64]) -> Value {
        let values = xs.iter().map(|&x| fixed::from_signed(x)).collect();
        self.constant(ElemType::Ring, Shape::Vector(xs.len()), values)
    }

    /// a + b.
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Add(a.id, b.id))
    }

    /// a − b.
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Sub(a.id, b.id))
    }

    /// −a.
    pub fn neg(&mut self, a: Value) -> Value {
        self.push(Op::Neg(a.id))
    }

    /// Elementwise product (fixed-point fractional bits add up; see [`Builder::fixmul`]).
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Mul(a.id, b.id))
    }

    /// Dot product (vector·vector → scalar, matrix·matrix → row-wise vector).
    pub fn dot(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Dot(a.id, b.id))
    }

    /// Matrix product.
    pub fn matmul(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::MatMul(a.id, b.id))
    }

    /// Sum of all elements → scalar.
    pub fn sum(&mut self, a: Value) -> Value {
        self.push(Op::Sum {
            a: a.id,
            axis: SumAxis::All,
        })
    }

    /// Sum of each matrix row → vector.
    pub fn sum_rows(&mut self, a: Value) -> Value {
        self.push(Op::Sum {
            a: a.id,
            axis: SumAxis::Rows,
        })
    }

    /// Drops `bits` fractional bits (floor in plaintext; probabilistic truncation if secret).
    pub fn rescale(&mut self, a: Value, bits: u32) -> Value {
        self.push(Op::Rescale { a: a.id, bits })
    }

    /// Same elements, new shape.
    pub fn reshape(&mut self, a: Value, shape: Shape) -> Value {
        self.push(Op::Reshape { a: a.id, shape })
    }

    /// Elements (vector) or rows (matrix) `start..end`.
    pub fn slice(&mut self, a: Value, start: usize, end: usize) -> Value {
        self.push(Op::Slice {
            a: a.id,
            start,
            end,
        })
    }

    /// Joins vectors, or stacks matrices by rows.
    pub fn concat(&mut self, parts: &[Value]) -> Value {
        self.push(Op::Concat(parts.iter().map(|v| v.id).collect()))
    }

    /// Matrix transpose.
    pub fn transpose(&mut self, a: Value) -> Value {
        self.push(Op::Transpose(a.id))
    }

    /// Opens a secret value to every party.
    pub fn reveal(&mut self, a: Value) -> Value {
        self.push(Op::Reveal(a.id))
    }

    /// 1 where the signed value is negative, else 0 (ring result).
    pub fn ltz(&mut self, a: Value) -> Value {
        self.push(Op::Ltz(a.id))
    }

    /// a < b as ring 0/1 words (exact while |a − b| < 2^63; see [`Op::Lt`]).
    pub fn lt(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Lt(a.id, b.id))
    }

    /// a ≤ b as ring 0/1 words (see [`Op::Le`]).
    pub fn le(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Le(a.id, b.id))
    }

    /// a > b as ring 0/1 words (see [`Op::Gt`]).
    pub fn gt(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Gt(a.id, b.id))
    }

    /// a ≥ b as ring 0/1 words (see [`Op::Ge`]).
    pub fn ge(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Ge(a.id, b.id))
    }

    /// a = b as ring 0/1 words (see [`Op::Eq`]).
    pub fn eq(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Eq(a.id, b.id))
    }

    /// max(a, 0) elementwise.
    pub fn relu(&mut self, a: Value) -> Value {
        self.push(Op::Relu(a.id))
    }

    /// `cond ? a : b` elementwise (`b + cond·(a − b)`; `cond` a ring value of 0/1 words).
    pub fn select(&mut self, cond: Value, a: Value, b: Value) -> Value {
        self.push(Op::Select {
            cond: cond.id,
            a: a.id,
            b: b.id,
        })
    }

    /// Elementwise signed maximum.
    pub fn max(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Max(a.id, b.id))
    }

    /// Elementwise signed minimum.
    pub fn min(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::Min(a.id, b.id))
    }

    /// Maximum of all elements → scalar (tournament; see [`Op::MaxAll`]).
    pub fn max_all(&mut self, a: Value) -> Value {
        self.push(Op::MaxAll(a.id))
    }

    /// Index of the maximum element of a non-empty vector → ring scalar; ties go to the lowest
    /// index (see [`Op::ArgMax`]).
    pub fn argmax(&mut self, a: Value) -> Value {
        self.push(Op::ArgMax(a.id))
    }

    /// All 64 bits of every element as a Matrix(n, 64) of ring 0/1 words (see [`Op::Bits`]).
    pub fn bits(&mut self, a: Value) -> Value {
        self.push(Op::Bits(a.id))
    }

    /// One-hot of the highest set bit among the low `lanes` bit positions of every element, as a
    /// Matrix(n, lanes) of ring 0/1 words (see [`Op::MsbOneHot`]).
    pub fn msb_onehot(&mut self, a: Value, lanes: u32) -> Value {
        self.push(Op::MsbOneHot { a: a.id, lanes })
    }

    /// Records a lowering's argument error (at the index of the next op) and emits a public
    /// ring scalar constant 0 to stand for its results: a placeholder.
    fn fail(&mut self, error: impl FnOnce(usize) -> ValidationError) -> Value {
        let op = self.ops.len();
        self.first_error.get_or_insert(error(op));
        self.const_ring(0)
    }

    /// Checks that `index` is a ring scalar (a placeholder passes); records the error otherwise.
    fn check_index(&mut self, name: &'static str, index: Value) -> Result<(), Value> {
        let ty = index.ty;
        if ty.elem == ElemType::Ring && ty.shape == Shape::Scalar {
            Ok(())
        } else {
            Err(self.fail(|op| ValidationError::IndexNotRingScalar { op, name, ty }))
        }
    }

    /// Public ring constant `[0, 1, …, n−1]` (an oversized `n` gets no words, so the constant
    /// op itself records `ShapeTooLarge` instead of allocating).
    fn iota(&mut self, n: usize) -> Value {
        let values = if n <= MAX_ELEMENTS {
            (0..n as u64).collect()
        } else {
            vec![]
        };
        self.constant(ElemType::Ring, Shape::Vector(n), values)
    }

    /// One-hot vector: `vector[n]` of ring 0/1 words with a 1 at position `index` (a ring
    /// scalar, secret or public) and 0 elsewhere; an index outside `0..n` gives all zeros.
    ///
    /// Lowering (no new op): a public constant `[0, 1, …, n−1]` and [`Builder::eq`] of `index`
    /// (broadcast) against it. A secret index gives a secret result, so no party learns which
    /// position is set. Cost with a secret index: one batched comparison of `2n` elements,
    /// [`LTZ_ROUNDS`](crate::cost::LTZ_ROUNDS) = 8 rounds and [`ltz_bytes`](crate::cost::ltz_bytes)`(2n)` bytes sent;
    /// free with a public index. An index that is not a ring scalar is a build error.
    pub fn onehot(&mut self, index: Value, n: usize) -> Value {
        if let Err(placeholder) = self.check_index("onehot", index) {
            return placeholder;
        }
        let iota = self.iota(n);
        self.eq(index, iota)
    }

    /// Row `index` of the matrix `m` (`matrix[rows×cols]`, ring or fixed point, secret or
    /// public) → `vector[cols]` of `m`'s element type; an index outside `0..rows` gives zeros.
    ///
    /// Lowering (no new op): [`Builder::onehot`]`(index, rows)` reshaped to `matrix[1×rows]`,
    /// [`Builder::matmul`] with `m` (ring·`Fixed(f)` → `Fixed(f)`, no rescale since the one-hot
    /// words are the integers 0/1), reshaped to `vector[cols]`. Oblivious: a secret index is
    /// never opened. Cost with a secret index and a secret `m`: 8 rounds (the `eq` of
    /// `2·rows` elements, `ltz_bytes(2·rows)` bytes) + 1 round (the matmul, `8·cols` bytes
    /// sent per party) = 9 rounds; with a public `m` the matmul is local (8 rounds); with a
    /// public index the one-hot is public and nothing is communicated. An `m` that is not a
    /// matrix, or an index that is not a ring scalar, is a build error.
    pub fn gather_row(&mut self, index: Value, m: Value) -> Value {
        let Shape::Matrix(rows, cols) = m.ty.shape else {
            let shape = m.ty.shape;
            return self.fail(|op| ValidationError::NotMatrix {
                op,
                name: "gather_row",
                shape,
            });
        };
        if let Err(placeholder) = self.check_index("gather_row", index) {
            return placeholder;
        }
        let h = self.onehot(index, rows);
        let h = self.reshape(h, Shape::Matrix(1, rows));
        let row = self.matmul(h, m);
        self.reshape(row, Shape::Vector(cols))
    }

    /// The `k` largest elements of a non-empty `vector[n]` (ring or fixed point, secret or
    /// public) in descending order, and their indices: `(vector[k]` of `x`'s element type,
    /// `vector[k]` ring`)`. Equal elements come out lowest index first, i.e. the order is
    /// (value descending, index ascending). For `k = n` this is a full descending sort (with
    /// the permutation), by a fully oblivious if slow method.
    ///
    /// Lowering (no new op; the ops emitted depend only on `n` and `k`), `k` rounds of
    /// selection on a working copy `w` (initially `x`):
    /// `i = argmax(w)`, `h = onehot(i, n)`, value `dot(h, w)` (ring·`Fixed(f)` → `Fixed(f)`,
    /// exact), then, except after the last round, the chosen element is masked with
    /// `w = select(h, S, w) = w + h·(S − w)` where `S` = [`TOPK_SENTINEL`] (−2^62 as a word of
    /// `x`'s element type). Values and indices are reshaped to `vector[1]` and concatenated.
    ///
    /// **Range**: every element must lie in (−2^62, 2^62) as a signed word: strictly above the
    /// sentinel (an element equal to it could tie with a masked one and lose to it), and below
    /// 2^62 so that every comparison against the sentinel stays within the range of
    /// [`Op::Lt`] (|a − b| < 2^63). Outside it the result follows the wrapping semantics and is
    /// not the top k.
    ///
    /// **Cost** (secret `x`, `L = ⌈log2 n⌉` tournament levels): each round is an `ArgMax`
    /// (`8·L` rounds), the one-hot `eq` (8) and then the dot product and the masking select,
    /// which are independent and run in the same round (1). Rounds do not overlap (each needs
    /// the previous `w`), so the ASAP depth is `k·(8·L + 9)`. Bytes sent per party:
    /// `k·(tournament_bytes(n, 2) + ltz_bytes(2n) + 8) + (k−1)·8n` (see [`crate::cost`]).
    /// Free for a public `x`.
    ///
    /// `x` not a non-empty vector, a bit vector, `k = 0` or `k > n` is a build error.
    pub fn topk(&mut self, x: Value, k: usize) -> (Value, Value) {
        let n = match x.ty.shape {
            Shape::Vector(n) if n > 0 => n,
            shape => {
                let v = self.fail(|op| ValidationError::NotNonEmptyVector {
                    op,
                    name: "topk",
                    shape,
                });
                return (v, v);
            }
        };
        if n > MAX_ELEMENTS {
            let v = self.fail(|op| ValidationError::ShapeTooLarge {
                op,
                name: "topk",
                shape: Shape::Vector(n),
            });
            return (v, v);
        }
        if x.ty.elem == ElemType::Bit {
            let v = self.fail(|op| ValidationError::BitUnsupported { op, name: "topk" });
            return (v, v);
        }
        if k == 0 || k > n {
            let v = self.fail(|op| ValidationError::CountRange {
                op,
                name: "topk",
                k,
                len: n,
            });
            return (v, v);
        }
        let iota = self.iota(n);
        let sentinel =
            (k > 1).then(|| self.constant(x.ty.elem, Shape::Scalar, vec![TOPK_SENTINEL]));
        let mut w = x;
        let (mut values, mut indices) = (vec![], vec![]);
        for round in 0..k {
            let i = self.argmax(w);
            let h = self.eq(i, iota);
            let v = self.dot(h, w);
            values.push(self.reshape(v, Shape::Vector(1)));
            indices.push(self.reshape(i, Shape::Vector(1)));
            if let Some(s) = sentinel
                && round + 1 < k
            {
                w = self.select(h, s, w);
            }
        }
        (self.concat(&values), self.concat(&indices))
    }

    /// The `k` largest (`largest`) or smallest elements of a non-empty vector, best first, by
    /// the oblivious comparator network of [`crate::selection`] ([`Op::BestK`]). Values only;
    /// exact for elements in [−2^62, 2^62). Cost with a secret operand: `11·layers` rounds,
    /// about `5.5·n` comparisons for k = 8 (see [`crate::cost`]).
    pub fn best_k(&mut self, a: Value, k: usize, largest: bool) -> Value {
        self.push(Op::BestK {
            a: a.id,
            k,
            largest,
        })
    }

    /// One-hot rows of `a mod 2^bits` over `n` columns ([`Op::OneHotLow`]): `matrix[m×n]` of
    /// ring 0/1 words. Cost with a secret operand: a decomposition of the low `bits` bits of the
    /// m elements (`2 + ⌈log2(bits − 1)⌉` rounds, at least 3) and `⌈log2 bits⌉` multiplication rounds of about `2·n` products per row.
    pub fn onehot_low(&mut self, a: Value, bits: u32, n: usize) -> Value {
        self.push(Op::OneHotLow { a: a.id, bits, n })
    }

    /// The fractional bits of a fixed-point operand; records the error otherwise.
    fn check_fixed(&mut self, name: &'static str, x: Value) -> Result<u32, Value> {
        match x.ty.elem {
            ElemType::Fixed(f) => Ok(f.0),
            elem => Err(self.fail(|op| ValidationError::RescaleNotFixed { op, name, elem })),
        }
    }

    /// e^x elementwise for a fixed-point `x` (`Fixed(f)`, any shape, secret or public) →
    /// same type.
    ///
    /// Lowering (no new op), the limit method e^x ≈ (1 + x/2^8)^(2^8) (CrypTen's `exp`):
    /// `y = 1 + x·2^-8` computed exactly in `Fixed(f+8)` ([`Builder::mul`] of `x` by the
    /// `Fixed(8)` constant word 1, plus the constant `1 + 2^-(f+1)`) and rounded to nearest
    /// by one [`Builder::rescale`] of 8 bits, then 8 squarings with [`Builder::fixmul`]. The
    /// rounding matters: an error δ in `y` becomes about `256·e^x·δ` in the result.
    ///
    /// **Range**: x ∈ [−16, 0]; below −16 the true value is < 1.2·10^-7 (under one ulp at
    /// f = 16) and the result stays ≈ 0 (measured exactly 0 on a grid of step 1/16) down to x = −256. **No clamping**:
    /// below −256 the base `1 + x/256` is negative and the result is garbage (≥ 0, reaching
    /// 1 at x = −512 and growing beyond); above 0 it under-estimates e^x and overflows for
    /// large x.
    ///
    /// **Error** (plaintext evaluator, f = 16, grid of step 1/256 over [−16, 0] plus every
    /// 7th ulp near 0): measured max |result − e^x| = 2.42·10^-3 (near x = −0.2), asserted ≤
    /// [`EXP_NEG_MAX_ABS_ERROR`] = 3·10^-3. It is dominated by the rounding of `y` to
    /// `Fixed(16)` (≤ 2^-17, times 256·e^x) and the floors of the squarings; the method's own
    /// error, ≈ e^x·x²/512, is at most 1.1·10^-3 (x = −2). Under MPC each secret rescale may add one
    /// ulp, which the squarings amplify (the first one by up to 256·2^-f ≈ 0.004 at f = 16).
    ///
    /// **Cost** (secret `x`): 1 + 8·2 = 17 rounds; bytes as 1 rescale + 8 fixmuls.
    /// A non-fixed-point `x` is a build error; so is `f > 54` (the `Fixed(f+8)` step).
    pub fn exp_neg(&mut self, x: Value) -> Value {
        let f = match self.check_fixed("exp_neg", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let inv256 = self.constant(Fixed::with_frac_bits(8), Shape::Scalar, vec![1]);
        let scaled = self.mul(x, inv256); // Fixed(f+8), exactly x/256
        // 1 + 2^-(f+1) in Fixed(f+8): adding half an ulp of Fixed(f) makes the floor a rounding.
        let one_half = 1u64
            .checked_shl(f + 8)
            .map_or(0, |one| one.wrapping_add(1 << 7));
        let one = self.constant(Fixed::with_frac_bits(f + 8), Shape::Scalar, vec![one_half]);
        let y = self.add(scaled, one);
        let mut y = self.rescale(y, 8);
        for _ in 0..EXP_NEG_SQUARINGS {
            y = self.fixmul(y, y);
        }
        y
    }

    /// Checks that `x` is fixed point with at most [`NORMALISE_MAX_FRAC_BITS`] fractional
    /// bits (the MSB normalisation's limit); records the error otherwise.
    fn check_normalisable(&mut self, name: &'static str, x: Value) -> Result<u32, Value> {
        let f = self.check_fixed(name, x)?;
        if f > NORMALISE_MAX_FRAC_BITS {
            return Err(self.fail(|op| ValidationError::SizeLimit {
                op,
                name,
                what: "fractional bits",
                got: f as usize,
                max: NORMALISE_MAX_FRAC_BITS as usize,
            }));
        }
        Ok(f)
    }

    /// `a·b·2^-extra` for fixed-point `a`, `b` (`Fixed(f)`): the product, an exact public
    /// multiplication by 2^-extra (a `Fixed(extra)` word 1) and **one** rescale by
    /// `f + extra` → `Fixed(f)`. Halving inside the rescale keeps the element type and costs
    /// nothing beyond a plain [`Builder::fixmul`] (2 rounds with secret operands).
    fn fixmul_shr(&mut self, a: Value, b: Value, extra: u32) -> Value {
        if extra == 0 {
            return self.fixmul(a, b);
        }
        let p = self.mul(a, b);
        let f = match (a.ty.elem, b.ty.elem) {
            (ElemType::Fixed(f), ElemType::Fixed(g)) => f.0.min(g.0),
            _ => 0,
        };
        let half = self.constant(Fixed::with_frac_bits(extra), Shape::Scalar, vec![1]);
        let p = self.mul(p, half);
        self.rescale(p, f + extra)
    }

    /// MSB normalisation of a positive `Fixed(f)` operand `x` (raw word `x_raw`), the shared
    /// first step of [`Builder::reciprocal`] and [`Builder::inv_sqrt`]. Returns the one-hot
    /// `e = msb_onehot(x, L)` (`Matrix(n, L)`, [`normalise_lanes`]`(f) = L = 2f + 8`) of
    /// `i = ⌊log2 x_raw⌋`, and `v = x·2^-(i+1-f)` ∈ [0.5, 1) in `Fixed(f)` (x's shape).
    ///
    /// The factor `c = 2^(f-1-i)` is the **local** product of `e` with a public column of
    /// `Fixed(K)` words `2^(L-1-i)` (K = L − f = f + 8, so every factor, down to 2^-K, is an
    /// exact word ≥ 1); `v = rescale(x·c, K)`, i.e. `⌊x_raw·2^(f-1-i)⌋` — exact for `i < f`,
    /// a floor (≤ 1 ulp, relative 2^(1-f)) above. The product is below 2^(f+K) = 2^(2f+8)
    /// (2^40 at f = 16), so a secret truncation fails with probability ≤ 2^(2f+9-64).
    /// Outside the domain (`x ≤ 0` or `x_raw ≥ 2^L`) `e` is all zeros, so `c = v = 0`.
    /// Cost (secret `x`): 14 rounds (`MsbOneHot`) + 2 (mul, rescale).
    fn msb_normalise(&mut self, x: Value, f: u32) -> (Value, Value) {
        let lanes = normalise_lanes(f);
        let k = lanes - f;
        let e = self.msb_onehot(x, lanes);
        let words = (0..lanes).map(|i| 1u64 << (lanes - 1 - i)).collect();
        let table = self.constant(
            Fixed::with_frac_bits(k),
            Shape::Matrix(lanes as usize, 1),
            words,
        );
        let c = self.matmul(e, table);
        let c = self.reshape(c, x.ty.shape);
        let p = self.mul(x, c);
        let v = self.rescale(p, k);
        (e, v)
    }

    /// `y·g_i` elementwise, where `i` is the position given by the one-hot rows `e` of
    /// [`Builder::msb_normalise`] and `g_i = factor(i)` is public (0 for an all-zero row).
    ///
    /// The table is split so that no product exceeds the truncation budget: factors ≥ 1 go to
    /// a column of `hi` words (`Ring` when they are integers — exact, no rescale — or
    /// `Fixed(h)`, then rescaled by `h`), factors < 1 to a column of `Fixed(K)` words
    /// (K = f + 8, rescaled by K). Both are local matmuls; the two products with `y` and their
    /// rescales run in parallel (2 rounds for a secret `y`), then are added.
    fn scale_by_msb(
        &mut self,
        y: Value,
        e: Value,
        f: u32,
        hi: ElemType,
        factor: impl Fn(u32) -> f64,
    ) -> Value {
        let lanes = normalise_lanes(f);
        let k = lanes - f;
        let column = Shape::Matrix(lanes as usize, 1);
        let g: Vec<f64> = (0..lanes).map(factor).collect();
        let hi_vals: Vec<f64> = g.iter().map(|&g| if g >= 1.0 { g } else { 0.0 }).collect();
        let lo_vals: Vec<f64> = g.iter().map(|&g| if g < 1.0 { g } else { 0.0 }).collect();
        let hi_table = match hi {
            ElemType::Fixed(h) => self.const_fixed_shaped(&hi_vals, Fixed(h), column),
            _ => {
                // Integer factors (powers of two): exact ring words.
                let words = hi_vals.iter().map(|&g| g as u64).collect();
                self.constant(ElemType::Ring, column, words)
            }
        };
        let lo_table = self.const_fixed_shaped(&lo_vals, Fixed::with_frac_bits(k), column);
        let a = self.matmul(e, hi_table);
        let a = self.reshape(a, y.ty.shape);
        let b = self.matmul(e, lo_table);
        let b = self.reshape(b, y.ty.shape);
        let ya = self.mul(y, a);
        let ya = match hi {
            ElemType::Fixed(h) => self.rescale(ya, h.0),
            _ => ya,
        };
        let yb = self.mul(y, b);
        let yb = self.rescale(yb, k);
        self.add(ya, yb)
    }

    /// Goldschmidt's iteration for `1/v` with `v = d·2^-shift` ∈ [0.5, 1] (`d` in `Fixed(f)`,
    /// `shift` ∈ {0, 1}), returning `w·2^-shift ≈ 1/d` in `Fixed(f)`.
    ///
    /// `w0 = 2.9142 − 2v` (free: a public constant minus a ring multiple of `d`), so
    /// `e0 = 1 − v·w0` has |e0| ≤ 0.0858 on [0.5, 1]; then [`RECIPROCAL_ITERATIONS`] times
    /// `w ← w·(1 + e)`, `e ← e²` (independent products, same rounds), so `1 − v·w = e0^(2^k)`.
    /// The `2^-shift` is folded into the rescales of `v·w0` and of the last `w` product.
    /// Cost (secret `d`): 2 + 2·[`RECIPROCAL_ITERATIONS`] rounds.
    fn goldschmidt(&mut self, d: Value, f: u32, shift: u32) -> Value {
        let t = Fixed::with_frac_bits(f);
        let c = self.const_fixed(2.9142, t);
        // 2v = d·2^(1-shift): ring multiple 2 or 1.
        let two_v = if shift == 0 {
            let two = self.const_ring(2);
            self.mul(d, two)
        } else {
            d
        };
        let mut w = self.sub(c, two_v);
        let vw = self.fixmul_shr(d, w, shift);
        let one = self.const_fixed(1.0, t);
        let mut e = self.sub(one, vw);
        for it in 0..RECIPROCAL_ITERATIONS {
            let r = self.add(one, e);
            if it + 1 == RECIPROCAL_ITERATIONS {
                w = self.fixmul_shr(w, r, shift);
            } else {
                w = self.fixmul(w, r);
                e = self.fixmul(e, e);
            }
        }
        w
    }

    /// 1/x elementwise for a positive fixed-point `x` (`Fixed(f)`, any shape, secret or
    /// public) → same type.
    ///
    /// Lowering (no new op): **Goldschmidt after MSB normalisation** (Goldschmidt 1964; as in
    /// Catrina & Saxena, FC 2010, and ABY3 §5.2). With `i = ⌊log2 x_raw⌋` from
    /// [`Builder::msb_onehot`] (L = [`normalise_lanes`]`(f)` = 2f + 8 lanes), `v =
    /// x·2^(f-1-i)` ∈ [0.5, 1) (a local one-hot matmul with public power-of-two weights, one
    /// mul and one rescale); `w0 = 2.9142 − 2v`, `e = 1 − v·w0`, then
    /// [`RECIPROCAL_ITERATIONS`] = 3 iterations `w ← w·(1 + e)`, `e ← e²` (|e| ≤ 0.0858 →
    /// 7.4·10^-3 → 5.4·10^-5 → 3·10^-9, below the `Fixed(16)` floor: 2 measure
    /// 5.6·10^-5 for x ≤ 1 against 4.5·10^-5 for 3); result `w·2^(f-1-i)`, the same one-hot
    /// times public weights, split into ring words (factors ≥ 1) and `Fixed(f+8)` words
    /// (factors < 1) so every product stays below 2^(2f+8) (2^40 at f = 16: a secret truncation fails with probability ≤ 2^-23).
    ///
    /// **Domain**: x ∈ [2^-f, 2^(f+8)) real (`x_raw` ∈ [1, 2^L)), i.e. [2^-16, 2^24) at
    /// f = 16. Outside it — x ≤ 0 or x ≥ 2^(f+8) — the result is exactly **0** (the one-hot
    /// row is empty). For x above 2^8 at f = 16 the true 1/x is below 2^-8 (256 ulps), so
    /// the output resolution 2^-16 dominates: there the error is bounded absolutely.
    ///
    /// **Error** (plaintext evaluator, f = 16, 67 506 points: every raw word in
    /// [2^-16, 2^-12), 64 log-spaced points per octave over [2^-16, 2^24) and every 1/256 over
    /// [1, 256]): max relative error 4.50·10^-5 for x ≤ 1, 3.92·10^-3 for x ≤ 2^8 (one ulp of
    /// 1/256), max absolute error 1.53·10^-5 (one ulp) for x ≥ 2^8; overall
    /// |result − 1/x| ≤ 10^-4·(1/x) + 1.00 ulp, asserted as ≤ [`RECIPROCAL_MAX_REL_ERROR`]
    /// `·(1/x) +` [`RECIPROCAL_MAX_ABS_ERROR`] (10^-4 relative + 2 ulps). Under MPC every secret
    /// rescale may add one ulp (Goldschmidt does not self-correct).
    ///
    /// **Cost** (secret `x`, [`crate::cost::program_cost`]): 14 (`MsbOneHot`) + 2 (`v`) + 2
    /// (`e0`) + 2·3 (iterations) + 2 (scale back) = **26 rounds**. A non-fixed-point `x`, or
    /// `f >` [`NORMALISE_MAX_FRAC_BITS`], is a build error.
    pub fn reciprocal(&mut self, x: Value) -> Value {
        let f = match self.check_normalisable("reciprocal", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let (e, v) = self.msb_normalise(x, f);
        let w = self.goldschmidt(v, f, 0);
        let f = f as i32;
        self.scale_by_msb(w, e, f as u32, ElemType::Ring, |i| {
            2f64.powi(f - 1 - i as i32)
        })
    }

    /// a / b elementwise: [`Builder::fixmul`]`(a, `[`Builder::reciprocal`]`(b))`. `a` and
    /// `b` are fixed point (secret or public, shapes as for [`Builder::mul`]); the result is
    /// `Fixed(max(f_a, f_b))`.
    ///
    /// **Domain**: `b` as for [`Builder::reciprocal`] (b ∈ [2^-16, 2^24) at f = 16; b ≤ 0 or
    /// larger gives 0). The product needs |a| · |1/b| · 2^(f_a + f_b) well below 2^63 (see
    /// the [`fixed`] error budget): at f = 16 keep |a/b| ≲ 2^14 for a
    /// truncation failure rate ≤ 2^-17. Error: |a| times the reciprocal's error plus one ulp.
    ///
    /// **Cost** (secret `a`, `b`): 26 + 2 = **28 rounds**. Non-fixed-point operands are a
    /// build error.
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        if let Err(placeholder) = self.check_fixed("div", a) {
            return placeholder;
        }
        if let Err(placeholder) = self.check_normalisable("div", b) {
            return placeholder;
        }
        let r = self.reciprocal(b);
        self.fixmul(a, r)
    }

    /// 1/√x elementwise for a positive fixed-point `x` (`Fixed(f)`, any shape, secret or
    /// public) → same type.
    ///
    /// Lowering (no new op): the MSB normalisation of [`Builder::reciprocal`] gives `v =
    /// x·2^(f-1-i)` ∈ [0.5, 1); the fitted line `y0 = 1.7877 − 0.81·v` (relative error ≤ 2.23%
    /// on [0.5, 1]; `0.81·v` comes from a second public column multiplied in the same round
    /// as `v`) and [`INV_SQRT_ITERATIONS`] = 2 Newton steps `y ← y·(3 − v·y²)/2`
    /// (2.2·10^-2 → 7.4·10^-4 → 8·10^-7), each computed as `v·y` and `y²` in parallel, then
    /// `(3y·2^f − (v·y)·y²)·2^-1` rescaled once (4 rounds per step); result `y·g_i` with
    /// `g_i = 2^((f-1-i)/2)`, public weights that carry the √2 of odd exponents (`Fixed(f)`
    /// words for g ≥ 1, `Fixed(f+8)` words below 1, relative rounding ≤ 2^-13 at the smallest
    /// g). Products stay below 2^41 at f = 16.
    ///
    /// **Domain**: x ∈ [2^-f, 2^(f+8)) real, i.e. [2^-16, 2^24) at f = 16; outside it
    /// (x ≤ 0 or too large) the result is **0**. 1/√x ranges over (2^-12, 2^8]; for x above
    /// 2^8 the result is below 1/16 (4096 ulps) and resolution dominates, so the error is
    /// bounded absolutely there.
    ///
    /// **Error** (plaintext evaluator, f = 16, same 67 506 points as [`Builder::reciprocal`]):
    /// max relative error 1.62·10^-5 for x ≤ 1, 2.44·10^-4 for x ≤ 2^8 (one ulp of 1/16), max
    /// absolute error 1.55·10^-5 for x ≥ 2^8; overall |result − 1/√x| ≤ 10^-4·(1/√x) +
    /// 1.01 ulps, asserted as ≤ [`INV_SQRT_MAX_REL_ERROR`]`·(1/√x) +`
    /// [`INV_SQRT_MAX_ABS_ERROR`] (10^-4 relative + 2 ulps). Newton self-corrects, so under MPC
    /// the truncation ulps of the iterations are damped; those of the normalisation and final
    /// scaling remain.
    ///
    /// **Cost** (secret `x`): 14 + 2 + 4·2 + 2 = **26 rounds**. A non-fixed-point `x`, or
    /// `f >` [`NORMALISE_MAX_FRAC_BITS`], is a build error.
    pub fn inv_sqrt(&mut self, x: Value) -> Value {
        let f = match self.check_normalisable("inv_sqrt", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let t = Fixed::with_frac_bits(f);
        let (e, v) = self.msb_normalise(x, f);
        // 0.81·v in the same round as v: a second column 0.81·2^(f-1-i) at Fixed(K).
        let lanes = normalise_lanes(f);
        let k = lanes - f;
        let slope: Vec<f64> = (0..lanes)
            .map(|i| INV_SQRT_SLOPE * 2f64.powi(f as i32 - 1 - i as i32))
            .collect();
        let slope = self.const_fixed_shaped(
            &slope,
            Fixed::with_frac_bits(k),
            Shape::Matrix(lanes as usize, 1),
        );
        let c = self.matmul(e, slope);
        let c = self.reshape(c, x.ty.shape);
        let bv = self.mul(x, c);
        let bv = self.rescale(bv, k);
        let a = self.const_fixed(INV_SQRT_INTERCEPT, t);
        let mut y = self.sub(a, bv);
        let three = self.const_ring(3);
        let one = self.constant(Fixed::with_frac_bits(f), Shape::Scalar, vec![1 << f]);
        let half = self.constant(Fixed::with_frac_bits(1), Shape::Scalar, vec![1]);
        for _ in 0..INV_SQRT_ITERATIONS {
            let vy = self.fixmul(v, y);
            let y2 = self.fixmul(y, y);
            let z = self.mul(vy, y2); // Fixed(2f)
            let y3 = self.mul(y, three);
            let y3 = self.mul(y3, one); // Fixed(2f), exact 3y
            let num = self.sub(y3, z);
            let num = self.mul(num, half); // Fixed(2f+1), exact halving
            y = self.rescale(num, f + 1);
        }
        let hi = ElemType::Fixed(FracBits(f));
        let f = f as i32;
        self.scale_by_msb(y, e, f as u32, hi, |i| {
            2f64.powf((f - 1 - i as i32) as f64 / 2.0)
        })
    }

    /// The logistic function σ(x) = 1/(1 + e^-x) elementwise for a fixed-point `x`
    /// (`Fixed(f)`, any shape, secret or public) → same type.
    ///
    /// Lowering (no new op): `n = ltz(x)`, `m = select(n, x, −x) = −|x|`, `d = 1 +`
    /// [`Builder::exp_neg`]`(m)` ∈ [1, 2], `s = 1/d` by the Goldschmidt iteration of
    /// [`Builder::reciprocal`] — the normalisation is known (`v = d/2` ∈ [0.5, 1], folded into
    /// the rescales), so no `MsbOneHot` is needed — and `σ = select(n, 1 − s, s)`.
    ///
    /// **Range**: x ∈ [−16, 16] for the bound below. Beyond it σ saturates: for
    /// 16 < |x| ≤ 256 `exp_neg(−|x|)` stays ≈ 0 (see [`Builder::exp_neg`]) and the result is
    /// within one ulp of 0 or 1 (measured max |result − σ(x)| = 1.53·10^-5 every 1/16 over
    /// 16 ≤ |x| ≤ 256); beyond ±256 `exp_neg` is garbage and so is the result.
    ///
    /// **Error** (plaintext evaluator, f = 16, every 1/256 over [−16, 16]): measured max
    /// |result − σ(x)| = 1.22·10^-3 (near |x| = 1.73), asserted ≤ [`SIGMOID_MAX_ABS_ERROR`]
    /// = 2·10^-3. It is inherited from `exp_neg` (≤ 2.4·10^-3, passed on with the factor
    /// 1/(1 + e)² ∈ [1/4, 1]); the Goldschmidt step adds ≈ 10^-5.
    ///
    /// **Cost** (secret `x`): 8 (`ltz`) + 1 (select) + 17 (`exp_neg`) + 2 + 2·3
    /// (Goldschmidt) + 1 (select) = **35 rounds**. A non-fixed-point `x` is a build error.
    pub fn sigmoid(&mut self, x: Value) -> Value {
        let f = match self.check_fixed("sigmoid", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let t = Fixed::with_frac_bits(f);
        let n = self.ltz(x);
        let nx = self.neg(x);
        let m = self.select(n, x, nx);
        let ez = self.exp_neg(m);
        let one = self.const_fixed(1.0, t);
        let d = self.add(one, ez);
        let s = self.goldschmidt(d, f, 1);
        let s1 = self.sub(one, s);
        self.select(n, s1, s)
    }

    /// Row-wise softmax of a fixed-point `matrix[r×c]` (secret or public) → same type:
    /// `out[i][j] = e^(x[i][j] − m_i) / Σ_k e^(x[i][k] − m_i)` with `m_i` the row maximum.
    ///
    /// Lowering (no new op): per row `i`, [`Builder::slice`] → [`Builder::reshape`] to
    /// `vector[c]` → [`Builder::max_all`] (the `r` tournaments are independent and run in the
    /// same rounds); the maxima are concatenated into `matrix[r×1]` and broadcast across the
    /// columns by a local [`Builder::matmul`] with a public ring `matrix[1×c]` of ones;
    /// `d = x − m` ∈ [−spread, 0]; `e = `[`Builder::exp_neg`]`(d)`; `s = `[`Builder::sum_rows`]
    /// `(e)` ∈ [1, c] (the maximum contributes e^0 = 1); `inv = `[`Builder::reciprocal`]`(s)`,
    /// broadcast the same way; `out = fixmul(e, inv)`.
    ///
    /// **Range**: `c ≤ 256` (so `s` ∈ [1, 256], well within the reciprocal's domain). Entries
    /// more than 16 below their row maximum underflow to ≈ 0 (their true weight is < e^-16, fine for
    /// softmax). A row spread (max − min) above 256 is **not** supported: `exp_neg` is garbage
    /// below −256 (no clamping).
    ///
    /// **Error** (plaintext evaluator, f = 16, random rows with values in [−8, 8]): measured
    /// max |out − softmax| = 2.09·10^-3 (shapes up to 16×100 and 4×256), asserted ≤
    /// [`SOFTMAX_MAX_ABS_ERROR`] = 3·10^-3. Under MPC the truncations add up to one ulp each
    /// (see [`Builder::exp_neg`]).
    ///
    /// **Cost** (secret `x`, `L = ⌈log2 c⌉`): `8·L` (max_all) + 17 (exp_neg) + 26
    /// (reciprocal) + 2 (final fixmul) rounds, independent of `r` (101 for c = 128);
    /// [`crate::cost::program_cost`] gives the exact figure for a program.
    ///
    /// A non-matrix or non-fixed-point `x`, or `c > 256`, is a build error.
    pub fn softmax_rows(&mut self, x: Value) -> Value {
        let Shape::Matrix(rows, cols) = x.ty.shape else {
            let shape = x.ty.shape;
            return self.fail(|op| ValidationError::NotMatrix {
                op,
                name: "softmax_rows",
                shape,
            });
        };
        if let Err(placeholder) = self.check_fixed("softmax_rows", x) {
            return placeholder;
        }
        if cols > SOFTMAX_MAX_COLS {
            return self.fail(|op| ValidationError::SizeLimit {
                op,
                name: "softmax_rows",
                what: "column count",
                got: cols,
                max: SOFTMAX_MAX_COLS,
            });
        }
        let ones = self.constant(ElemType::Ring, Shape::Matrix(1, cols), vec![1; cols]);
        let maxes: Vec<Value> = (0..rows)
            .map(|i| {
                let row = self.slice(x, i, i + 1);
                let row = self.reshape(row, Shape::Vector(cols));
                let m = self.max_all(row);
                self.reshape(m, Shape::Vector(1))
            })
            .collect();
        let m = self.concat(&maxes);
        let m = self.reshape(m, Shape::Matrix(rows, 1));
        let m = self.matmul(m, ones);
        let d = self.sub(x, m);
        let e = self.exp_neg(d);
        let s = self.sum_rows(e);
        let inv = self.reciprocal(s);
        let inv = self.reshape(inv, Shape::Matrix(rows, 1));
        let inv = self.matmul(inv, ones);
        self.fixmul(e, inv)
    }

    /// Rescales the product `p` of `a` and `b` back by the smaller operand's fractional bits
    /// when both are fixed point, so `Fixed(f)·Fixed(f) → Fixed(f)` and in general
    /// `Fixed(f)·Fixed(g) → Fixed(max(f, g))`; ring operands need no rescale.
    fn rescale_product(&mut self, a: Value, b: Value, p: Value) -> Value {
        match (a.ty.elem, b.ty.elem, p.ty.elem) {
            (ElemType::Fixed(f), ElemType::Fixed(g), ElemType::Fixed(_)) if f.0.min(g.0) > 0 => {
                self.rescale(p, f.0.min(g.0))
            }
            _ => p,
        }
    }

    /// Fixed-point product: [`Builder::mul`] then a rescale so `Fixed(f)·Fixed(f) → Fixed(f)`
    /// (by `min(f, g)` bits for `Fixed(f)·Fixed(g)`; no rescale with a ring operand). Costs
    /// 2 rounds when both operands are secret.
    pub fn fixmul(&mut self, a: Value, b: Value) -> Value {
        let p = self.mul(a, b);
        self.rescale_product(a, b, p)
    }

    /// Fixed-point dot product: [`Builder::dot`] then the same rescale as [`Builder::fixmul`].
    pub fn fixdot(&mut self, a: Value, b: Value) -> Value {
        let p = self.dot(a, b);
        self.rescale_product(a, b, p)
    }

    /// Fixed-point matrix product with the rescale fused into the product's round
    /// ([`Op::MatMulRescale`]): `(a·b) / 2^bits`. One round when both operands are secret.
    pub fn matmul_rescale(&mut self, a: Value, b: Value, bits: u32) -> Value {
        self.push(Op::MatMulRescale {
            a: a.id,
            b: b.id,
            bits,
        })
    }

    /// Fixed-point matrix product: [`Builder::matmul`] then the rescale of [`Builder::fixmul`].
    pub fn fixmatmul(&mut self, a: Value, b: Value) -> Value {
        let p = self.matmul(a, b);
        self.rescale_product(a, b, p)
    }

    /// Patches of a batch of images (`x`: `Matrix(batch, h·w·c)`) for a convolution or a
    /// pooling layer: `Matrix(batch·oh·ow, kh·kw·c)` (see [`Op::Im2Col`] and [`crate::conv`]).
    pub fn im2col(&mut self, x: Value, geometry: Conv2dGeometry) -> Value {
        self.push(Op::Im2Col { a: x.id, geometry })
    }

    /// 2-D convolution of a batch of fixed-point images (`x`: `Matrix(batch, h·w·c)`, layout
    /// per `g`) with `weights` (`Matrix(kh·kw·c, out_channels)`, rows in patch order
    /// `(i, j, c)`) plus an optional `bias` (`vector[out_channels]` of the output's type):
    /// `Matrix(batch, oh·ow·out_channels)`, channels-last, at `x`'s fractional bits.
    ///
    /// Lowering: [`Builder::im2col`] (local), one [`Op::MatMulRescale`] of the patches with
    /// the weights (one round when both are secret: the product's reshare and the truncation
    /// share it; a local product and one truncation round with public weights), and the bias
    /// broadcast to every output pixel by a local product with a public column of ones.
    pub fn conv2d(
        &mut self,
        x: Value,
        weights: Value,
        bias: Option<Value>,
        g: Conv2dGeometry,
    ) -> Value {
        let patches = self.im2col(x, g);
        let y = match (x.ty.elem, weights.ty.elem) {
            (ElemType::Fixed(f), ElemType::Fixed(w)) if f.0.min(w.0) > 0 => {
                self.matmul_rescale(patches, weights, f.0.min(w.0))
            }
            _ => self.matmul(patches, weights),
        };
        let Shape::Matrix(pixels, out_channels) = y.ty.shape else {
            return y; // the product recorded the error
        };
        let y = match bias {
            None => y,
            Some(bias) => {
                let ones = self.constant(
                    ElemType::Ring,
                    Shape::Matrix(pixels, 1),
                    if pixels <= MAX_ELEMENTS {
                        vec![1; pixels]
                    } else {
                        vec![]
                    },
                );
                let row = self.reshape(bias, Shape::Matrix(1, out_channels));
                let per_pixel = self.matmul(ones, row);
                self.add(y, per_pixel)
            }
        };
        let batch = match x.ty.shape {
            Shape::Matrix(b, _) => b.max(1),
            _ => 1,
        };
        self.reshape(y, Shape::Matrix(batch, pixels / batch * out_channels))
    }

    /// The `kh·kw` window elements of every output pixel and channel, as `kh·kw` values of
    /// shape `Matrix(c, batch·oh·ow)` (window position `(i, j)` in row-major order).
    fn pool_windows(&mut self, x: Value, g: Conv2dGeometry) -> Vec<Value> {
        let patches = self.im2col(x, g);
        let by_column = self.transpose(patches); // rows (i, j, c), columns the output pixels
        let c = g.channels;
        (0..g.kernel_h * g.kernel_w)
            .map(|k| self.slice(by_column, k * c, (k + 1) * c))
            .collect()
    }

    /// Back from `Matrix(c, batch·oh·ow)` to `Matrix(batch, oh·ow·c)` (channels-last).
    fn pool_output(&mut self, pooled: Value, x: Value) -> Value {
        let (Shape::Matrix(c, pixels), Shape::Matrix(batch, _)) = (pooled.ty.shape, x.ty.shape)
        else {
            return pooled;
        };
        let t = self.transpose(pooled);
        self.reshape(t, Shape::Matrix(batch.max(1), pixels / batch.max(1) * c))
    }

    /// Max pooling of a batch of images (`x`: `Matrix(batch, h·w·c)`, layout per `g`; no
    /// padding): `Matrix(batch, oh·ow·c)`, channels-last, the largest element of every
    /// `kh × kw` window taken every `stride`.
    ///
    /// Lowering: the windows by [`Builder::im2col`] and a transpose (local), then a tournament
    /// of elementwise [`Op::Max`] over the `kh·kw` window positions: `⌈log2(kh·kw)⌉` levels of
    /// one batched comparison-and-select each. Padding is refused (a padded max would need
    /// −∞, not 0).
    pub fn max_pool2d(&mut self, x: Value, g: Conv2dGeometry) -> Value {
        if g.pad != 0 {
            return self.fail(|op| ValidationError::Im2Col {
                op,
                name: "max_pool2d",
                what: format!("max pooling takes no padding (got {})", g.pad),
            });
        }
        let mut level = self.pool_windows(x, g);
        if level.is_empty() {
            return self.const_ring(0); // an empty window: im2col recorded the error
        }
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                next.push(match pair {
                    [a, b] => self.max(*a, *b),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                });
            }
            level = next;
        }
        self.pool_output(level[0], x)
    }

    /// Average pooling of a batch of fixed-point images (`x` and `g` as for
    /// [`Builder::max_pool2d`]; zero padding counts in the average, as ONNX's
    /// `count_include_pad = 1`): `Matrix(batch, oh·ow·c)`, channels-last.
    ///
    /// Lowering: the window sums are local; the division is a product with the public
    /// constant `1/K` (`K = kh·kw`) and one truncation round. The constant carries
    /// `f + ⌈log2 K⌉` fractional bits, so its rounding adds at most half an ulp of the mean
    /// (at `f` bits it would be `K/2` ulps); the product then holds `2f + ⌈log2 K⌉` bits, as a
    /// linear layer's `2f` with a `K` times larger bound.
    pub fn avg_pool2d(&mut self, x: Value, g: Conv2dGeometry) -> Value {
        let ElemType::Fixed(f) = x.ty.elem else {
            let elem = x.ty.elem;
            return self.fail(|op| ValidationError::Im2Col {
                op,
                name: "avg_pool2d",
                what: format!("average pooling needs fixed-point images, got {elem}"),
            });
        };
        let windows = self.pool_windows(x, g);
        let Some((&first, rest)) = windows.split_first() else {
            return self.const_ring(0); // an empty window: im2col recorded the error
        };
        let mut sum = first;
        for w in rest {
            sum = self.add(sum, *w);
        }
        let k = windows.len();
        let bits = f.0 + k.next_power_of_two().trailing_zeros();
        let scale = self.const_fixed(1.0 / k as f64, Fixed(FracBits(bits)));
        let product = self.mul(sum, scale);
        let mean = self.rescale(product, bits);
        self.pool_output(mean, x)
    }

    /// Declares an output.
    pub fn output(&mut self, name: &str, v: Value, recipient: Recipient) {
        self.outputs.push(OutputDecl {
            name: name.into(),
            value: v.id,
            recipient,
        });
    }

    /// Declares an output for the client `"client"`.
    pub fn output_to_client(&mut self, name: &str, v: Value) {
        self.output(name, v, Recipient::Client("client".into()));
    }

    /// The program built so far, unvalidated.
    pub fn program(&self) -> Program {
        Program {
            version: PROGRAM_VERSION,
            inputs: self.inputs.clone(),
            ops: self.ops.clone(),
            outputs: self.outputs.clone(),
        }
    }

    /// Number of ops so far (the index the next op will get): lets callers attribute op
    /// ranges to the layers they build.
    pub fn op_count(&self) -> usize {
        self.ops.len()
    }

    /// Reports the first recorded mistake, else validates the program.
    pub fn finish(self) -> Result<ValidatedProgram, ValidationError> {
        if let Some(e) = self.first_error {
            return Err(e);
        }
        Program {
            version: PROGRAM_VERSION,
            inputs: self.inputs,
            ops: self.ops,
            outputs: self.outputs,
        }
        .validate()
    }
}
