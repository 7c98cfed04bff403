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
//! [`Builder::onehot`], [`Builder::gather_row`] and [`Builder::best_k_with_indices`]
//! (oblivious indexing and selection), the fixed-point functions [`Builder::exp_neg`],
//! [`Builder::reciprocal`], [`Builder::div`], [`Builder::inv_sqrt`], [`Builder::sigmoid`] and
//! [`Builder::softmax_rows`], and the layers [`Builder::conv2d`], [`Builder::max_pool2d`] and
//! [`Builder::avg_pool2d`]. They need no support beyond the ops they emit. A lowering given bad
//! arguments records its error like any op and returns a placeholder (a public ring scalar
//! constant).
//!
//! The methods live by family: `ops.rs` (one method per IR op: inputs, constants, linear ops,
//! products and their fixed-point forms, data movement, comparisons), `selection.rs` (one-hot,
//! gather, the best k), `approx.rs` (fixed-point approximations and their error constants),
//! `nn.rs` (convolution and pooling layers).

mod approx;
mod nn;
mod ops;
mod selection;

pub use approx::{
    EXP_NEG_MAX_ABS_ERROR, EXP_NEG_SQUARINGS, INV_SQRT_ITERATIONS, INV_SQRT_MAX_ABS_ERROR,
    INV_SQRT_MAX_REL_ERROR, NORMALISE_MAX_FRAC_BITS, RECIPROCAL_ITERATIONS,
    RECIPROCAL_MAX_ABS_ERROR, RECIPROCAL_MAX_REL_ERROR, SIGMOID_MAX_ABS_ERROR,
    SOFTMAX_MAX_ABS_ERROR, SOFTMAX_MAX_COLS, normalise_lanes,
};

use crate::error::ValidationError;
use crate::program::{
    InputDecl, Op, OutputDecl, Owner, PROGRAM_VERSION, Program, Recipient, ValueId,
};
use crate::types::{ElemType, Shape, ValueType, Visibility};
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

    /// Records a lowering's argument error (at the index of the next op) and emits a public
    /// ring scalar constant 0 to stand for its results: a placeholder.
    fn fail(&mut self, error: impl FnOnce(usize) -> ValidationError) -> Value {
        let op = self.ops.len();
        self.first_error.get_or_insert(error(op));
        self.const_ring(0)
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
