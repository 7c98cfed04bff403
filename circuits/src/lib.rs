//! veil-circuits: **what** to compute, with no cryptography.
//!
//! A [`Program`] is a DAG of vectorised ops over typed, shaped values (public or secret; ring,
//! fixed point or bit; scalar, vector or matrix). This crate builds programs ([`Builder`]),
//! validates them ([`Program::validate`]), gives them a content-hash id, defines their meaning
//! with a plaintext evaluator ([`eval::evaluate`]) and predicts their cost under veil's
//! replicated three-party protocols ([`cost`]).
//!
//! ```
//! use std::collections::HashMap;
//! use veil_circuits::{Builder, Ring, cost, eval};
//!
//! // The two largest of four secret scores, with their indices, for a client.
//! let mut b = Builder::new();
//! let scores = b.secret_vector("scores", 4, Ring);
//! let (best, at) = b.best_k_with_indices(scores, 2);
//! b.output_to_client("best", best);
//! b.output_to_client("at", at);
//! let program = b.finish()?; // validated: types, shapes, names
//!
//! // What it means: the plaintext evaluator.
//! let inputs = HashMap::from([("scores".to_string(), vec![3, 9, 1, 7])]);
//! let out = eval::evaluate(&program, &inputs)?;
//! assert_eq!((out["best"].as_slice(), out["at"].as_slice()), (&[9, 7][..], &[1, 3][..]));
//!
//! // What it costs under MPC: rounds and bytes per party.
//! let c = cost::program_cost(&program);
//! assert!(c.rounds > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
pub use types::{
    ElemType, Fixed, FracBits, PartyId, RING32_MASK, Ring, Ring32, Shape, ValueType, Visibility,
};
pub use validate::{ProgramId, ValidatedProgram};
