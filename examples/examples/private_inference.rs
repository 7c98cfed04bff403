//! Private inference end to end: `cargo run --release --example private_inference`.
//!
//! Starts a local three-node cluster (mutual TLS on loopback; or joins `--cluster`). The model
//! owner stores an ONNX classifier (default: an MLP trained on the bundled 8×8 digits;
//! `--bundled cnn` for the CNN trained on them) as
//! secret shares; the user secret-shares handwritten digits, the cluster runs the network on
//! shares, and only the user reconstructs the logits and the class. Every prediction is
//! checked against the plaintext model.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veil_circuits::onnx::{self, OnnxModel, WeightMode, plain};
use veil_client::Client;
use veil_client::inference::{self, Inference, ModelUpload, StoredModel};
use veil_examples::digits::{self, Sample};
use veil_examples::rag::DemoCluster;
use veil_runtime::SecurityMode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Weights {
    /// Secret-shared: no node sees a weight.
    Secret,
    /// Public constants inside the program: nodes see the weights (inputs stay secret).
    Public,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Bundled {
    /// The 64-32-10 MLP.
    Mlp,
    /// The CNN: conv 3×3 × 8, ReLU, max pool 2×2, dense 128 → 10.
    Cnn,
}

#[derive(Parser)]
#[command(about = "Private inference of an ONNX classifier on a veil cluster")]
struct Args {
    /// Your own ONNX model (supported subset in docs/inference.md); it runs on random inputs
    /// in [0, 1). Default: a bundled digits model (--bundled) on the digits test split.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Which bundled digits model runs when --model is not given.
    #[arg(long, value_enum, default_value = "mlp")]
    bundled: Bundled,
    /// How the owner stores the weights.
    #[arg(long, value_enum, default_value = "secret")]
    weights: Weights,
    /// Test images classified one at a time (batch 1) with per-layer timings.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Also classify the whole test split as one batch and compare accuracies.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    full_test: bool,
    /// Fractional bits of the fixed-point encoding.
    #[arg(long, default_value_t = onnx::DEFAULT_FRAC_BITS)]
    frac_bits: u32,
    /// Use this running cluster (its cluster.toml: the one client is owner and user).
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// First port of the local cluster (nodes listen on this and the next two).
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Security mode of the local cluster: semi-honest, or malicious (a deviating node is
    /// caught before any output is released; truncations exact; slower). A given --cluster
    /// runs its own mode.
    #[arg(long, default_value = "semi-honest")]
    security: SecurityMode,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (model, data) = match &args.model {
        Some(path) => (OnnxModel::from_file(path)?, None),
        None => (
            OnnxModel::from_bytes(match args.bundled {
                Bundled::Mlp => digits::MODEL_ONNX,
                Bundled::Cnn => digits::CNN_ONNX,
            })?,
            Some(digits::load().map_err(anyhow::Error::msg)?),
        ),
    };
    let features: usize = model.input.dims[1..]
        .iter()
        .map(|d| d.unwrap_or(1))
        .product();
    println!(
        "model '{}': {} nodes ({}), input '{}' of {features} features",
        model.name,
        model.nodes.len(),
        model
            .nodes
            .iter()
            .map(|n| n.kind.op_type())
            .collect::<Vec<_>>()
            .join(" → "),
        model.input.name,
    );

    // The cluster: local (owner and user are separate clients) or the given one.
    let local;
    let (owner_toml, user_toml) = match &args.cluster {
        Some(toml) => (toml.clone(), toml.clone()),
        None => {
            let t = Instant::now();
            local = DemoCluster::start(args.base_port, None, args.security).await?;
            println!(
                "started a local 3-node cluster on 127.0.0.1:{}-{} (mutual TLS, {} sessions) in \
                 {:.1} s",
                args.base_port,
                args.base_port + 2,
                args.security,
                t.elapsed().as_secs_f64()
            );
            (local.owner_toml.clone(), local.asker_toml.clone())
        }
    };
    let wait = Duration::from_secs(30);
    let mut owner = Client::connect_ready(&owner_toml, wait).await?;
    let mut user = Client::connect_ready(&user_toml, wait).await?;

    // The owner stores the model.
    let t = Instant::now();
    let mode = match args.weights {
        Weights::Secret => WeightMode::Secret,
        Weights::Public => WeightMode::Public,
    };
    let user_name = user.name().to_string();
    // The owner approves the batch sizes this run uses: one image, and the whole test split.
    let batches = match &data {
        Some(d) => vec![1, d.test.len()],
        None => vec![1],
    };
    let upload = ModelUpload {
        name: "digits-mlp",
        model: &model,
        weights: mode,
        frac_bits: args.frac_bits,
        input_bound: 1.0,
        users: &[&user_name],
        batches: &batches,
    };
    let mut stored = inference::upload(&mut owner, upload, |_, _| {})
        .await
        .context("storing the model")?;
    let params: usize = model.tensors.values().map(|t| t.len()).sum();
    let how = match mode {
        WeightMode::Secret => format!(
            "{} weight tensors as secret shares",
            stored.weight_ids.len()
        ),
        WeightMode::Public => "the weights as public constants of the program".to_string(),
    };
    println!(
        "owner stored {how} ({params} parameters, {} fractional bits) in {:.0} ms",
        args.frac_bits,
        t.elapsed().as_secs_f64() * 1e3
    );

    let mut all_match = true;
    match data {
        Some(d) => {
            for s in d.test.iter().take(args.samples) {
                all_match &= classify_one(&mut user, &mut stored, &model, s).await?;
            }
            if args.full_test {
                all_match &= classify_all(&mut user, &mut stored, &model, &d.test).await?;
            }
        }
        None => {
            let x: Vec<f64> = (0..features).map(|_| rand::random::<f64>()).collect();
            let inf = inference::infer(&mut user, &mut stored, &x, 1).await?;
            let want = plain::run(&model, &x, 1)?;
            for (name, values) in &inf.prediction.outputs {
                let reference = &want
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("same outputs")
                    .1;
                let err = max_error(values, reference);
                println!(
                    "  {name}: private {values:.4?}\n  {name}: plaintext {reference:.4?} (max |Δ| {err:.2e})"
                );
            }
            print_cost(&inf);
        }
    }
    if args.cluster.is_none() {
        drop(owner);
    }
    if !all_match {
        bail!("a private prediction DIFFERS from the plaintext model");
    }
    Ok(())
}

/// Classifies one image at batch 1 and prints it beside the plaintext model.
async fn classify_one(
    user: &mut Client,
    model: &mut StoredModel,
    plain_model: &OnnxModel,
    s: &Sample,
) -> Result<bool> {
    let inf = inference::infer(user, model, &s.pixels, 1).await?;
    let want = plain::run(plain_model, &s.pixels, 1)?;
    let (private, logits) = prediction(&inf)?;
    let reference = &want[0].1;
    let expected = onnx::argmax_rows(reference, reference.len())[0] as usize;
    let same = private[0] == expected;
    println!();
    for (i, line) in digits::ascii_art(s).iter().enumerate() {
        match i {
            1 => println!("  {line}   test image #{} (label {})", s.row, s.label),
            3 => println!(
                "  {line}   private prediction {} · plaintext {} · {}",
                private[0],
                expected,
                if same { "matches" } else { "DIFFERS" }
            ),
            5 => println!(
                "  {line}   logits within {:.1e} of plaintext",
                max_error(logits, reference)
            ),
            _ => println!("  {line}"),
        }
    }
    print_cost(&inf);
    Ok(same)
}

/// Classifies every test image in one batch and compares accuracies.
async fn classify_all(
    user: &mut Client,
    model: &mut StoredModel,
    plain_model: &OnnxModel,
    test: &[Sample],
) -> Result<bool> {
    let n = test.len();
    let x = digits::batch(test);
    let inf = inference::infer(user, model, &x, n).await?;
    let want = plain::run(plain_model, &x, n)?;
    let (private, logits) = prediction(&inf)?;
    let cols = want[0].1.len() / n;
    let expected = onnx::argmax_rows(&want[0].1, cols);
    let correct = |pred: &dyn Fn(usize) -> usize| {
        test.iter()
            .enumerate()
            .filter(|(i, s)| pred(*i) == s.label)
            .count()
    };
    let private_ok = correct(&|i| private[i]);
    let plain_ok = correct(&|i| expected[i] as usize);
    let agree = (0..n)
        .filter(|&i| private[i] == expected[i] as usize)
        .count();
    println!(
        "\nwhole test split, one batch of {n}: private accuracy {:.2} % ({private_ok}/{n}), \
         plaintext {:.2} % ({plain_ok}/{n}); {agree}/{n} predictions agree; logits within {:.1e}",
        100.0 * private_ok as f64 / n as f64,
        100.0 * plain_ok as f64 / n as f64,
        max_error(logits, &want[0].1),
    );
    print_cost(&inf);
    let same = agree == n;
    println!(
        "{}",
        if same {
            "all private predictions match plaintext"
        } else {
            "some private predictions DIFFER from plaintext"
        }
    );
    Ok(same)
}

/// The digits model's `class` and `logits` outputs.
fn prediction(inf: &Inference) -> Result<(Vec<usize>, &[f64])> {
    match (inf.prediction.get("class"), inf.prediction.get("logits")) {
        (Some(c), Some(logits)) => Ok((c.iter().map(|&v| v as usize).collect(), logits)),
        _ => bail!("the digits model returns 'logits' and 'class'"),
    }
}

fn max_error(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn print_cost(inf: &Inference) {
    let b = inf.invoke.bytes_sent;
    println!(
        "  {:.1} ms for the user (session {:.1} ms), {} rounds, sent P0 {} B · P1 {} B · P2 {} B",
        inf.wall.as_secs_f64() * 1e3,
        inf.invoke.session_time.as_secs_f64() * 1e3,
        inf.invoke.rounds,
        b[0],
        b[1],
        b[2]
    );
    let layers: Vec<String> = inf
        .layers
        .iter()
        .filter(|l| l.rounds > 0 || l.time > Duration::from_micros(50))
        .map(|l| {
            format!(
                "{} ({}) {:.2} ms/{}r",
                l.name,
                l.op,
                l.time.as_secs_f64() * 1e3,
                l.rounds
            )
        })
        .collect();
    println!("  per layer: {}", layers.join(" · "));
}
