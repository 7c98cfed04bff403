//! Decoding an ONNX file into veil's view of it: a topologically ordered list of supported
//! nodes, their float weights, the one graph input and the graph outputs.

use super::OnnxError;
use super::proto;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Operators veil compiles (ONNX domain `ai.onnx`), as named in error messages.
pub const SUPPORTED_OPS: &str = "Gemm, MatMul, Conv, BatchNormalization (after a Conv), MaxPool, \
                                 AveragePool, GlobalAveragePool, Add, Relu, Sigmoid, Softmax, \
                                 Flatten, Reshape, ArgMax, Identity, Dropout, Constant";

/// A constant tensor of the model (an initializer or a `Constant` node), as reals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major values; empty in an architecture whose secret weights were stripped.
    pub data: Vec<f64>,
}

impl Tensor {
    /// Number of elements the dimensions describe (saturating at `usize::MAX`; decoded tensors
    /// have at most `validate::MAX_ELEMENTS`).
    pub fn len(&self) -> usize {
        self.dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One supported ONNX operator with its attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NodeKind {
    /// `Y = alpha·A'·B' + beta·C` with `A' = A` (transA = 0 only) and `B' = B` or `Bᵀ`.
    Gemm {
        /// Scale of the product.
        alpha: f64,
        /// Scale of the bias.
        beta: f64,
        /// B is stored as N×K.
        trans_b: bool,
    },
    /// 2-D matrix product.
    MatMul,
    /// 2-D convolution of an `[N, C, H, W]` activation by a constant `[M, C, kh, kw]` weight,
    /// optional bias `[M]`; group 1, dilation 1.
    Conv {
        /// `kernel_shape` when the node gives it (it must match the weight).
        kernel: Option<(usize, usize)>,
        /// Step between windows (equal on both axes).
        stride: usize,
        /// Zero padding on every side (equal on all sides).
        pad: usize,
    },
    /// Inference batch normalisation `γ·(x − μ)/√(σ² + ε) + β` per channel (inputs: x, γ,
    /// β, μ, σ² constants); supported right after a `Conv`, into which it is folded.
    BatchNormalization {
        /// ε.
        epsilon: f64,
    },
    /// Mean over each channel's whole image: `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalAveragePool,
    /// 2-D max pooling without padding (floor mode).
    MaxPool {
        /// Window (height, width).
        kernel: (usize, usize),
        /// Step between windows (equal on both axes).
        stride: usize,
    },
    /// 2-D average pooling; zero padding counts in the average (`count_include_pad = 1`).
    AveragePool {
        /// Window (height, width).
        kernel: (usize, usize),
        /// Step between windows (equal on both axes).
        stride: usize,
        /// Zero padding on every side (equal on all sides).
        pad: usize,
    },
    /// Elementwise sum (a row vector of constants broadcasts over the batch).
    Add,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^−x).
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
    /// Collapse every axis from 1 on.
    Flatten,
    /// New shape from a constant shape tensor that keeps the batch axis.
    Reshape,
    /// Index of the largest element of each row (ties to the lowest index).
    ArgMax {
        /// Keep the reduced axis (N×1 instead of N).
        keepdims: bool,
    },
    /// Pass-through (`Identity`, and `Dropout` at inference).
    Identity,
}

impl NodeKind {
    /// ONNX operator name.
    pub fn op_type(&self) -> &'static str {
        match self {
            NodeKind::Gemm { .. } => "Gemm",
            NodeKind::MatMul => "MatMul",
            NodeKind::Conv { .. } => "Conv",
            NodeKind::MaxPool { .. } => "MaxPool",
            NodeKind::AveragePool { .. } => "AveragePool",
            NodeKind::BatchNormalization { .. } => "BatchNormalization",
            NodeKind::GlobalAveragePool => "GlobalAveragePool",
            NodeKind::Add => "Add",
            NodeKind::Relu => "Relu",
            NodeKind::Sigmoid => "Sigmoid",
            NodeKind::Softmax => "Softmax",
            NodeKind::Flatten => "Flatten",
            NodeKind::Reshape => "Reshape",
            NodeKind::ArgMax { .. } => "ArgMax",
            NodeKind::Identity => "Identity",
        }
    }
}

/// One node: operator, input and output tensor names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name (or `<op>_<index>` when the file leaves it empty).
    pub name: String,
    /// Operator.
    pub kind: NodeKind,
    /// Input tensor names (activations or constants).
    pub inputs: Vec<String>,
    /// Output tensor name.
    pub output: String,
}

/// The graph input: the user's private tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphInput {
    /// Tensor name.
    pub name: String,
    /// Dimensions; `None` for a symbolic one (the batch axis usually is).
    pub dims: Vec<Option<usize>>,
}

/// A decoded ONNX model restricted to veil's operator subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnnxModel {
    /// The graph's name.
    pub name: String,
    /// The one non-constant graph input.
    pub input: GraphInput,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Initializers and `Constant` outputs by name.
    pub tensors: HashMap<String, Tensor>,
    /// Graph output names, in order.
    pub outputs: Vec<String>,
}

impl OnnxModel {
    /// Decodes an ONNX protobuf file. Every node must be in [`SUPPORTED_OPS`]; the graph must
    /// have exactly one input that is not an initializer.
    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
        let model = proto::ModelProto::decode(bytes)
            .map_err(|e| OnnxError::Decode(format!("not an ONNX model file: {e}")))?;
        for opset in &model.opset_import {
            let domain = opset.domain();
            if !(domain.is_empty() || domain == "ai.onnx") {
                return Err(OnnxError::Decode(format!(
                    "operator set domain '{domain}' is not supported (only ai.onnx)"
                )));
            }
        }
        let graph = model
            .graph
            .ok_or_else(|| OnnxError::Decode("the model has no graph".into()))?;
        let mut tensors = HashMap::new();
        for t in &graph.initializer {
            tensors.insert(t.name().to_string(), tensor(t)?);
        }
        let inputs: Vec<&proto::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !tensors.contains_key(i.name()))
            .collect();
        let input = match inputs.as_slice() {
            [one] => GraphInput {
                name: one.name().to_string(),
                dims: input_dims(one)?,
            },
            _ => {
                return Err(OnnxError::Decode(format!(
                    "the graph has {} non-constant inputs; veil supports exactly one",
                    inputs.len()
                )));
            }
        };
        let mut nodes = Vec::new();
        for (i, n) in graph.node.iter().enumerate() {
            let name = match n.name() {
                "" => format!("{}_{i}", n.op_type()),
                s => s.to_string(),
            };
            if !(n.domain().is_empty() || n.domain() == "ai.onnx") {
                return Err(OnnxError::Unsupported {
                    node: name,
                    op: format!("{}:{}", n.domain(), n.op_type()),
                });
            }
            if n.op_type() == "Constant" {
                let t = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| attr_error(&name, "Constant", "needs a tensor 'value'"))?;
                tensors.insert(output(n, &name)?, tensor(t)?);
                continue;
            }
            let kind = node_kind(n, &name)?;
            nodes.push(Node {
                output: output(n, &name)?,
                name,
                kind,
                inputs: n.input.iter().filter(|s| !s.is_empty()).cloned().collect(),
            });
        }
        let outputs = graph.output.iter().map(|o| o.name().to_string()).collect();
        Ok(OnnxModel {
            name: graph.name().to_string(),
            input,
            nodes,
            tensors,
            outputs,
        })
    }

    /// Reads and decodes an ONNX file.
    pub fn from_file(path: &std::path::Path) -> Result<OnnxModel, OnnxError> {
        let bytes = std::fs::read(path)
            .map_err(|e| OnnxError::Decode(format!("cannot read {}: {e}", path.display())))?;
        OnnxModel::from_bytes(&bytes)
    }

    /// A dense ReLU network `sizes[0] → sizes[1] → … → sizes[last]` (Gemm, Relu between layers,
    /// no activation after the last) with output `logits`; every weight and bias of a layer
    /// comes from `param(fan_in)`, in order. For benchmarks and tests that need a model of a
    /// given shape.
    pub fn mlp(sizes: &[usize], mut param: impl FnMut(usize) -> f64) -> OnnxModel {
        let mut nodes = Vec::new();
        let mut tensors = HashMap::new();
        let mut prev = "x".to_string();
        let layers = sizes.len().saturating_sub(1);
        for l in 0..layers {
            let (k, m) = (sizes[l], sizes[l + 1]);
            let (w, b) = (format!("fc{}.weight", l + 1), format!("fc{}.bias", l + 1));
            let data = (0..k * m).map(|_| param(k)).collect();
            tensors.insert(
                w.clone(),
                Tensor {
                    dims: vec![k, m],
                    data,
                },
            );
            let data = (0..m).map(|_| param(k)).collect();
            tensors.insert(
                b.clone(),
                Tensor {
                    dims: vec![m],
                    data,
                },
            );
            let last = l + 1 == layers;
            let out = if last {
                "logits".to_string()
            } else {
                format!("h{}", l + 1)
            };
            nodes.push(Node {
                name: format!("fc{}", l + 1),
                kind: NodeKind::Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_b: false,
                },
                inputs: vec![prev, w, b],
                output: out.clone(),
            });
            prev = out;
            if !last {
                let out = format!("a{}", l + 1);
                nodes.push(Node {
                    name: format!("relu{}", l + 1),
                    kind: NodeKind::Relu,
                    inputs: vec![prev],
                    output: out.clone(),
                });
                prev = out;
            }
        }
        OnnxModel {
            name: "mlp".into(),
            input: GraphInput {
                name: "x".into(),
                dims: vec![None, sizes.first().copied()],
            },
            nodes,
            tensors,
            outputs: vec![prev],
        }
    }

    /// The model without its weight values (shapes stay): what a user needs to build the
    /// inference program when the owner keeps the weights secret. `Reshape` shape tensors
    /// are structure, not weights, and are kept.
    pub fn architecture(&self) -> OnnxModel {
        let shape_tensors: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Reshape)
            .filter_map(|n| n.inputs.get(1).map(String::as_str))
            .collect();
        let mut arch = self.clone();
        for (name, t) in arch.tensors.iter_mut() {
            if !shape_tensors.contains(&name.as_str()) {
                t.data.clear();
            }
        }
        arch
    }
}

fn attr<'a>(n: &'a proto::NodeProto, name: &str) -> Option<&'a proto::AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

fn attr_error(node: &str, op: &str, what: &str) -> OnnxError {
    OnnxError::Attribute {
        node: node.to_string(),
        op: op.to_string(),
        what: what.to_string(),
    }
}

fn output(n: &proto::NodeProto, name: &str) -> Result<String, OnnxError> {
    match n.output.first() {
        Some(o) if !o.is_empty() => Ok(o.clone()),
        _ => Err(attr_error(name, n.op_type(), "has no output")),
    }
}

/// Maps an ONNX node to a [`NodeKind`], refusing attributes veil does not implement.
fn node_kind(n: &proto::NodeProto, name: &str) -> Result<NodeKind, OnnxError> {
    let op = n.op_type();
    let int = |key: &str, default: i64| attr(n, key).map_or(default, |a| a.i());
    let float = |key: &str, default: f64| attr(n, key).map_or(default, |a| f64::from(a.f()));
    let err = |what: &str| attr_error(name, op, what);
    let kind = match op {
        "Gemm" => {
            if int("transA", 0) != 0 {
                return Err(err("transA = 1 is not supported (the batch must be rows)"));
            }
            NodeKind::Gemm {
                alpha: float("alpha", 1.0),
                beta: float("beta", 1.0),
                trans_b: int("transB", 0) != 0,
            }
        }
        "MatMul" => NodeKind::MatMul,
        "Conv" => {
            if int("group", 1) != 1 {
                return Err(err("only group = 1 (no grouped or depthwise convolution)"));
            }
            let w = window(n, name)?;
            NodeKind::Conv {
                kernel: w.kernel,
                stride: w.stride,
                pad: w.pad,
            }
        }
        "MaxPool" | "AveragePool" => {
            if int("ceil_mode", 0) != 0 {
                return Err(err("only ceil_mode = 0"));
            }
            let w = window(n, name)?;
            let kernel = w.kernel.ok_or_else(|| err("kernel_shape is required"))?;
            if op == "MaxPool" {
                if w.pad != 0 {
                    return Err(err("padded max pooling is not supported"));
                }
                if int("storage_order", 0) != 0 || n.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(err("the indices output is not supported"));
                }
                NodeKind::MaxPool {
                    kernel,
                    stride: w.stride,
                }
            } else {
                if w.pad != 0 && int("count_include_pad", 0) == 0 {
                    return Err(err(
                        "padded average pooling needs count_include_pad = 1 (zeros count)",
                    ));
                }
                NodeKind::AveragePool {
                    kernel,
                    stride: w.stride,
                    pad: w.pad,
                }
            }
        }
        "BatchNormalization" => {
            if int("training_mode", 0) != 0 {
                return Err(err("only inference (training_mode = 0)"));
            }
            if n.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(err(
                    "the running mean and variance outputs are not supported",
                ));
            }
            NodeKind::BatchNormalization {
                epsilon: float("epsilon", 1e-5),
            }
        }
        "GlobalAveragePool" => NodeKind::GlobalAveragePool,
        "Add" => NodeKind::Add,
        "Relu" => NodeKind::Relu,
        "Sigmoid" => NodeKind::Sigmoid,
        "Softmax" => {
            let axis = int("axis", -1);
            if axis != -1 && axis != 1 {
                return Err(err("only softmax over the last axis (axis = -1 or 1)"));
            }
            NodeKind::Softmax
        }
        "Flatten" => {
            if int("axis", 1) != 1 {
                return Err(err("only axis = 1 (keep the batch axis)"));
            }
            NodeKind::Flatten
        }
        "Reshape" => NodeKind::Reshape,
        "ArgMax" => {
            let axis = int("axis", 0);
            if axis != -1 && axis != 1 {
                return Err(err("only ArgMax over the class axis (axis = 1 or -1)"));
            }
            if int("select_last_index", 0) != 0 {
                return Err(err("select_last_index = 1 is not supported"));
            }
            NodeKind::ArgMax {
                keepdims: int("keepdims", 1) != 0,
            }
        }
        "Identity" => NodeKind::Identity,
        "Dropout" => {
            if n.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(err("the mask output is not supported"));
            }
            NodeKind::Identity
        }
        _ => {
            return Err(OnnxError::Unsupported {
                node: name.to_string(),
                op: op.to_string(),
            });
        }
    };
    Ok(kind)
}

/// Window attributes of a 2-D convolution or pooling node.
struct Window {
    kernel: Option<(usize, usize)>,
    stride: usize,
    pad: usize,
}

/// Reads `kernel_shape`, `strides`, `pads`, `dilations` and `auto_pad`, refusing what the
/// lowering does not implement: unequal strides or pads, dilation, automatic padding.
fn window(n: &proto::NodeProto, name: &str) -> Result<Window, OnnxError> {
    let op = n.op_type();
    let err = |what: String| attr_error(name, op, &what);
    let ints = |key: &str| attr(n, key).map(|a| a.ints.clone());
    let positive = |key: &str, v: &[i64]| -> Result<(), OnnxError> {
        if v.iter().any(|&x| x < 1) {
            return Err(err(format!("{key} must be positive, got {v:?}")));
        }
        Ok(())
    };
    if let Some(a) = attr(n, "auto_pad") {
        let mode = String::from_utf8_lossy(a.s()).to_string();
        if mode != "NOTSET" && mode != "VALID" {
            return Err(err(format!(
                "auto_pad = {mode} is not supported (give explicit pads)"
            )));
        }
    }
    let kernel = match ints("kernel_shape") {
        None => None,
        Some(k) => {
            positive("kernel_shape", &k)?;
            match k.as_slice() {
                [h, w] => Some((*h as usize, *w as usize)),
                _ => return Err(err(format!("kernel_shape {k:?} is not 2-D"))),
            }
        }
    };
    let stride = match ints("strides").as_deref() {
        None => 1,
        Some([a, b]) if a == b && *a >= 1 => *a as usize,
        Some(v) => return Err(err(format!("strides {v:?}: only equal positive strides"))),
    };
    let pad = match ints("pads").as_deref() {
        None => 0,
        Some([a, b, c, d]) if a == b && b == c && c == d && *a >= 0 => *a as usize,
        Some(v) => return Err(err(format!("pads {v:?}: only equal padding on all sides"))),
    };
    if let Some(d) = ints("dilations")
        && d.iter().any(|&x| x != 1)
    {
        return Err(err(format!("dilations {d:?}: only 1")));
    }
    Ok(Window {
        kernel,
        stride,
        pad,
    })
}

/// The graph input's dimensions (`None` where symbolic or unknown).
fn input_dims(v: &proto::ValueInfoProto) -> Result<Vec<Option<usize>>, OnnxError> {
    use proto::tensor_shape_proto::dimension::Value as Dim;
    use proto::type_proto::Value;
    let bad = |what: &str| OnnxError::Decode(format!("graph input '{}': {what}", v.name()));
    let Some(Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(bad("not a tensor"));
    };
    if t.elem_type() != proto::tensor_proto::DataType::Float as i32 {
        return Err(bad("element type must be float32"));
    }
    let shape = t.shape.as_ref().ok_or_else(|| bad("no shape"))?;
    Ok(shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(x)) if x > 0 => Some(x as usize),
            _ => None,
        })
        .collect())
}

/// A constant tensor as reals: float32/float64/int64/int32 data, inline or raw little-endian.
fn tensor(t: &proto::TensorProto) -> Result<Tensor, OnnxError> {
    use proto::tensor_proto::{DataLocation, DataType};
    let bad = |what: String| OnnxError::Tensor {
        name: t.name().to_string(),
        what,
    };
    if t.data_location() == DataLocation::External {
        return Err(bad("external data files are not supported".into()));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let raw = t.raw_data.as_deref().unwrap_or_default();
    let from_raw = |width: usize, f: &dyn Fn(&[u8]) -> f64| -> Vec<f64> {
        raw.chunks_exact(width).map(f).collect()
    };
    let dt = DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined);
    let data: Vec<f64> = match dt {
        DataType::Float if !raw.is_empty() => from_raw(4, &|c| {
            f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes")))
        }),
        DataType::Float => t.float_data.iter().map(|&x| f64::from(x)).collect(),
        DataType::Double if !raw.is_empty() => {
            from_raw(8, &|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        }
        DataType::Double => t.double_data.clone(),
        DataType::Int64 if !raw.is_empty() => from_raw(8, &|c| {
            i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64
        }),
        DataType::Int64 => t.int64_data.iter().map(|&x| x as f64).collect(),
        DataType::Int32 if !raw.is_empty() => from_raw(4, &|c| {
            f64::from(i32::from_le_bytes(c.try_into().expect("4 bytes")))
        }),
        DataType::Int32 => t.int32_data.iter().map(|&x| f64::from(x)).collect(),
        other => {
            return Err(bad(format!(
                "data type {} is not supported (float, double, int32, int64)",
                other.as_str_name()
            )));
        }
    };
    let t = Tensor { dims, data };
    if t.len() > crate::validate::MAX_ELEMENTS {
        return Err(bad(format!(
            "dimensions {:?} describe more than 2^32 elements",
            t.dims
        )));
    }
    if t.data.len() != t.len() {
        return Err(bad(format!(
            "{} values for dimensions {:?}",
            t.data.len(),
            t.dims
        )));
    }
    Ok(t)
}
