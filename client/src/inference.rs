//! Private inference on the MPC cluster, client side: a model owner stores an ONNX model's
//! weights as secret shares (or publishes them inside the program); a user secret-shares an
//! input batch, the cluster runs the compiled network ([`veil_circuits::onnx`]) on shares, and
//! only the user reconstructs the outputs (logits, classes).
//!
//! Security model (semi-honest, honest majority, as the cluster): with secret weights no single
//! node learns a weight or an input, activation or output value. Each node learns the
//! architecture (layer shapes and operators, hence the round schedule), the batch size, who
//! asked and the timing. The user learns the outputs the graph declares (e.g. logits), which
//! like any prediction API can leak information about the weights to a user making many
//! queries. The owner decides who may query and at which batch sizes: each user gets a grant
//! (`veil_node::policy`) for the compiled model's program at each approved batch size — that
//! program and no other, and no right to receive the raw weights. Inputs are clamped to
//! `input_bound` on the nodes (in the program), so a user cannot push activations outside the
//! range the owner checked. With public weights the nodes and users see the weights; inputs
//! stay secret.

use crate::{Client, ClientError, Grant, InvokeSummary};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use veil_circuits::cost::{Suite, program_cost_in};
use veil_circuits::onnx::{
    self, CompileOptions, CompiledModel, OnnxError, OnnxModel, Prediction, WeightMode,
};

/// An inference call failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The model or the input does not fit (unsupported operator, shape, range).
    #[error(transparent)]
    Model(#[from] OnnxError),
    /// A cluster call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A model to store on the cluster.
#[derive(Clone, Copy, Debug)]
pub struct ModelUpload<'a> {
    /// Model name (prefix of the stored value ids; `[A-Za-z0-9._-]`).
    pub name: &'a str,
    /// The decoded ONNX model with its weights.
    pub model: &'a OnnxModel,
    /// Secret-shared or public weights.
    pub weights: WeightMode,
    /// Fractional bits of activations and weights.
    pub frac_bits: u32,
    /// Largest |input element| users may send (the range check starts from it).
    pub input_bound: f64,
    /// Clients allowed to run the model: each may run its compiled program at each of
    /// `batches` with the stored weights (and receive the outputs), nothing else.
    pub users: &'a [&'a str],
    /// The batch sizes users may run (one approved program per user and batch size).
    pub batches: &'a [usize],
}

/// What a user needs to run a stored model: its architecture (weights stripped when secret),
/// fixed-point settings and the stored weight ids.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredModel {
    /// Model name.
    pub name: String,
    /// Client that stored it.
    pub owner: String,
    /// The model without secret weight values.
    pub architecture: OnnxModel,
    /// How the weights are held.
    pub weights: WeightMode,
    /// Fractional bits.
    pub frac_bits: u32,
    /// Largest |input element| accepted.
    pub input_bound: f64,
    /// Program input name → stored value id of each secret weight.
    pub weight_ids: Vec<(String, String)>,
    /// Compiled and stored programs by (user, batch): later requests reuse them.
    #[serde(skip)]
    programs: HashMap<(String, usize), StoredProgram>,
}

impl StoredModel {
    fn options(&self, user: &str, batch: usize) -> CompileOptions {
        CompileOptions {
            batch,
            frac_bits: self.frac_bits,
            weights: self.weights,
            owner: self.owner.clone(),
            user: user.to_string(),
            input_bound: self.input_bound,
        }
    }
}

/// A compiled program stored on the cluster.
#[derive(Clone, Debug)]
struct StoredProgram {
    compiled: CompiledModel,
    id: String,
}

/// Time and rounds one layer (ONNX node) took in a private run.
#[derive(Clone, Debug)]
pub struct LayerTime {
    /// Node name.
    pub name: String,
    /// ONNX operator.
    pub op: String,
    /// Rounds of the schedule spent in this layer.
    pub rounds: u32,
    /// Wall time at the slowest node from the previous layer's end to this one's.
    pub time: Duration,
}

/// One private inference: the decoded outputs and what they cost.
#[derive(Clone, Debug)]
pub struct Inference {
    /// Outputs (logits, classes) in graph order.
    pub prediction: Prediction,
    /// Rounds, bytes per node and session time as the nodes report them.
    pub invoke: InvokeSummary,
    /// Per layer, in graph order.
    pub layers: Vec<LayerTime>,
    /// The user's wall time: input upload, invoke, fetch and clean-up.
    pub wall: Duration,
}

/// Stores `upload.model` on the cluster as the connected client (the owner). Secret weights
/// are range-checked, encoded and secret-shared (each node receives two components); public
/// weights are only checked. `progress(done, total)` follows the stored tensors.
pub async fn upload(
    owner: &mut Client,
    upload: ModelUpload<'_>,
    mut progress: impl FnMut(usize, usize),
) -> Result<StoredModel, InferenceError> {
    let opts = CompileOptions {
        batch: 1,
        frac_bits: upload.frac_bits,
        weights: upload.weights,
        owner: owner.name().to_string(),
        user: upload.users.first().copied().unwrap_or("user").to_string(),
        input_bound: upload.input_bound,
    };
    // Compiling checks the operators, shapes and the fixed-point range with the real weights.
    let compiled = onnx::compile(upload.model, &opts)?;
    let architecture = match upload.weights {
        WeightMode::Secret => upload.model.architecture(),
        WeightMode::Public => upload.model.clone(),
    };
    let mut model = StoredModel {
        name: upload.name.to_string(),
        owner: owner.name().to_string(),
        architecture,
        weights: upload.weights,
        frac_bits: upload.frac_bits,
        input_bound: upload.input_bound,
        weight_ids: Vec::new(),
        programs: HashMap::new(),
    };
    // The programs the owner approves: the model compiled for each (user, batch), exactly as
    // `infer` compiles it, named by content hash.
    let mut grants = Vec::new();
    for &user in upload.users {
        for &batch in upload.batches {
            let program = onnx::compile(&model.architecture, &model.options(user, batch))?.program;
            grants.push(Grant::new(user, program.id().to_string()));
        }
    }
    let total = compiled.weights.len();
    for (i, w) in compiled.weights.iter().enumerate() {
        let id = format!("{}.w{i}", upload.name);
        owner.store_secret(&id, &w.words, &grants, &[]).await?;
        model.weight_ids.push((w.input.clone(), id));
        progress(i + 1, total);
    }
    Ok(model)
}

/// Deletes the stored weights of `model` (as its owner).
pub async fn delete(owner: &mut Client, model: &StoredModel) -> Result<(), InferenceError> {
    for (_, id) in &model.weight_ids {
        owner.delete(id).await?;
    }
    Ok(())
}

/// Runs `model` on `batch` samples `x` (row-major `batch × features`) as the connected client,
/// which must be one of the model's users. Only this client sees the outputs. The first call
/// for a batch size compiles and stores the program; later ones reuse it.
pub async fn infer(
    user: &mut Client,
    model: &mut StoredModel,
    x: &[f64],
    batch: usize,
) -> Result<Inference, InferenceError> {
    let start = Instant::now();
    let key = (user.name().to_string(), batch);
    if !model.programs.contains_key(&key) {
        let compiled = onnx::compile(&model.architecture, &model.options(user.name(), batch))?;
        let id = user.store_program(&compiled.program).await?;
        let stored = StoredProgram { compiled, id };
        model.programs.insert(key.clone(), stored);
    }
    let StoredProgram {
        compiled,
        id: program_id,
    } = &model.programs[&key];
    let words = compiled.encode_input(x)?;
    // One request per node: the input travels with it and the outputs come back in the
    // responses, so nothing of this request is stored on the nodes.
    let (invoke, outputs) = user
        .invoke_inline(
            program_id,
            &model
                .weight_ids
                .iter()
                .map(|(input, id)| (input.as_str(), id.as_str()))
                .collect::<Vec<_>>(),
            &[(compiled.input.as_str(), &words)],
        )
        .await?;
    let prediction = compiled.decode(&outputs)?;
    // The schedule of the protocols the cluster ran (its receipt's mode).
    let ends = layer_ends(compiled, invoke.receipt.security.suite());
    let layers = layer_times(compiled, &ends, &invoke);
    Ok(Inference {
        prediction,
        invoke,
        layers,
        wall: start.elapsed(),
    })
}

/// The schedule depth at which each layer's last op completes (never before the previous
/// layer's end).
fn layer_ends(compiled: &CompiledModel, suite: Suite) -> Vec<u32> {
    let cost = program_cost_in(&compiled.program, suite);
    let mut prev = 0u32;
    compiled
        .layers
        .iter()
        .map(|l| {
            prev = l
                .ops
                .clone()
                .map(|i| cost.depth[i])
                .max()
                .unwrap_or(prev)
                .max(prev);
            prev
        })
        .collect()
}

/// Per layer: its rounds (between the previous layer's end depth and its own) and the time
/// the nodes took over them.
fn layer_times(compiled: &CompiledModel, ends: &[u32], invoke: &InvokeSummary) -> Vec<LayerTime> {
    let at = |d: u32| {
        invoke
            .depth_done
            .get(d as usize)
            .copied()
            .unwrap_or_default()
    };
    let (mut prev, mut prev_time) = (0u32, Duration::ZERO);
    compiled
        .layers
        .iter()
        .zip(ends)
        .map(|(l, &end)| {
            let t = at(end);
            let lt = LayerTime {
                name: l.name.clone(),
                op: l.op.clone(),
                rounds: end - prev,
                time: t.saturating_sub(prev_time),
            };
            (prev, prev_time) = (end, t);
            lt
        })
        .collect()
}
