//! veil-circuits: **what** to compute, with no cryptography.
//!
//! A [`Program`] is a DAG of vectorised ops over typed, shaped values (public or secret; ring,
//! fixed point or bit; scalar, vector or matrix). This crate builds programs ([`Builder`]),
//! validates them ([`Program::validate`]), gives them a content-hash id, defines their meaning
//! with a plaintext evaluator ([`eval::evaluate`]) and predicts their cost under veil's
//! replicated three-party protocols ([`cost`]).
#![forbid(unsafe_code)]

pub mod builder;
pub mod conv;
pub mod cost;
pub mod error;
pub mod eval;
pub mod fixed;
pub mod fuzzing;
pub mod onnx;
pub mod program;
pub mod retrieval;
pub mod selection;
pub mod types;
pub mod validate;

pub use builder::{Builder, Value};
pub use conv::Conv2dGeometry;
pub use error::{EvalError, ValidationError};
pub use program::{
    InputDecl, Op, OutputDecl, Owner, PROGRAM_VERSION, Program, Recipient, SumAxis, ValueId,
};
pub use types::{ElemType, Fixed, FracBits, PartyId, Ring, Shape, ValueType, Visibility};
pub use validate::{ProgramId, ValidatedProgram};
