//! Compiling an [`OnnxModel`] into a veil [`Program`](crate::Program) for a fixed batch size.
//!
//! Activations are secret fixed-point matrices `batch × features` with `f` fractional bits.
//! A linear layer is one [`Op::MatMulRescale`](crate::Op::MatMulRescale) by the weights
//! (secret inputs of the model owner, or public constants): the product at `2f` fractional
//! bits and its truncation back to `f` share **one** round, whatever the layer's size; the
//! bias (encoded at `f`) is then added locally, broadcast over the batch by a local product
//! with a public column of ones.
//!
//! **Range check.** The compiler propagates a worst-case bound `B` on |activation| from the
//! declared input bound (`|Σ_k w_kj·x_k + b_j| ≤ Σ_k |w_kj|·B_in + |b_j|`; Relu keeps it,
//! Sigmoid and Softmax give 1). A product held at `2f` fractional bits is below `B·2^(2f)`, so
//! its probabilistic truncation fails with probability ≤ `2^(log2(B) + 2f + 1 − 64)` per element
//! (see [`crate::fixed`]). A layer whose bound puts this above 2^−[`TRUNCATION_SECURITY_BITS`] is
//! refused with [`OnnxError::Range`] naming the layer: the weights are too large for the
//! fixed-point range (lower `frac_bits` or scale the model).

use super::OnnxError;
use super::model::{NodeKind, OnnxModel, Tensor};
use crate::fixed;
use crate::{
    Builder, Conv2dGeometry, ElemType, Fixed, FracBits, Owner, Recipient, Shape, ValidatedProgram,
    Value, ValueType, Visibility,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;

/// Default fractional bits of activations and weights.
pub const DEFAULT_FRAC_BITS: u32 = 12;

/// A truncation may fail with probability at most 2^−this per element (worst case).
pub const TRUNCATION_SECURITY_BITS: u32 = 24;

/// How the model owner provides the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightMode {
    /// Secret-shared program inputs owned by the model owner: no node sees a weight.
    Secret,
    /// Public constants inside the program: the nodes (and the user) see the weights.
    Public,
}

/// What to compile for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompileOptions {
    /// Rows of the input (samples per request).
    pub batch: usize,
    /// Fractional bits of activations and weights.
    pub frac_bits: u32,
    /// Secret or public weights.
    pub weights: WeightMode,
    /// Client name of the model owner (owner of secret weight inputs).
    pub owner: String,
    /// Client name of the user (owner of the input, recipient of the outputs).
    pub user: String,
    /// Largest |input element| the user may send; the range check starts from it.
    pub input_bound: f64,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            batch: 1,
            frac_bits: DEFAULT_FRAC_BITS,
            weights: WeightMode::Secret,
            owner: "owner".into(),
            user: "user".into(),
            input_bound: 1.0,
        }
    }
}

/// A secret weight input of the program and its encoded words (empty when compiled from an
/// architecture without weights).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightInput {
    /// Program input name (`<node>.weight` or `<node>.bias`).
    pub input: String,
    /// Fixed-point words, row-major, ready to secret-share.
    pub words: Vec<u64>,
}

/// How to read one program output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputKind {
    /// Fixed-point reals with this many fractional bits.
    Real {
        /// Fractional bits.
        frac_bits: u32,
    },
    /// Class indices computed on shares (ring words).
    Class,
    /// Class indices the user computes from the named real output it also receives: an
    /// `ArgMax` of a graph output costs no round and reveals nothing beyond that output.
    ClassOf {
        /// The real output (logits) to take the row-wise argmax of.
        logits: String,
    },
}

/// One output of the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOutput {
    /// Graph output name.
    pub name: String,
    /// How to decode it.
    pub kind: OutputKind,
    /// Values per sample.
    pub cols: usize,
}

/// The program ops one ONNX node compiled to, for per-layer reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Node name.
    pub name: String,
    /// ONNX operator.
    pub op: String,
    /// Indices of the program ops it produced.
    pub ops: Range<usize>,
}

/// A model compiled for one batch size.
#[derive(Clone, Debug)]
pub struct CompiledModel {
    /// The inference program.
    pub program: ValidatedProgram,
    /// Program input name of the user's data.
    pub input: String,
    /// Samples per request.
    pub batch: usize,
    /// Features per sample.
    pub features: usize,
    /// Fractional bits.
    pub frac_bits: u32,
    /// Largest |input element| accepted.
    pub input_bound: f64,
    /// Secret weight inputs (empty with public weights).
    pub weights: Vec<WeightInput>,
    /// Outputs in graph order.
    pub outputs: Vec<ModelOutput>,
    /// Per-node op ranges.
    pub layers: Vec<Layer>,
}

/// A decoded inference result: per output, `batch` rows of `cols` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// (name, row-major values) in graph output order; classes as whole numbers.
    pub outputs: Vec<(String, Vec<f64>)>,
}

impl Prediction {
    /// The named output.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Row-wise argmax (ties to the lowest index, as ONNX and [`crate::Op::ArgMax`]).
pub fn argmax_rows(values: &[f64], cols: usize) -> Vec<f64> {
    values
        .chunks(cols.max(1))
        .map(|row| {
            let mut best = 0;
            for (j, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = j;
                }
            }
            best as f64
        })
        .collect()
}

impl CompiledModel {
    /// Encodes `batch × features` reals as the user's input words, refusing a wrong length or
    /// an element above the input bound (the range check depends on it).
    pub fn encode_input(&self, x: &[f64]) -> Result<Vec<u64>, OnnxError> {
        if x.len() != self.batch * self.features {
            return Err(OnnxError::InputShape(format!(
                "{} values; the program expects {} × {} = {}",
                x.len(),
                self.batch,
                self.features,
                self.batch * self.features
            )));
        }
        if let Some(i) = x
            .iter()
            .position(|v| !v.is_finite() || v.abs() > self.input_bound)
        {
            return Err(OnnxError::InputShape(format!(
                "element {i} is not finite or exceeds the input bound {}",
                self.input_bound
            )));
        }
        x.iter()
            .map(|&v| fixed::encode(v, FracBits(self.frac_bits)))
            .collect::<Result<_, _>>()
            .map_err(|e| OnnxError::InputShape(e.to_string()))
    }

    /// Decodes reconstructed output words into reals and class indices.
    pub fn decode(&self, raw: &HashMap<String, Vec<u64>>) -> Result<Prediction, OnnxError> {
        let mut outputs: Vec<(String, Vec<f64>)> = Vec::new();
        for o in &self.outputs {
            let values = match &o.kind {
                OutputKind::Real { frac_bits } => {
                    fixed::decode_slice(self.words(raw, &o.name, o.cols)?, FracBits(*frac_bits))
                }
                OutputKind::Class => self
                    .words(raw, &o.name, o.cols)?
                    .iter()
                    .map(|&w| w as f64)
                    .collect(),
                OutputKind::ClassOf { logits } => {
                    let src = self
                        .outputs
                        .iter()
                        .find(|x| &x.name == logits)
                        .ok_or_else(|| OnnxError::Answer(format!("no output '{logits}'")))?;
                    let OutputKind::Real { frac_bits } = src.kind else {
                        return Err(OnnxError::Answer(format!("'{logits}' is not real")));
                    };
                    let words = self.words(raw, logits, src.cols)?;
                    argmax_rows(&fixed::decode_slice(words, FracBits(frac_bits)), src.cols)
                }
            };
            outputs.push((o.name.clone(), values));
        }
        Ok(Prediction { outputs })
    }

    fn words<'a>(
        &self,
        raw: &'a HashMap<String, Vec<u64>>,
        name: &str,
        cols: usize,
    ) -> Result<&'a [u64], OnnxError> {
        match raw.get(name) {
            Some(w) if w.len() == self.batch * cols => Ok(w),
            Some(w) => Err(OnnxError::Answer(format!(
                "output '{name}' has {} words, expected {}",
                w.len(),
                self.batch * cols
            ))),
            None => Err(OnnxError::Answer(format!("output '{name}' is missing"))),
        }
    }
}

/// An activation while compiling: its value, ONNX dims and worst-case bound (`None` when the
/// weights are not known).
#[derive(Clone)]
struct Act {
    v: Value,
    dims: Vec<usize>,
    bound: Option<f64>,
    class: bool,
    /// `Some([c, h, w])` when each row holds `c×h×w` images channels-last, `(y, x, c)` — a
    /// convolution's or pooling's output, while ONNX orders the same features `(c, y, x)`. A
    /// later linear layer permutes its weight rows to match; an order-dependent use is refused.
    channels_last: Option<[usize; 3]>,
}

impl Act {
    fn cols(&self) -> usize {
        self.dims[1..].iter().product()
    }
}

struct Compiler<'a> {
    model: &'a OnnxModel,
    opts: &'a CompileOptions,
    b: Builder,
    acts: HashMap<String, Act>,
    weights: Vec<WeightInput>,
    class_of: HashMap<String, String>,
    /// MaxPool nodes that apply the ReLU feeding them after pooling (see [`Compiler::node`]).
    relu_after_pool: std::collections::HashSet<usize>,
    /// BatchNormalization nodes folded into the Conv before them ([`Compiler::conv`]).
    folded_norm: std::collections::HashSet<usize>,
}

/// Compiles `model` for `opts.batch` samples. With a model from
/// [`OnnxModel::architecture`] (no weight values) the program is the same but `weights` carry no
/// words and the range check is skipped (the owner ran it when storing the model).
pub fn compile(model: &OnnxModel, opts: &CompileOptions) -> Result<CompiledModel, OnnxError> {
    if opts.batch == 0 {
        return Err(OnnxError::InputShape("batch must be at least 1".into()));
    }
    if opts.frac_bits == 0 || opts.frac_bits > 24 {
        return Err(OnnxError::InputShape(format!(
            "frac_bits = {}: must be in 1..=24 (products carry 2·frac_bits)",
            opts.frac_bits
        )));
    }
    if !(opts.input_bound.is_finite() && opts.input_bound > 0.0) {
        return Err(OnnxError::InputShape(
            "input_bound must be positive and finite".into(),
        ));
    }
    let dims = &model.input.dims;
    if dims.len() < 2 || dims[1..].iter().any(Option::is_none) {
        return Err(OnnxError::InputShape(format!(
            "graph input '{}' must be [batch, features…] with known feature dims, got {:?}",
            model.input.name, dims
        )));
    }
    let mut dims: Vec<usize> = dims[1..].iter().map(|d| d.unwrap_or(0)).collect();
    dims.insert(0, opts.batch);
    let features: usize = dims[1..].iter().product();
    let mut c = Compiler {
        model,
        opts,
        b: Builder::new(),
        acts: HashMap::new(),
        weights: Vec::new(),
        class_of: HashMap::new(),
        relu_after_pool: Default::default(),
        folded_norm: Default::default(),
    };
    let x = c.b.input(
        &model.input.name,
        Owner::Client(opts.user.clone()),
        ValueType {
            vis: Visibility::Secret,
            elem: ElemType::Fixed(FracBits(opts.frac_bits)),
            shape: Shape::Matrix(opts.batch, features),
        },
    );
    let clamp_start = c.b.op_count();
    let x = clamp_input(&mut c.b, x, opts);
    let mut layers = vec![Layer {
        name: "input".into(),
        op: "Clamp".into(),
        ops: clamp_start..c.b.op_count(),
    }];
    let has_weights = model.tensors.values().all(|t| t.data.len() == t.len());
    c.acts.insert(
        model.input.name.clone(),
        Act {
            v: x,
            dims,
            bound: has_weights.then_some(opts.input_bound),
            class: false,
            channels_last: None,
        },
    );
    for (i, node) in model.nodes.iter().enumerate() {
        let start = c.b.op_count();
        let act = c.node(i)?;
        layers.push(Layer {
            name: node.name.clone(),
            op: node.kind.op_type().to_string(),
            ops: start..c.b.op_count(),
        });
        c.acts.insert(node.output.clone(), act);
    }
    let mut outputs = Vec::new();
    for name in &model.outputs {
        if let Some(logits) = c.class_of.get(name) {
            outputs.push(ModelOutput {
                name: name.clone(),
                kind: OutputKind::ClassOf {
                    logits: logits.clone(),
                },
                cols: 1,
            });
            continue;
        }
        let act = c.acts.get(name).ok_or_else(|| {
            OnnxError::Decode(format!("graph output '{name}' is not computed by any node"))
        })?;
        if act.channels_last.is_some() {
            return Err(OnnxError::Decode(format!(
                "graph output '{name}' is a convolution's or pooling's output (held \
                 channels-last); end the model with a Gemm or MatMul"
            )));
        }
        let kind = if act.class {
            OutputKind::Class
        } else {
            OutputKind::Real {
                frac_bits: opts.frac_bits,
            }
        };
        let cols = if act.class { 1 } else { act.cols() };
        c.b.output(name, act.v, Recipient::Client(opts.user.clone()));
        outputs.push(ModelOutput {
            name: name.clone(),
            kind,
            cols,
        });
    }
    let program = c.b.finish()?;
    Ok(CompiledModel {
        program,
        input: model.input.name.clone(),
        batch: opts.batch,
        features,
        frac_bits: opts.frac_bits,
        input_bound: opts.input_bound,
        weights: c.weights,
        outputs,
        layers,
    })
}

/// Rounds of the input clamp every compiled model starts with (its own layer, `Clamp`).
pub const INPUT_CLAMP_ROUNDS: u32 = crate::cost::LTZ_ROUNDS + 2;

/// Clamps every input element to `[−input_bound, input_bound]` on shares, so the nodes — not
/// only an honest user's encoder — enforce the range the fixed-point analysis starts from.
///
/// One comparison layer computes `hi = x > B` and `lo = x < −B`; then (one round)
/// `keep = (1 − hi)(1 − lo) = 1 − hi − lo + hi·lo`, and (one round)
/// `x' = keep·x + B·(hi − lo)`. The comparisons go through a wrapping difference, exact while it
/// stays below 2^63: for every `x` with `|x| ≤ 2^63 − B` exactly one case holds and `x'` is `x`
/// clamped. Within `B` of the ring's ends (`|x| > 2^63 − B`, reachable only by a client that
/// bypasses the encoder) both comparisons are 1 and `x' = 0` — in range too. Cost: a
/// comparison layer on 2n elements plus 2 rounds.
fn clamp_input(b: &mut Builder, x: Value, opts: &CompileOptions) -> Value {
    let t = Fixed::with_frac_bits(opts.frac_bits);
    let bound = b.const_fixed(opts.input_bound, t);
    let neg_bound = b.const_fixed(-opts.input_bound, t);
    let hi = b.gt(x, bound);
    let lo = b.lt(x, neg_bound);
    let both = b.mul(hi, lo);
    let either = b.add(hi, lo);
    let out = b.sub(either, both);
    let one = b.const_ring(1);
    let keep = b.sub(one, out);
    let kept = b.mul(keep, x);
    let side = b.sub(hi, lo);
    let edge = b.mul(side, bound);
    b.add(kept, edge)
}

impl Compiler<'_> {
    fn shape_error(&self, node: usize, what: String) -> OnnxError {
        let n = &self.model.nodes[node];
        OnnxError::Shape {
            node: n.name.clone(),
            op: n.kind.op_type().to_string(),
            what,
        }
    }

    /// The activation named by input `k` of node `i`.
    fn act(&self, i: usize, k: usize) -> Result<Act, OnnxError> {
        let n = &self.model.nodes[i];
        let name = n
            .inputs
            .get(k)
            .ok_or_else(|| self.shape_error(i, format!("needs input {}", k + 1)))?;
        let act = self.acts.get(name).cloned().ok_or_else(|| {
            if self.model.tensors.contains_key(name) {
                self.shape_error(
                    i,
                    format!("input '{name}' must be an activation, not a constant"),
                )
            } else {
                self.shape_error(i, format!("input '{name}' is not defined before this node"))
            }
        })?;
        if act.class {
            return Err(self.shape_error(
                i,
                format!(
                    "'{name}' holds class indices (an ArgMax output); it can only be a graph output"
                ),
            ));
        }
        Ok(act)
    }

    /// The constant named by input `k` of node `i`, if that input is a constant.
    fn constant(&self, i: usize, k: usize) -> Option<&Tensor> {
        let name = self.model.nodes[i].inputs.get(k)?;
        if self.acts.contains_key(name) {
            return None;
        }
        self.model.tensors.get(name)
    }

    /// Refuses an order-dependent use of a channels-last activation.
    fn in_onnx_order(&self, i: usize, a: &Act) -> Result<(), OnnxError> {
        if a.channels_last.is_some() {
            return Err(self.shape_error(
                i,
                "reads a convolution's or pooling's output, whose features veil holds \
                 channels-last; put a Gemm or MatMul in between"
                    .into(),
            ));
        }
        Ok(())
    }

    fn matrix(&self, i: usize, a: &Act) -> Result<(usize, usize), OnnxError> {
        match a.dims.as_slice() {
            [n, k] => Ok((*n, *k)),
            d => Err(self.shape_error(i, format!("needs a 2-D activation, got dims {d:?}"))),
        }
    }

    fn node(&mut self, i: usize) -> Result<Act, OnnxError> {
        let node = &self.model.nodes[i];
        match node.kind {
            NodeKind::Gemm {
                alpha,
                beta,
                trans_b,
            } => {
                let bias = node.inputs.get(2).is_some();
                self.linear(i, alpha, trans_b, bias.then_some(beta))
            }
            NodeKind::MatMul => self.linear(i, 1.0, false, None),
            NodeKind::Conv {
                kernel,
                stride,
                pad,
            } => self.conv(i, kernel, stride, pad),
            NodeKind::MaxPool { kernel, stride } => self.pool(i, kernel, stride, 0, true),
            NodeKind::AveragePool {
                kernel,
                stride,
                pad,
            } => self.pool(i, kernel, stride, pad, false),
            NodeKind::GlobalAveragePool => {
                let a = self.act(i, 0)?;
                match a.dims[..] {
                    [_, _, h, w] => self.pool(i, (h, w), 1, 0, false),
                    _ => Err(self.shape_error(
                        i,
                        format!("needs a 4-D [N, C, H, W] activation, got dims {:?}", a.dims),
                    )),
                }
            }
            NodeKind::BatchNormalization { .. } => {
                if self.folded_norm.contains(&i) {
                    return self.act(i, 0);
                }
                Err(self.shape_error(
                    i,
                    "supported only right after a Conv whose output it alone reads (it is \
                     folded into the convolution's weights and bias)"
                        .into(),
                ))
            }
            NodeKind::Add => self.add(i),
            NodeKind::Relu => {
                let a = self.act(i, 0)?;
                // relu(max(window)) = max(relu(window)) exactly (max is monotone), so a ReLU
                // whose only reader is a MaxPool runs after it, on kh·kw times fewer elements.
                if let Some(pool) = self.only_reader(i)
                    && matches!(self.model.nodes[pool].kind, NodeKind::MaxPool { .. })
                {
                    self.relu_after_pool.insert(pool);
                    return Ok(a);
                }
                Ok(Act {
                    v: self.b.relu(a.v),
                    ..a
                })
            }
            NodeKind::Sigmoid => {
                let a = self.act(i, 0)?;
                Ok(Act {
                    v: self.b.sigmoid(a.v),
                    bound: a.bound.map(|_| 1.0),
                    ..a
                })
            }
            NodeKind::Softmax => {
                let a = self.act(i, 0)?;
                self.matrix(i, &a)?;
                Ok(Act {
                    v: self.b.softmax_rows(a.v),
                    bound: a.bound.map(|_| 1.0),
                    ..a
                })
            }
            NodeKind::Flatten => {
                let a = self.act(i, 0)?;
                let dims = vec![a.dims[0], a.cols()];
                Ok(Act { dims, ..a })
            }
            NodeKind::Reshape => self.reshape(i),
            NodeKind::ArgMax { keepdims } => self.argmax(i, keepdims),
            NodeKind::Identity => self.act(i, 0),
        }
    }

    /// Gemm / MatMul: `x·W` truncated to f bits in one round, then `+ b` locally.
    fn linear(
        &mut self,
        i: usize,
        alpha: f64,
        trans_b: bool,
        beta: Option<f64>,
    ) -> Result<Act, OnnxError> {
        let node = &self.model.nodes[i];
        let x = self.act(i, 0)?;
        let (rows, k) = self.matrix(i, &x)?;
        let w = self.constant(i, 1).ok_or_else(|| {
            self.shape_error(
                i,
                "the second operand must be a weight (initializer)".into(),
            )
        })?;
        let (wk, m) = match (w.dims.as_slice(), trans_b) {
            ([a, b], false) => (*a, *b),
            ([a, b], true) => (*b, *a),
            (d, _) => return Err(self.shape_error(i, format!("weight dims {d:?} are not 2-D"))),
        };
        if wk != k {
            return Err(self.shape_error(
                i,
                format!("input has {k} features but the weight expects {wk}"),
            ));
        }
        // W as K×M, scaled by alpha. Features held channels-last take the weight row of the
        // same feature in ONNX's (c, y, x) order.
        let known = !w.data.is_empty();
        let onnx_row = |r: usize| onnx_feature(x.channels_last, r);
        let wdata: Vec<f64> = if known {
            (0..k * m)
                .map(|idx| {
                    let (r, c) = (onnx_row(idx / m), idx % m);
                    let v = if trans_b {
                        w.data[c * k + r]
                    } else {
                        w.data[r * m + c]
                    };
                    alpha * v
                })
                .collect()
        } else {
            Vec::new()
        };
        let bias = match beta {
            None => None,
            Some(beta) => Some(self.bias_row(i, 2, m, beta)?),
        };
        let f = self.opts.frac_bits;
        let bound = match (x.bound, known) {
            (Some(bx), true) => {
                let bound = (0..m)
                    .map(|j| {
                        let s: f64 = (0..k).map(|r| wdata[r * m + j].abs()).sum::<f64>() * bx;
                        s + bias.as_ref().map_or(0.0, |b| b[j].abs())
                    })
                    .fold(0.0, f64::max);
                self.check_range(i, bound)?;
                Some(bound)
            }
            _ => None,
        };
        let name = node.name.clone();
        let wv = self.weight(i, &format!("{name}.weight"), &wdata, Shape::Matrix(k, m), f)?;
        // Product and truncation in one round; the bias is added after, at f bits.
        let mut y = self.b.matmul_rescale(x.v, wv, f);
        if let Some(bias) = bias {
            y = self.add_bias(i, y, (rows, m), &bias)?;
        }
        Ok(Act {
            v: y,
            dims: vec![rows, m],
            bound,
            class: false,
            channels_last: None,
        })
    }

    /// The one node that reads node `i`'s output, if exactly one does and it is no graph output.
    fn only_reader(&self, i: usize) -> Option<usize> {
        let out = &self.model.nodes[i].output;
        if self.model.outputs.contains(out) {
            return None;
        }
        let mut readers = self
            .model
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(out));
        match (readers.next(), readers.next()) {
            (Some((j, n)), None) if n.inputs.iter().filter(|x| *x == out).count() == 1 => Some(j),
            _ => None,
        }
    }

    /// The geometry of node `i` over a 4-D activation `a` (`[N, C, H, W]`) with a window.
    fn geometry(
        &self,
        i: usize,
        a: &Act,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Result<(usize, Conv2dGeometry), OnnxError> {
        let [n, c, h, w] = a.dims[..] else {
            return Err(self.shape_error(
                i,
                format!("needs a 4-D [N, C, H, W] activation, got dims {:?}", a.dims),
            ));
        };
        let g = Conv2dGeometry {
            height: h,
            width: w,
            channels: c,
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad,
            channels_first: a.channels_last.is_none(),
        };
        g.output_size().map_err(|e| self.shape_error(i, e))?;
        Ok((n, g))
    }

    /// Conv: [`Builder::conv2d`] — patches (local), one fused product-and-truncation round
    /// with the weights as a `(kh·kw·C) × M` matrix, the bias added locally; the output is
    /// channels-last.
    fn conv(
        &mut self,
        i: usize,
        kernel: Option<(usize, usize)>,
        stride: usize,
        pad: usize,
    ) -> Result<Act, OnnxError> {
        let x = self.act(i, 0)?;
        let w = self
            .constant(i, 1)
            .ok_or_else(|| self.shape_error(i, "the weight must be an initializer".into()))?;
        let [m, wc, kh, kw] = w.dims[..] else {
            return Err(self.shape_error(
                i,
                format!("weight dims {:?} are not [M, C, kh, kw]", w.dims),
            ));
        };
        if kernel.is_some_and(|k| k != (kh, kw)) {
            return Err(self.shape_error(
                i,
                format!("kernel_shape {kernel:?} differs from the weight's {kh}×{kw}"),
            ));
        }
        let (n, g) = self.geometry(i, &x, (kh, kw), stride, pad)?;
        if wc != g.channels {
            return Err(self.shape_error(
                i,
                format!(
                    "input has {} channels but the weight expects {wc}",
                    g.channels
                ),
            ));
        }
        // Row (a, b, ch) of the weight matrix, column o = W[o, ch, a, b].
        let rows = g.patch_len();
        let known = !w.data.is_empty();
        let mut wdata: Vec<f64> = if known {
            (0..rows * m)
                .map(|idx| {
                    let (r, o) = (idx / m, idx % m);
                    let (pos, ch) = (r / wc, r % wc);
                    w.data[((o * wc + ch) * kh + pos / kw) * kw + pos % kw]
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut bias = match self.model.nodes[i].inputs.get(2) {
            None => None,
            Some(_) => Some(self.bias_row(i, 2, m, 1.0)?),
        };
        // A BatchNormalization that alone reads this output is folded in: with
        // y = s·conv + t per output channel, the weights become s·W and the bias s·b + t.
        if let Some(j) = self.only_reader(i)
            && let NodeKind::BatchNormalization { epsilon } = self.model.nodes[j].kind
        {
            let (s, t) = self.norm_affine(j, m, epsilon)?;
            if known && !s.is_empty() {
                for (idx, v) in wdata.iter_mut().enumerate() {
                    *v *= s[idx % m];
                }
                let b = bias.as_deref().unwrap_or(&[]);
                bias = Some(
                    (0..m)
                        .map(|o| s[o] * b.get(o).unwrap_or(&0.0) + t[o])
                        .collect(),
                );
            } else {
                bias = Some(Vec::new()); // an architecture: the bias input exists, unvalued
            }
            self.folded_norm.insert(j);
        }
        let bound = match (x.bound, known) {
            (Some(bx), true) => {
                let bound = (0..m)
                    .map(|o| {
                        let s: f64 = (0..rows).map(|r| wdata[r * m + o].abs()).sum::<f64>() * bx;
                        s + bias
                            .as_ref()
                            .map_or(0.0, |b| b.get(o).map_or(0.0, |v| v.abs()))
                    })
                    .fold(0.0, f64::max);
                self.check_range(i, bound)?;
                Some(bound)
            }
            _ => None,
        };
        let f = self.opts.frac_bits;
        let name = self.model.nodes[i].name.clone();
        let wv = self.weight(
            i,
            &format!("{name}.weight"),
            &wdata,
            Shape::Matrix(rows, m),
            f,
        )?;
        let bias = match bias {
            Some(b) => Some(self.weight(i, &format!("{name}.bias"), &b, Shape::Vector(m), f)?),
            None => None,
        };
        let (oh, ow) = g.output_size().map_err(|e| self.shape_error(i, e))?;
        Ok(Act {
            v: self.b.conv2d(x.v, wv, bias, g),
            dims: vec![n, m, oh, ow],
            bound,
            class: false,
            channels_last: layout(m, oh, ow),
        })
    }

    /// The per-channel `(s, t)` of BatchNormalization node `j` over `m` channels, with
    /// `y = s·x + t`, `s = γ/√(σ² + ε)`, `t = β − s·μ`; empty when the values are stripped.
    fn norm_affine(
        &self,
        j: usize,
        m: usize,
        epsilon: f64,
    ) -> Result<(Vec<f64>, Vec<f64>), OnnxError> {
        let mut p = Vec::with_capacity(4);
        for k in 1..=4 {
            let t = self.constant(j, k).ok_or_else(|| {
                self.shape_error(j, format!("parameter {} must be an initializer", k + 1))
            })?;
            if t.len() != m {
                return Err(self.shape_error(
                    j,
                    format!("parameter dims {:?} do not match {m} channels", t.dims),
                ));
            }
            p.push(&t.data);
        }
        if p.iter().any(|d| d.is_empty()) {
            return Ok((Vec::new(), Vec::new()));
        }
        if let Some(o) = (0..m).find(|&o| (p[3][o] + epsilon).is_nan() || p[3][o] + epsilon <= 0.0)
        {
            return Err(self.shape_error(
                j,
                format!("channel {o}: variance + epsilon must be positive"),
            ));
        }
        let s: Vec<f64> = (0..m)
            .map(|o| p[0][o] / (p[3][o] + epsilon).sqrt())
            .collect();
        let t = (0..m).map(|o| p[1][o] - s[o] * p[2][o]).collect();
        Ok((s, t))
    }

    /// MaxPool (a tournament of comparisons over each window) or AveragePool (local sums and
    /// one truncation); the output is channels-last.
    fn pool(
        &mut self,
        i: usize,
        kernel: (usize, usize),
        stride: usize,
        pad: usize,
        max: bool,
    ) -> Result<Act, OnnxError> {
        let x = self.act(i, 0)?;
        let (n, g) = self.geometry(i, &x, kernel, stride, pad)?;
        let (oh, ow) = g.output_size().map_err(|e| self.shape_error(i, e))?;
        if let (false, Some(b)) = (max, x.bound) {
            // The mean's product holds 2f + ⌈log2 K⌉ bits: as a layer with a K times larger bound.
            self.check_range(i, b * (kernel.0 * kernel.1).next_power_of_two() as f64)?;
        }
        let v = if max {
            let pooled = self.b.max_pool2d(x.v, g);
            if self.relu_after_pool.contains(&i) {
                self.b.relu(pooled)
            } else {
                pooled
            }
        } else {
            self.b.avg_pool2d(x.v, g)
        };
        Ok(Act {
            v,
            dims: vec![n, g.channels, oh, ow],
            channels_last: layout(g.channels, oh, ow),
            ..x
        })
    }

    /// Refuses a layer whose worst-case product would make truncation unreliable.
    fn check_range(&self, i: usize, bound: f64) -> Result<(), OnnxError> {
        let f = self.opts.frac_bits;
        let max_log2 = 64 - 1 - TRUNCATION_SECURITY_BITS - 2 * f;
        if !(bound.is_finite() && bound < 2f64.powi(max_log2 as i32)) {
            let n = &self.model.nodes[i];
            return Err(OnnxError::Range {
                node: n.name.clone(),
                bound,
                frac_bits: f,
                max: 2f64.powi(max_log2 as i32),
            });
        }
        Ok(())
    }

    /// A weight operand: a secret input of the owner, or a public constant.
    fn weight(
        &mut self,
        i: usize,
        input: &str,
        data: &[f64],
        shape: Shape,
        f: u32,
    ) -> Result<Value, OnnxError> {
        let words = data
            .iter()
            .map(|&v| fixed::encode(v, FracBits(f)))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| OnnxError::Range {
                node: self.model.nodes[i].name.clone(),
                bound: data.iter().fold(0.0, |m, v| f64::max(m, v.abs())),
                frac_bits: self.opts.frac_bits,
                max: 2f64.powi((fixed::MAX_MAGNITUDE_BITS - f) as i32),
            })?;
        let elem = ElemType::Fixed(FracBits(f));
        Ok(match self.opts.weights {
            WeightMode::Public => {
                if words.is_empty() {
                    return Err(self.shape_error(
                        i,
                        "public weights need the weight values (not an architecture)".into(),
                    ));
                }
                self.b.constant(elem, shape, words)
            }
            WeightMode::Secret => {
                self.weights.push(WeightInput {
                    input: input.to_string(),
                    words,
                });
                self.b.input(
                    input,
                    Owner::Client(self.opts.owner.clone()),
                    ValueType {
                        vis: Visibility::Secret,
                        elem,
                        shape,
                    },
                )
            }
        })
    }

    /// Add: activation + activation of equal dims, or activation + constant row (a bias).
    fn add(&mut self, i: usize) -> Result<Act, OnnxError> {
        let (c0, c1) = (self.constant(i, 0).is_some(), self.constant(i, 1).is_some());
        if !c0 && !c1 {
            let (a, b) = (self.act(i, 0)?, self.act(i, 1)?);
            if a.dims != b.dims {
                return Err(
                    self.shape_error(i, format!("dims {:?} and {:?} differ", a.dims, b.dims))
                );
            }
            if a.channels_last != b.channels_last {
                return Err(self.shape_error(
                    i,
                    "one operand comes from a convolution and the other does not; their \
                     element orders differ"
                        .into(),
                ));
            }
            return Ok(Act {
                v: self.b.add(a.v, b.v),
                bound: a.bound.zip(b.bound).map(|(x, y)| x + y),
                ..a
            });
        }
        let (ka, kc) = if c1 { (0, 1) } else { (1, 0) };
        let a = self.act(i, ka)?;
        let (rows, m) = self.matrix(i, &a)?;
        let row = self.bias_row(i, kc, m, 1.0)?;
        // A row over channels-last features takes each feature's value from ONNX's order.
        let data: Vec<f64> = (0..row.len())
            .map(|p| row[onnx_feature(a.channels_last, p)])
            .collect();
        let bound = a
            .bound
            .filter(|_| !data.is_empty())
            .map(|x| x + data.iter().fold(0.0, |acc: f64, v| acc.max(v.abs())));
        Ok(Act {
            v: self.add_bias(i, a.v, (rows, m), &data)?,
            bound,
            ..a
        })
    }

    /// The constant input `k` of node `i` as a row of `m` values times `scale`: dims `[m]`,
    /// `[1, m]` or one element (broadcast); empty when the weights are stripped.
    fn bias_row(&self, i: usize, k: usize, m: usize, scale: f64) -> Result<Vec<f64>, OnnxError> {
        let t = self
            .constant(i, k)
            .ok_or_else(|| self.shape_error(i, "the bias must be an initializer".into()))?;
        if !(matches!(t.dims.as_slice(), [d] | [1, d] if *d == m) || t.len() == 1) {
            return Err(self.shape_error(
                i,
                format!("bias dims {:?} do not broadcast to [batch, {m}]", t.dims),
            ));
        }
        Ok(if t.data.is_empty() {
            Vec::new()
        } else {
            (0..m)
                .map(|j| scale * t.data[if t.len() == 1 { 0 } else { j }])
                .collect()
        })
    }

    /// `y + bias` for a `rows × m` activation: the bias (a weight of node `i`, at f bits) is
    /// broadcast over the rows by a local product with a public column of ones.
    fn add_bias(
        &mut self,
        i: usize,
        y: Value,
        (rows, m): (usize, usize),
        bias: &[f64],
    ) -> Result<Value, OnnxError> {
        let name = format!("{}.bias", self.model.nodes[i].name);
        let bv = self.weight(i, &name, bias, Shape::Matrix(1, m), self.opts.frac_bits)?;
        let ones = self
            .b
            .constant(ElemType::Ring, Shape::Matrix(rows, 1), vec![1; rows]);
        let bb = self.b.matmul(ones, bv);
        Ok(self.b.add(y, bb))
    }

    /// Reshape by a constant shape that keeps the batch axis.
    fn reshape(&mut self, i: usize) -> Result<Act, OnnxError> {
        let a = self.act(i, 0)?;
        let t = self
            .constant(i, 1)
            .filter(|t| !t.data.is_empty())
            .ok_or_else(|| self.shape_error(i, "the shape must be a constant tensor".into()))?;
        let dims = reshape_dims(&a.dims, &t.data).map_err(|e| self.shape_error(i, e))?;
        if a.channels_last.is_some() && dims != [a.dims[0], a.cols()] {
            return Err(self.shape_error(
                i,
                "after a convolution or pooling only a flattening reshape ([N, -1]) is supported"
                    .into(),
            ));
        }
        Ok(Act { dims, ..a })
    }

    /// ArgMax over the class axis: free when the user also receives its input (it computes
    /// the argmax itself), else a tournament per row on shares.
    fn argmax(&mut self, i: usize, keepdims: bool) -> Result<Act, OnnxError> {
        let a = self.act(i, 0)?;
        self.in_onnx_order(i, &a)?;
        let (rows, cols) = self.matrix(i, &a)?;
        let node = &self.model.nodes[i];
        let src = &node.inputs[0];
        let outputs = &self.model.outputs;
        if outputs.contains(&node.output) && outputs.contains(src) {
            self.class_of.insert(node.output.clone(), src.clone());
            // A placeholder no later node may read (class = true).
            return Ok(Act { class: true, ..a });
        }
        let idx: Vec<Value> = (0..rows)
            .map(|r| {
                let row = self.b.slice(a.v, r, r + 1);
                let row = self.b.reshape(row, Shape::Vector(cols));
                let m = self.b.argmax(row);
                self.b.reshape(m, Shape::Vector(1))
            })
            .collect();
        let v = self.b.concat(&idx);
        let v = if keepdims {
            self.b.reshape(v, Shape::Matrix(rows, 1))
        } else {
            v
        };
        Ok(Act {
            v,
            dims: vec![rows, 1],
            bound: None,
            class: true,
            channels_last: None,
        })
    }
}

/// Where feature `p` of a row in `layout` (channels-last `(y, x, c)` of a `c × h × w` image, or
/// ONNX's own order when `None`) sits in ONNX's `(c, y, x)` order.
fn onnx_feature(layout: Option<[usize; 3]>, p: usize) -> usize {
    match layout {
        Some([c, h, w]) => {
            let (pixel, ch) = (p / c, p % c);
            (ch * h + pixel / w) * w + pixel % w
        }
        None => p,
    }
}

/// The layout of a convolution's or pooling's `c × h × w` output: channels-last, unless the
/// image is one pixel, where both orders coincide.
fn layout(c: usize, h: usize, w: usize) -> Option<[usize; 3]> {
    (h * w > 1).then_some([c, h, w])
}

/// ONNX Reshape of `dims` by `shape` (0 copies an axis, −1 is inferred), restricted to shapes
/// that keep the batch axis; a 1-D result gets a trailing axis of 1.
pub(crate) fn reshape_dims(dims: &[usize], shape: &[f64]) -> Result<Vec<usize>, String> {
    let total: usize = dims.iter().product();
    let mut out = Vec::new();
    let mut infer = None;
    for (j, &d) in shape.iter().enumerate() {
        match d as i64 {
            0 => out.push(
                *dims
                    .get(j)
                    .ok_or_else(|| format!("shape entry {j} = 0 has no input axis to copy"))?,
            ),
            -1 if infer.is_none() => {
                infer = Some(j);
                out.push(1);
            }
            d if d > 0 => out.push(d as usize),
            d => return Err(format!("invalid shape entry {d}")),
        }
    }
    if let Some(j) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot infer -1 for {total} elements"));
        }
        out[j] = total / known;
    }
    if out.iter().product::<usize>() != total || out.first() != dims.first() {
        return Err(format!(
            "shape {out:?} must keep the batch axis {} and {total} elements",
            dims[0]
        ));
    }
    if out.len() < 2 {
        out.push(1);
    }
    Ok(out)
}
