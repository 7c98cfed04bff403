//! The benchmarked neural networks (seeded random weights): dense ReLU MLPs and a LeNet-style
//! CNN, as ONNX-subset models ready to compile.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use veil_circuits::onnx::OnnxModel;

/// Graph output of every network's model: the logits.
pub const LOGITS: &str = "logits";

/// A benchmarked network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Dense ReLU layers of these sizes (inputs first).
    Dense(&'static [usize]),
    /// On `[N, 1, 28, 28]`: conv 5×5 → 8, ReLU, max pool 2×2, conv 5×5 → 16, ReLU, max pool
    /// 2×2, dense 256 → 10.
    LeNet,
}

/// The benchmarked networks.
pub const NETWORKS: [Network; 3] = [
    Network::Dense(&[784, 128, 10]),
    Network::Dense(&[784, 128, 128, 10]),
    Network::LeNet,
];

impl Network {
    /// `784-128-10`, or `lenet-28x28`.
    pub fn name(self) -> String {
        match self {
            Network::Dense(sizes) => arch_name(sizes),
            Network::LeNet => "lenet-28x28".into(),
        }
    }

    /// (input features, classes).
    pub fn io(self) -> (usize, usize) {
        match self {
            Network::Dense(sizes) => (sizes[0], *sizes.last().expect("≥ 2 sizes")),
            Network::LeNet => (784, 10),
        }
    }

    /// The network with seeded weights and biases uniform in ±1/√fan_in.
    pub fn model(self, seed: u64) -> OnnxModel {
        match self {
            Network::Dense(sizes) => random_mlp(sizes, seed),
            Network::LeNet => random_lenet(seed),
        }
    }
}

/// `sizes` joined by `-`.
pub fn arch_name(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-")
}

/// A dense ReLU network of `sizes` with seeded weights and biases uniform in ±1/√fan_in.
pub fn random_mlp(sizes: &[usize], seed: u64) -> OnnxModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    OnnxModel::mlp(sizes, |fan_in| {
        let bound = 1.0 / (fan_in as f64).sqrt();
        rng.random_range(-bound..bound)
    })
}

/// A LeNet-style CNN ([`Network::LeNet`]) with seeded weights and biases uniform in
/// ±1/√fan_in.
pub fn random_lenet(seed: u64) -> OnnxModel {
    use veil_circuits::onnx::{GraphInput, Node, NodeKind, Tensor};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = |dims: &[usize], fan_in: usize| {
        let bound = 1.0 / (fan_in as f64).sqrt();
        Tensor {
            dims: dims.to_vec(),
            data: (0..dims.iter().product::<usize>())
                .map(|_| rng.random_range(-bound..bound))
                .collect(),
        }
    };
    let tensors = HashMap::from([
        ("k1".to_string(), t(&[8, 1, 5, 5], 25)),
        ("c1".to_string(), t(&[8], 25)),
        ("k2".to_string(), t(&[16, 8, 5, 5], 200)),
        ("c2".to_string(), t(&[16], 200)),
        ("w3".to_string(), t(&[10, 256], 256)),
        ("b3".to_string(), t(&[10], 256)),
    ]);
    let node = |name: &str, kind: NodeKind, inputs: &[&str], output: &str| Node {
        name: name.into(),
        kind,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        output: output.into(),
    };
    let conv = NodeKind::Conv {
        kernel: Some((5, 5)),
        stride: 1,
        pad: 0,
    };
    let pool = NodeKind::MaxPool {
        kernel: (2, 2),
        stride: 2,
    };
    OnnxModel {
        name: "lenet".into(),
        input: GraphInput {
            name: "x".into(),
            dims: vec![None, Some(1), Some(28), Some(28)],
        },
        nodes: vec![
            node("conv1", conv.clone(), &["x", "k1", "c1"], "h1"),
            node("relu1", NodeKind::Relu, &["h1"], "a1"),
            node("pool1", pool.clone(), &["a1"], "p1"),
            node("conv2", conv, &["p1", "k2", "c2"], "h2"),
            node("relu2", NodeKind::Relu, &["h2"], "a2"),
            node("pool2", pool, &["a2"], "p2"),
            node("flat", NodeKind::Flatten, &["p2"], "f"),
            node(
                "fc",
                NodeKind::Gemm {
                    alpha: 1.0,
                    beta: 1.0,
                    trans_b: true,
                },
                &["f", "w3", "b3"],
                LOGITS,
            ),
        ],
        tensors,
        outputs: vec![LOGITS.into()],
    }
}
