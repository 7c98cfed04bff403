//! Benchmarks of veil programs on three in-process parties (replicated shares, in-memory
//! transport) beside their plaintext twins, computed with the same kernels.
//!
//! Groups (ids `(variant, size)`; the `plaintext` baseline sits in the same group as
//! `rep3_in_memory`, so the ratio comes out of one run):
//! - `mpc/<op>` for every row of the op table [`veil_benches::OPS`] with criterion sizes
//!   (`bench_sizes`): `mul` (2^10, 2^16, 2^20 elements), `dot` (10,000 products of length 384),
//!   `matmul` (128×128), `fixmul`, `ltz`, `relu` (2^20 elements), `topk` (the 8 largest of
//!   10,000 scores), `onehot_gather` (8 rows of a 100,000 × 96 matrix), `softmax` (128 rows)
//!   and `recip` (2^16 elements); throughput counts what the row's `work` counts, as in
//!   `veil bench`.
//! - `mpc/cnn`: a LeNet-style CNN on one 28×28 image with secret weights — conv 5×5 → 8,
//!   max pool 2×2, ReLU, conv 5×5 → 16, max pool 2×2, ReLU, dense 256 → 10 (throughput:
//!   images); the baseline is the plaintext evaluator of the same program (within 2,000 ulps:
//!   each truncation may add one, and the layers carry it on).
//! - `mpc/malicious`: Z_2^64 `mul` (2^10, 2^16 elements), `dot` (1,000 rows of 384),
//!   `matmul` (128×128), Z_2^32 `matmul32` (1×384 · 384×10,000, RAG's scoring shape) and the
//!   comparison `lt` (2^10, 2^16 elements) in
//!   `semi-honest` and `malicious` mode side by side (ids
//!   `<op>/<mode>`), the malicious ones including the session's verification
//!   (`veil_runtime::verify`).
//! - `mpc/batching`: 1,000 separate one-element `mul`s on separate scalar inputs
//!   (`scalar_muls`) against one 1,000-element vector `mul` (`vector_mul`): both finish in the
//!   same rounds, so the gap is the engine's per-op and per-input overhead.
//!
//! Workloads and plaintext twins are those of `veil bench` ([`veil_benches::Workload`]).
//!
//! **What `rep3_in_memory` times.** Thread spawn and session setup (key exchange) are paid
//! once per criterion sample, not per iteration: each sample runs the three parties once with
//! [`run3`] on one established [`Session`], and each party runs the program `iters` times.
//! Before each run a party clones its input shares and then waits on a [`Barrier`], so all
//! three start together and no party's copying steals a core from another's timed run. The
//! sample's time is the **slowest party's sum of [`Report::total`]** (the engine's wall time of
//! `Session::run`, barrier wait and input copy excluded). Shares come from
//! [`share_inputs`] outside the timed region, and every MPC program is checked once, before
//! timing, against its plaintext twin — every output, within the row's tolerance (exact for
//! exact ops, 1 ulp for probabilistic truncation, 0.01 for the approximations).
//!
//! `cargo bench -p veil-benches --bench mpc -- --warm-up-time 1 --measurement-time 3`
//!
//! [`Report::total`]: veil_runtime::engine::Report::total

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_benches::{BenchOp, OPS, Params, Workload, compare_outputs};
use veil_circuits::{Builder, Ring, Ring32, Shape, ValidatedProgram};
use veil_runtime::SecurityMode;
use veil_runtime::engine::{InputValue, Session};
use veil_runtime::harness::{collect_outputs, run_program3, run_program3_in, run3, share_inputs};
use veil_runtime::transport::Transport;

/// Each party's input shares.
type Shared = [HashMap<String, InputValue>; 3];

/// Run `program` `iters` times on one session of three in-process parties; returns the slowest
/// party's summed [`veil_runtime::engine::Report::total`] (see the module docs).
fn time_mpc(program: &ValidatedProgram, shared: &Shared, iters: u64) -> Duration {
    time_mpc_in(program, shared, iters, SecurityMode::SemiHonest)
}

/// [`time_mpc`] in a given security mode.
fn time_mpc_in(
    program: &ValidatedProgram,
    shared: &Shared,
    iters: u64,
    mode: SecurityMode,
) -> Duration {
    let barrier = &Barrier::new(3);
    let totals = run3(|net| async move {
        let me = net.me();
        let mut session = Session::establish(net)
            .await
            .unwrap_or_else(|e| panic!("{me:?}: session setup failed: {e}"));
        session.set_security(mode);
        let mut sum = Duration::ZERO;
        for _ in 0..iters {
            let inputs = shared[me.index()].clone();
            barrier.wait();
            let (outputs, report) = session
                .run(program, inputs)
                .await
                .unwrap_or_else(|e| panic!("{me:?}: program run failed: {e}"));
            black_box(outputs);
            sum += report.total;
        }
        sum
    });
    totals.into_iter().max().expect("three parties")
}

/// Run `program` once and panic unless every output is within `tolerance` ulps of `want`.
fn check_mpc(
    label: &str,
    program: &ValidatedProgram,
    shared: &Shared,
    want: &[(&str, Vec<u64>)],
    tolerance: u64,
) {
    let outputs = run_program3(program, shared.clone()).map(|r| match r {
        Ok((outputs, _)) => outputs,
        Err(e) => panic!("{label}: MPC run failed: {e}"),
    });
    let got = collect_outputs(program, &outputs)
        .unwrap_or_else(|e| panic!("{label}: reconstructing the MPC output failed: {e}"));
    if let Err(m) = compare_outputs(&got, want, tolerance) {
        panic!("{label}: MPC result differs from plaintext: {m} (tolerance {tolerance} ulp)");
    }
}

/// Add `plaintext` and `rep3_in_memory` for `op` at `size` (default [`Params`]) to `g`.
fn bench_workload(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rng: &mut ChaCha20Rng,
    op: BenchOp,
    size: usize,
) {
    let w = Workload::with_params(op, size, Params::default(), rng)
        .expect("benchmark workload program is valid");
    let want = w.plaintext();
    let shared = share_inputs(&w.program, &w.inputs, rng);
    check_mpc(
        &format!("mpc/{op}/{size}"),
        &w.program,
        &shared,
        &want,
        op.tolerance,
    );

    g.bench_with_input(BenchmarkId::new("plaintext", size), &w, |b, w| {
        b.iter(|| w.plaintext())
    });
    g.bench_with_input(BenchmarkId::new("rep3_in_memory", size), &w, |b, w| {
        b.iter_custom(|iters| time_mpc(&w.program, &shared, iters))
    });
}

/// One group `mpc/<op>` per row of the op table, at the row's criterion sizes; each row's
/// inputs come from its own seed.
fn ops(c: &mut Criterion) {
    for (seed, op) in (11..).zip(&OPS) {
        if op.bench_sizes.is_empty() {
            continue;
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut g = c.benchmark_group(format!("mpc/{op}"));
        g.sample_size(10);
        for &size in op.bench_sizes {
            eprintln!(
                "mpc/{op}/{size}: size = {} (throughput: {})",
                op.size,
                op.work.unit()
            );
            g.throughput(Throughput::Elements(op.work_items(size) as u64));
            bench_workload(&mut g, &mut rng, op, size);
        }
        g.finish();
    }
}

/// The `mpc/cnn` program at batch `n` and random inputs for it (image in [0, 1), weights in
/// ±0.2, biases in ±0.1).
fn cnn_program(n: usize, rng: &mut ChaCha20Rng) -> (ValidatedProgram, HashMap<String, Vec<u64>>) {
    use veil_circuits::{Conv2dGeometry, Fixed};
    let f = Fixed::default();
    let c1 = Conv2dGeometry::new(28, 28, 1, 5);
    let p1 = Conv2dGeometry {
        stride: 2,
        ..Conv2dGeometry::new(24, 24, 8, 2)
    };
    let c2 = Conv2dGeometry::new(12, 12, 8, 5);
    let p2 = Conv2dGeometry {
        stride: 2,
        ..Conv2dGeometry::new(8, 8, 16, 2)
    };
    let mut b = Builder::new();
    let x = b.secret_matrix("x", n, c1.image_len(), f);
    let w1 = b.secret_matrix("w1", c1.patch_len(), 8, f);
    let b1 = b.secret_vector("b1", 8, f);
    let w2 = b.secret_matrix("w2", c2.patch_len(), 16, f);
    let b2 = b.secret_vector("b2", 16, f);
    let w3 = b.secret_matrix("w3", 256, 10, f);
    // ReLU after each max pool: the same function (max is monotone) on a quarter of the
    // elements, as the ONNX compiler orders Conv → Relu → MaxPool.
    let h = b.conv2d(x, w1, Some(b1), c1);
    let h = b.max_pool2d(h, p1);
    let h = b.relu(h);
    let h = b.conv2d(h, w2, Some(b2), c2);
    let h = b.max_pool2d(h, p2);
    let h = b.relu(h);
    let logits = b.matmul_rescale(h, w3, 16);
    b.output_to_client("logits", logits);
    let program = b.finish().expect("cnn program is valid");
    let mut fx = |len: usize, lo: f64, hi: f64| -> Vec<u64> {
        (0..len)
            .map(|_| veil_circuits::fixed::encode(rng.random_range(lo..hi), f.0).expect("in range"))
            .collect()
    };
    let inputs = HashMap::from([
        ("x".to_string(), fx(n * 784, 0.0, 1.0)),
        ("w1".to_string(), fx(25 * 8, -0.2, 0.2)),
        ("b1".to_string(), fx(8, -0.1, 0.1)),
        ("w2".to_string(), fx(200 * 16, -0.2, 0.2)),
        ("b2".to_string(), fx(16, -0.1, 0.1)),
        ("w3".to_string(), fx(2560, -0.2, 0.2)),
    ]);
    (program, inputs)
}

fn cnn(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let mut g = c.benchmark_group("mpc/cnn");
    g.sample_size(10);
    let n = 1;
    g.throughput(Throughput::Elements(n as u64));
    let (program, inputs) = cnn_program(n, &mut rng);
    let want = veil_circuits::eval::evaluate(&program, &inputs).expect("plaintext evaluation");
    let want: Vec<(&str, Vec<u64>)> = vec![("logits", want["logits"].clone())];
    let shared = share_inputs(&program, &inputs, &mut rng);
    check_mpc("mpc/cnn", &program, &shared, &want, 2000);
    eprintln!(
        "mpc/cnn: {} rounds, {} bytes sent by P0",
        veil_circuits::cost::program_cost(&program).rounds,
        veil_circuits::cost::program_cost(&program).bytes_sent[0]
    );
    g.bench_with_input(BenchmarkId::new("plaintext", n), &n, |b, _| {
        b.iter(|| veil_circuits::eval::evaluate(&program, &inputs))
    });
    g.bench_with_input(BenchmarkId::new("rep3_in_memory", n), &n, |b, _| {
        b.iter_custom(|iters| time_mpc(&program, &shared, iters))
    });
    g.finish();
}

/// `n` one-element multiplications `z_i = a_i · b_i` on separate secret scalar inputs, gathered
/// into one output vector `z` (reshape and concat are local).
fn scalar_muls_program(n: usize) -> ValidatedProgram {
    let mut b = Builder::new();
    let parts: Vec<_> = (0..n)
        .map(|i| {
            let x = b.secret_scalar(&format!("a{i}"), Ring);
            let y = b.secret_scalar(&format!("b{i}"), Ring);
            let z = b.mul(x, y);
            b.reshape(z, Shape::Vector(1))
        })
        .collect();
    let z = b.concat(&parts);
    b.output_to_client("z", z);
    b.finish().expect("scalar-muls program is valid")
}

fn batching(c: &mut Criterion) {
    const N: usize = 1000;
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let mut g = c.benchmark_group("mpc/batching");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));

    let x: Vec<u64> = (0..N).map(|_| rng.random()).collect();
    let y: Vec<u64> = (0..N).map(|_| rng.random()).collect();
    let want: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();

    let scalar = scalar_muls_program(N);
    let scalar_inputs: HashMap<String, Vec<u64>> = (0..N)
        .flat_map(|i| [(format!("a{i}"), vec![x[i]]), (format!("b{i}"), vec![y[i]])])
        .collect();
    let scalar_shared = share_inputs(&scalar, &scalar_inputs, &mut rng);
    let want = [("z", want)];
    check_mpc(
        "mpc/batching/scalar_muls",
        &scalar,
        &scalar_shared,
        &want,
        0,
    );

    let mul: BenchOp = "mul".parse().expect("mul is an op");
    let mut w = Workload::new(mul, N, &mut rng).expect("mul program is valid");
    w.inputs = HashMap::from([("x".to_string(), x), ("y".to_string(), y)]);
    let vector_shared = share_inputs(&w.program, &w.inputs, &mut rng);
    check_mpc(
        "mpc/batching/vector_mul",
        &w.program,
        &vector_shared,
        &want,
        0,
    );

    g.bench_with_input(BenchmarkId::new("scalar_muls", N), &N, |b, _| {
        b.iter_custom(|iters| time_mpc(&scalar, &scalar_shared, iters))
    });
    g.bench_with_input(BenchmarkId::new("vector_mul", N), &N, |b, _| {
        b.iter_custom(|iters| time_mpc(&w.program, &vector_shared, iters))
    });
    g.finish();
}

/// A program for `mpc/malicious`: over Z_2^64 `mul` or `lt` of n elements, `dot` of n rows of
/// 384, or an n×n `matmul`; over Z_2^32 `matmul32`, a 1×384 query times a 384×n matrix (the shape of
/// RAG's scoring); on client inputs; its plaintext twin.
fn ring_program(
    op: &str,
    n: usize,
    rng: &mut ChaCha20Rng,
) -> (ValidatedProgram, HashMap<String, Vec<u64>>) {
    let (len_x, len_y) = match op {
        "mul" => (n, n),
        "dot" => (n * 384, n * 384),
        "matmul32" => (384, 384 * n),
        "lt" => (n, n),
        _ => (n * n, n * n),
    };
    let mut b = Builder::new();
    let (x, y) = match op {
        "mul" | "lt" => (b.secret_vector("x", n, Ring), b.secret_vector("y", n, Ring)),
        "dot" => (
            b.secret_matrix("x", n, 384, Ring),
            b.secret_matrix("y", n, 384, Ring),
        ),
        "matmul32" => (
            b.secret_matrix("x", 1, 384, Ring32),
            b.secret_matrix("y", 384, n, Ring32),
        ),
        _ => (
            b.secret_matrix("x", n, n, Ring),
            b.secret_matrix("y", n, n, Ring),
        ),
    };
    let z = match op {
        "mul" => b.mul(x, y),
        "dot" => b.dot(x, y),
        "lt" => b.lt(x, y),
        _ => b.matmul(x, y),
    };
    b.output_to_client("z", z);
    let word = |rng: &mut ChaCha20Rng| match op {
        "matmul32" => rng.random::<u32>().into(),
        _ => rng.random(),
    };
    let plain = HashMap::from([
        ("x".to_string(), (0..len_x).map(|_| word(rng)).collect()),
        ("y".to_string(), (0..len_y).map(|_| word(rng)).collect()),
    ]);
    (b.finish().expect("valid program"), plain)
}

/// `mpc/malicious`: the products and comparisons the malicious mode verifies, semi-honest and
/// malicious in one group (same inputs, same run), each checked against the plaintext
/// evaluator in both modes first. Throughput: products (elements, dot products, output
/// entries) or comparisons.
fn malicious(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpc/malicious");
    g.sample_size(10);
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    for (name, size) in [
        ("mul", 1usize << 10),
        ("mul", 1 << 16),
        ("dot", 1000),
        ("matmul", 128),
        ("matmul32", 10_000),
        ("lt", 1 << 10),
        ("lt", 1 << 16),
    ] {
        let (program, plain) = ring_program(name, size, &mut rng);
        let want = veil_circuits::eval::evaluate(&program, &plain).expect("plaintext evaluation");
        let shared = share_inputs(&program, &plain, &mut rng);
        for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
            let outputs = run_program3_in(&program, shared.clone(), mode).map(|r| match r {
                Ok((outputs, _)) => outputs,
                Err(e) => panic!("mpc/malicious/{name}: {mode} run failed: {e}"),
            });
            let got = collect_outputs(&program, &outputs).expect("outputs reconstruct");
            assert_eq!(got["z"], want["z"], "mpc/malicious/{name}: {mode} result");
        }
        let items = match name {
            "matmul" => size * size,
            _ => size,
        };
        g.throughput(Throughput::Elements(items as u64));
        for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
            let id = BenchmarkId::new(format!("{name}/{mode}"), size);
            g.bench_with_input(id, &size, |b, _| {
                b.iter_custom(|iters| time_mpc_in(&program, &shared, iters, mode))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, ops, cnn, batching, malicious);
criterion_main!(benches);
