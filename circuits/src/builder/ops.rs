//! The core ops: inputs and constants, linear ops and products (with their fixed-point
//! rescaled forms), data movement, reveals and comparisons — one builder method per IR op.

use super::{Builder, Value, client};
use crate::error::ValidationError;
use crate::fixed;
use crate::program::{InputDecl, Op, Owner, SumAxis};
use crate::types::{ElemType, Fixed, Shape, ValueType, Visibility};

impl Builder {
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

    pub(super) fn client_input(
        &mut self,
        name: &str,
        vis: Visibility,
        elem: ElemType,
        shape: Shape,
    ) -> Value {
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

    pub(super) fn const_fixed_shaped(&mut self, xs: &[f64], t: Fixed, shape: Shape) -> Value {
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

    /// Ring32 → Ring: `a·2^32` ([`Op::Widen`]); local and exact on shares, 0 rounds.
    pub fn widen(&mut self, a: Value) -> Value {
        self.push(Op::Widen { a: a.id })
    }

    /// Ring → Ring32: `a mod 2^32` ([`Op::Narrow`]); local on shares, 0 rounds.
    pub fn narrow(&mut self, a: Value) -> Value {
        self.push(Op::Narrow { a: a.id })
    }

    /// Ring32 vector constant: each value reduced mod 2^32 (two's complement of an i32 for
    /// negative values).
    pub fn const_ring32_vector(&mut self, xs: &[i64]) -> Value {
        let values = xs
            .iter()
            .map(|&x| fixed::from_signed(x) & crate::types::RING32_MASK)
            .collect();
        self.constant(ElemType::Ring32, Shape::Vector(xs.len()), values)
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

    /// Rescales the product `p` of `a` and `b` back by the smaller operand's fractional bits
    /// when both are fixed point, so `Fixed(f)·Fixed(f) → Fixed(f)` and in general
    /// `Fixed(f)·Fixed(g) → Fixed(max(f, g))`; ring operands need no rescale.
    pub(super) fn rescale_product(&mut self, a: Value, b: Value, p: Value) -> Value {
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
}
