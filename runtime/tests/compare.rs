//! Comparison and nonlinear ops against the plaintext evaluator on random inputs and edges, with
//! measured rounds and bytes equal to the cost model, and input-independent transcripts.

use rand::Rng;
use std::collections::HashMap;
use veil_circuits::cost::program_cost;
use veil_circuits::eval::evaluate;
use veil_circuits::{Builder, Fixed, Ring, ValidatedProgram};
use veil_runtime::harness::{collect_outputs, run_program3, share_inputs};
use veil_runtime::testing::{fixed_vec, test_rng};

/// Run `p` and check outputs == evaluator exactly, rounds/bytes == cost model; returns the
/// three parties' (rounds, bytes) so callers can compare transcripts.
fn check(p: &ValidatedProgram, plain: &HashMap<String, Vec<u64>>) -> [(u64, u64); 3] {
    let mut rng = test_rng();
    let results = run_program3(p, share_inputs(p, plain, &mut rng)).map(|r| r.expect("run"));
    let cost = program_cost(p);
    for (i, (_, report)) in results.iter().enumerate() {
        assert_eq!(report.rounds, cost.rounds as u64, "rounds at P{i}");
        assert_eq!(report.bytes_sent, cost.bytes_sent[i], "bytes sent by P{i}");
    }
    let shape = [0, 1, 2].map(|i| (results[i].1.rounds, results[i].1.bytes_sent));
    let outputs = results.map(|(o, _)| o);
    let got = collect_outputs(p, &outputs).expect("outputs reconstruct");
    let want = evaluate(p, plain).expect("plaintext evaluation");
    for (name, w) in &want {
        assert_eq!(&got[name], w, "output {name}");
    }
    shape
}

/// Values in [−2^62, 2^62) with the edges the comparisons must get right.
fn values(rng: &mut impl rand::Rng, n: usize) -> Vec<u64> {
    let edges: [i64; 8] = [0, 1, -1, 2, -2, (1 << 62) - 1, -(1 << 62), 12345];
    (0..n)
        .map(|i| match edges.get(i) {
            Some(e) if i < n / 2 => *e as u64,
            _ => rng.random_range(-(1i64 << 62)..(1i64 << 62)) as u64,
        })
        .collect()
}

#[test]
fn ltz_and_comparisons_match_plaintext() {
    let mut rng = test_rng();
    for n in [1usize, 5, 64, 200] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, Ring);
        let y = b.secret_vector("y", n, Ring);
        let c = b.public_vector("c", n, Ring);
        let outs = [
            ("ltz", b.ltz(x)),
            ("lt", b.lt(x, y)),
            ("le", b.le(x, y)),
            ("gt", b.gt(x, y)),
            ("ge", b.ge(x, y)),
            ("eq", b.eq(x, y)),
            ("lt_pub", b.lt(x, c)),
            ("eq_self", b.eq(x, x)),
        ];
        for (name, v) in outs {
            b.output_to_client(name, v);
        }
        let p = b.finish().unwrap();
        let xs = values(&mut rng, n);
        let mut ys = values(&mut rng, n);
        ys[..n / 3].copy_from_slice(&xs[..n / 3]); // equal values
        let plain = HashMap::from([
            ("x".to_string(), xs.clone()),
            ("y".to_string(), ys),
            ("c".to_string(), values(&mut rng, n)),
        ]);
        check(&p, &plain);
    }
}

#[test]
fn relu_max_min_select_on_fixed_point() {
    let mut rng = test_rng();
    let f = Fixed::default();
    for n in [1usize, 7, 100] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, f);
        let y = b.secret_vector("y", n, f);
        let c = b.lt(x, y);
        let outs = [
            ("relu", b.relu(x)),
            ("max", b.max(x, y)),
            ("min", b.min(x, y)),
            ("sel", b.select(c, x, y)),
        ];
        for (name, v) in outs {
            b.output_to_client(name, v);
        }
        let p = b.finish().unwrap();
        let plain = HashMap::from([
            ("x".to_string(), fixed_vec(&mut rng, n, 16, 1000.0)),
            ("y".to_string(), fixed_vec(&mut rng, n, 16, 1000.0)),
        ]);
        check(&p, &plain);
    }
}

#[test]
fn max_all_and_argmax_ties_and_odd_lengths() {
    let mut rng = test_rng();
    for n in [1usize, 2, 3, 5, 8, 13] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, Ring);
        let m = b.max_all(x);
        let a = b.argmax(x);
        b.output_to_client("max", m);
        b.output_to_client("argmax", a);
        let p = b.finish().unwrap();
        let mut xs = values(&mut rng, n);
        if n >= 3 {
            // A tie for the maximum: the lowest index must win.
            let top = xs.iter().map(|v| *v as i64).max().unwrap() as u64;
            xs[n - 1] = top;
        }
        check(&p, &HashMap::from([("x".to_string(), xs)]));
    }
}

#[test]
fn comparison_transcripts_do_not_depend_on_the_data() {
    let mut rng = test_rng();
    let n = 37;
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let a = b.argmax(x);
    let r = b.relu(x);
    b.output_to_client("argmax", a);
    b.output_to_client("relu", r);
    let p = b.finish().unwrap();
    let zeros = HashMap::from([("x".to_string(), vec![0u64; n])]);
    let random = HashMap::from([("x".to_string(), values(&mut rng, n))]);
    assert_eq!(check(&p, &zeros), check(&p, &random));
}

#[test]
fn ltz_is_the_exact_sign_bit_over_the_whole_ring() {
    let mut rng = test_rng();
    let mut xs: Vec<u64> = (0..500).map(|_| rng.random()).collect();
    xs[..8].copy_from_slice(&[
        0,
        1,
        u64::MAX,
        1 << 63,
        (1 << 63) - 1,
        (1 << 63) + 1,
        1 << 62,
        (1 << 62) - 1,
    ]);
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Ring);
    let l = b.ltz(x);
    b.output_to_client("l", l);
    let p = b.finish().unwrap();
    check(&p, &HashMap::from([("x".to_string(), xs)]));
}

#[test]
fn topk_onehot_and_gather_match_plaintext() {
    let mut rng = test_rng();
    let f = Fixed::default();
    for (n, k) in [(1usize, 1usize), (5, 5), (13, 1), (13, 4), (20, 20)] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, f);
        let (vals, idx) = b.best_k_with_indices(x, k);
        b.output_to_client("vals", vals);
        b.output_to_client("idx", idx);
        let p = b.finish().unwrap();
        let mut xs = fixed_vec(&mut rng, n, 16, 100.0);
        if n > 3 {
            xs[3] = xs[1]; // a tie
        }
        check(&p, &HashMap::from([("x".to_string(), xs)]));
    }
    let (rows, cols) = (11usize, 6usize);
    let mut b = Builder::new();
    let m = b.secret_matrix("m", rows, cols, f);
    let i = b.secret_scalar("i", Ring);
    let h = b.onehot(i, rows);
    let row = b.gather_row(i, m);
    b.output_to_client("onehot", h);
    b.output_to_client("row", row);
    let p = b.finish().unwrap();
    for index in [0u64, 4, 10, 11] {
        let plain = HashMap::from([
            ("m".to_string(), fixed_vec(&mut rng, rows * cols, 16, 50.0)),
            ("i".to_string(), vec![index]),
        ]);
        check(&p, &plain);
    }
}

#[test]
fn topk_and_gather_transcripts_do_not_depend_on_the_data() {
    let mut rng = test_rng();
    let (n, k, cols) = (16usize, 3usize, 4usize);
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let m = b.secret_matrix("m", n, cols, Ring);
    let i = b.secret_scalar("i", Ring);
    let (v, idx) = b.best_k_with_indices(x, k);
    let row = b.gather_row(i, m);
    b.output_to_client("v", v);
    b.output_to_client("idx", idx);
    b.output_to_client("row", row);
    let p = b.finish().unwrap();
    let run = |xs: Vec<u64>, index: u64, rng: &mut _| {
        let plain = HashMap::from([
            ("x".to_string(), xs),
            ("m".to_string(), values(rng, n * cols)),
            ("i".to_string(), vec![index]),
        ]);
        check(&p, &plain)
    };
    let a = run(vec![0; n], 0, &mut rng);
    let xs = values(&mut rng, n);
    let b2 = run(xs, (n - 1) as u64, &mut rng);
    assert_eq!(a, b2);
}

#[test]
fn bit_decomposition_and_msb_onehot_match_plaintext() {
    let mut rng = test_rng();
    let mut xs: Vec<u64> = (0..40).map(|_| rng.random()).collect();
    xs[..10].copy_from_slice(&[
        0,
        1,
        2,
        3,
        u64::MAX,
        1 << 63,
        (1 << 40) - 1,
        1 << 40,
        1 << 39,
        12345,
    ]);
    for x in &mut xs[10..30] {
        *x >>= rng.random_range(0..64); // every magnitude
    }
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Ring);
    let bits = b.bits(x);
    let msb = b.msb_onehot(x, 40);
    let full = b.msb_onehot(x, 64);
    b.output_to_client("bits", bits);
    b.output_to_client("msb", msb);
    b.output_to_client("full", full);
    let p = b.finish().unwrap();
    check(&p, &HashMap::from([("x".to_string(), xs)]));
}

#[test]
fn best_k_network_matches_plaintext_sort() {
    let mut rng = test_rng();
    for (n, k) in [
        (1usize, 1usize),
        (2, 1),
        (2, 2),
        (7, 3),
        (8, 8),
        (33, 8),
        (300, 5),
        (1000, 8),
    ] {
        for largest in [true, false] {
            let mut b = Builder::new();
            let x = b.secret_vector("x", n, Ring);
            let best = b.best_k(x, k, largest);
            b.output_to_client("best", best);
            let p = b.finish().unwrap();
            // Half the elements from a small range, so ties and duplicates are common.
            let mut xs = values(&mut rng, n);
            for w in xs.iter_mut().step_by(2) {
                *w = rng.random_range(-4i64..4) as u64;
            }
            let plain = HashMap::from([("x".to_string(), xs.clone())]);
            check(&p, &plain);
            // The evaluator's network equals an ordinary sort on this range.
            let mut sorted: Vec<i64> = xs.iter().map(|&w| w as i64).collect();
            sorted.sort_unstable();
            if largest {
                sorted.reverse();
            }
            let want: Vec<u64> = sorted[..k].iter().map(|&w| w as u64).collect();
            assert_eq!(evaluate(&p, &plain).unwrap()["best"], want, "n={n} k={k}");
        }
    }
}

#[test]
fn onehot_low_matches_plaintext() {
    let mut rng = test_rng();
    for (m, bits, n) in [
        (1usize, 1u32, 2usize),
        (3, 1, 1),
        (4, 3, 8),
        (5, 4, 11),
        (6, 2, 4),
        (7, 5, 32),
        (5, 9, 300),
        (8, 10, 1000),
    ] {
        // The adder stops after 1 (bits ≤ 3), 2 (4–5), 3 (9) or 4 (10) prefix levels.
        let mut b = Builder::new();
        let x = b.secret_vector("x", m, Ring);
        let oh = b.onehot_low(x, bits, n);
        b.output_to_client("oh", oh);
        let p = b.finish().unwrap();
        // Random words: the high bits must be ignored, and indices ≥ n give zero rows.
        let xs: Vec<u64> = (0..m).map(|_| rng.random()).collect();
        check(&p, &HashMap::from([("x".to_string(), xs)]));
    }
}

#[test]
fn best_k_and_onehot_transcripts_do_not_depend_on_the_data() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 50, Ring);
    let best = b.best_k(x, 4, false);
    let oh = b.onehot_low(best, 6, 50);
    b.output_to_client("oh", oh);
    let p = b.finish().unwrap();
    let zeros = HashMap::from([("x".to_string(), vec![0u64; 50])]);
    let mut rng = test_rng();
    let random = HashMap::from([("x".to_string(), values(&mut rng, 50))]);
    assert_eq!(check(&p, &zeros), check(&p, &random));
}

/// Rank-only plans (all-pairs comparisons in groups, `BestK { groups }`) in the three-party
/// harness: outputs equal the evaluator and an ordinary sort, measured rounds and bytes equal
/// the cost model — for the plans the cost model picks on each link and for hand-made ones
/// with groups that are not powers of two, k = 1, k = n and many ties.
#[test]
fn best_k_rank_plans_match_plaintext_and_cost_model() {
    use veil_circuits::cost::{LinkProfile, best_rank_groups};
    let mut rng = test_rng();
    let mut cases: Vec<(usize, usize, Vec<usize>)> = vec![
        (1, 1, vec![2]),
        (2, 2, vec![2]),
        (5, 5, vec![5]),
        (7, 1, vec![3, 3]),
        (9, 2, vec![3, 6]),
        (33, 8, vec![33]),
        (100, 3, vec![10, 30]),
        (300, 8, vec![50, 48]),
        (257, 1, vec![2, 2, 2, 2, 2, 2, 2, 2, 2]),
    ];
    for (n, k) in [(1000usize, 8usize), (3000, 8), (600, 16), (200, 1)] {
        for link in [LinkProfile::LOOPBACK, LinkProfile::WAN] {
            cases.push((n, k, best_rank_groups(n, k, &link).0));
        }
    }
    for (n, k, groups) in cases {
        for largest in [true, false] {
            let mut b = Builder::new();
            let x = b.secret_vector("x", n, Ring);
            let best = b.best_k_ranked(x, k, largest, Some(groups.clone()));
            b.output_to_client("best", best);
            let p = b
                .finish()
                .unwrap_or_else(|e| panic!("{n} {k} {groups:?}: {e}"));
            let mut xs = values(&mut rng, n);
            for w in xs.iter_mut().step_by(2) {
                *w = rng.random_range(-3i64..3) as u64;
            }
            let plain = HashMap::from([("x".to_string(), xs.clone())]);
            check(&p, &plain);
            let mut sorted: Vec<i64> = xs.iter().map(|&w| w as i64).collect();
            sorted.sort_unstable();
            if largest {
                sorted.reverse();
            }
            let want: Vec<u64> = sorted[..k].iter().map(|&w| w as u64).collect();
            assert_eq!(
                evaluate(&p, &plain).unwrap()["best"],
                want,
                "n={n} k={k} groups={groups:?}"
            );
        }
    }
}

#[test]
fn best_k_rank_transcripts_do_not_depend_on_the_data() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 60, Ring);
    let best = b.best_k_ranked(x, 4, false, Some(vec![20, 12]));
    b.output_to_client("best", best);
    let p = b.finish().unwrap();
    let zeros = HashMap::from([("x".to_string(), vec![0u64; 60])]);
    let mut rng = test_rng();
    let random = HashMap::from([("x".to_string(), values(&mut rng, 60))]);
    assert_eq!(check(&p, &zeros), check(&p, &random));
}
