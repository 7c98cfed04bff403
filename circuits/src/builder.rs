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
//! selection), and the fixed-point functions [`Builder::exp_neg`], [`Builder::reciprocal`] and
//! [`Builder::softmax_rows`]. They need no support beyond the ops they emit. A lowering given bad arguments
//! records its error like any op and returns a placeholder (a public ring scalar constant).

use crate::error::ValidationError;
use crate::fixed;
use crate::program::{
    InputDecl, Op, OutputDecl, Owner, PROGRAM_VERSION, Program, Recipient, SumAxis, ValueId,
};
use crate::types::{ElemType, Fixed, Shape, ValueType, Visibility};
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

/// Newton–Raphson steps in [`Builder::reciprocal`].
pub const RECIPROCAL_ITERATIONS: u32 = 10;

/// Measured bound (with margin) on |`reciprocal`(x)·x − 1| over x ∈ [1, 256] at f = 16,
/// plaintext.
pub const RECIPROCAL_MAX_REL_ERROR: f64 = 5e-3;

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
    /// [`LTZ_ROUNDS`](crate::cost::LTZ_ROUNDS) = 10 rounds and `2n·[128, 112, 112]` bytes sent;
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
    /// never opened. Cost with a secret index and a secret `m`: 10 rounds (the `eq` of
    /// `2·rows` elements, `2·rows·[128, 112, 112]` bytes) + 1 round (the matmul, `8·cols` bytes
    /// sent per party) = 11 rounds; with a public `m` the matmul is local (10 rounds); with a
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
    /// (`11·L` rounds), the one-hot `eq` (10) and then the dot product and the masking select,
    /// which are independent and run in the same round (1). Rounds do not overlap (each needs
    /// the previous `w`), so the ASAP depth is `k·(11·L + 11)`. Bytes sent per party:
    /// `k·((n−1)·[144, 128, 128] + 2n·[128, 112, 112] + 8) + (k−1)·8n`. Free for a public `x`.
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

    /// 1/x elementwise for a fixed-point `x` (`Fixed(f)`, any shape, secret or public) → same
    /// type.
    ///
    /// Lowering (no new op): the CrypTen-style Newton–Raphson method (Knott et al., "CrypTen:
    /// Secure Multi-Party Computation Meets Machine Learning", NeurIPS 2021): initial guess
    /// `y0 = 3·exp_neg(0.5 − x) + 0.003`, then [`RECIPROCAL_ITERATIONS`] steps
    /// `y ← y·(2 − x·y)` (two [`Builder::fixmul`]s each). Newton converges when
    /// `0 < y0 < 2/x`; the relative error `e = 1 − x·y` squares each step. For x > 16.5 the
    /// exponential is ≈ 0 and `y0 ≈ 0.003 < 2/256`; the slowest start is near x = 9.5
    /// (`x·y0 ≈ 0.032`). Measured on the grid below: 7 steps leave a 1.8% error there, 8
    /// reach the fixed-point floor; 10 leave two steps of margin. The design's
    /// Goldschmidt iteration after normalisation (exact range reduction to [0.5, 1)) is
    /// future work.
    ///
    /// **Range**: x ∈ [1, 256]. Outside it the guess may exceed 2/x (x < 1: divergence) or
    /// leave too few steps (x > 256: too slow; beyond 666 no convergence), and
    /// `exp_neg(0.5 − x)` is garbage for x > 256.5.
    ///
    /// **Error** (plaintext evaluator, f = 16, grid of step 1/256 over [1, 256]): measured max
    /// relative error |result·x − 1| = 3.92·10^-3 (at x ≈ 256), asserted ≤
    /// [`RECIPROCAL_MAX_REL_ERROR`] = 5·10^-3; it is set by the resolution of `Fixed(16)` at
    /// small results (1/256 is 256 ulps, so one ulp is 0.39% there).
    ///
    /// **Cost** (secret `x`): 17 (exp_neg) + 4·10 = 57 rounds. A non-fixed-point `x` is a
    /// build error.
    pub fn reciprocal(&mut self, x: Value) -> Value {
        let f = match self.check_fixed("reciprocal", x) {
            Ok(f) => f,
            Err(placeholder) => return placeholder,
        };
        let t = Fixed::with_frac_bits(f);
        let half = self.const_fixed(0.5, t);
        let d = self.sub(half, x);
        let e = self.exp_neg(d);
        let three = self.const_ring(3);
        let e3 = self.mul(e, three); // ring·Fixed(f): exact, free
        let eps = self.const_fixed(0.003, t);
        let mut y = self.add(e3, eps);
        let two = self.const_fixed(2.0, t);
        for _ in 0..RECIPROCAL_ITERATIONS {
            let xy = self.fixmul(x, y);
            let r = self.sub(two, xy);
            y = self.fixmul(y, r);
        }
        y
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
    /// **Range**: `c ≤ 256` (so `s ≤ 256`, within the reciprocal's range). Entries more than 16
    /// below their row maximum underflow to ≈ 0 (their true weight is < e^-16, fine for
    /// softmax). A row spread (max − min) above 256 is **not** supported: `exp_neg` is garbage
    /// below −256 (no clamping).
    ///
    /// **Error** (plaintext evaluator, f = 16, random rows with values in [−8, 8]): measured
    /// max |out − softmax| = 2.10·10^-3 (shapes up to 16×100 and 4×256), asserted ≤
    /// [`SOFTMAX_MAX_ABS_ERROR`] = 3·10^-3. Under MPC the truncations add up to one ulp each
    /// (see [`Builder::exp_neg`]).
    ///
    /// **Cost** (secret `x`, `L = ⌈log2 c⌉`): `11·L` (max_all) + 17 (exp_neg) + 57
    /// (reciprocal) + 2 (final fixmul) rounds, independent of `r` (153 for c = 128); [`crate::cost::program_cost`] gives the exact
    /// figure for a program.
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

    /// Fixed-point matrix product: [`Builder::matmul`] then the rescale of [`Builder::fixmul`].
    pub fn fixmatmul(&mut self, a: Value, b: Value) -> Value {
        let p = self.matmul(a, b);
        self.rescale_product(a, b, p)
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
