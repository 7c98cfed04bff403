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

use crate::error::ValidationError;
use crate::fixed;
use crate::program::{
    InputDecl, Op, OutputDecl, Owner, PROGRAM_VERSION, Program, Recipient, SumAxis, ValueId,
};
use crate::types::{ElemType, Fixed, Shape, ValueType, Visibility};
use crate::validate::{ValidatedProgram, infer_op};

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
