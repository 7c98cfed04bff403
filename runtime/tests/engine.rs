//! The engine against the plaintext evaluator (which defines the semantics) on random inputs,
//! with measured rounds and bytes per party equal to the cost model, plus its error paths.

use std::collections::HashMap;
use veil_circuits::FracBits;
use veil_circuits::cost::program_cost;
use veil_circuits::eval::evaluate;
use veil_circuits::fixed;
use veil_circuits::{
    Builder, ElemType, Fixed, Owner, PartyId, Recipient, Ring, Shape, ValidatedProgram, ValueType,
    Visibility,
};
use veil_runtime::engine::{InputValue, Session};
use veil_runtime::error::{EngineError, TransportError};
use veil_runtime::harness::{collect_outputs, run_program3, run3, share_inputs};
use veil_runtime::testing::{fixed_vec, ring_vec_with_edges, test_rng};
use veil_runtime::transport::Transport;

/// Run `p` on three parties and compare every output with the evaluator (allowing `ulps` of
/// difference, for probabilistic truncation), and rounds/bytes with the cost model.
fn check(p: &ValidatedProgram, plain: &HashMap<String, Vec<u64>>, ulps: i64) {
    let mut rng = test_rng();
    let results = run_program3(p, share_inputs(p, plain, &mut rng));
    let results = results.map(|r| r.expect("engine run succeeds"));
    let cost = program_cost(p);
    for (i, (_, report)) in results.iter().enumerate() {
        assert_eq!(report.rounds, cost.rounds as u64, "rounds at P{i}");
        assert_eq!(report.bytes_sent, cost.bytes_sent[i], "bytes sent by P{i}");
    }
    let outputs = results.map(|(o, _)| o);
    let got = collect_outputs(p, &outputs).expect("outputs reconstruct");
    let want = evaluate(p, plain).expect("plaintext evaluation");
    assert_eq!(got.len(), want.len(), "every output is delivered");
    for (name, w) in &want {
        let g = &got[name];
        assert_eq!(g.len(), w.len(), "output {name} length");
        for (k, (a, b)) in g.iter().zip(w).enumerate() {
            let diff = (a.wrapping_sub(*b) as i64).abs();
            assert!(
                diff <= ulps,
                "output {name}[{k}] off by {diff} (allowed {ulps})"
            );
        }
    }
}

fn ring_inputs(names: &[(&str, usize)]) -> HashMap<String, Vec<u64>> {
    let mut rng = test_rng();
    names
        .iter()
        .map(|(n, len)| (n.to_string(), ring_vec_with_edges(&mut rng, *len)))
        .collect()
}

#[test]
fn linear_ops_and_products_on_every_visibility_mix() {
    for n in [1usize, 7, 64, 65] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, Ring);
        let y = b.secret_vector("y", n, Ring);
        let c = b.public_vector("c", n, Ring);
        let s = b.secret_scalar("s", Ring);
        let k = b.const_ring(-3);
        let sum = b.add(x, y);
        let diff = b.sub(x, c);
        let rdiff = b.sub(c, y);
        let neg = b.neg(x);
        let prod = b.mul(x, y);
        let pub_prod = b.mul(c, y);
        let bcast = b.mul(s, x);
        let scaled = b.mul(x, k);
        let shifted = b.add(k, y);
        let cc = b.mul(c, c);
        for (name, v) in [
            ("sum", sum),
            ("diff", diff),
            ("rdiff", rdiff),
            ("neg", neg),
            ("prod", prod),
            ("pub_prod", pub_prod),
            ("bcast", bcast),
            ("scaled", scaled),
            ("shifted", shifted),
            ("cc", cc),
        ] {
            b.output_to_client(name, v);
        }
        let p = b.finish().expect("valid program");
        check(
            &p,
            &ring_inputs(&[("x", n), ("y", n), ("c", n), ("s", 1)]),
            0,
        );
    }
}

#[test]
fn dot_matmul_sum_with_secret_and_public_operands() {
    let (m, k, n) = (5usize, 9usize, 4usize);
    let mut b = Builder::new();
    let a = b.secret_matrix("a", m, k, Ring);
    let a2 = b.secret_matrix("a2", m, k, Ring);
    let w = b.secret_matrix("w", k, n, Ring);
    let pw = b.public_matrix("pw", k, n, Ring);
    let pa = b.public_matrix("pa", m, k, Ring);
    let v = b.secret_vector("v", k, Ring);
    let v2 = b.secret_vector("v2", k, Ring);
    let outs = [
        ("ss", b.matmul(a, w)),
        ("sp", b.matmul(a, pw)),
        ("ps", b.matmul(pa, w)),
        ("rowdot", b.dot(a, a2)),
        ("pubdot", b.dot(a, pa)),
        ("vdot", b.dot(v, v2)),
        ("sum", b.sum(a)),
        ("sumrows", b.sum_rows(a)),
    ];
    for (name, val) in outs {
        b.output_to_client(name, val);
    }
    let p = b.finish().unwrap();
    check(
        &p,
        &ring_inputs(&[
            ("a", m * k),
            ("a2", m * k),
            ("w", k * n),
            ("pw", k * n),
            ("pa", m * k),
            ("v", k),
            ("v2", k),
        ]),
        0,
    );
}

#[test]
fn data_movement_reveal_and_every_recipient() {
    let mut b = Builder::new();
    let m = b.secret_matrix("m", 3, 4, Ring);
    let c = b.public_matrix("c", 2, 4, Ring);
    let owned = b.input(
        "owned",
        Owner::Party(PartyId::P1),
        ValueType {
            vis: Visibility::Secret,
            elem: ElemType::Ring,
            shape: Shape::Vector(6),
        },
    );
    let t = b.transpose(m);
    let r = b.reshape(m, Shape::Vector(12));
    let sl = b.slice(m, 1, 3);
    let cat = b.concat(&[m, c]);
    let vs = b.slice(r, 2, 8);
    let both = b.add(vs, owned);
    let opened = b.reveal(both);
    let twice = b.add(opened, opened);
    b.output_to_client("t", t);
    b.output_to_client("sl", sl);
    b.output_to_client("cat", cat);
    b.output("to_p2", both, Recipient::Party(PartyId::P2));
    b.output("to_all", owned, Recipient::AllParties);
    b.output_to_client("twice", twice);
    let p = b.finish().unwrap();
    check(&p, &ring_inputs(&[("m", 12), ("c", 8), ("owned", 6)]), 0);
}

#[test]
fn fixed_point_products_within_one_ulp() {
    let f = Fixed::default();
    let mut rng = test_rng();
    for n in [1usize, 33, 100] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, f);
        let y = b.secret_vector("y", n, f);
        let a = b.secret_matrix("a", 3, n, f);
        let w = b.secret_matrix("w", n, 2, f);
        let half = b.const_fixed(-0.5, f);
        let prod = b.fixmul(x, y);
        let by_const = b.fixmul(x, half);
        let d = b.fixdot(x, y);
        let mm = b.fixmatmul(a, w);
        b.output_to_client("prod", prod);
        b.output_to_client("by_const", by_const);
        b.output_to_client("dot", d);
        b.output_to_client("mm", mm);
        let p = b.finish().unwrap();
        let inputs = HashMap::from([
            ("x".to_string(), fixed_vec(&mut rng, n, 16, 100.0)),
            ("y".to_string(), fixed_vec(&mut rng, n, 16, 100.0)),
            ("a".to_string(), fixed_vec(&mut rng, 3 * n, 16, 10.0)),
            ("w".to_string(), fixed_vec(&mut rng, 2 * n, 16, 10.0)),
        ]);
        check(&p, &inputs, 1);
    }
    // The decoded product matches f64 to within the 2^-16 resolution plus one ulp.
    let x = fixed::encode(-3.25, FracBits(16)).unwrap();
    let y = fixed::encode(1.5, FracBits(16)).unwrap();
    let mut b = Builder::new();
    let xv = b.secret_scalar("x", f);
    let yv = b.secret_scalar("y", f);
    let z = b.fixmul(xv, yv);
    b.output_to_client("z", z);
    let p = b.finish().unwrap();
    let plain = HashMap::from([("x".to_string(), vec![x]), ("y".to_string(), vec![y])]);
    let out = run_program3(&p, share_inputs(&p, &plain, &mut rng)).map(|r| r.unwrap().0);
    let z = collect_outputs(&p, &out).unwrap()["z"][0];
    assert!((fixed::decode(z, FracBits(16)) - (-4.875)).abs() <= 2.0 / 65536.0);
}

/// Secret·secret (fused open-and-truncate), secret·public and public·secret (local product +
/// truncation) `MatMulRescale`s of m×k by k×n, and with `chain` a second fused product fed by
/// the first.
fn matmul_rescale_program((m, k, n): (usize, usize, usize), chain: bool) -> ValidatedProgram {
    let f = Fixed::default();
    let mut b = Builder::new();
    let x = b.secret_matrix("x", m, k, f);
    let w = b.secret_matrix("w", k, n, f);
    let wp = b.public_matrix("wp", k, n, f);
    let xp = b.public_matrix("xp", m, k, f);
    let ss = b.matmul_rescale(x, w, 16);
    let sp = b.matmul_rescale(x, wp, 16);
    let ps = b.matmul_rescale(xp, w, 16);
    b.output_to_client("ss", ss);
    b.output_to_client("sp", sp);
    b.output_to_client("ps", ps);
    if chain {
        let back = b.transpose(w);
        let c = b.matmul_rescale(ss, back, 16);
        b.output_to_client("chain", c);
    }
    b.finish().unwrap()
}

#[test]
fn fused_matmul_rescale_is_one_round_within_one_ulp() {
    // Random signed inputs; `check` asserts rounds and bytes = cost model and the plaintext
    // floor within the given ulps.
    let mut rng = test_rng();
    for (m, k, n) in [
        (1usize, 1usize, 1usize),
        (1, 784, 128),
        (7, 33, 10),
        (100, 12, 3),
    ] {
        let inputs = HashMap::from([
            ("x".to_string(), fixed_vec(&mut rng, m * k, 16, 1.0)),
            ("w".to_string(), fixed_vec(&mut rng, k * n, 16, 1.0)),
            ("wp".to_string(), fixed_vec(&mut rng, k * n, 16, 1.0)),
            ("xp".to_string(), fixed_vec(&mut rng, m * k, 16, 1.0)),
        ]);
        let single = matmul_rescale_program((m, k, n), false);
        assert_eq!(program_cost(&single).rounds, 1);
        check(&single, &inputs, 1);
        // One ulp per truncation, carried through the second product (≤ k·|w| ulps).
        let chained = matmul_rescale_program((m, k, n), true);
        assert_eq!(
            program_cost(&chained).rounds,
            2,
            "two dependent fused products"
        );
        check(&chained, &inputs, 1 + k as i64);
    }
}

#[test]
fn thousand_independent_multiplications_take_one_round() {
    let mut b = Builder::new();
    let mut plain = HashMap::new();
    let mut rng = test_rng();
    for i in 0..1000 {
        let x = b.secret_scalar(&format!("x{i}"), Ring);
        let y = b.secret_scalar(&format!("y{i}"), Ring);
        let z = b.mul(x, y);
        b.output_to_client(&format!("z{i}"), z);
        plain.insert(format!("x{i}"), ring_vec_with_edges(&mut rng, 1));
        plain.insert(format!("y{i}"), ring_vec_with_edges(&mut rng, 1));
    }
    let p = b.finish().unwrap();
    assert_eq!(program_cost(&p).rounds, 1);
    check(&p, &plain, 0);
}

#[test]
fn dependent_chain_takes_one_round_per_level() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring);
    let mut acc = x;
    for _ in 0..5 {
        acc = b.mul(acc, x);
    }
    b.output("x6", acc, Recipient::Party(PartyId::P0));
    let p = b.finish().unwrap();
    assert_eq!(program_cost(&p).rounds, 6, "5 multiplications + 1 reveal");
    check(&p, &ring_inputs(&[("x", 4)]), 0);
}

fn simple_program() -> ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let y = b.secret_vector("y", 3, Ring);
    let z = b.mul(x, y);
    b.output_to_client("z", z);
    b.finish().unwrap()
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let p = simple_program();
    let mut rng = test_rng();
    let good = share_inputs(&p, &ring_inputs(&[("x", 3), ("y", 3)]), &mut rng);

    let mut missing = good.clone();
    for m in missing.iter_mut() {
        m.remove("y");
    }
    let r = run_program3(&p, missing);
    assert!(matches!(&r[0], Err(EngineError::MissingInput { name, .. }) if name == "y"));

    let mut unknown = good.clone();
    unknown[1].insert("nope".into(), InputValue::Plain(vec![1]));
    let r = run_program3(&p, unknown);
    assert!(matches!(&r[1], Err(EngineError::UnknownInput { name, .. }) if name == "nope"));

    let mut wrong_len = good.clone();
    wrong_len[2].insert("x".into(), InputValue::Shares(Default::default()));
    let r = run_program3(&p, wrong_len);
    assert!(matches!(
        &r[2],
        Err(EngineError::InputLength {
            expected: 3,
            actual: 0,
            ..
        })
    ));

    let mut wrong_kind = good;
    wrong_kind[0].insert("x".into(), InputValue::Plain(vec![1, 2, 3]));
    let r = run_program3(&p, wrong_kind);
    assert!(matches!(&r[0], Err(EngineError::InputKind { .. })));
    // The other parties do not hang: P0 left, so they see a closed link.
    for other in &r[1..] {
        assert!(matches!(other, Err(EngineError::Round { .. })), "{other:?}");
    }
}

#[test]
fn a_vanished_peer_aborts_the_session_without_hanging() {
    let p = simple_program();
    let mut rng = test_rng();
    let inputs = share_inputs(&p, &ring_inputs(&[("x", 3), ("y", 3)]), &mut rng);
    let inputs = &inputs;
    let p = &p;
    let results = run3(|net| async move {
        let me = net.me();
        let mut session = Session::establish(net).await?;
        if me == PartyId::P2 {
            return Ok(None); // P2 crashes after setup: its links close.
        }
        session.run(p, inputs[me.index()].clone()).await.map(Some)
    });
    for r in &results[..2] {
        match r {
            Err(EngineError::Round { source, .. }) => assert!(
                matches!(
                    source,
                    veil_runtime::error::ProtocolError::Transport(TransportError::Closed { .. })
                ),
                "{source}"
            ),
            other => panic!("expected an aborted round, got {other:?}"),
        }
    }
}

#[test]
fn error_messages_name_sizes_not_values() {
    let p = simple_program();
    let mut rng = test_rng();
    let mut inputs = share_inputs(&p, &ring_inputs(&[("x", 3), ("y", 3)]), &mut rng);
    inputs[0].insert("x".into(), InputValue::Plain(vec![123_456_789, 2, 3, 4]));
    let r = run_program3(&p, inputs);
    let msg = r[0].as_ref().expect_err("P0 fails").to_string();
    assert!(!msg.contains("123456789"), "{msg}");
}

/// A small CNN on three parties: conv (3×3, padding 1, secret weights and bias) → ReLU →
/// 2×2 max pool → conv (2×2, stride 2, NCHW input for the first layer's layout check) and a
/// 2×2 average pool beside it; rounds and bytes equal the cost model at every party and every
/// output is the plaintext evaluator's within the truncations' ulps.
#[test]
fn conv_relu_pool_layers_match_plaintext() {
    let f = Fixed::default();
    let mut rng = test_rng();
    let batch = 2;
    let g1 = veil_circuits::Conv2dGeometry {
        pad: 1,
        channels_first: true,
        ..veil_circuits::Conv2dGeometry::new(6, 6, 2, 3)
    };
    let pool = veil_circuits::Conv2dGeometry {
        stride: 2,
        ..veil_circuits::Conv2dGeometry::new(6, 6, 4, 2)
    };
    let g2 = veil_circuits::Conv2dGeometry {
        stride: 2,
        ..veil_circuits::Conv2dGeometry::new(3, 3, 4, 2)
    };
    let mut b = Builder::new();
    let x = b.secret_matrix("x", batch, g1.image_len(), f);
    let w1 = b.secret_matrix("w1", g1.patch_len(), 4, f);
    let b1 = b.secret_vector("b1", 4, f);
    let w2 = b.public_matrix("w2", g2.patch_len(), 3, f);
    let h = b.conv2d(x, w1, Some(b1), g1);
    let h = b.relu(h);
    let m = b.max_pool2d(h, pool);
    let a = b.avg_pool2d(h, pool);
    let y = b.conv2d(m, w2, None, g2);
    b.output_to_client("max", m);
    b.output_to_client("avg", a);
    b.output_to_client("y", y);
    let p = b.finish().unwrap();
    let plain = HashMap::from([
        (
            "x".to_string(),
            fixed_vec(&mut rng, batch * g1.image_len(), 16, 2.0),
        ),
        (
            "w1".to_string(),
            fixed_vec(&mut rng, g1.patch_len() * 4, 16, 1.0),
        ),
        ("b1".to_string(), fixed_vec(&mut rng, 4, 16, 1.0)),
        (
            "w2".to_string(),
            fixed_vec(&mut rng, g2.patch_len() * 3, 16, 1.0),
        ),
    ]);
    // One ulp from the first conv's truncation, carried through ReLU and max exactly, through
    // the average (≤ 1 + 1) and through the second conv (≤ 16 weights of |w| ≤ 1, + 1).
    check(&p, &plain, 2 + g2.patch_len() as i64);
}
