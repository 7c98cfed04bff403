//! Fixed-point function lowerings (`exp_neg`, `reciprocal`, `softmax_rows`): accuracy of the
//! plaintext semantics against f64 at f = 16, the cost model's rounds, and argument errors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use veil_circuits::builder::{
    EXP_NEG_MAX_ABS_ERROR, RECIPROCAL_ITERATIONS, RECIPROCAL_MAX_REL_ERROR, SOFTMAX_MAX_ABS_ERROR,
    SOFTMAX_MAX_COLS,
};
use veil_circuits::cost::{MAX_ROUNDS, program_cost, tournament_pairs};
use veil_circuits::eval::evaluate;
use veil_circuits::fixed::{decode, encode_slice};
use veil_circuits::{Builder, ElemType, Fixed, FracBits, Shape, ValidationError, Value};

const F: FracBits = FracBits(16);

/// Builds `f(input)` over a secret vector of `xs`, evaluates it and decodes the output.
fn eval_vector(xs: &[f64], f: impl Fn(&mut Builder, Value) -> Value) -> Vec<f64> {
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Fixed::default());
    let y = f(&mut b, x);
    b.output_to_client("y", y);
    let p = b.finish().unwrap();
    let ins = HashMap::from([("x".to_string(), encode_slice(xs, F).unwrap())]);
    let out = evaluate(&p, &ins).unwrap();
    out["y"].iter().map(|&v| decode(v, F)).collect()
}

/// The f64 values that `xs` encode to at f = 16.
fn quantised(xs: &[f64]) -> Vec<f64> {
    encode_slice(xs, F)
        .unwrap()
        .into_iter()
        .map(|v| decode(v, F))
        .collect()
}

#[test]
fn exp_neg_accuracy_on_dense_grid() {
    // Every 1/256 over [−16, 0] plus every 7th ulp near 0, where the error is largest.
    let mut xs: Vec<f64> = (0..=16 * 256).map(|i| -(i as f64) / 256.0).collect();
    xs.extend((0..2000).map(|i| -(7 * i) as f64 / 65536.0));
    let xs = quantised(&xs);
    let ys = eval_vector(&xs, |b, x| b.exp_neg(x));
    let (mut worst, mut at) = (0.0f64, 0.0);
    for (&x, &y) in xs.iter().zip(&ys) {
        let err = (y - x.exp()).abs();
        if err > worst {
            (worst, at) = (err, x);
        }
    }
    println!("exp_neg: max abs error {worst:.3e} at x = {at}");
    assert!(worst <= EXP_NEG_MAX_ABS_ERROR, "{worst} at {at}");
}

#[test]
fn exp_neg_stays_near_zero_down_to_minus_256() {
    let xs: Vec<f64> = (16 * 16..=256 * 16).map(|i| -(i as f64) / 16.0).collect();
    let ys = eval_vector(&xs, |b, x| b.exp_neg(x));
    let worst = ys.iter().fold(0.0f64, |m, y| m.max(y.abs()));
    println!("exp_neg over [-256, -16]: max |y| {worst:.3e}");
    assert!(worst <= 2.0 / 65536.0, "{worst}");
}

#[test]
fn reciprocal_accuracy_on_dense_grid() {
    let xs: Vec<f64> = quantised(
        &(256..=256 * 256)
            .map(|i| i as f64 / 256.0)
            .collect::<Vec<_>>(),
    );
    let ys = eval_vector(&xs, |b, x| b.reciprocal(x));
    let (mut worst, mut at) = (0.0f64, 0.0);
    for (&x, &y) in xs.iter().zip(&ys) {
        let err = (y * x - 1.0).abs();
        if err > worst {
            (worst, at) = (err, x);
        }
    }
    println!("reciprocal: max rel error {worst:.3e} at x = {at}");
    assert!(worst <= RECIPROCAL_MAX_REL_ERROR, "{worst} at {at}");
}

fn softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    let e: Vec<f64> = row.iter().map(|&x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn softmax_rows_accuracy_on_random_rows() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut worst = 0.0f64;
    for &(rows, cols) in &[(1, 1), (3, 2), (8, 16), (16, 100), (4, 256)] {
        let xs: Vec<f64> = (0..rows * cols)
            .map(|_| rng.random_range(-8.0..=8.0))
            .collect();
        let xs = quantised(&xs);
        let mut b = Builder::new();
        let x = b.secret_matrix("x", rows, cols, Fixed::default());
        let y = b.softmax_rows(x);
        assert_eq!(y.ty().shape, Shape::Matrix(rows, cols));
        assert_eq!(y.ty().elem, ElemType::Fixed(F));
        b.output_to_client("y", y);
        let p = b.finish().unwrap();
        let ins = HashMap::from([("x".to_string(), encode_slice(&xs, F).unwrap())]);
        let out = evaluate(&p, &ins).unwrap();
        let ys: Vec<f64> = out["y"].iter().map(|&v| decode(v, F)).collect();
        for (r, row) in xs.chunks(cols).enumerate() {
            for (j, want) in softmax(row).into_iter().enumerate() {
                worst = worst.max((ys[r * cols + j] - want).abs());
            }
        }
    }
    println!("softmax_rows: max abs error {worst:.3e}");
    assert!(worst <= SOFTMAX_MAX_ABS_ERROR, "{worst}");
}

fn softmax_rounds(rows: usize, cols: usize) -> u32 {
    let mut b = Builder::new();
    let x = b.secret_matrix("x", rows, cols, Fixed::default());
    let y = b.softmax_rows(x);
    b.output_to_client("y", y);
    program_cost(&b.finish().unwrap()).rounds
}

#[test]
fn softmax_rows_rounds() {
    // max_all tournament + exp_neg (1 rescale + 8 fixmuls) + reciprocal (exp_neg + 10 Newton
    // steps of 2 fixmuls) + the final fixmul; 2 rounds per fixmul.
    let levels = tournament_pairs(128).len() as u32;
    let expected = MAX_ROUNDS * levels + 17 + (17 + 4 * RECIPROCAL_ITERATIONS) + 2;
    let rounds = softmax_rounds(4, 128);
    let rounds_128 = softmax_rounds(128, 128);
    println!("softmax_rows secret 4x128: {rounds} rounds; 128x128: {rounds_128} rounds");
    assert_eq!(rounds, expected);
    assert_eq!(rounds, 153);
    assert_eq!(rounds_128, rounds);
}

#[test]
fn argument_errors_are_deferred() {
    let mut b = Builder::new();
    let r = b.secret_vector("r", 4, veil_circuits::Ring);
    b.exp_neg(r);
    let e = b.finish().unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::RescaleNotFixed {
                name: "exp_neg",
                ..
            }
        ),
        "{e}"
    );

    let mut b = Builder::new();
    let r = b.secret_scalar("r", veil_circuits::Ring);
    b.reciprocal(r);
    let e = b.finish().unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::RescaleNotFixed {
                name: "reciprocal",
                ..
            }
        ),
        "{e}"
    );

    let mut b = Builder::new();
    let v = b.secret_vector("v", 4, Fixed::default());
    b.softmax_rows(v);
    let e = b.finish().unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::NotMatrix {
                name: "softmax_rows",
                ..
            }
        ),
        "{e}"
    );

    let mut b = Builder::new();
    let m = b.secret_matrix("m", 2, 3, veil_circuits::Ring);
    b.softmax_rows(m);
    let e = b.finish().unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::RescaleNotFixed {
                name: "softmax_rows",
                ..
            }
        ),
        "{e}"
    );

    let mut b = Builder::new();
    let m = b.secret_matrix("m", 2, SOFTMAX_MAX_COLS + 1, Fixed::default());
    b.softmax_rows(m);
    let e = b.finish().unwrap_err();
    assert_eq!(
        e,
        ValidationError::SizeLimit {
            op: 1,
            name: "softmax_rows",
            what: "column count",
            got: 257,
            max: 256
        }
    );
}
