//! Builder lowerings (`onehot`, `gather_row`, `topk`): plaintext semantics against a
//! reference, types, cost under the ASAP schedule, and argument errors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use veil_circuits::cost::{
    LTZ_ROUNDS, MAX_ROUNDS, ltz_bytes, program_cost, tournament_bytes, tournament_pairs,
};
use veil_circuits::eval::evaluate;
use veil_circuits::fixed::{from_signed, to_signed};
use veil_circuits::selection::best_k_sentinel;
use veil_circuits::{
    Builder, ElemType, Fixed, FracBits, Op, Ring, Shape, ValidatedProgram, ValidationError, Value,
    ValueType, Visibility,
};

const F16: ElemType = ElemType::Fixed(FracBits(16));
const SIZES: [usize; 5] = [1, 2, 5, 8, 13];

fn s(xs: &[i64]) -> Vec<u64> {
    xs.iter().map(|&x| from_signed(x)).collect()
}

fn run(p: &ValidatedProgram, ins: &[(&str, Vec<u64>)]) -> HashMap<String, Vec<u64>> {
    let ins = ins
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    evaluate(p, &ins).unwrap()
}

fn ty(vis: Visibility, elem: ElemType, shape: Shape) -> ValueType {
    ValueType { vis, elem, shape }
}

fn times(n: usize, per: [u64; 3]) -> [u64; 3] {
    per.map(|b| n as u64 * b)
}

fn plus(a: [u64; 3], b: [u64; 3]) -> [u64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// The k largest of `xs`, ordered by (value descending, index ascending): (values, indices).
fn reference_topk(xs: &[i64], k: usize) -> (Vec<i64>, Vec<i64>) {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(xs[i]), i));
    order.truncate(k);
    (
        order.iter().map(|&i| xs[i]).collect(),
        order.iter().map(|&i| i as i64).collect(),
    )
}

fn ks(n: usize) -> Vec<usize> {
    let mut ks = vec![1, n.div_ceil(2), n];
    ks.dedup();
    ks
}

// ---------------------------------------------------------------- onehot

#[test]
fn onehot_every_index_and_out_of_range() {
    for n in SIZES.into_iter().chain([0]) {
        let mut b = Builder::new();
        let i = b.secret_scalar("i", Ring);
        let h = b.onehot(i, n);
        assert_eq!(
            h.ty(),
            ty(Visibility::Secret, ElemType::Ring, Shape::Vector(n))
        );
        b.output_to_client("h", h);
        let p = b.finish().unwrap();
        let out_of_range = [n as i64, n as i64 + 3, -1, -(1 << 40), 1 << 40];
        for idx in (0..n as i64).chain(out_of_range) {
            let got = &run(&p, &[("i", s(&[idx]))])["h"];
            let want: Vec<u64> = (0..n as i64).map(|j| u64::from(j == idx)).collect();
            assert_eq!(got, &want, "n {n}, index {idx}");
        }
        let pc = program_cost(&p);
        assert_eq!(pc.rounds, LTZ_ROUNDS, "n {n}");
        assert_eq!(pc.bytes_sent, ltz_bytes(2 * n), "n {n}");
    }
}

#[test]
fn onehot_public_index_is_public_and_free() {
    let mut b = Builder::new();
    let i = b.public_scalar("i", Ring);
    let h = b.onehot(i, 4);
    assert_eq!(
        h.ty(),
        ty(Visibility::Public, ElemType::Ring, Shape::Vector(4))
    );
    b.output_to_client("h", h);
    let p = b.finish().unwrap();
    assert_eq!(run(&p, &[("i", s(&[2]))])["h"], vec![0, 0, 1, 0]);
    assert_eq!(program_cost(&p).rounds, 0);
    assert_eq!(program_cost(&p).bytes_sent, [0; 3]);
}

// ---------------------------------------------------------------- gather_row

fn gather_program(elem: ElemType, m_vis: Visibility, rows: usize, cols: usize) -> (Value, Builder) {
    let mut b = Builder::new();
    let i = b.secret_scalar("i", Ring);
    let m = match m_vis {
        Visibility::Secret => b.secret_matrix("m", rows, cols, elem),
        Visibility::Public => b.public_matrix("m", rows, cols, elem),
    };
    let r = b.gather_row(i, m);
    b.output_to_client("row", r);
    (r, b)
}

#[test]
fn gather_row_ring_and_fixed() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for elem in [ElemType::Ring, F16] {
        for (rows, cols) in [(1, 1), (3, 4), (5, 1), (8, 3)] {
            let (r, b) = gather_program(elem, Visibility::Secret, rows, cols);
            assert_eq!(r.ty(), ty(Visibility::Secret, elem, Shape::Vector(cols)));
            let p = b.finish().unwrap();
            let m: Vec<i64> = (0..rows * cols)
                .map(|_| rng.random_range(-(1i64 << 40)..(1i64 << 40)))
                .collect();
            for idx in 0..rows as i64 + 2 {
                let got = &run(&p, &[("i", s(&[idx])), ("m", s(&m))])["row"];
                let want = if idx < rows as i64 {
                    let at = idx as usize * cols;
                    s(&m[at..at + cols])
                } else {
                    vec![0; cols]
                };
                assert_eq!(got, &want, "{elem} {rows}×{cols}, index {idx}");
            }
            let pc = program_cost(&p);
            assert_eq!(pc.rounds, LTZ_ROUNDS + 1);
            assert_eq!(
                pc.bytes_sent,
                plus(ltz_bytes(2 * rows), [8 * cols as u64; 3])
            );
        }
    }
    // Fixed point stays exact: a row of 1.5 and −2.25 comes back as is (no rescale needed).
    let (_, b) = gather_program(F16, Visibility::Secret, 2, 2);
    let p = b.finish().unwrap();
    let m = s(&[3 << 15, -(9 << 14), 7, -7]);
    let got = &run(&p, &[("i", s(&[0])), ("m", m.clone())])["row"];
    assert_eq!(got, &m[..2]);
}

#[test]
fn gather_row_visibility_and_cost() {
    // Secret index, public matrix: secret result, the matmul is local.
    let (r, b) = gather_program(F16, Visibility::Public, 4, 3);
    assert_eq!(r.ty(), ty(Visibility::Secret, F16, Shape::Vector(3)));
    let pc = program_cost(&b.finish().unwrap());
    assert_eq!(pc.rounds, LTZ_ROUNDS);
    assert_eq!(pc.bytes_sent, ltz_bytes(8));
    // Public index, secret matrix: free.
    let mut b = Builder::new();
    let i = b.public_scalar("i", Ring);
    let m = b.secret_matrix("m", 4, 3, Ring);
    let r = b.gather_row(i, m);
    assert_eq!(
        r.ty(),
        ty(Visibility::Secret, ElemType::Ring, Shape::Vector(3))
    );
    b.output_to_client("row", r);
    let p = b.finish().unwrap();
    assert_eq!(program_cost(&p).rounds, 0);
    let m: Vec<u64> = (0..12).collect();
    assert_eq!(run(&p, &[("i", s(&[3])), ("m", m)])["row"], vec![9, 10, 11]);
}

// ---------------------------------------------------------------- topk

fn topk_program(elem: ElemType, vis: Visibility, n: usize, k: usize) -> (Value, Value, Builder) {
    let mut b = Builder::new();
    let x = match vis {
        Visibility::Secret => b.secret_vector("x", n, elem),
        Visibility::Public => b.public_vector("x", n, elem),
    };
    let (v, i) = b.best_k_with_indices(x, k);
    b.output_to_client("values", v);
    b.output_to_client("indices", i);
    (v, i, b)
}

fn random_input(rng: &mut ChaCha8Rng, n: usize) -> Vec<i64> {
    const BIG: i64 = (1 << 62) - 1;
    (0..n)
        .map(|_| match rng.random_range(0..10) {
            // Small values: plenty of ties, negatives and zeros.
            0..=6 => rng.random_range(-3..=3),
            7 => rng.random_range(-(1i64 << 50)..(1i64 << 50)),
            // The edges of the allowed range (−2^62, 2^62).
            8 => -BIG,
            _ => BIG,
        })
        .collect()
}

#[test]
fn topk_matches_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for elem in [ElemType::Ring, F16] {
        for n in SIZES {
            for k in ks(n) {
                let (v, i, b) = topk_program(elem, Visibility::Secret, n, k);
                assert_eq!(v.ty(), ty(Visibility::Secret, elem, Shape::Vector(k)));
                assert_eq!(
                    i.ty(),
                    ty(Visibility::Secret, ElemType::Ring, Shape::Vector(k))
                );
                let p = b.finish().unwrap();
                let mut cases = vec![vec![0; n], vec![-1; n], (0..n as i64).collect()];
                cases.extend((0..12).map(|_| random_input(&mut rng, n)));
                for xs in cases {
                    let out = run(&p, &[("x", s(&xs))]);
                    let (want_v, want_i) = reference_topk(&xs, k);
                    let got_v: Vec<i64> = out["values"].iter().map(|&w| to_signed(w)).collect();
                    let got_i: Vec<i64> = out["indices"].iter().map(|&w| to_signed(w)).collect();
                    assert_eq!(
                        (got_v, got_i),
                        (want_v, want_i),
                        "{elem} n {n} k {k} x {xs:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn topk_ties_go_to_the_lowest_index() {
    let (_, _, b) = topk_program(ElemType::Ring, Visibility::Secret, 6, 6);
    let p = b.finish().unwrap();
    let out = run(&p, &[("x", s(&[2, 5, 2, 5, -1, 5]))]);
    assert_eq!(out["values"], s(&[5, 5, 5, 2, 2, -1]));
    assert_eq!(out["indices"], s(&[1, 3, 5, 0, 2, 4]));
    let out = run(&p, &[("x", s(&[0; 6]))]);
    assert_eq!(out["indices"], s(&[0, 1, 2, 3, 4, 5]));
}

#[test]
fn topk_public_input_is_public_and_free() {
    let (v, i, b) = topk_program(F16, Visibility::Public, 5, 3);
    assert_eq!(v.ty().vis, Visibility::Public);
    assert_eq!(i.ty().vis, Visibility::Public);
    let p = b.finish().unwrap();
    let pc = program_cost(&p);
    assert_eq!((pc.rounds, pc.bytes_sent), (0, [0; 3]));
    let out = run(&p, &[("x", s(&[4, -9, 4, 8, 0]))]);
    assert_eq!(out["values"], s(&[8, 4, 4]));
    assert_eq!(out["indices"], s(&[3, 0, 2]));
}

#[test]
fn topk_ops_depend_only_on_n_and_k() {
    let ops = |elem: ElemType| {
        let (_, _, b) = topk_program(elem, Visibility::Secret, 5, 3);
        b.program().ops
    };
    let (ring, fixed) = (ops(ElemType::Ring), ops(F16));
    assert_eq!(ring.len(), fixed.len());
    // Per round: argmax, eq, dot, two reshapes, and a select except after the last round.
    let count = |f: fn(&Op) -> bool| ring.iter().filter(|o| f(o)).count();
    assert_eq!(count(|o| matches!(o, Op::ArgMax(_))), 3);
    assert_eq!(count(|o| matches!(o, Op::Eq(..))), 3);
    assert_eq!(count(|o| matches!(o, Op::Dot(..))), 3);
    assert_eq!(count(|o| matches!(o, Op::Select { .. })), 2);
    assert!(ring.iter().any(|o| matches!(
        o,
        Op::Constant { elem: ElemType::Ring, values, .. } if values == &[best_k_sentinel(true)]
    )));
    assert!(fixed.iter().any(|o| matches!(
        o,
        Op::Constant { elem: F16, values, .. } if values == &[best_k_sentinel(true)]
    )));
    assert_eq!(best_k_sentinel(true), from_signed(-(1 << 62)));
}

/// Rounds of a secret top-k: k rounds of (argmax 10·L, eq 10, then dot ∥ select 1), with no
/// overlap between rounds.
fn topk_rounds(n: usize, k: usize) -> u32 {
    let levels = tournament_pairs(n).len() as u32;
    k as u32 * (MAX_ROUNDS * levels + LTZ_ROUNDS + 1)
}

#[test]
fn topk_cost() {
    for n in SIZES {
        for k in ks(n) {
            let (_, _, b) = topk_program(ElemType::Ring, Visibility::Secret, n, k);
            let p = b.finish().unwrap();
            let pc = program_cost(&p);
            assert_eq!(pc.rounds, topk_rounds(n, k), "n {n} k {k}");
            let per_round = plus(plus(tournament_bytes(n, 2), ltz_bytes(2 * n)), [8; 3]);
            let want = plus(times(k, per_round), [8 * (n * (k - 1)) as u64; 3]);
            assert_eq!(pc.bytes_sent, want, "n {n} k {k}");
            // The dot product and the masking select of a round complete in the same round.
            let ops = &p.program().ops;
            let dots: Vec<u32> = (0..ops.len())
                .filter(|&j| matches!(ops[j], Op::Dot(..)))
                .map(|j| pc.depth[j])
                .collect();
            let selects: Vec<u32> = (0..ops.len())
                .filter(|&j| matches!(ops[j], Op::Select { .. }))
                .map(|j| pc.depth[j])
                .collect();
            assert_eq!(dots.len(), k);
            assert_eq!(selects[..], dots[..k - 1]);
        }
    }
    // Spot values: n = 8 (L = 3), k = 8: 8·(24 + 9) = 264; n = 13 (L = 4), k = 1: 41.
    assert_eq!(topk_rounds(8, 8), 264);
    assert_eq!(topk_rounds(13, 1), 41);
    assert_eq!(topk_rounds(1, 1), 9);
}

// ---------------------------------------------------------------- errors

fn topk_error(shape: Shape, elem: ElemType, k: usize) -> ValidationError {
    let mut b = Builder::new();
    let x = b.input(
        "x",
        veil_circuits::Owner::Client("client".into()),
        ty(Visibility::Secret, elem, shape),
    );
    let (v, i) = b.best_k_with_indices(x, k);
    assert_eq!(
        v.ty(),
        ty(Visibility::Public, ElemType::Ring, Shape::Scalar)
    );
    assert_eq!(i.ty(), v.ty());
    b.output_to_client("v", v);
    b.finish().unwrap_err()
}

#[test]
fn topk_argument_errors() {
    assert_eq!(
        topk_error(Shape::Vector(5), ElemType::Ring, 0),
        ValidationError::CountRange {
            op: 1,
            name: "best_k_with_indices",
            k: 0,
            len: 5
        }
    );
    assert_eq!(
        topk_error(Shape::Vector(5), F16, 6),
        ValidationError::CountRange {
            op: 1,
            name: "best_k_with_indices",
            k: 6,
            len: 5
        }
    );
    for shape in [Shape::Matrix(2, 3), Shape::Scalar, Shape::Vector(0)] {
        assert_eq!(
            topk_error(shape, ElemType::Ring, 1),
            ValidationError::NotNonEmptyVector {
                op: 1,
                name: "best_k_with_indices",
                shape
            }
        );
    }
    assert!(matches!(
        topk_error(Shape::Vector(1 << 33), ElemType::Ring, 2),
        ValidationError::ShapeTooLarge {
            op: 1,
            name: "best_k_with_indices",
            ..
        }
    ));
    let mut b = Builder::new();
    let x = b.public_vector("x", 3, ElemType::Bit);
    let _ = b.best_k_with_indices(x, 1);
    assert_eq!(
        b.finish().unwrap_err(),
        ValidationError::BitUnsupported {
            op: 1,
            name: "best_k_with_indices"
        }
    );
    // Only the first error is reported: a later topk failure does not replace it.
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let bad = b.slice(x, 2, 1);
    let _ = b.best_k_with_indices(bad, 9);
    assert!(matches!(
        b.finish(),
        Err(ValidationError::SliceRange { op: 1, .. })
    ));
}

#[test]
fn gather_row_and_onehot_argument_errors() {
    // Gather from a vector.
    let mut b = Builder::new();
    let i = b.secret_scalar("i", Ring);
    let v = b.secret_vector("v", 4, Ring);
    let r = b.gather_row(i, v);
    assert_eq!(
        r.ty(),
        ty(Visibility::Public, ElemType::Ring, Shape::Scalar)
    );
    assert_eq!(
        b.finish().unwrap_err(),
        ValidationError::NotMatrix {
            op: 2,
            name: "gather_row",
            shape: Shape::Vector(4)
        }
    );
    // Index that is not a ring scalar.
    let bad_indices = [
        ty(Visibility::Secret, F16, Shape::Scalar),
        ty(Visibility::Secret, ElemType::Ring, Shape::Vector(3)),
    ];
    for index_ty in bad_indices {
        let mut b = Builder::new();
        let i = b.input("i", veil_circuits::Owner::Client("c".into()), index_ty);
        let m = b.secret_matrix("m", 3, 2, Fixed::default());
        let _ = b.gather_row(i, m);
        assert_eq!(
            b.finish().unwrap_err(),
            ValidationError::IndexNotRingScalar {
                op: 2,
                name: "gather_row",
                ty: index_ty
            }
        );
        let mut b = Builder::new();
        let i = b.input("i", veil_circuits::Owner::Client("c".into()), index_ty);
        let _ = b.onehot(i, 3);
        assert_eq!(
            b.finish().unwrap_err(),
            ValidationError::IndexNotRingScalar {
                op: 1,
                name: "onehot",
                ty: index_ty
            }
        );
    }
    // An absurd length is an error, not an allocation.
    let mut b = Builder::new();
    let i = b.secret_scalar("i", Ring);
    let _ = b.onehot(i, usize::MAX);
    assert!(matches!(
        b.finish(),
        Err(ValidationError::ShapeTooLarge { op: 1, .. })
    ));
}
