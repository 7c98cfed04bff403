//! Compact Z_2^32 values in the engine: every Ring32 op against the plaintext evaluator on random
//! inputs (client-owned inputs as compact shares with seeded components, for each rotation of
//! the seeds), rounds and bytes equal to the cost model; Widen's exact keys; OneHotLow with
//! `skip`; the input checks (a Ring input given compact shares, or the reverse, is a typed
//! error at every party, not a panic).

use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use veil_circuits::cost::program_cost;
use veil_circuits::eval::evaluate;
use veil_circuits::{
    Builder, ElemType, Owner, PartyId, RING32_MASK, Recipient, Ring, Ring32, Shape,
    ValidatedProgram, ValueType, Visibility,
};
use veil_runtime::engine::{InputValue, Report};
use veil_runtime::error::EngineError;
use veil_runtime::harness::{collect_outputs, run_program3, share_inputs};
use veil_runtime::sharing::share3_compact;
use veil_runtime::testing::test_rng;

/// `n` random Ring32 words (reduced), the first ones edge values 0, 1, −1, −2^31, 2^31 − 1.
fn words32(rng: &mut impl Rng, n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).map(|_| u64::from(rng.random::<u32>())).collect();
    for (x, e) in v
        .iter_mut()
        .zip([0, 1, RING32_MASK, 1 << 31, (1 << 31) - 1])
    {
        *x = e;
    }
    v
}

/// The parties' inputs with every client-owned Ring32 input compact-shared under rotation
/// `P_{(i + r) mod 3}` for the input at position i (so each rotation meets each input).
fn share_rotated(
    p: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    r: usize,
    rng: &mut impl rand::CryptoRng,
) -> [HashMap<String, InputValue>; 3] {
    let mut out = share_inputs(p, plain, rng);
    for (i, decl) in p.program().inputs.iter().enumerate() {
        if decl.ty.elem != ElemType::Ring32
            || decl.ty.vis != Visibility::Secret
            || !matches!(decl.owner, Owner::Client(_))
        {
            continue;
        }
        let words: Vec<u32> = plain[&decl.name].iter().map(|&w| w as u32).collect();
        let shared = share3_compact(&words, PartyId::from_index(i + r), rng);
        for (m, party) in out.iter_mut().zip(PartyId::ALL) {
            m.insert(
                decl.name.clone(),
                InputValue::Compact(Arc::new(shared.party(party))),
            );
        }
    }
    out
}

/// Run `p` on three parties with the inputs shared under rotation `r`; the outputs (client
/// outputs reconstructed) and the reports.
fn run(
    p: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    r: usize,
) -> (HashMap<String, Vec<u64>>, [Report; 3]) {
    let mut rng = test_rng();
    let results = run_program3(p, share_rotated(p, plain, r, &mut rng));
    let results = results.map(|r| r.expect("engine run succeeds"));
    let reports = [0, 1, 2].map(|i| results[i].1.clone());
    let outputs = results.map(|(o, _)| o);
    let got = collect_outputs(p, &outputs).expect("outputs reconstruct");
    (got, reports)
}

/// Every output equals the evaluator's and the rounds and bytes equal the cost model's, for
/// each rotation of the compact inputs.
fn check(p: &ValidatedProgram, plain: &HashMap<String, Vec<u64>>) {
    let want = evaluate(p, plain).expect("plaintext evaluation");
    let cost = program_cost(p);
    for r in 0..3 {
        let (got, reports) = run(p, plain, r);
        for (i, report) in reports.iter().enumerate() {
            assert_eq!(report.rounds, u64::from(cost.rounds), "rounds at P{i}");
            assert_eq!(report.bytes_sent, cost.bytes_sent[i], "bytes sent by P{i}");
        }
        assert_eq!(got.len(), want.len(), "every output is delivered");
        for (name, w) in &want {
            assert!(got[name] == *w, "output {name} differs (rotation {r})");
        }
    }
}

fn secret(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Secret,
        elem,
        shape,
    }
}

#[test]
fn every_ring32_op_matches_the_evaluator() {
    let mut rng = test_rng();
    for (n, (m, k, c)) in [
        (1usize, (1usize, 1usize, 1usize)),
        (7, (5, 3, 4)),
        (65, (33, 17, 2)),
    ] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, Ring32);
        let y = b.secret_vector("y", n, Ring32);
        let z = b.public_vector("z", n, Ring32);
        let a = b.secret_matrix("a", m, k, Ring32);
        let bm = b.secret_matrix("b", k, c, Ring32);
        let pm = b.public_matrix("p", k, c, Ring32);
        let pa = b.public_matrix("pa", m, k, Ring32);
        let owned = b.input(
            "owned",
            Owner::Party(PartyId::P1),
            secret(ElemType::Ring32, Shape::Vector(n)),
        );
        let one = b.constant(Ring32, Shape::Scalar, vec![(-3i64 as u64) & RING32_MASK]);
        let cv = b.const_ring32_vector(&vec![-1; n]);
        // Sums, differences, negation, with secret, public, party-owned and constant operands.
        let s = b.add(x, y);
        let s = b.sub(s, z);
        let s = b.add(s, one);
        let s = b.sub(s, cv);
        let s = b.sub(s, owned);
        let s = b.neg(s);
        let zz = b.add(z, z);
        let zz = b.neg(zz);
        b.output_to_client("sum", s);
        b.output_to_client("public", zz);
        // Products: secret × secret (one round), secret × public and public × secret (local).
        let ab = b.matmul(a, bm);
        let ap = b.matmul(a, pm);
        let pb = b.matmul(pa, bm);
        let all = b.add(ab, ap);
        let all = b.add(all, pb);
        b.output_to_client("products", all);
        // Data movement: rows of a (seeded slices), transpose, reshape, concat with public.
        let rows = b.slice(a, m / 2, m);
        let t = b.transpose(rows);
        let flat = b.reshape(t, Shape::Vector((m - m / 2) * k));
        let joined = b.concat(&[flat, z, x]);
        b.output_to_client("moved", joined);
        // Widen and Narrow: keys over Z_2^64, then back.
        let w = b.widen(s);
        let ring = b.secret_vector("r", n, Ring);
        let wr = b.add(w, ring);
        let back = b.narrow(wr);
        b.output_to_client("wide", wr);
        b.output_to_client("narrow", back);
        // A Ring32 output revealed to a party, and one to all parties.
        b.output("to_p2", y, Recipient::Party(PartyId::P2));
        let d = b.sub(x, y);
        b.output("to_all", d, Recipient::AllParties);
        let p = b.finish().expect("valid program");
        let plain = HashMap::from([
            ("x".to_string(), words32(&mut rng, n)),
            ("y".to_string(), words32(&mut rng, n)),
            ("z".to_string(), words32(&mut rng, n)),
            ("a".to_string(), words32(&mut rng, m * k)),
            ("b".to_string(), words32(&mut rng, k * c)),
            ("p".to_string(), words32(&mut rng, k * c)),
            ("pa".to_string(), words32(&mut rng, m * k)),
            ("owned".to_string(), words32(&mut rng, n)),
            (
                "r".to_string(),
                (0..n).map(|_| rng.random()).collect::<Vec<u64>>(),
            ),
        ]);
        check(&p, &plain);
    }
}

#[test]
fn large_seeded_products_match_the_evaluator() {
    // Big enough for the kernel's streamed chunks and rayon paths: scores (row mode) and a
    // fetch-shaped product (inner mode).
    let mut rng = test_rng();
    let mut b = Builder::new();
    let e = b.secret_matrix("e", 3000, 48, Ring32);
    let q = b.secret_matrix("q", 48, 1, Ring32);
    let oh = b.secret_matrix("oh", 3, 2000, Ring32);
    let t = b.secret_matrix("t", 2000, 40, Ring32);
    let s = b.matmul(e, q);
    let f = b.matmul(oh, t);
    b.output_to_client("scores", s);
    b.output_to_client("fetch", f);
    let p = b.finish().unwrap();
    let plain = HashMap::from([
        ("e".to_string(), words32(&mut rng, 3000 * 48)),
        ("q".to_string(), words32(&mut rng, 48)),
        ("oh".to_string(), words32(&mut rng, 3 * 2000)),
        ("t".to_string(), words32(&mut rng, 2000 * 40)),
    ]);
    check(&p, &plain);
}

#[test]
fn widen_makes_exact_keys() {
    // Scores of small signed vectors (negative ones included) mod 2^32, widened: the key
    // −s·2^32 + index decodes to exactly (s, index) whatever the carries of the shares.
    let mut rng = test_rng();
    let (rows, dim) = (200, 16);
    let mut b = Builder::new();
    let e = b.secret_matrix("e", rows, dim, Ring32);
    let q = b.secret_matrix("q", dim, 1, Ring32);
    let s = b.matmul(e, q);
    let s = b.reshape(s, Shape::Vector(rows));
    let w = b.widen(s);
    let ids = b.constant(Ring, Shape::Vector(rows), (0..rows as u64).collect());
    let keys = b.sub(ids, w);
    b.output_to_client("keys", keys);
    let p = b.finish().unwrap();
    let small = |rng: &mut rand_chacha::ChaCha20Rng, n: usize| -> Vec<i64> {
        (0..n).map(|_| rng.random_range(-127..=127)).collect()
    };
    let (ev, qv) = (small(&mut rng, rows * dim), small(&mut rng, dim));
    let enc = |v: &[i64]| -> Vec<u64> { v.iter().map(|&x| x as u64 & RING32_MASK).collect() };
    let plain = HashMap::from([("e".to_string(), enc(&ev)), ("q".to_string(), enc(&qv))]);
    check(&p, &plain);
    let (got, _) = run(&p, &plain, 1);
    for (j, &key) in got["keys"].iter().enumerate() {
        let score: i64 = (0..dim).map(|t| ev[j * dim + t] * qv[t]).sum();
        assert_eq!(
            key,
            (j as u64).wrapping_sub((score as u64) << 32),
            "row {j}"
        );
        assert_eq!(((key as i64) >> 32).wrapping_neg(), score, "row {j}");
        assert_eq!(key & RING32_MASK, j as u64, "row {j}");
    }
}

#[test]
fn onehot_of_a_bit_range_matches_the_evaluator() {
    let mut rng = test_rng();
    for (skip, bits, n) in [
        (0u32, 3u32, 8usize),
        (2, 3, 5),
        (7, 2, 4),
        (30, 4, 16),
        (58, 4, 9),
    ] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", 9, Ring);
        let h = b.onehot_bits(x, skip, bits, n);
        b.output_to_client("h", h);
        let pb = b.public_vector("pub", 9, Ring);
        let hp = b.onehot_bits(pb, skip, bits, n);
        b.output_to_client("hp", hp);
        let p = b.finish().unwrap();
        let v: Vec<u64> = (0..9).map(|_| rng.random()).collect();
        let plain = HashMap::from([("x".to_string(), v.clone()), ("pub".to_string(), v)]);
        check(&p, &plain);
    }
}

/// Every party's error when the inputs are `inputs`.
fn errors(p: &ValidatedProgram, inputs: [HashMap<String, InputValue>; 3]) -> Vec<EngineError> {
    run_program3(p, inputs)
        .into_iter()
        .map(|r| r.expect_err("the run must fail"))
        .collect()
}

#[test]
fn ring_and_ring32_input_mismatches_are_typed_errors() {
    let mut rng = test_rng();
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring32);
    let y = b.secret_vector("y", 4, Ring);
    let z = b.public_vector("z", 4, Ring32);
    let w = b.widen(x);
    let s = b.add(w, y);
    let zw = b.widen(z);
    let s = b.add(s, zw);
    b.output_to_client("s", s);
    let p = b.finish().unwrap();
    let plain = HashMap::from([
        ("x".to_string(), vec![1, 2, 3, 4]),
        ("y".to_string(), vec![5, 6, 7, 8]),
        ("z".to_string(), vec![9, 10, 11, 12]),
    ]);
    let good = share_inputs(&p, &plain, &mut rng);
    let kind = |e: &EngineError, input: &str| matches!(e, EngineError::InputKind { name, .. } if name == input);
    // A Ring32 input given Z_2^64 shares.
    let mut bad = good.clone();
    let wide = veil_runtime::sharing::share3(&plain["x"], &mut rng);
    for (m, s) in bad.iter_mut().zip(wide) {
        m.insert("x".into(), InputValue::Shares(s));
    }
    for e in errors(&p, bad) {
        assert!(kind(&e, "x"), "{e}");
        assert!(e.to_string().contains("compact shares"), "{e}");
    }
    // A Ring input given compact shares.
    let mut bad = good.clone();
    let compact = share3_compact(&[5, 6, 7, 8], PartyId::P0, &mut rng);
    for (m, party) in bad.iter_mut().zip(PartyId::ALL) {
        m.insert(
            "y".into(),
            InputValue::Compact(Arc::new(compact.party(party))),
        );
    }
    for e in errors(&p, bad) {
        assert!(kind(&e, "y"), "{e}");
    }
    // Compact shares of the wrong length.
    let mut bad = good.clone();
    let short = share3_compact(&[1, 2, 3], PartyId::P2, &mut rng);
    for (m, party) in bad.iter_mut().zip(PartyId::ALL) {
        m.insert(
            "x".into(),
            InputValue::Compact(Arc::new(short.party(party))),
        );
    }
    for e in errors(&p, bad) {
        assert!(
            matches!(&e, EngineError::InputLength { name, expected: 4, actual: 3, .. } if name == "x"),
            "{e}"
        );
    }
    // A public Ring32 input with a word ≥ 2^32.
    let mut bad = good.clone();
    for m in bad.iter_mut() {
        m.insert("z".into(), InputValue::Plain(vec![1, 2, 1 << 32, 4]));
    }
    for e in errors(&p, bad) {
        assert!(kind(&e, "z"), "{e}");
    }
    // The good inputs run.
    for r in run_program3(&p, good) {
        r.expect("well-formed inputs run");
    }
}
