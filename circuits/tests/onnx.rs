//! ONNX import: models built with the generated protobuf types, decoded, compiled, and run by
//! the plaintext fixed-point evaluator against the f64 reference on random inputs.

use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::HashMap;
use veil_circuits::eval::evaluate;
use veil_circuits::onnx::proto::{self, tensor_proto::DataType};
use veil_circuits::onnx::{
    CompileOptions, INPUT_CLAMP_ROUNDS, OnnxError, OnnxModel, OutputKind, WeightMode, compile,
    plain,
};

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> proto::TensorProto {
    proto::TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn int_tensor(name: &str, data: &[i64]) -> proto::TensorProto {
    proto::TensorProto {
        name: Some(name.into()),
        dims: vec![data.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

fn attr_i(name: &str, i: i64) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        r#type: Some(proto::attribute_proto::AttributeType::Int as i32),
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        ints: ints.to_vec(),
        r#type: Some(proto::attribute_proto::AttributeType::Ints as i32),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<proto::AttributeProto>,
) -> proto::NodeProto {
    proto::NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{Dimension, dimension::Value as Dim};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(x) => Dim::DimValue(*x as i64),
                None => Dim::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    proto::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(
                proto::type_proto::Tensor {
                    elem_type: Some(DataType::Float as i32),
                    shape: Some(proto::TensorShapeProto { dim }),
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model_bytes(
    input: proto::ValueInfoProto,
    nodes: Vec<proto::NodeProto>,
    inits: Vec<proto::TensorProto>,
    outputs: &[&str],
) -> Vec<u8> {
    proto::ModelProto {
        ir_version: Some(8),
        graph: Some(proto::GraphProto {
            name: Some("test".into()),
            node: nodes,
            initializer: inits,
            input: vec![input],
            output: outputs.iter().map(|o| value_info(o, &[None])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Largest |a − b| over two equally long slices.
fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn random(rng: &mut ChaCha20Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// A `k-h-m` MLP: Gemm(transB) → Relu → Gemm → logits, plus ArgMax → class.
fn mlp(rng: &mut ChaCha20Rng, k: usize, h: usize, m: usize, scale: f32) -> Vec<u8> {
    model_bytes(
        value_info("x", &[None, Some(k)]),
        vec![
            node(
                "Gemm",
                "fc1",
                &["x", "w1", "b1"],
                "h",
                vec![attr_i("transB", 1)],
            ),
            node("Relu", "relu", &["h"], "a", vec![]),
            node(
                "Gemm",
                "fc2",
                &["a", "w2", "b2"],
                "logits",
                vec![attr_i("transB", 1)],
            ),
            node(
                "ArgMax",
                "argmax",
                &["logits"],
                "class",
                vec![attr_i("axis", 1), attr_i("keepdims", 0)],
            ),
        ],
        vec![
            tensor("w1", &[h, k], &random(rng, h * k, scale)),
            tensor("b1", &[h], &random(rng, h, scale)),
            tensor("w2", &[m, h], &random(rng, m * h, scale)),
            tensor("b2", &[m], &random(rng, m, scale)),
        ],
        &["logits", "class"],
    )
}

/// Runs the compiled program in the plaintext fixed-point evaluator.
fn run_fixed(
    model: &OnnxModel,
    opts: &CompileOptions,
    x: &[f64],
) -> Result<veil_circuits::onnx::Prediction, OnnxError> {
    let c = compile(model, opts)?;
    let mut inputs: HashMap<String, Vec<u64>> = HashMap::new();
    inputs.insert(c.input.clone(), c.encode_input(x)?);
    for w in &c.weights {
        inputs.insert(w.input.clone(), w.words.clone());
    }
    let raw = evaluate(&c.program, &inputs).expect("evaluates");
    c.decode(&raw)
}

#[test]
fn mlp_matches_f64_reference_on_random_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (k, h, m, batch) in [(16, 8, 4, 1), (64, 32, 10, 7), (30, 20, 3, 16)] {
        let model = OnnxModel::from_bytes(&mlp(&mut rng, k, h, m, 0.5)).unwrap();
        let x: Vec<f64> = (0..batch * k)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let want = plain::run(&model, &x, batch).unwrap();
        for weights in [WeightMode::Secret, WeightMode::Public] {
            let opts = CompileOptions {
                batch,
                weights,
                ..Default::default()
            };
            let got = run_fixed(&model, &opts, &x).unwrap();
            let (gl, wl) = (got.get("logits").unwrap(), &want[0].1);
            let err = max_err(gl, wl);
            // Weights and inputs round to 2^-13; k terms of |x|≤1 and a hidden layer: ≤ 0.05.
            assert!(err < 0.05, "logit error {err} for {k}-{h}-{m}");
            // Class = argmax of the returned logits, and of the reference where the margin is clear.
            for (r, (&c, row)) in got
                .get("class")
                .unwrap()
                .iter()
                .zip(wl.chunks(m))
                .enumerate()
            {
                let mut s = row.to_vec();
                s.sort_by(|a, b| b.partial_cmp(a).unwrap());
                if s[0] - s[1] > 0.1 {
                    assert_eq!(c, want[1].1[r], "class of row {r}");
                }
            }
        }
    }
}

#[test]
fn inputs_are_clamped_to_the_bound_inside_the_program() {
    // Raw input words (as an adversarial user would send them, past `encode_input`) at and
    // beyond the bound, including the far ends of the ring: the program computes on the clamped
    // input, exactly as if the user had sent it.
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let model = OnnxModel::from_bytes(&mlp(&mut rng, 16, 8, 4, 0.5)).unwrap();
    let opts = CompileOptions {
        input_bound: 2.0,
        ..Default::default()
    };
    let c = compile(&model, &opts).unwrap();
    let f = veil_circuits::FracBits(opts.frac_bits);
    let enc = |v: f64| veil_circuits::fixed::encode(v, f).unwrap();
    let ends = [
        i64::MIN as u64,
        i64::MAX as u64,
        (i64::MIN + 1) as u64,
        enc(2.0) + 1,
        enc(-2.0) - 1,
        enc(2.0),
        enc(-2.0),
        enc(0.5),
        enc(-1.5),
        enc(1e6),
        enc(-1e6),
        0,
    ];
    for trial in 0..8 {
        let raw: Vec<u64> = (0..16)
            .map(|i| match (i + trial) % 3 {
                0 => ends[rng.random_range(0..ends.len())],
                1 => rng.random(),
                _ => enc(rng.random_range(-3.0..3.0)),
            })
            .collect();
        // Clamped; within the bound of the ring's ends (only a bypassing client sends those),
        // zero.
        let bound = enc(2.0) as i64;
        let clamped: Vec<u64> = raw
            .iter()
            .map(|&w| match (w as i64).checked_abs() {
                Some(a) if a <= i64::MAX - bound => (w as i64).clamp(-bound, bound) as u64,
                _ => 0,
            })
            .collect();
        let mut inputs: HashMap<String, Vec<u64>> = HashMap::new();
        for w in &c.weights {
            inputs.insert(w.input.clone(), w.words.clone());
        }
        inputs.insert(c.input.clone(), raw);
        let got = evaluate(&c.program, &inputs).expect("evaluates");
        inputs.insert(c.input.clone(), clamped);
        let want = evaluate(&c.program, &inputs).expect("evaluates");
        assert_eq!(got, want, "trial {trial}");
    }
}

#[test]
fn argmax_on_shares_when_logits_stay_secret() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut bytes = proto::ModelProto::decode(mlp(&mut rng, 12, 6, 5, 0.5).as_slice()).unwrap();
    // Only the class is an output: the ArgMax runs on shares.
    let g = bytes.graph.as_mut().unwrap();
    g.output.retain(|o| o.name() == "class");
    let model = OnnxModel::from_bytes(&bytes.encode_to_vec()).unwrap();
    let batch = 9;
    let x: Vec<f64> = (0..batch * 12)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let opts = CompileOptions {
        batch,
        ..Default::default()
    };
    let c = compile(&model, &opts).unwrap();
    assert_eq!(c.outputs[0].kind, OutputKind::Class);
    let got = run_fixed(&model, &opts, &x).unwrap();
    let logits = plain::run(&model, &x, batch).unwrap();
    assert_eq!(got.outputs.len(), 1);
    assert_eq!(got.get("class").unwrap(), logits[0].1.as_slice());
}

#[test]
fn matmul_add_sigmoid_softmax_reshape_flatten() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let bytes = model_bytes(
        value_info("img", &[None, Some(1), Some(4), Some(4)]),
        vec![
            node("Flatten", "flat", &["img"], "f", vec![]),
            node("MatMul", "mm", &["f", "w"], "p", vec![]),
            node("Add", "bias", &["p", "b"], "q", vec![]),
            node("Sigmoid", "sig", &["q"], "s", vec![]),
            node("Reshape", "rs", &["s", "shape"], "r", vec![]),
            node("Dropout", "drop", &["r"], "d", vec![]),
            node("Softmax", "sm", &["d"], "probs", vec![attr_i("axis", -1)]),
        ],
        vec![
            tensor("w", &[16, 6], &random(&mut rng, 96, 1.0)),
            tensor("b", &[1, 6], &random(&mut rng, 6, 1.0)),
            int_tensor("shape", &[0, -1]),
        ],
        &["probs"],
    );
    let model = OnnxModel::from_bytes(&bytes).unwrap();
    let batch = 5;
    let x: Vec<f64> = (0..batch * 16)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let want = plain::run(&model, &x, batch).unwrap();
    let got = run_fixed(
        &model,
        &CompileOptions {
            batch,
            ..Default::default()
        },
        &x,
    )
    .unwrap();
    let err = max_err(&got.outputs[0].1, &want[0].1);
    assert!(err < 0.01, "softmax(sigmoid) error {err}");
}

#[test]
fn unsupported_operator_is_named() {
    let bytes = model_bytes(
        value_info("x", &[None, Some(1), Some(8), Some(8)]),
        vec![node("LpPool", "lp1", &["x"], "y", vec![])],
        vec![],
        &["y"],
    );
    let e = OnnxModel::from_bytes(&bytes).unwrap_err();
    assert!(matches!(e, OnnxError::Unsupported { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("lp1") && msg.contains("'LpPool'") && msg.contains("Conv"),
        "{msg}"
    );
}

#[test]
fn bad_files_shapes_and_inputs_are_clear_errors() {
    // Not protobuf at all.
    let e = OnnxModel::from_bytes(b"\xff\xff\xff garbage").unwrap_err();
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
    // A model without a graph.
    let e = OnnxModel::from_bytes(&proto::ModelProto::default().encode_to_vec()).unwrap_err();
    assert!(e.to_string().contains("no graph"), "{e}");
    // Input features do not match the weight.
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut m = proto::ModelProto::decode(mlp(&mut rng, 8, 4, 3, 0.5).as_slice()).unwrap();
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[None, Some(9)]);
    let model = OnnxModel::from_bytes(&m.encode_to_vec()).unwrap();
    let e = compile(&model, &CompileOptions::default()).unwrap_err();
    assert!(
        matches!(e, OnnxError::Shape { .. }) && e.to_string().contains("fc1"),
        "{e}"
    );
    // Wrong input length or out-of-bound values for a good model.
    let model = OnnxModel::from_bytes(&mlp(&mut rng, 8, 4, 3, 0.5)).unwrap();
    let c = compile(
        &model,
        &CompileOptions {
            batch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let e = c.encode_input(&[0.0; 15]).unwrap_err();
    assert!(e.to_string().contains("2 × 8"), "{e}");
    let mut x = vec![0.0; 16];
    x[3] = 7.0;
    let e = c.encode_input(&x).unwrap_err();
    assert!(
        e.to_string().contains("element 3") && !e.to_string().contains('7'),
        "{e}"
    );
    // Batch 0, silly frac bits.
    assert!(
        compile(
            &model,
            &CompileOptions {
                batch: 0,
                ..Default::default()
            }
        )
        .is_err()
    );
    assert!(
        compile(
            &model,
            &CompileOptions {
                frac_bits: 40,
                ..Default::default()
            }
        )
        .is_err()
    );
    // transA is refused by name.
    let bytes = model_bytes(
        value_info("x", &[None, Some(2)]),
        vec![node(
            "Gemm",
            "g",
            &["x", "w"],
            "y",
            vec![attr_i("transA", 1)],
        )],
        vec![tensor("w", &[2, 2], &[1.0; 4])],
        &["y"],
    );
    let e = OnnxModel::from_bytes(&bytes).unwrap_err();
    assert!(e.to_string().contains("transA"), "{e}");
}

#[test]
fn tensor_dimensions_that_overflow_are_an_error_not_a_panic() {
    // Found by the `onnx_model` fuzz target: the element count of [2^40, 2^40] overflowed
    // (a panic with overflow checks, a wrapped count of 0 matching empty data without).
    let mut w = tensor("w", &[1 << 40, 1 << 40], &[]);
    w.raw_data = None;
    for dims in [
        vec![1i64 << 40, 1 << 40],
        vec![1 << 20, 1 << 20, 1 << 20],
        vec![1 << 33],
    ] {
        w.dims = dims.clone();
        let bytes = model_bytes(
            value_info("x", &[None, Some(4)]),
            vec![node("Gemm", "fc", &["x", "w"], "y", vec![])],
            vec![w.clone()],
            &["y"],
        );
        let e = OnnxModel::from_bytes(&bytes).unwrap_err();
        assert!(
            e.to_string().contains("describe more than 2^32 elements"),
            "{dims:?}: {e}"
        );
    }
}

#[test]
fn weights_too_large_for_fixed_point_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let model = OnnxModel::from_bytes(&mlp(&mut rng, 32, 16, 4, 5000.0)).unwrap();
    let e = compile(&model, &CompileOptions::default()).unwrap_err();
    assert!(matches!(e, OnnxError::Range { .. }), "{e}");
    assert!(
        e.to_string().contains("fc1") && e.to_string().contains("too large"),
        "{e}"
    );
    // The same model with tame weights but a huge declared input range is refused too.
    let model = OnnxModel::from_bytes(&mlp(&mut rng, 32, 16, 4, 0.5)).unwrap();
    let opts = CompileOptions {
        input_bound: 1e9,
        ..Default::default()
    };
    assert!(matches!(
        compile(&model, &opts),
        Err(OnnxError::Range { .. })
    ));
}

#[test]
fn architecture_compiles_to_the_same_program() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let model = OnnxModel::from_bytes(&mlp(&mut rng, 20, 10, 5, 0.5)).unwrap();
    let opts = CompileOptions {
        batch: 3,
        ..Default::default()
    };
    let full = compile(&model, &opts).unwrap();
    let arch = model.architecture();
    assert!(arch.tensors.values().all(|t| t.data.is_empty()));
    let bare = compile(&arch, &opts).unwrap();
    assert_eq!(full.program.id(), bare.program.id());
    assert!(bare.weights.iter().all(|w| w.words.is_empty()));
    // Public weights need the values.
    let public = CompileOptions {
        weights: WeightMode::Public,
        ..opts
    };
    assert!(compile(&arch, &public).is_err());
}

/// A small CNN on `[N, 2, 8, 8]` images: Conv 3×3 (padding 1, bias) → Relu → MaxPool 2×2 →
/// Conv 3×3 (padding 1, no bias) → AveragePool 3×3 (stride 1, padding 1) → Flatten (48
/// features, 3 channels of 4×4: the Gemm's weight rows must follow ONNX's order) → Gemm.
fn cnn(rng: &mut ChaCha20Rng, extra: Vec<proto::NodeProto>) -> Vec<u8> {
    let mut nodes = vec![
        node(
            "Conv",
            "conv1",
            &["img", "k1", "c1"],
            "h1",
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_ints("strides", &[1, 1]),
            ],
        ),
        node("Relu", "relu1", &["h1"], "a1", vec![]),
        node(
            "MaxPool",
            "pool1",
            &["a1"],
            "p1",
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
            ],
        ),
        node(
            "Conv",
            "conv2",
            &["p1", "k2"],
            "h2",
            vec![attr_ints("pads", &[1, 1, 1, 1])],
        ),
        node(
            "AveragePool",
            "pool2",
            &["h2"],
            "p2",
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_i("count_include_pad", 1),
            ],
        ),
        node("Flatten", "flat", &["p2"], "f", vec![]),
        node(
            "Gemm",
            "fc",
            &["f", "w", "b"],
            "logits",
            vec![attr_i("transB", 1)],
        ),
    ];
    nodes.extend(extra);
    model_bytes(
        value_info("img", &[None, Some(2), Some(8), Some(8)]),
        nodes,
        vec![
            tensor("k1", &[4, 2, 3, 3], &random(rng, 72, 0.5)),
            tensor("c1", &[4], &random(rng, 4, 0.5)),
            tensor("k2", &[3, 4, 3, 3], &random(rng, 108, 0.5)),
            tensor("w", &[5, 48], &random(rng, 240, 0.5)),
            tensor("b", &[5], &random(rng, 5, 0.5)),
        ],
        &["logits"],
    )
}

#[test]
fn cnn_matches_f64_reference_on_random_images() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let model = OnnxModel::from_bytes(&cnn(&mut rng, vec![])).unwrap();
    for batch in [1, 3] {
        let x: Vec<f64> = (0..batch * 128)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let want = plain::run(&model, &x, batch).unwrap();
        assert_eq!(want[0].1.len(), batch * 5);
        for weights in [WeightMode::Secret, WeightMode::Public] {
            let opts = CompileOptions {
                batch,
                weights,
                ..Default::default()
            };
            let compiled = compile(&model, &opts).unwrap();
            let got = run_fixed(&model, &opts, &x).unwrap();
            let err = max_err(&got.outputs[0].1, &want[0].1);
            assert!(err < 0.02, "batch {batch}: logit error {err}");
            // The input clamp, a fused round per conv and for the Gemm, the ReLU's sign test,
            // two max-pool comparison levels and the average's truncation.
            let rounds = veil_circuits::cost::program_cost(&compiled.program).rounds;
            assert_eq!(
                rounds,
                INPUT_CLAMP_ROUNDS + 3 * veil_circuits::cost::MAX_ROUNDS + 3 + 1
            );
            let names: Vec<&str> = compiled.layers.iter().map(|l| l.op.as_str()).collect();
            assert_eq!(
                names,
                [
                    "Clamp",
                    "Conv",
                    "Relu",
                    "MaxPool",
                    "Conv",
                    "AveragePool",
                    "Flatten",
                    "Gemm"
                ]
            );
            // The ReLU feeding the max pool runs after it, on a quarter of the elements.
            assert!(
                compiled.layers[2].ops.is_empty(),
                "relu moved after the pool"
            );
        }
    }
    // The architecture alone (no weight values) compiles to the same program.
    let opts = CompileOptions::default();
    assert_eq!(
        compile(&model.architecture(), &opts).unwrap().program.id(),
        compile(&model, &opts).unwrap().program.id()
    );
}

#[test]
fn unsupported_conv_and_pool_forms_are_clear_errors() {
    let conv = |attrs: Vec<proto::AttributeProto>| {
        model_bytes(
            value_info("img", &[None, Some(1), Some(6), Some(6)]),
            vec![node("Conv", "c", &["img", "k"], "y", attrs)],
            vec![tensor("k", &[2, 1, 3, 3], &[0.1; 18])],
            &["y"],
        )
    };
    for (attrs, want) in [
        (vec![attr_i("group", 2)], "group"),
        (vec![attr_ints("dilations", &[2, 2])], "dilations"),
        (vec![attr_ints("pads", &[1, 0, 1, 0])], "equal padding"),
        (
            vec![attr_ints("strides", &[1, 2])],
            "equal positive strides",
        ),
    ] {
        let e = OnnxModel::from_bytes(&conv(attrs)).unwrap_err();
        assert!(
            matches!(e, OnnxError::Attribute { .. }) && e.to_string().contains(want),
            "{e}"
        );
    }
    let pool = |op: &str, attrs: Vec<proto::AttributeProto>| {
        model_bytes(
            value_info("img", &[None, Some(1), Some(6), Some(6)]),
            vec![node(op, "p", &["img"], "y", attrs)],
            vec![],
            &["y"],
        )
    };
    for (op, attrs, want) in [
        ("MaxPool", vec![], "kernel_shape is required"),
        (
            "MaxPool",
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
            "padded max pooling",
        ),
        (
            "AveragePool",
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
            "count_include_pad",
        ),
        (
            "AveragePool",
            vec![attr_ints("kernel_shape", &[2, 2]), attr_i("ceil_mode", 1)],
            "ceil_mode",
        ),
    ] {
        let e = OnnxModel::from_bytes(&pool(op, attrs)).unwrap_err();
        assert!(e.to_string().contains(want), "{op}: {e}");
    }
    // A convolution's output as a graph output, or under an ArgMax, is refused at compile
    // time (its features are held channels-last); so is a weight of the wrong depth.
    let opts = CompileOptions::default();
    let model = OnnxModel::from_bytes(&conv(vec![])).unwrap();
    let e = compile(&model, &opts).unwrap_err();
    assert!(e.to_string().contains("channels-last"), "{e}");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let argmax = node(
        "ArgMax",
        "am",
        &["p2"],
        "cls",
        vec![attr_i("axis", 1), attr_i("keepdims", 0)],
    );
    let model = OnnxModel::from_bytes(&cnn(&mut rng, vec![argmax])).unwrap();
    let e = compile(&model, &opts).unwrap_err();
    assert!(e.to_string().contains("channels-last"), "{e}");
    let deep = model_bytes(
        value_info("img", &[None, Some(3), Some(6), Some(6)]),
        vec![node("Conv", "c", &["img", "k"], "y", vec![])],
        vec![tensor("k", &[2, 1, 3, 3], &[0.1; 18])],
        &["y"],
    );
    let e = compile(&OnnxModel::from_bytes(&deep).unwrap(), &opts).unwrap_err();
    assert!(e.to_string().contains("3 channels"), "{e}");
}

#[test]
fn a_relu_read_elsewhere_stays_before_the_pool() {
    // The ReLU's output feeds the max pool and the graph output: it is computed in place.
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let bytes = model_bytes(
        value_info("img", &[None, Some(1), Some(4), Some(4)]),
        vec![
            node("Relu", "relu", &["img"], "a", vec![]),
            node(
                "MaxPool",
                "pool",
                &["a"],
                "p",
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            ),
            node("Flatten", "flat", &["p"], "f", vec![]),
            node(
                "Gemm",
                "fc",
                &["f", "w"],
                "logits",
                vec![attr_i("transB", 1)],
            ),
            node("Flatten", "flat_a", &["a"], "relu_out", vec![]),
        ],
        vec![tensor("w", &[3, 4], &random(&mut rng, 12, 1.0))],
        &["logits", "relu_out"],
    );
    let model = OnnxModel::from_bytes(&bytes).unwrap();
    let opts = CompileOptions {
        batch: 2,
        ..Default::default()
    };
    let compiled = compile(&model, &opts).unwrap();
    assert!(!compiled.layers[1].ops.is_empty(), "relu computed in place");
    let x: Vec<f64> = (0..32).map(|_| rng.random_range(-1.0..1.0)).collect();
    let want = plain::run(&model, &x, 2).unwrap();
    let got = run_fixed(&model, &opts, &x).unwrap();
    for ((_, w), (_, g)) in want.iter().zip(&got.outputs) {
        let err = max_err(g, w);
        assert!(err < 0.01, "error {err}");
    }
}

/// Conv → BatchNormalization (with and without a conv bias) → Relu → GlobalAveragePool →
/// Flatten → Gemm, and the pooled features as a second output (one pixel: no layout issue).
fn normalised_cnn(rng: &mut ChaCha20Rng, conv_bias: bool) -> Vec<u8> {
    let conv_inputs: &[&str] = if conv_bias {
        &["img", "k", "kb"]
    } else {
        &["img", "k"]
    };
    let var: Vec<f32> = (0..4).map(|_| rng.random_range(0.2..2.0)).collect();
    model_bytes(
        value_info("img", &[None, Some(2), Some(7), Some(7)]),
        vec![
            node(
                "Conv",
                "conv",
                conv_inputs,
                "h",
                vec![attr_ints("pads", &[1, 1, 1, 1])],
            ),
            node(
                "BatchNormalization",
                "bn",
                &["h", "gamma", "beta", "mean", "var"],
                "n",
                vec![],
            ),
            node("Relu", "relu", &["n"], "a", vec![]),
            node("GlobalAveragePool", "gap", &["a"], "g", vec![]),
            node("Flatten", "flat", &["g"], "pooled", vec![]),
            node(
                "Gemm",
                "fc",
                &["pooled", "w", "b"],
                "logits",
                vec![attr_i("transB", 1)],
            ),
        ],
        vec![
            tensor("k", &[4, 2, 3, 3], &random(rng, 72, 0.5)),
            tensor("kb", &[4], &random(rng, 4, 0.3)),
            tensor("gamma", &[4], &random(rng, 4, 1.5)),
            tensor("beta", &[4], &random(rng, 4, 0.5)),
            tensor("mean", &[4], &random(rng, 4, 0.3)),
            tensor("var", &[4], &var),
            tensor("w", &[3, 4], &random(rng, 12, 1.0)),
            tensor("b", &[3], &random(rng, 3, 0.2)),
        ],
        &["logits", "pooled"],
    )
}

#[test]
fn batch_norm_folds_into_the_conv_and_global_pooling_averages_each_channel() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    for conv_bias in [false, true] {
        let model = OnnxModel::from_bytes(&normalised_cnn(&mut rng, conv_bias)).unwrap();
        let batch = 2;
        let x: Vec<f64> = (0..batch * 98)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let want = plain::run(&model, &x, batch).unwrap();
        let opts = CompileOptions {
            batch,
            ..Default::default()
        };
        let compiled = compile(&model, &opts).unwrap();
        let layer = |op: &str| compiled.layers.iter().find(|l| l.op == op).unwrap();
        assert!(layer("BatchNormalization").ops.is_empty(), "folded");
        // clamp, conv (1), relu (8), the global mean (1), gemm (1).
        assert_eq!(
            veil_circuits::cost::program_cost(&compiled.program).rounds,
            INPUT_CLAMP_ROUNDS + 11
        );
        let got = run_fixed(&model, &opts, &x).unwrap();
        for ((name, w), (_, g)) in want.iter().zip(&got.outputs) {
            assert_eq!(g.len(), w.len(), "{name}");
            assert!(w.iter().any(|v| v.abs() > 0.05), "{name} is not all near 0");
            let err = max_err(g, w);
            assert!(err < 0.01, "bias {conv_bias}: {name} error {err}");
        }
        assert_eq!(
            compile(&model.architecture(), &opts).unwrap().program.id(),
            compiled.program.id(),
            "the fold needs no weight values"
        );
    }
    // Not after a Conv: refused, naming the node.
    let bytes = model_bytes(
        value_info("img", &[None, Some(1), Some(4), Some(4)]),
        vec![
            node("Relu", "relu", &["img"], "a", vec![]),
            node(
                "BatchNormalization",
                "bn",
                &["a", "g", "b", "m", "v"],
                "n",
                vec![],
            ),
        ],
        ["g", "b", "m", "v"]
            .iter()
            .map(|t| tensor(t, &[1], &[1.0]))
            .collect(),
        &["n"],
    );
    let model = OnnxModel::from_bytes(&bytes).unwrap();
    let e = compile(&model, &CompileOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("bn") && e.to_string().contains("right after a Conv"),
        "{e}"
    );
}

#[test]
fn a_constant_row_added_to_flattened_conv_features_follows_onnx_order() {
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let bytes = model_bytes(
        value_info("img", &[None, Some(1), Some(5), Some(5)]),
        vec![
            node("Conv", "conv", &["img", "k"], "h", vec![]),
            node("Flatten", "flat", &["h"], "f", vec![]),
            node("Add", "shift", &["f", "row"], "g", vec![]),
            node(
                "Gemm",
                "fc",
                &["g", "w"],
                "logits",
                vec![attr_i("transB", 1)],
            ),
        ],
        vec![
            tensor("k", &[2, 1, 3, 3], &random(&mut rng, 18, 0.5)),
            tensor("row", &[18], &random(&mut rng, 18, 1.0)),
            tensor("w", &[4, 18], &random(&mut rng, 72, 0.5)),
        ],
        &["logits"],
    );
    let model = OnnxModel::from_bytes(&bytes).unwrap();
    let x: Vec<f64> = (0..50).map(|_| rng.random_range(-1.0..1.0)).collect();
    let want = plain::run(&model, &x, 2).unwrap();
    let opts = CompileOptions {
        batch: 2,
        ..Default::default()
    };
    let got = run_fixed(&model, &opts, &x).unwrap();
    let err = max_err(&got.outputs[0].1, &want[0].1);
    assert!(err < 0.01, "logit error {err}");
}

#[test]
fn a_conv_bias_of_the_wrong_length_is_an_error_in_both_evaluators() {
    let conv = |bias: &[f32]| {
        let bytes = model_bytes(
            value_info("img", &[None, Some(1), Some(4), Some(4)]),
            vec![
                node("Conv", "c", &["img", "k", "kb"], "h", vec![]),
                node("Flatten", "flat", &["h"], "f", vec![]),
                node("Gemm", "fc", &["f", "w"], "y", vec![attr_i("transB", 1)]),
            ],
            vec![
                tensor("k", &[2, 1, 3, 3], &[0.1; 18]),
                tensor("kb", &[bias.len()], bias),
                tensor("w", &[1, 8], &[0.5; 8]),
            ],
            &["y"],
        );
        OnnxModel::from_bytes(&bytes).unwrap()
    };
    let x = vec![0.5; 16];
    let bad = conv(&[0.1, 0.2, 0.3]);
    assert!(
        plain::run(&bad, &x, 1)
            .unwrap_err()
            .to_string()
            .contains("bias")
    );
    let e = compile(&bad, &CompileOptions::default()).unwrap_err();
    assert!(e.to_string().contains("bias"), "{e}");
    // One value broadcasts to every channel, in both.
    let one = conv(&[0.25]);
    let want = plain::run(&one, &x, 1).unwrap();
    let got = run_fixed(&one, &CompileOptions::default(), &x).unwrap();
    assert!((got.outputs[0].1[0] - want[0].1[0]).abs() < 1e-2);
}
