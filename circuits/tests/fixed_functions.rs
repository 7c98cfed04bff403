//! Fixed-point function lowerings (`exp_neg`, `reciprocal`, `div`, `inv_sqrt`, `sigmoid`,
//! `softmax_rows`): accuracy of the
//! plaintext semantics against f64 at f = 16, the cost model's rounds, and argument errors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use veil_circuits::builder::{
    EXP_NEG_MAX_ABS_ERROR, INV_SQRT_MAX_ABS_ERROR, INV_SQRT_MAX_REL_ERROR, NORMALISE_MAX_FRAC_BITS,
    RECIPROCAL_MAX_ABS_ERROR, RECIPROCAL_MAX_REL_ERROR, SIGMOID_MAX_ABS_ERROR,
    SOFTMAX_MAX_ABS_ERROR, SOFTMAX_MAX_COLS, normalise_lanes,
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

/// The documented domain [2^-16, 2^24) of the normalising functions at f = 16: every raw word
/// in [1, 16), 64 log-spaced points per octave, and every 1/256 over [1, 256]; quantised,
/// sorted, deduplicated.
fn normalise_domain() -> Vec<f64> {
    let mut xs: Vec<f64> = (1..16).map(|r| r as f64 / 65536.0).collect();
    xs.extend((0..40 * 64).map(|j| 2f64.powf(-16.0 + j as f64 / 64.0)));
    xs.extend((256..=256 * 256).map(|i| i as f64 / 256.0));
    xs.push(2f64.powi(24) - 1.0 / 65536.0);
    let mut xs = quantised(&xs);
    xs.retain(|&x| x < 2f64.powi(24));
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Checks `|f(x) − want(x)| ≤ rel·want(x) + abs` over [`normalise_domain`] and prints the
/// measured figures: max relative error for x ≤ 1 and for x ≤ 2^8, max absolute error for
/// x ≥ 2^8, and the max of `|err| − rel·want` (in ulps of 2^-16).
fn check_normalised(
    name: &str,
    f: impl Fn(&mut Builder, Value) -> Value,
    want: impl Fn(f64) -> f64,
    rel: f64,
    abs: f64,
) {
    let xs = normalise_domain();
    let ys = eval_vector(&xs, f);
    let (mut rel1, mut rel256, mut abs256, mut excess, mut at) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0);
    for (&x, &y) in xs.iter().zip(&ys) {
        let w = want(x);
        let err = (y - w).abs();
        if x <= 1.0 {
            rel1 = rel1.max(err / w);
        }
        if x <= 256.0 {
            rel256 = rel256.max(err / w);
        }
        if x >= 256.0 {
            abs256 = abs256.max(err);
        }
        if err - rel * w > excess {
            (excess, at) = (err - rel * w, x);
        }
    }
    println!(
        "{name} over {} points: max rel error {rel1:.3e} (x ≤ 1), {rel256:.3e} (x ≤ 2^8); \
         max abs error {abs256:.3e} (x ≥ 2^8); max |err| − {rel:e}·|1/x| = {:.3} ulps at x = {at}",
        xs.len(),
        excess * 65536.0
    );
    assert!(excess <= abs, "{name}: {excess} at {at}");
}

#[test]
fn reciprocal_accuracy_on_dense_grid() {
    check_normalised(
        "reciprocal",
        |b, x| b.reciprocal(x),
        |x| 1.0 / x,
        RECIPROCAL_MAX_REL_ERROR,
        RECIPROCAL_MAX_ABS_ERROR,
    );
}

#[test]
fn inv_sqrt_accuracy_on_dense_grid() {
    check_normalised(
        "inv_sqrt",
        |b, x| b.inv_sqrt(x),
        |x| 1.0 / x.sqrt(),
        INV_SQRT_MAX_REL_ERROR,
        INV_SQRT_MAX_ABS_ERROR,
    );
}

#[test]
fn normalising_functions_give_zero_outside_domain() {
    let xs = [
        0.0,
        -1.0,
        -1.0 / 65536.0,
        -3000.0,
        2f64.powi(24),
        2f64.powi(30),
    ];
    for ys in [
        eval_vector(&xs, |b, x| b.reciprocal(x)),
        eval_vector(&xs, |b, x| b.inv_sqrt(x)),
    ] {
        assert_eq!(ys, vec![0.0; xs.len()]);
    }
}

#[test]
fn functions_keep_scalar_and_matrix_shapes() {
    for shape in [Shape::Scalar, Shape::Matrix(2, 3)] {
        let n = shape.len();
        let xs: Vec<f64> = (1..=n).map(|i| 4.0 * i as f64).collect();
        let mut b = Builder::new();
        let ty = veil_circuits::ValueType {
            vis: veil_circuits::Visibility::Secret,
            elem: Fixed::default().into(),
            shape,
        };
        let x = b.input("x", veil_circuits::Owner::Client("client".into()), ty);
        let ys = [b.reciprocal(x), b.inv_sqrt(x), b.sigmoid(x), b.div(x, x)];
        for (k, y) in ys.into_iter().enumerate() {
            assert_eq!(y.ty().shape, shape);
            b.output_to_client(&format!("y{k}"), y);
        }
        let p = b.finish().unwrap();
        let ins = HashMap::from([("x".to_string(), encode_slice(&xs, F).unwrap())]);
        let out = evaluate(&p, &ins).unwrap();
        for (j, &x) in xs.iter().enumerate() {
            let got: Vec<f64> = (0..4)
                .map(|k| decode(out[&format!("y{k}")][j], F))
                .collect();
            let want = [1.0 / x, 1.0 / x.sqrt(), sigmoid(x), 1.0];
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() < 2e-3,
                    "{shape:?} x = {x}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

#[test]
fn div_matches_quotient() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 4000;
    let a: Vec<f64> = quantised(
        &(0..n)
            .map(|_| rng.random_range(-100.0..100.0))
            .collect::<Vec<_>>(),
    );
    let d: Vec<f64> = quantised(
        &(0..n)
            .map(|_| 2f64.powf(rng.random_range(-4.0..12.0)))
            .collect::<Vec<_>>(),
    );
    let mut b = Builder::new();
    let x = b.secret_vector("a", n, Fixed::default());
    let y = b.secret_vector("b", n, Fixed::default());
    let q = b.div(x, y);
    assert_eq!(q.ty().elem, ElemType::Fixed(F));
    b.output_to_client("q", q);
    let p = b.finish().unwrap();
    let ins = HashMap::from([
        ("a".to_string(), encode_slice(&a, F).unwrap()),
        ("b".to_string(), encode_slice(&d, F).unwrap()),
    ]);
    let out = evaluate(&p, &ins).unwrap();
    let mut worst = 0.0f64;
    for ((&a, &d), &q) in a.iter().zip(&d).zip(&out["q"]) {
        // |a| times the reciprocal's error (relative below 2^8, absolute above) plus 1 ulp.
        let bound =
            a.abs() * RECIPROCAL_MAX_REL_ERROR / d + a.abs() * 2.0 / 65536.0 + 1.0 / 65536.0;
        let err = (decode(q, F) - a / d).abs();
        assert!(err <= bound, "{a}/{d}: {} vs {}", decode(q, F), a / d);
        worst = worst.max(err / bound);
    }
    println!("div: worst error / bound = {worst:.3}");
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn sigmoid_accuracy_on_dense_grid() {
    let xs: Vec<f64> = (-16 * 256..=16 * 256).map(|i| i as f64 / 256.0).collect();
    let ys = eval_vector(&xs, |b, x| b.sigmoid(x));
    let (mut worst, mut at) = (0.0f64, 0.0);
    for (&x, &y) in xs.iter().zip(&ys) {
        let err = (y - sigmoid(x)).abs();
        if err > worst {
            (worst, at) = (err, x);
        }
    }
    println!("sigmoid: max abs error {worst:.3e} at x = {at}");
    assert!(worst <= SIGMOID_MAX_ABS_ERROR, "{worst} at {at}");
}

#[test]
fn sigmoid_saturates_up_to_256() {
    let xs: Vec<f64> = (16 * 16..=256 * 16)
        .flat_map(|i| [i as f64 / 16.0, -(i as f64) / 16.0])
        .collect();
    let ys = eval_vector(&xs, |b, x| b.sigmoid(x));
    let worst = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| (y - sigmoid(x)).abs())
        .fold(0.0f64, f64::max);
    println!("sigmoid over 16 ≤ |x| ≤ 256: max abs error {worst:.3e}");
    assert!(worst <= 2.0 / 65536.0, "{worst}");
}

fn rounds_of(f: impl Fn(&mut Builder, Value) -> Value) -> u32 {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 8, Fixed::default());
    let y = f(&mut b, x);
    b.output_to_client("y", y);
    program_cost(&b.finish().unwrap()).rounds
}

#[test]
fn function_rounds() {
    let exp = rounds_of(|b, x| b.exp_neg(x));
    let rec = rounds_of(|b, x| b.reciprocal(x));
    let isq = rounds_of(|b, x| b.inv_sqrt(x));
    let sig = rounds_of(|b, x| b.sigmoid(x));
    let div = {
        let mut b = Builder::new();
        let x = b.secret_vector("a", 8, Fixed::default());
        let y = b.secret_vector("b", 8, Fixed::default());
        let q = b.div(x, y);
        b.output_to_client("q", q);
        program_cost(&b.finish().unwrap()).rounds
    };
    println!("rounds: exp_neg {exp}, reciprocal {rec}, div {div}, inv_sqrt {isq}, sigmoid {sig}");
    assert_eq!((exp, rec, div, isq, sig), (17, 26, 28, 26, 35));
    assert_eq!(normalise_lanes(16), 40);
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
    // max_all tournament + exp_neg (1 rescale + 8 fixmuls) + reciprocal (26) + the final
    // fixmul; 2 rounds per fixmul.
    let levels = tournament_pairs(128).len() as u32;
    let expected = MAX_ROUNDS * levels + 17 + 26 + 2;
    let rounds = softmax_rounds(4, 128);
    let rounds_128 = softmax_rounds(128, 128);
    println!("softmax_rows secret 4x128: {rounds} rounds; 128x128: {rounds_128} rounds");
    assert_eq!(rounds, expected);
    assert_eq!(rounds, 101);
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

    for name in ["reciprocal", "inv_sqrt", "sigmoid", "div"] {
        let mut b = Builder::new();
        let r = b.secret_vector("r", 3, veil_circuits::Ring);
        let x = b.secret_vector("x", 3, Fixed::default());
        match name {
            "reciprocal" => b.reciprocal(r),
            "inv_sqrt" => b.inv_sqrt(r),
            "sigmoid" => b.sigmoid(r),
            _ => b.div(x, r),
        };
        let e = b.finish().unwrap_err();
        assert!(
            matches!(e, ValidationError::RescaleNotFixed { name: n, .. } if n == name),
            "{e}"
        );
    }

    let mut b = Builder::new();
    let r = b.secret_vector("r", 3, veil_circuits::Ring);
    let x = b.secret_vector("x", 3, Fixed::default());
    b.div(r, x);
    let e = b.finish().unwrap_err();
    assert!(
        matches!(e, ValidationError::RescaleNotFixed { name: "div", .. }),
        "{e}"
    );

    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Fixed::with_frac_bits(NORMALISE_MAX_FRAC_BITS + 1));
    b.inv_sqrt(x);
    let e = b.finish().unwrap_err();
    assert_eq!(
        e,
        ValidationError::SizeLimit {
            op: 1,
            name: "inv_sqrt",
            what: "fractional bits",
            got: 21,
            max: 20
        }
    );
}
