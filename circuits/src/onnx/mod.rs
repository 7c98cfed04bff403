//! ONNX import: decode a model file (with `prost` types generated from the official
//! `onnx.proto`) and compile it into a veil program for private inference.
//!
//! # Supported subset (opset ≤ 21, domain `ai.onnx`)
//! | operator | supported form |
//! |---|---|
//! | `Gemm` | `transA = 0`; B a constant 2-D weight (`transB` either); C a constant of `[M]`, `[1, M]` or one element; any `alpha`, `beta` |
//! | `MatMul` | activation `[N, K]` × constant `[K, M]` |
//! | `Conv` | `[N, C, H, W]` × constant `[M, C, kh, kw]`, optional bias `[M]`; group 1, no dilation, equal strides and pads |
//! | `MaxPool` | `kernel_shape` given, equal strides, no padding, floor mode |
//! | `AveragePool` | `kernel_shape` given, equal strides and pads (`count_include_pad = 1` when padded), floor mode |
//! | `GlobalAveragePool` | `[N, C, H, W]` |
//! | `BatchNormalization` | inference, right after a `Conv` it alone reads (folded into its weights and bias) |
//! | `Add` | two activations of equal dims, or activation `[N, M]` + constant `[M]` / `[1, M]` / scalar |
//! | `Relu`, `Sigmoid` | any activation |
//! | `Softmax` | last axis of a 2-D activation, at most 256 columns |
//! | `Flatten` | `axis = 1` |
//! | `Reshape` | constant shape that keeps the batch axis (`0` and `-1` allowed) |
//! | `ArgMax` | class axis (`axis = 1` or `-1`) of a 2-D activation, `select_last_index = 0` |
//! | `Identity`, `Dropout` (inference), `Constant` | pass-through / constants |
//!
//! A convolution's or pooling's output is held channels-last (see [`crate::conv`]); the next
//! linear layer's weight rows are permuted to match, and order-dependent uses are refused.
//!
//! Anything else (Gather, LayerNormalization, …) is refused with
//! [`OnnxError::Unsupported`] naming the node and the operator. The graph has exactly one
//! non-constant input `[batch, features…]` of float32; every other input is an initializer.
//!
//! # Compilation
//! See [`compile()`](compile::compile): activations are secret fixed-point matrices; weights are
//! secret inputs of the model owner or public constants ([`WeightMode`]); outputs go to the user
//! only. An `ArgMax` whose input is also a graph output is computed by the user from the logits
//! it receives (no rounds, nothing more revealed). [`plain::run`] is the plaintext reference.

mod compile;
mod model;
pub mod plain;
pub mod proto;

pub use compile::{
    CompileOptions, CompiledModel, DEFAULT_FRAC_BITS, INPUT_CLAMP_ROUNDS, Layer, ModelOutput,
    OutputKind, Prediction, TRUNCATION_SECURITY_BITS, WeightInput, WeightMode, argmax_rows,
    compile,
};
pub use model::{GraphInput, Node, NodeKind, OnnxModel, SUPPORTED_OPS, Tensor};

/// Why a model could not be imported, compiled or decoded. Messages name nodes, tensors and
/// shapes, never an input value.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not an ONNX model veil can read.
    #[error("{0}")]
    Decode(String),
    /// An operator outside the supported subset.
    #[error("node '{node}': unsupported ONNX operator '{op}' (supported: {SUPPORTED_OPS})")]
    Unsupported {
        /// Node name.
        node: String,
        /// Operator (with its domain when not ai.onnx).
        op: String,
    },
    /// A supported operator with an unsupported attribute.
    #[error("node '{node}' ({op}): {what}")]
    Attribute {
        /// Node name.
        node: String,
        /// Operator.
        op: String,
        /// What is wrong.
        what: String,
    },
    /// A constant tensor veil cannot read.
    #[error("tensor '{name}': {what}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Operand shapes that do not fit the operator.
    #[error("node '{node}' ({op}): {what}")]
    Shape {
        /// Node name.
        node: String,
        /// Operator.
        op: String,
        /// What is wrong.
        what: String,
    },
    /// The user's input does not fit the model.
    #[error("input: {0}")]
    InputShape(String),
    /// The weights are too large for the fixed-point range.
    #[error(
        "node '{node}': weights too large for the fixed-point range: worst-case |activation| \
         {bound:.3e} with {frac_bits} fractional bits exceeds {max:.3e} (lower frac_bits, \
         lower the input bound or scale the weights)"
    )]
    Range {
        /// Node name.
        node: String,
        /// Worst-case bound of its output (or largest weight that does not encode).
        bound: f64,
        /// Fractional bits.
        frac_bits: u32,
        /// Largest allowed bound.
        max: f64,
    },
    /// The compiled program is invalid (a size limit, for example).
    #[error("circuit: {0}")]
    Circuit(#[from] crate::ValidationError),
    /// The cluster's outputs do not decode.
    #[error("result: {0}")]
    Answer(String),
}
