//! Private inference end to end on a local three-node cluster (gRPC, mutual TLS): the bundled
//! digits MLP classifies the whole test split on secret shares with the plaintext accuracy,
//! logits within the fixed-point error, and bad requests are clear errors that leave the
//! cluster serving; a small CNN with secret weights gives the f64 reference's logits.

use std::time::Duration;
use veil_circuits::onnx::{
    INPUT_CLAMP_ROUNDS, OnnxError, OnnxModel, WeightMode, argmax_rows, plain,
};
use veil_client::Client;
use veil_client::inference::{self, InferenceError, ModelUpload, StoredModel};
use veil_examples::digits;
use veil_examples::rag::DemoCluster;
use veil_runtime::SecurityMode;

/// Distinct ports per test and process, below the ephemeral range and checked free (the RAG
/// tests hint from 28,200).
fn base_port(test: u16) -> u16 {
    let hint = 24_000 + (std::process::id() % 200) as u16 * 20 + test * 3;
    veil_node::devnet::free_base_port(hint).expect("free loopback ports")
}

/// Largest |private logit − f64 logit| accepted: inputs and weights round to 2^-13 (f = 12),
/// each rescale adds at most one ulp (2^-12) plus the rounding carried through ≤ 64 + 32 terms;
/// measured 3.0–3.8·10^-3 on the test split.
const LOGIT_TOLERANCE: f64 = 0.02;

/// Largest |a − b| over two equally long slices.
fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

async fn setup(test: u16, weights: WeightMode) -> (DemoCluster, Client, Client, StoredModel) {
    let model = OnnxModel::from_bytes(digits::MODEL_ONNX).expect("model");
    setup_model(test, "digits", &model, weights).await
}

/// A cluster with `model` stored by the owner for the user.
async fn setup_model(
    test: u16,
    name: &str,
    model: &OnnxModel,
    weights: WeightMode,
) -> (DemoCluster, Client, Client, StoredModel) {
    setup_in(test, name, model, weights, SecurityMode::SemiHonest).await
}

/// [`setup_model`] on a cluster in security mode `security`.
async fn setup_in(
    test: u16,
    name: &str,
    model: &OnnxModel,
    weights: WeightMode,
    security: SecurityMode,
) -> (DemoCluster, Client, Client, StoredModel) {
    let cluster = DemoCluster::start(base_port(test), None, security)
        .await
        .expect("cluster");
    let wait = Duration::from_secs(30);
    let mut owner = Client::connect_ready(&cluster.owner_toml, wait)
        .await
        .expect("owner");
    let user = Client::connect_ready(&cluster.asker_toml, wait)
        .await
        .expect("user");
    let user_name = user.name().to_string();
    let upload = ModelUpload {
        name,
        model,
        weights,
        frac_bits: 12,
        input_bound: 1.0,
        users: &[&user_name],
        batches: &[1, 16, 20, digits::load().expect("digits").test.len()],
    };
    let stored = inference::upload(&mut owner, upload, |_, _| {})
        .await
        .expect("upload");
    (cluster, owner, user, stored)
}

/// The bundled models with the ONNX reference evaluator's figures for them.
const BUNDLED: [(&str, &[u8], &str); 2] = [
    (
        "mlp",
        digits::MODEL_ONNX,
        include_str!("../assets/digits/reference.json"),
    ),
    (
        "cnn",
        digits::CNN_ONNX,
        include_str!("../assets/digits/reference_cnn.json"),
    ),
];

#[test]
fn rust_reference_matches_the_onnx_reference_evaluator() {
    for (name, bytes, reference) in BUNDLED {
        check_reference(name, bytes, reference);
    }
}

fn check_reference(name: &str, bytes: &[u8], reference: &str) {
    let model = OnnxModel::from_bytes(bytes).unwrap();
    let reference: serde_json::Value = serde_json::from_str(reference).unwrap();
    let data = digits::load().unwrap();
    assert_eq!((data.train.len(), data.test.len()), (1438, 359));
    let x = digits::batch(&data.test);
    let out = plain::run(&model, &x, data.test.len()).unwrap();
    let classes = argmax_rows(&out[0].1, 10);
    let correct = classes
        .iter()
        .zip(&data.test)
        .filter(|(c, s)| **c as usize == s.label)
        .count();
    let acc = correct as f64 / data.test.len() as f64;
    assert!(
        (acc - reference["test_accuracy"].as_f64().unwrap()).abs() < 1e-9,
        "{name}"
    );
    assert_eq!(
        out[1].1, classes,
        "the ONNX ArgMax output equals argmax of logits"
    );
    for (i, row) in reference["first_test_logits"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for (j, want) in row.as_array().unwrap().iter().enumerate() {
            let got = out[0].1[i * 10 + j];
            assert!(
                (got - want.as_f64().unwrap()).abs() < 1e-4,
                "{name}: logit {i},{j}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_accuracy_equals_plaintext_on_the_whole_test_split() {
    let (_cluster, _owner, mut user, mut stored) = setup(0, WeightMode::Secret).await;
    let model = OnnxModel::from_bytes(digits::MODEL_ONNX).unwrap();
    // The MLP: the input clamp, 1 + 8 + 1 rounds, argmax by the user.
    whole_split(
        &mut user,
        &mut stored,
        &model,
        u64::from(INPUT_CLAMP_ROUNDS) + 10,
    )
    .await;
}

/// The MLP with secret weights on a malicious-mode cluster (every session verified, exact
/// truncations): 20 test images as one batch and one image alone classify as the plaintext
/// model does, logits within the tolerance, receipts stating the mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mlp_classifies_in_malicious_mode() {
    let model = OnnxModel::from_bytes(digits::MODEL_ONNX).unwrap();
    let (_cluster, _owner, mut user, mut stored) = setup_in(
        4,
        "digits-malicious",
        &model,
        WeightMode::Secret,
        SecurityMode::Malicious,
    )
    .await;
    let test = digits::load().unwrap().test;
    for batch in [20usize, 1] {
        let x = digits::batch(&test[..batch]);
        let inf = inference::infer(&mut user, &mut stored, &x, batch)
            .await
            .expect("infer");
        assert_eq!(inf.invoke.receipt.security, SecurityMode::Malicious);
        let want = plain::run(&model, &x, batch).unwrap();
        let err = max_err(inf.prediction.get("logits").unwrap(), &want[0].1);
        assert!(err < LOGIT_TOLERANCE, "max logit error {err}");
        assert_eq!(inf.prediction.get("class").unwrap(), want[1].1.as_slice());
        let per_layer: u32 = inf.layers.iter().map(|l| l.rounds).sum();
        assert_eq!(
            u64::from(per_layer),
            inf.invoke.rounds - inf.invoke.verify_rounds
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trained_cnn_keeps_its_accuracy_on_shares() {
    let model = OnnxModel::from_bytes(digits::CNN_ONNX).unwrap();
    let (_cluster, _owner, mut user, mut stored) =
        setup_model(3, "digits-cnn-trained", &model, WeightMode::Secret).await;
    // The CNN: the input clamp, conv 1, max pool 16 with the ReLU after it 8, dense 1;
    // argmax by the user.
    whole_split(
        &mut user,
        &mut stored,
        &model,
        u64::from(INPUT_CLAMP_ROUNDS) + 26,
    )
    .await;
}

/// Classifies the whole test split as one batch (then three images one at a time): logits
/// within the tolerance, private accuracy = plaintext accuracy, `rounds` as given.
async fn whole_split(user: &mut Client, stored: &mut StoredModel, model: &OnnxModel, rounds: u64) {
    let test = digits::load().unwrap().test;
    let n = test.len();
    let x = digits::batch(&test);
    let inf = inference::infer(user, stored, &x, n).await.expect("infer");
    let want = plain::run(model, &x, n).unwrap();
    let logits = inf.prediction.get("logits").unwrap();
    let err = max_err(logits, &want[0].1);
    assert!(err < LOGIT_TOLERANCE, "max logit error {err}");
    let private = inf.prediction.get("class").unwrap();
    assert_eq!(private, argmax_rows(logits, 10).as_slice());
    let accuracy = |classes: &[f64]| {
        classes
            .iter()
            .zip(&test)
            .filter(|(c, s)| **c as usize == s.label)
            .count() as f64
            / n as f64
    };
    let (acc_private, acc_plain) = (accuracy(private), accuracy(&want[1].1));
    assert!(
        (acc_private - acc_plain).abs() <= 0.005,
        "private {acc_private} vs plaintext {acc_plain}"
    );
    assert!(acc_plain > 0.95);
    // The per-layer schedule covers the whole program.
    let per_layer: u32 = inf.layers.iter().map(|l| l.rounds).sum();
    assert_eq!(u64::from(per_layer), inf.invoke.rounds);
    assert_eq!(inf.invoke.rounds, rounds);

    // Batch 1 reuses the stored weights; a second call reuses the stored program.
    for s in test.iter().take(3) {
        let one = inference::infer(user, stored, &s.pixels, 1)
            .await
            .expect("infer one");
        let want = plain::run(model, &s.pixels, 1).unwrap();
        assert_eq!(one.prediction.get("class").unwrap(), want[1].1.as_slice());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_weights_and_bad_requests() {
    let (_cluster, mut owner, mut user, mut stored) = setup(1, WeightMode::Public).await;
    assert!(
        stored.weight_ids.is_empty(),
        "public weights live in the program"
    );
    let test = digits::load().unwrap().test;
    let model = OnnxModel::from_bytes(digits::MODEL_ONNX).unwrap();
    let x = digits::batch(&test[..20]);
    let inf = inference::infer(&mut user, &mut stored, &x, 20)
        .await
        .expect("infer");
    let want = plain::run(&model, &x, 20).unwrap();
    assert_eq!(inf.prediction.get("class").unwrap(), want[1].1.as_slice());

    // Wrong length and out-of-range pixels: clear errors before anything is sent.
    let e = inference::infer(&mut user, &mut stored, &x[..63], 1)
        .await
        .unwrap_err();
    assert!(
        matches!(e, InferenceError::Model(OnnxError::InputShape(_))),
        "{e}"
    );
    let mut bright = test[0].pixels.clone();
    bright[5] = 16.0; // a raw pixel, not scaled
    let e = inference::infer(&mut user, &mut stored, &bright, 1)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("input bound"), "{e}");

    // Secret weights of one owner are refused to a client that is not a listed user.
    let secret = OnnxModel::from_bytes(digits::MODEL_ONNX).unwrap();
    let upload = ModelUpload {
        name: "owner-only",
        model: &secret,
        weights: WeightMode::Secret,
        frac_bits: 12,
        input_bound: 1.0,
        users: &[],
        batches: &[],
    };
    let mut private = inference::upload(&mut owner, upload, |_, _| {})
        .await
        .unwrap();
    let e = inference::infer(&mut user, &mut private, &test[0].pixels, 1)
        .await
        .unwrap_err();
    assert!(matches!(e, InferenceError::Client(_)), "{e}");
    // The owner itself may use it; and the cluster still serves the user's public model.
    let own = inference::infer(&mut owner, &mut private, &test[0].pixels, 1)
        .await
        .expect("owner infers");
    assert_eq!(own.prediction.get("class").unwrap(), &want[1].1[..1]);
    inference::delete(&mut owner, &private).await.unwrap();
    let again = inference::infer(&mut user, &mut stored, &x, 20)
        .await
        .expect("still serving");
    assert_eq!(again.prediction.get("class").unwrap(), want[1].1.as_slice());
}

/// A small CNN (random weights) on the digits' 8×8 images: Conv 3×3 (padding 1) → Relu →
/// MaxPool 2×2 → Conv 3×3 → AveragePool 2×2 → Flatten → Gemm, built as an `OnnxModel`.
fn digits_cnn() -> OnnxModel {
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;
    use veil_circuits::onnx::{GraphInput, Node, NodeKind, Tensor};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut t = |dims: &[usize], scale: f64| Tensor {
        dims: dims.to_vec(),
        data: (0..dims.iter().product::<usize>())
            .map(|_| rng.random_range(-scale..scale))
            .collect(),
    };
    let n = |name: &str, kind: NodeKind, inputs: &[&str], output: &str| Node {
        name: name.into(),
        kind,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        output: output.into(),
    };
    OnnxModel {
        name: "digits-cnn".into(),
        input: GraphInput {
            name: "img".into(),
            dims: vec![None, Some(1), Some(8), Some(8)],
        },
        nodes: vec![
            n(
                "conv1",
                NodeKind::Conv {
                    kernel: Some((3, 3)),
                    stride: 1,
                    pad: 1,
                },
                &["img", "k1", "c1"],
                "h1",
            ),
            n("relu1", NodeKind::Relu, &["h1"], "a1"),
            n(
                "pool1",
                NodeKind::MaxPool {
                    kernel: (2, 2),
                    stride: 2,
                },
                &["a1"],
                "p1",
            ),
            n(
                "conv2",
                NodeKind::Conv {
                    kernel: None,
                    stride: 1,
                    pad: 0,
                },
                &["p1", "k2"],
                "h2",
            ),
            n(
                "pool2",
                NodeKind::AveragePool {
                    kernel: (2, 2),
                    stride: 1,
                    pad: 0,
                },
                &["h2"],
                "p2",
            ),
            n("flat", NodeKind::Flatten, &["p2"], "f"),
            n(
                "fc",
                NodeKind::Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_b: true,
                },
                &["f", "w", "b"],
                "logits",
            ),
        ],
        tensors: HashMap::from([
            ("k1".to_string(), t(&[4, 1, 3, 3], 0.5)),
            ("c1".to_string(), t(&[4], 0.2)),
            ("k2".to_string(), t(&[6, 4, 3, 3], 0.3)),
            ("w".to_string(), t(&[10, 6], 0.5)),
            ("b".to_string(), t(&[10], 0.2)),
        ]),
        outputs: vec!["logits".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cnn_with_secret_weights_runs_on_the_cluster() {
    let model = digits_cnn();
    let (_cluster, _owner, mut user, mut stored) =
        setup_model(2, "digits-cnn", &model, WeightMode::Secret).await;
    let test = digits::load().unwrap().test;
    for batch in [1, 16] {
        let x = digits::batch(&test[..batch]);
        let inf = inference::infer(&mut user, &mut stored, &x, batch)
            .await
            .expect("infer");
        let want = plain::run(&model, &x, batch).unwrap();
        assert!(
            want[0].1.iter().any(|v| v.abs() > 0.1),
            "logits are not all near 0"
        );
        let got = inf.prediction.get("logits").unwrap();
        assert_eq!(got.len(), batch * 10);
        let err = max_err(got, &want[0].1);
        assert!(err < LOGIT_TOLERANCE, "batch {batch}: logit error {err}");
        // clamp, conv, relu, pool (2 levels), conv, average, gemm.
        assert_eq!(
            inf.invoke.rounds,
            u64::from(INPUT_CLAMP_ROUNDS) + 1 + 8 + 16 + 1 + 1 + 1
        );
        assert_eq!(inf.layers.len(), 8);
    }
}
