//! The fixed-point function lowerings (exp_neg, reciprocal, softmax_rows) run under MPC, held
//! to f64 over their documented ranges. MPC truncation may add a few ulps, amplified by the
//! squarings of exp, on top of the plaintext bounds documented in `veil_circuits::builder`.

use std::collections::HashMap;
use veil_circuits::cost::program_cost;
use veil_circuits::{Builder, Fixed, FracBits, fixed};
use veil_runtime::harness::{collect_outputs, run_program3, share_inputs};
use veil_runtime::testing::test_rng;

const F: FracBits = FracBits(16);

/// `x` as the fixed-point input actually holds it (the reference uses the quantised value).
fn quantised(x: Vec<f64>) -> Vec<f64> {
    fixed::decode_slice(&fixed::encode_slice(&x, F).unwrap(), F)
}

fn run(p: &veil_circuits::ValidatedProgram, x: Vec<f64>) -> Vec<f64> {
    let mut rng = test_rng();
    let plain = HashMap::from([("x".to_string(), fixed::encode_slice(&x, F).unwrap())]);
    let results = run_program3(p, share_inputs(p, &plain, &mut rng)).map(|r| r.expect("run"));
    let cost = program_cost(p);
    for (i, (_, report)) in results.iter().enumerate() {
        assert_eq!(report.rounds, cost.rounds as u64, "rounds at P{i}");
        assert_eq!(report.bytes_sent, cost.bytes_sent[i], "bytes sent by P{i}");
    }
    let outputs = results.map(|(o, _)| o);
    fixed::decode_slice(&collect_outputs(p, &outputs).unwrap()["y"], F)
}

#[test]
fn exp_neg_and_wide_range_reciprocal_within_bounds_under_mpc() {
    let xs: Vec<f64> = (0..=640).map(|i| -16.0 + i as f64 / 40.0).collect();
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Fixed::default());
    let y = b.exp_neg(x);
    b.output_to_client("y", y);
    let got = run(&b.finish().unwrap(), xs.clone());
    let worst = xs
        .iter()
        .zip(&got)
        .map(|(x, g)| (x.exp() - g).abs())
        .fold(0.0, f64::max);
    assert!(worst < 8e-3, "exp_neg: max abs error {worst}");

    // Goldschmidt after MSB normalisation: log-spaced over [2^-12, 2^23].
    let xs = quantised(
        (0..=420)
            .map(|i| (2f64).powf(-12.0 + i as f64 / 12.0))
            .collect(),
    );
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Fixed::default());
    let y = b.reciprocal(x);
    b.output_to_client("y", y);
    let got = run(&b.finish().unwrap(), xs.clone());
    for (x, g) in xs.iter().zip(&got) {
        // The plaintext bound 1e-4·(1/x) + 2^-15, plus a few ulps of MPC truncation.
        let bound = 1e-4 / x + 8.0 / 65536.0;
        assert!((1.0 / x - g).abs() <= bound, "reciprocal({x}) = {g}");
    }
}

#[test]
fn inv_sqrt_div_and_sigmoid_within_bounds_under_mpc() {
    let xs = quantised(
        (0..=420)
            .map(|i| (2f64).powf(-12.0 + i as f64 / 12.0))
            .collect(),
    );
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Fixed::default());
    let y = b.inv_sqrt(x);
    b.output_to_client("y", y);
    let got = run(&b.finish().unwrap(), xs.clone());
    for (x, g) in xs.iter().zip(&got) {
        let bound = 1e-4 / x.sqrt() + 8.0 / 65536.0;
        assert!((1.0 / x.sqrt() - g).abs() <= bound, "inv_sqrt({x}) = {g}");
    }

    let ts: Vec<f64> = (0..=640).map(|i| -16.0 + i as f64 / 20.0).collect();
    let mut b = Builder::new();
    let t = b.secret_vector("x", ts.len(), Fixed::default());
    let y = b.sigmoid(t);
    b.output_to_client("y", y);
    let got = run(&b.finish().unwrap(), ts.clone());
    let worst = ts
        .iter()
        .zip(&got)
        .map(|(t, g)| (1.0 / (1.0 + (-t).exp()) - g).abs())
        .fold(0.0, f64::max);
    assert!(worst < 4e-3, "sigmoid: max abs error {worst}");

    // a / b with a = 3 and b on a grid of [1/16, 4096].
    let bs = quantised(
        (0..=192)
            .map(|i| (2f64).powf(-4.0 + i as f64 / 12.0))
            .collect(),
    );
    let mut b = Builder::new();
    let den = b.secret_vector("x", bs.len(), Fixed::default());
    let three = b.const_fixed(3.0, Fixed::default());
    let q = b.div(three, den);
    b.output_to_client("y", q);
    let got = run(&b.finish().unwrap(), bs.clone());
    for (d, g) in bs.iter().zip(&got) {
        let bound = 3.0 * (1e-4 / d + 2f64.powi(-15)) + 8.0 / 65536.0;
        assert!((3.0 / d - g).abs() <= bound, "3 / {d} = {g}");
    }
}

#[test]
fn softmax_rows_within_bound_under_mpc() {
    use rand::Rng;
    let mut rng = test_rng();
    let (r, c) = (6usize, 128usize);
    let xs: Vec<f64> = (0..r * c).map(|_| rng.random_range(-8.0..8.0)).collect();
    let mut b = Builder::new();
    let x = b.secret_matrix("x", r, c, Fixed::default());
    let y = b.softmax_rows(x);
    b.output_to_client("y", y);
    let got = run(&b.finish().unwrap(), xs.clone());
    let mut worst = 0.0f64;
    for (row, grow) in xs.chunks(c).zip(got.chunks(c)) {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for (v, g) in row.iter().zip(grow) {
            worst = worst.max(((v - m).exp() / s - g).abs());
        }
    }
    assert!(worst < 5e-3, "softmax: max abs error {worst}");
    eprintln!("softmax {r}×{c} under MPC: max abs error {worst:.2e}");
}
