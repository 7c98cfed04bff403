//! Convolution and pooling lowerings (`Builder::conv2d`, `max_pool2d`, `avg_pool2d`) against a
//! direct f64 reference on random images, in both input layouts; and their refusals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use veil_circuits::cost::program_cost;
use veil_circuits::eval::evaluate;
use veil_circuits::fixed::{decode, encode};
use veil_circuits::{Builder, Conv2dGeometry, Fixed, FracBits, Program, Ring, ValidationError};

const F: FracBits = FracBits(16);

/// Input element (b, y, x, c) of images stored in `g`'s layout.
fn pixel(img: &[f64], g: &Conv2dGeometry, b: usize, y: i64, x: i64, c: usize) -> f64 {
    if y < 0 || x < 0 || y >= g.height as i64 || x >= g.width as i64 {
        return 0.0;
    }
    let (y, x) = (y as usize, x as usize);
    let at = if g.channels_first {
        (c * g.height + y) * g.width + x
    } else {
        (y * g.width + x) * g.channels + c
    };
    img[b * g.image_len() + at]
}

/// Output (b, oy, ox, o) channels-last of the windowed `reduce` over every (i, j, c) — with
/// `per_channel`, over (i, j) for output channel `o` = c.
fn reference(
    img: &[f64],
    batch: usize,
    g: &Conv2dGeometry,
    outs: usize,
    value: impl Fn(usize, usize, usize, usize, f64) -> f64,
    reduce: impl Fn(&[f64]) -> f64,
    per_channel: bool,
) -> Vec<f64> {
    let (oh, ow) = g.output_size().unwrap();
    let mut out = Vec::new();
    for b in 0..batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..outs {
                    let mut terms = Vec::new();
                    for i in 0..g.kernel_h {
                        for j in 0..g.kernel_w {
                            for c in 0..g.channels {
                                if per_channel && c != o {
                                    continue;
                                }
                                let y = (oy * g.stride + i) as i64 - g.pad as i64;
                                let x = (ox * g.stride + j) as i64 - g.pad as i64;
                                terms.push(value(i, j, c, o, pixel(img, g, b, y, x, c)));
                            }
                        }
                    }
                    out.push(reduce(&terms));
                }
            }
        }
    }
    out
}

fn enc(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|&x| encode(x, F).unwrap()).collect()
}

fn close(name: &str, got: &[u64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let g = decode(*g, F);
        assert!((g - w).abs() <= tol, "{name}[{k}]: {g} vs {w}");
    }
}

#[test]
fn conv_and_pooling_match_a_direct_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let t = Fixed(F);
    for (h, w, c, k, stride, pad, outs, channels_first) in [
        (6, 6, 2, 3, 1, 1, 4, false),
        (7, 5, 3, 3, 2, 0, 2, true),
        (4, 4, 1, 2, 2, 0, 3, false),
        (5, 6, 2, 2, 1, 1, 1, true),
    ] {
        let g = Conv2dGeometry {
            stride,
            pad,
            channels_first,
            ..Conv2dGeometry::new(h, w, c, k)
        };
        let batch = 2;
        let img: Vec<f64> = (0..batch * g.image_len())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let wts: Vec<f64> = (0..g.patch_len() * outs)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let bias: Vec<f64> = (0..outs).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (oh, ow) = g.output_size().unwrap();

        let mut b = Builder::new();
        let x = b.secret_matrix("x", batch, g.image_len(), t);
        let wm = b.secret_matrix("w", g.patch_len(), outs, t);
        let bv = b.secret_vector("b", outs, t);
        let y = b.conv2d(x, wm, Some(bv), g);
        b.output_to_client("conv", y);
        let pool = Conv2dGeometry { pad: 0, ..g };
        let mx = b.max_pool2d(x, pool);
        b.output_to_client("max", mx);
        let avg = b.avg_pool2d(x, g);
        b.output_to_client("avg", avg);
        let p = b.finish().unwrap();
        assert_eq!(
            p.types()[y.id().index()].shape,
            veil_circuits::Shape::Matrix(batch, oh * ow * outs)
        );
        // Patches and reshapes are free: the conv is one fused round, the max pool one
        // comparison layer per halving of the window, the average one truncation.
        let levels = (k * k).next_power_of_two().trailing_zeros();
        assert_eq!(
            program_cost(&p).rounds,
            (levels * veil_circuits::cost::MAX_ROUNDS).max(1)
        );

        let inputs = HashMap::from([
            ("x".to_string(), enc(&img)),
            ("w".to_string(), enc(&wts)),
            ("b".to_string(), enc(&bias)),
        ]);
        let out = evaluate(&p, &inputs).unwrap();
        // Weight row (i, j, c), column o.
        let row = |i: usize, j: usize, c: usize| (i * g.kernel_w + j) * g.channels + c;
        let conv = reference(
            &img,
            batch,
            &g,
            outs,
            |i, j, c, o, v| v * wts[row(i, j, c) * outs + o],
            |ts| ts.iter().sum(),
            false,
        );
        let conv: Vec<f64> = conv
            .iter()
            .enumerate()
            .map(|(n, v)| v + bias[n % outs])
            .collect();
        close("conv", &out["conv"], &conv, 1e-3);
        let max = reference(
            &img,
            batch,
            &pool,
            c,
            |_, _, _, _, v| v,
            |ts| ts.iter().copied().fold(f64::MIN, f64::max),
            true,
        );
        close("max", &out["max"], &max, 1e-4);
        let avg = reference(
            &img,
            batch,
            &g,
            c,
            |_, _, _, _, v| v,
            |ts| ts.iter().sum::<f64>() / ts.len() as f64,
            true,
        );
        close("avg", &out["avg"], &avg, 1e-4);
    }
}

#[test]
fn im2col_programs_round_trip_through_json() {
    let mut b = Builder::new();
    let g = Conv2dGeometry {
        channels_first: true,
        stride: 2,
        ..Conv2dGeometry::new(4, 4, 2, 2)
    };
    let x = b.secret_matrix("x", 3, 32, Ring);
    let p = b.im2col(x, g);
    b.output_to_client("p", p);
    let prog = b.finish().unwrap();
    let back = Program::from_json(&prog.program().to_json()).unwrap();
    assert_eq!(&back, prog.program());
    assert_eq!(back.validate().unwrap().id(), prog.id());
}

#[test]
fn bad_geometries_and_shapes_are_build_errors() {
    let t = Fixed(F);
    let err = |f: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new();
        f(&mut b);
        b.finish().unwrap_err()
    };
    // Columns that are not h·w·c.
    let e = err(&|b| {
        let x = b.secret_matrix("x", 2, 30, t);
        let y = b.im2col(x, Conv2dGeometry::new(4, 4, 2, 3));
        b.output_to_client("y", y);
    });
    assert!(
        matches!(&e, ValidationError::Im2Col { what, .. } if what.contains("32 columns")),
        "{e}"
    );
    // A kernel larger than the image, a zero stride, a vector operand.
    for g in [
        Conv2dGeometry::new(2, 2, 1, 3),
        Conv2dGeometry {
            stride: 0,
            ..Conv2dGeometry::new(4, 4, 1, 2)
        },
    ] {
        let e = err(&|b| {
            let x = b.secret_matrix("x", 1, g.image_len(), t);
            let y = b.im2col(x, g);
            b.output_to_client("y", y);
        });
        assert!(matches!(e, ValidationError::Im2Col { .. }), "{e}");
    }
    let e = err(&|b| {
        let x = b.secret_vector("x", 16, t);
        let y = b.im2col(x, Conv2dGeometry::new(4, 4, 1, 2));
        b.output_to_client("y", y);
    });
    assert!(e.to_string().contains("expected a matrix of images"), "{e}");
    // Max pooling with padding, average pooling of ring words, weights of the wrong height.
    let e = err(&|b| {
        let x = b.secret_matrix("x", 1, 16, t);
        let g = Conv2dGeometry {
            pad: 1,
            ..Conv2dGeometry::new(4, 4, 1, 2)
        };
        let y = b.max_pool2d(x, g);
        b.output_to_client("y", y);
    });
    assert!(e.to_string().contains("no padding"), "{e}");
    let e = err(&|b| {
        let x = b.secret_matrix("x", 1, 16, Ring);
        let y = b.avg_pool2d(x, Conv2dGeometry::new(4, 4, 1, 2));
        b.output_to_client("y", y);
    });
    assert!(e.to_string().contains("fixed-point"), "{e}");
    let e = err(&|b| {
        let x = b.secret_matrix("x", 1, 16, t);
        let w = b.secret_matrix("w", 5, 3, t);
        let y = b.conv2d(x, w, None, Conv2dGeometry::new(4, 4, 1, 2));
        b.output_to_client("y", y);
    });
    assert!(!matches!(e, ValidationError::Im2Col { .. }), "{e}");
}
