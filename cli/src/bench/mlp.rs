//! `veil bench --ops mlp`: private inference of dense ReLU networks (784-128-10 and
//! 784-128-128-10) and a LeNet-style CNN on 28×28 images ([`Network::LeNet`]), with seeded
//! random weights uniform in ±1/√fan_in and inputs uniform in [0, 1), at each batch size,
//! beside the `f64` reference ([`veil_circuits::onnx::plain::run`]):
//! - **grpc**: the weights secret-shared once per architecture into a devnet
//!   ([`veil_client::inference::upload`], the bench client is both owner and user); per request the
//!   user's wall time ([`veil_client::inference::infer`]: one `invoke_inline` per node), the
//!   session time at the slowest node, rounds, bytes and per-layer times (one untimed warm-up
//!   request first compiles and stores the program);
//! - **memory**: the same compiled program on three in-process parties (one session, setup
//!   excluded, the slowest party per run).
//!
//! Every answer is checked against the reference: |logit error| ≤ [`MAX_LOGIT_ERROR`], and the
//! same class wherever the reference's top-2 margin exceeds [`CLEAR_MARGIN`]; otherwise the run
//! fails.

use super::{BenchError, check_mode, median};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;
use veil_circuits::onnx::{
    self, CompileOptions, CompiledModel, DEFAULT_FRAC_BITS, OnnxModel, WeightMode, argmax_rows,
};
use veil_client::Client;
use veil_client::inference::{self, ModelUpload, StoredModel};
use veil_runtime::SecurityMode;
use veil_runtime::harness::{collect_outputs, share_inputs};

pub use veil_benches::networks::{LOGITS, NETWORKS, Network};

/// Batch sizes when `--size` is not given.
pub const DEFAULT_BATCHES: [usize; 2] = [1, 100];

/// Largest |MPC logit − reference logit| accepted.
pub const MAX_LOGIT_ERROR: f64 = 0.05;

/// Reference top-2 margin above which the MPC class must equal the reference class.
pub const CLEAR_MARGIN: f64 = 0.01;

/// Inputs are in [0, 1).
const INPUT_BOUND: f64 = 1.0;

/// One layer's median time over the timed requests.
#[derive(Clone, Debug, Serialize)]
pub struct MlpLayer {
    /// Node name (`fc1`, `relu1`, …).
    pub name: String,
    /// ONNX operator.
    pub op: String,
    /// Rounds of the schedule spent in this layer.
    pub rounds: u32,
    /// Median time at the slowest node, seconds.
    pub median_s: f64,
}

/// One measured MLP configuration (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct MlpBenchResult {
    /// Always `mlp`.
    pub op: &'static str,
    /// Network, e.g. `784-128-10` or `lenet-28x28`.
    pub arch: String,
    /// Samples per request.
    pub batch: usize,
    /// Fractional bits of activations and weights.
    pub frac_bits: u32,
    /// Security mode of the sessions (both transports): `semi-honest` or `malicious`.
    pub security: &'static str,
    /// gRPC: median user wall time per request (input upload, invoke, fetch, clean-up), seconds.
    pub mpc_median_s: f64,
    /// gRPC: median session time at the slowest node (the program over the network), seconds.
    pub mpc_session_median_s: f64,
    /// Communication rounds of one request.
    pub mpc_rounds: u64,
    /// gRPC: bytes each node sent per request.
    pub mpc_bytes_per_node: [u64; 3],
    /// gRPC: per-layer median times at the slowest node.
    pub layers: Vec<MlpLayer>,
    /// gRPC: one-time upload of the secret weights (per architecture), seconds.
    pub weights_upload_s: f64,
    /// Memory transport: median time of the same program on three in-process parties (slowest
    /// party, session setup excluded), seconds.
    pub memory_median_s: f64,
    /// Median `f64` reference inference of the same batch in this process, seconds.
    pub plaintext_median_s: f64,
    /// Largest |MPC logit − reference logit| over every checked request (both transports).
    pub max_abs_logit_error: f64,
    /// Samples checked (warm-up, timed requests and the memory run).
    pub samples: usize,
    /// Samples whose reference top-2 margin exceeds [`CLEAR_MARGIN`].
    pub clear_margin_samples: usize,
    /// Samples whose MPC class equals the reference class (margin or not).
    pub class_matches: usize,
}

/// Accumulates the accuracy checks of one configuration.
#[derive(Default)]
struct Accuracy {
    max_err: f64,
    samples: usize,
    clear: usize,
    matches: usize,
}

impl Accuracy {
    /// Compares MPC logits `got` with the reference `want` (rows of `classes`).
    fn check(&mut self, got: &[f64], want: &[f64], classes: usize) -> Result<(), BenchError> {
        if got.len() != want.len() {
            return Err(fail(format!(
                "{} logits from MPC, {} from the reference",
                got.len(),
                want.len()
            )));
        }
        for (&g, &w) in got.iter().zip(want) {
            self.max_err = self.max_err.max((g - w).abs());
        }
        let (got_cls, want_cls) = (argmax_rows(got, classes), argmax_rows(want, classes));
        for (row, (g, w)) in want.chunks(classes).zip(got_cls.iter().zip(&want_cls)) {
            self.samples += 1;
            let mut sorted = row.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let margin =
                sorted.first().copied().unwrap_or(0.0) - sorted.get(1).copied().unwrap_or(0.0);
            if g == w {
                self.matches += 1;
            }
            if margin > CLEAR_MARGIN {
                self.clear += 1;
                if g != w {
                    return Err(fail(format!(
                        "MPC class {g} differs from the reference class {w} (top-2 margin {margin:.4})"
                    )));
                }
            }
        }
        if self.max_err > MAX_LOGIT_ERROR {
            return Err(fail(format!(
                "max |logit error| {:.4} exceeds {MAX_LOGIT_ERROR}",
                self.max_err
            )));
        }
        Ok(())
    }
}

fn fail(what: String) -> BenchError {
    BenchError::Mlp(what)
}

fn logits<'a>(outputs: &'a [(String, Vec<f64>)], from: &str) -> Result<&'a [f64], BenchError> {
    outputs
        .iter()
        .find(|(n, _)| n == LOGITS)
        .map(|(_, v)| v.as_slice())
        .ok_or_else(|| fail(format!("{from}: no '{LOGITS}' output")))
}

/// One network stored on the cluster (secret weights), ready to benchmark batch sizes.
pub struct MlpBench {
    network: Network,
    model: OnnxModel,
    stored: StoredModel,
    upload_s: f64,
}

impl MlpBench {
    /// Builds `network` and stores its weights as secret shares on the cluster behind
    /// `client` (owner and user).
    pub async fn upload(client: &mut Client, network: Network) -> Result<MlpBench, BenchError> {
        let arch = network.name();
        let model = network.model(7);
        let tag: u32 = rand::random();
        let name = format!("bench-mlp-{arch}-{tag:08x}");
        eprintln!("  mpc: uploading the secret weights of {arch}…");
        let t = Instant::now();
        let upload = ModelUpload {
            name: &name,
            model: &model,
            weights: WeightMode::Secret,
            frac_bits: DEFAULT_FRAC_BITS,
            input_bound: INPUT_BOUND,
            users: &[],
            batches: &[],
        };
        let stored = inference::upload(client, upload, |_, _| {})
            .await
            .map_err(|e| fail(format!("{arch}: uploading the weights: {e}")))?;
        Ok(MlpBench {
            network,
            model,
            stored,
            upload_s: t.elapsed().as_secs_f64(),
        })
    }

    /// The network's name.
    pub fn arch(&self) -> String {
        self.network.name()
    }

    /// Deletes the stored weights.
    pub async fn delete(self, client: &mut Client) -> Result<(), BenchError> {
        inference::delete(client, &self.stored)
            .await
            .map_err(|e| fail(format!("{}: deleting the weights: {e}", self.arch())))
    }

    /// One untimed warm-up request and `reps` timed ones of `batch` samples on the cluster
    /// (whose nodes run `security`), `reps` runs on the memory transport in the same mode and
    /// of the reference; checks every answer. In malicious mode a program with an op that has
    /// no maliciously secure protocol is refused ([`BenchError::NotMalicious`]) before any
    /// request.
    pub async fn run(
        &mut self,
        client: &mut Client,
        batch: usize,
        reps: usize,
        security: SecurityMode,
    ) -> Result<MlpBenchResult, BenchError> {
        let reps = reps.max(1);
        let arch = self.arch();
        let ctx = |e: String| fail(format!("{arch} batch {batch}: {e}"));
        let opts = CompileOptions {
            batch,
            frac_bits: DEFAULT_FRAC_BITS,
            weights: WeightMode::Secret,
            owner: client.name().to_string(),
            user: client.name().to_string(),
            input_bound: INPUT_BOUND,
        };
        let compiled = onnx::compile(&self.model, &opts).map_err(|e| ctx(e.to_string()))?;
        check_mode(&compiled.program, security, || {
            format!("mlp {arch} at batch {batch}")
        })?;
        let (features, classes) = self.network.io();
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + batch as u64);
        let inputs: Vec<Vec<f64>> = (0..=reps)
            .map(|_| (0..batch * features).map(|_| rng.random::<f64>()).collect())
            .collect();
        let mut acc = Accuracy::default();
        let (mut wall, mut session, mut plain) = (Vec::new(), Vec::new(), Vec::new());
        let mut layer_times: Vec<Vec<f64>> = Vec::new();
        let mut last = None;
        let mut want = Vec::new();
        for (i, x) in inputs.iter().enumerate() {
            if i == 0 {
                eprintln!("  mpc: warm-up request (compiles and stores the program)…");
            } else {
                eprintln!("  mpc: request {i}/{reps}…");
            }
            let inf = inference::infer(client, &mut self.stored, x, batch)
                .await
                .map_err(|e| ctx(e.to_string()))?;
            let t = Instant::now();
            let reference = onnx::plain::run(&self.model, x, batch);
            let plain_s = t.elapsed().as_secs_f64();
            let reference = reference.map_err(|e| ctx(e.to_string()))?;
            want = logits(&reference, "reference")?.to_vec();
            let got = inf
                .prediction
                .get(LOGITS)
                .ok_or_else(|| ctx(format!("no '{LOGITS}' in the prediction")))?;
            acc.check(got, &want, classes)
                .map_err(|e| ctx(format!("request {i}: {e}")))?;
            if i == 0 {
                continue;
            }
            wall.push(inf.wall.as_secs_f64());
            session.push(inf.invoke.session_time.as_secs_f64());
            plain.push(plain_s);
            layer_times.resize(inf.layers.len(), Vec::new());
            for (times, l) in layer_times.iter_mut().zip(&inf.layers) {
                times.push(l.time.as_secs_f64());
            }
            last = Some(inf);
        }
        let last = last.expect("reps ≥ 1");
        let layers = last
            .layers
            .iter()
            .zip(layer_times)
            .map(|(l, times)| MlpLayer {
                name: l.name.clone(),
                op: l.op.clone(),
                rounds: l.rounds,
                median_s: median(times),
            })
            .collect();

        eprintln!("  memory: {reps} runs on three in-process parties…");
        let x = inputs.last().expect("reps ≥ 1").clone();
        let (memory_median_s, got) =
            tokio::task::spawn_blocking(move || run_memory(&compiled, &x, reps, security))
                .await
                .map_err(|e| ctx(e.to_string()))?
                .map_err(ctx)?;
        acc.check(&got, &want, classes)
            .map_err(|e| ctx(format!("memory transport: {e}")))?;

        Ok(MlpBenchResult {
            op: "mlp",
            arch: arch.clone(),
            batch,
            frac_bits: DEFAULT_FRAC_BITS,
            security: security.as_str(),
            mpc_median_s: median(wall),
            mpc_session_median_s: median(session),
            mpc_rounds: last.invoke.rounds,
            mpc_bytes_per_node: last.invoke.bytes_sent,
            layers,
            weights_upload_s: self.upload_s,
            memory_median_s,
            plaintext_median_s: median(plain),
            max_abs_logit_error: acc.max_err,
            samples: acc.samples,
            clear_margin_samples: acc.clear,
            class_matches: acc.matches,
        })
    }
}

/// `reps` runs of `compiled` on `x` over one in-memory session in `mode`: (median seconds at
/// the slowest party, the logits of the last run).
fn run_memory(
    compiled: &CompiledModel,
    x: &[f64],
    reps: usize,
    mode: SecurityMode,
) -> Result<(f64, Vec<f64>), String> {
    let mut plain: HashMap<String, Vec<u64>> = compiled
        .weights
        .iter()
        .map(|w| (w.input.clone(), w.words.clone()))
        .collect();
    plain.insert(
        compiled.input.clone(),
        compiled.encode_input(x).map_err(|e| e.to_string())?,
    );
    let shared = share_inputs(&compiled.program, &plain, &mut rand::rng());
    let program = &compiled.program;
    let [p0, p1, p2] = super::memory_runs(program, &shared, reps, mode);
    let (p0, p1, p2) = (
        p0.map_err(|e| e.to_string())?,
        p1.map_err(|e| e.to_string())?,
        p2.map_err(|e| e.to_string())?,
    );
    let per_rep: Vec<f64> = (0..reps)
        .map(|i| p0.0[i].max(p1.0[i]).max(p2.0[i]).as_secs_f64())
        .collect();
    let raw = collect_outputs(program, &[p0.1, p1.1, p2.1]).map_err(|e| e.to_string())?;
    let prediction = compiled.decode(&raw).map_err(|e| e.to_string())?;
    let logits = prediction
        .get(LOGITS)
        .ok_or_else(|| format!("no '{LOGITS}' output"))?
        .to_vec();
    Ok((median(per_rep), logits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_benches::networks::random_mlp;

    #[test]
    fn random_weights_stay_within_fan_in_bounds() {
        let sizes = [784, 128, 128, 10];
        let m = random_mlp(&sizes, 7);
        for (l, &fan_in) in sizes[..3].iter().enumerate() {
            let bound = 1.0 / (fan_in as f64).sqrt();
            for t in ["weight", "bias"] {
                let data = &m.tensors[&format!("fc{}.{t}", l + 1)].data;
                assert!(data.iter().all(|v| v.abs() <= bound), "fc{} {t}", l + 1);
                let max = data.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(max > 0.9 * bound, "fc{} {t}: max {max} vs {bound}", l + 1);
            }
        }
        assert_eq!(random_mlp(&sizes, 7), m);
    }

    #[test]
    fn accuracy_flags_a_clear_class_change_only() {
        let mut a = Accuracy::default();
        // Row 0: clear margin, same class; row 1: tiny margin, class flips.
        let want = [1.0, 0.0, 0.5, 0.505];
        let got = [0.99, 0.01, 0.51, 0.5];
        a.check(&got, &want, 2).unwrap();
        assert_eq!((a.samples, a.clear, a.matches), (2, 1, 1));
        assert!(a.check(&[0.0, 1.0], &[1.0, 0.0], 2).is_err());
    }
}
