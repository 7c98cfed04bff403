//! The malicious mode (security with abort): honest runs equal the plaintext evaluator with
//! rounds and bytes equal to the cost model plus its malicious column; a party that adds an
//! error to any word of any message it sends — every round, every party position, random words
//! and errors, high bits included — makes every honest party abort, never return an output.

use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use veil_circuits::cost::{Suite, program_cost, program_cost_in};
use veil_circuits::eval::evaluate;
use veil_circuits::{
    Builder, Owner, PartyId, Recipient, Ring, Ring32, Shape, ValidatedProgram, ValueType,
    Visibility,
};
use veil_runtime::SecurityMode;
use veil_runtime::engine::{InputValue, Session};
use veil_runtime::error::EngineError;
use veil_runtime::harness::{PartyResult, collect_outputs, run_program3_in, run3, share_inputs};
use veil_runtime::testing::{ring_vec_with_edges, test_rng};
use veil_runtime::transport::Transport;
use veil_runtime::transport::tamper::{Fault, Tamper};
use veil_runtime::verify::{overhead, unverified_op};

type ChaCha20Rng = rand_chacha::ChaCha20Rng;

/// Every kind of verified work in one program: client inputs, a party-owned input, an
/// elementwise product, a select, a dot product, matrix products over Z_2^64 and Z_2^32, a
/// reveal to all and an output to a party.
fn mixed_program(n: usize) -> ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let c = b.secret_vector("c", n, Ring);
    let w = b.input(
        "w",
        Owner::Party(PartyId::P1),
        ValueType {
            vis: Visibility::Secret,
            elem: Ring.into(),
            shape: Shape::Vector(n),
        },
    );
    let xy = b.mul(x, y);
    let sel = b.select(c, xy, w);
    let d = b.dot(sel, x);
    let m1 = b.reshape(x, Shape::Matrix(2, n / 2));
    let m2 = b.reshape(y, Shape::Matrix(n / 2, 2));
    let mm = b.matmul(m1, m2);
    // A Z_2^32 matrix product (proven as the Z_2^64 relation times 2^32).
    let p32 = b.secret_matrix("p", 2, 3, Ring32);
    let q32 = b.secret_matrix("q", 3, 2, Ring32);
    let pq = b.matmul(p32, q32);
    b.output_to_client("pq", pq);
    let opened = b.reveal(d);
    let scaled = b.mul(opened, mm);
    b.output_to_client("xy", xy);
    b.output_to_client("mm", scaled);
    // Comparisons (the sign test's AND rounds, masked opening and injection products).
    let lt = b.lt(x, y);
    let relu = b.relu(xy);
    let max = b.max(sel, y);
    let eq = b.eq(c, w);
    let am = b.argmax(x);
    let top = b.max_all(y);
    for (name, v) in [
        ("lt", lt),
        ("relu", relu),
        ("max", max),
        ("eq", eq),
        ("argmax", am),
        ("max_all", top),
    ] {
        b.output_to_client(name, v);
    }
    b.output("d", d, Recipient::Party(PartyId::P2));
    b.finish().expect("valid program")
}

/// The outputs of [`mixed_program`].
const MIXED_OUTPUTS: [&str; 10] = [
    "xy", "mm", "d", "pq", "lt", "relu", "max", "eq", "argmax", "max_all",
];

fn plain_inputs(n: usize, rng: &mut impl Rng) -> HashMap<String, Vec<u64>> {
    let mut m: HashMap<String, Vec<u64>> = ["x", "y", "w"]
        .iter()
        .map(|k| (k.to_string(), ring_vec_with_edges(rng, n)))
        .collect();
    m.insert("c".into(), (0..n).map(|_| rng.random_range(0..2)).collect());
    for k in ["p", "q"] {
        let mut w: Vec<u64> = (0..6).map(|_| rng.random_range(0..1u64 << 32)).collect();
        w[0] = u64::from(u32::MAX);
        m.insert(k.into(), w);
    }
    m
}

fn run(
    p: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    mode: SecurityMode,
) -> [PartyResult; 3] {
    run_program3_in(p, share_inputs(p, plain, &mut test_rng()), mode)
}

#[test]
fn honest_runs_equal_the_evaluator_and_the_cost_model() {
    let mut rng = test_rng();
    for n in [2usize, 8, 34] {
        let p = mixed_program(n);
        let plain = plain_inputs(n, &mut rng);
        check_honest_malicious_run(&p, &plain, &MIXED_OUTPUTS);
        // The same program semi-honest: no verification, the semi-honest schedule.
        let cost = program_cost(&p);
        let semi = run(&p, &plain, SecurityMode::SemiHonest).map(|r| r.expect("semi-honest run"));
        assert!(
            semi.iter()
                .all(|(_, r)| r.verify_rounds == 0 && r.rounds == cost.rounds as u64)
        );
    }
}

#[test]
fn large_products_verify() {
    // A proof over 2^13 entries (many levels), a 16×64·64×16 matrix product and 64×32 dot rows.
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4096, Ring);
    let y = b.secret_vector("y", 4096, Ring);
    let xy = b.mul(x, y);
    let a = b.reshape(x, Shape::Matrix(64, 64));
    let c = b.reshape(y, Shape::Matrix(64, 64));
    let mm = b.matmul(a, c);
    let d = b.reshape(xy, Shape::Matrix(128, 32));
    let e = b.reshape(y, Shape::Matrix(128, 32));
    let dots = b.dot(d, e);
    b.output_to_client("mm", mm);
    b.output_to_client("dots", dots);
    // A proof of AND gates over ≈ 2^14 words (the parallel paths), and a tournament.
    let lt = b.lt(x, y);
    let top = b.slice(y, 0, 300);
    let am = b.argmax(top);
    b.output_to_client("lt", lt);
    b.output_to_client("argmax", am);
    let p = b.finish().expect("valid");
    let mut rng = test_rng();
    let plain: HashMap<String, Vec<u64>> = ["x", "y"]
        .iter()
        .map(|k| (k.to_string(), ring_vec_with_edges(&mut rng, 4096)))
        .collect();
    let results = run(&p, &plain, SecurityMode::Malicious).map(|r| r.expect("honest run"));
    let got = collect_outputs(&p, &results.map(|(o, _)| o)).expect("reconstruct");
    let want = evaluate(&p, &plain).expect("evaluate");
    for name in ["mm", "dots", "lt", "argmax"] {
        assert_eq!(got[name], want[name], "{name}");
    }
}

/// Run `p` in malicious mode with party `bad` sending `fault` (the others send unchanged
/// messages); the three results and whether the fault fired.
fn run_with_fault(
    p: &ValidatedProgram,
    inputs: &[HashMap<String, InputValue>; 3],
    bad: PartyId,
    fault: Fault,
) -> ([PartyResult; 3], bool) {
    run_with_fault_in(p, inputs, bad, fault, SecurityMode::Malicious)
}

/// [`run_with_fault`] in security mode `mode`.
fn run_with_fault_in(
    p: &ValidatedProgram,
    inputs: &[HashMap<String, InputValue>; 3],
    bad: PartyId,
    fault: Fault,
    mode: SecurityMode,
) -> ([PartyResult; 3], bool) {
    let fired = AtomicBool::new(false);
    let fired_ref = &fired;
    let results = run3(|net| async move {
        let me = net.me();
        let fault = if me == bad {
            fault
        } else {
            Fault { error: 0, ..fault }
        };
        let mut s = Session::establish(Tamper::new(net, fault)).await?;
        s.set_security(mode);
        let r = s.run(p, inputs[me.index()].clone()).await;
        if me == bad && s.parts().1.fired() {
            fired_ref.store(true, Ordering::SeqCst);
        }
        r
    });
    (results, fired.load(Ordering::SeqCst))
}

/// The cheating harness: for every round of the session (products, input, reveals, output
/// reveal, every verification round) and every party, errors on random words — small, random
/// and high-bit-only — are detected: both honest parties fail the session. The one exception is
/// the last message of all, a verdict: its recipient aborts, and the other honest party, which
/// decided on the verified session, may return its (correct) outputs — security with abort
/// without unanimity for the final round, which no protocol without broadcast can avoid.
#[test]
fn any_error_in_any_message_aborts_every_honest_party() {
    let mut rng = test_rng();
    let n = 8;
    let p = mixed_program(n);
    let plain = plain_inputs(n, &mut rng);
    let errors = |rng: &mut ChaCha20Rng| vec![1u64, 1 << 63, rng.random::<u64>() | 1, 3 << 62];
    let trials = cheat_everywhere(&p, &plain, errors, &mut rng);
    assert!(trials > 100, "only {trials} trials fired");
}

/// The harness on the selections (bit decomposition, one-hot rows, both best-k plans): one
/// error per round, sender and recipient, of a kind drawn at random.
#[test]
fn any_error_in_a_selection_aborts_every_honest_party() {
    let mut rng = test_rng();
    let p = selection_program();
    let plain = selection_inputs(&mut rng);
    let errors = |rng: &mut ChaCha20Rng| {
        let kinds = [1u64, 1 << 63, rng.random::<u64>() | 1, 3 << 62];
        vec![kinds[rng.random_range(0..4)]]
    };
    let trials = cheat_everywhere(&p, &plain, errors, &mut rng);
    assert!(trials > 100, "only {trials} trials fired");
}

/// For every round of a malicious run of `p` (protocol and verification rounds), every party
/// and both its recipients, and each error of `errors`: a random word of the message gets the
/// error, and every honest party fails — except on the last message of all, a verdict, whose
/// recipient aborts while the other honest party, which decided on the verified session, may
/// return its (correct) outputs: security with abort without unanimity for the final round,
/// which no protocol without broadcast can avoid. Returns the trials that fired.
fn cheat_everywhere(
    p: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    errors: impl Fn(&mut ChaCha20Rng) -> Vec<u64>,
    rng: &mut ChaCha20Rng,
) -> usize {
    let inputs = share_inputs(p, plain, rng);
    let want = evaluate(p, plain).expect("evaluate");
    let cost = program_cost_in(p, Suite::Malicious);
    let total = cost.rounds as u64 + overhead(p, &cost).rounds;
    let mut trials = 0;
    for round in 1..=total {
        for bad in PartyId::ALL {
            for to in [bad.next(), bad.prev()] {
                for error in errors(rng) {
                    let fault = Fault {
                        round: veil_runtime::transport::RoundId(round),
                        to,
                        word: rng.random_range(0..1 << 16),
                        error,
                    };
                    let (results, fired) = run_with_fault(p, &inputs, bad, fault);
                    if !fired {
                        continue; // this party sends `to` nothing in this round
                    }
                    trials += 1;
                    if round == total {
                        assert!(results[to.index()].is_err(), "{to} aborts on a bad verdict");
                        let third = PartyId::ALL
                            .into_iter()
                            .find(|&h| h != bad && h != to)
                            .expect("three parties");
                        if let Ok((out, _)) = &results[third.index()] {
                            let got = collect_plain(out);
                            for (name, v) in got {
                                assert_eq!(v, want[&name], "{third}'s {name} is the verified one");
                            }
                        }
                        continue;
                    }
                    for h in PartyId::ALL.into_iter().filter(|&h| h != bad) {
                        if results[h.index()].is_ok() {
                            panic!(
                                "{h} returned outputs although {bad} added {error:#x} to a word \
                                 of its round-{round} message to {to}"
                            );
                        }
                    }
                }
            }
        }
    }
    trials
}

/// The outputs a party received in the clear (outputs to it).
fn collect_plain(
    out: &HashMap<String, veil_runtime::engine::OutputValue>,
) -> Vec<(String, Vec<u64>)> {
    out.iter()
        .filter_map(|(k, v)| match v {
            veil_runtime::engine::OutputValue::Plain(d) => Some((k.clone(), d.clone())),
            _ => None,
        })
        .collect()
}

/// The selections: all 64 bits, one-hot rows of low bits and of a bit range, the best k by
/// the comparator network and by rank selection, the one-hot of the top set bit, and a party
/// output.
fn selection_program() -> ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 6, Ring);
    let bits = b.bits(x);
    let low = b.onehot_low(x, 2, 3);
    let range = b.onehot_bits(x, 3, 2, 4);
    let net = b.best_k(x, 2, true);
    let ranked = b.best_k_ranked(x, 2, false, Some(vec![4, 4]));
    let top = b.msb_onehot(x, 8);
    for (name, v) in [
        ("bits", bits),
        ("low", low),
        ("range", range),
        ("net", net),
        ("top", top),
    ] {
        b.output_to_client(name, v);
    }
    b.output("ranked", ranked, Recipient::Party(PartyId::P1));
    b.finish().expect("valid program")
}

fn selection_inputs(rng: &mut impl Rng) -> HashMap<String, Vec<u64>> {
    // Small magnitudes of both signs, so the orders and bits are all exercised.
    let x = (0..6)
        .map(|_| rng.random_range(-40i64..40) as u64)
        .collect();
    HashMap::from([("x".to_string(), x)])
}

#[test]
fn selections_run_maliciously_and_equal_the_evaluator_and_the_cost_model() {
    let mut rng = test_rng();
    let p = selection_program();
    for _ in 0..3 {
        let plain = selection_inputs(&mut rng);
        check_honest_malicious_run(
            &p,
            &plain,
            &["bits", "low", "range", "net", "ranked", "top"],
        );
    }
}

/// Run `p` honestly in malicious mode: every party's rounds and bytes are the malicious
/// suite's plus the verification's, and the outputs `names` equal the plaintext evaluator's.
fn check_honest_malicious_run(
    p: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    names: &[&str],
) {
    let cost = program_cost_in(p, Suite::Malicious);
    let extra = overhead(p, &cost);
    assert_eq!(unverified_op(p, &cost), None);
    let want = evaluate(p, plain).expect("evaluate");
    let results = run(p, plain, SecurityMode::Malicious).map(|r| r.expect("honest run"));
    for (i, (_, report)) in results.iter().enumerate() {
        assert_eq!(report.security, SecurityMode::Malicious);
        let rounds = cost.rounds as u64 + extra.rounds;
        assert_eq!(report.rounds, rounds, "rounds at P{i}");
        assert_eq!(
            report.verify_rounds, extra.rounds,
            "verification rounds at P{i}"
        );
        let bytes = extra.bytes_sent(cost.bytes_sent)[i];
        assert_eq!(report.bytes_sent, bytes, "bytes at P{i}");
    }
    let got = collect_outputs(p, &results.map(|(o, _)| o)).expect("reconstruct");
    for &name in names {
        assert_eq!(got[name], want[name], "output {name}");
    }
}

/// Every interactive op of the client API has a verified protocol: a program with one of each
/// passes [`unverified_op`] and [`veil_runtime::verify::check_program`].
#[test]
fn every_interactive_op_has_a_verified_protocol() {
    let f = veil_circuits::Fixed::default();
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring);
    let y = b.secret_vector("y", 4, Ring);
    let owned = b.input(
        "w",
        Owner::Party(PartyId::P0),
        ValueType {
            vis: Visibility::Secret,
            elem: Ring.into(),
            shape: Shape::Vector(4),
        },
    );
    let fx = b.secret_vector("fx", 4, f);
    let m = b.reshape(x, Shape::Matrix(2, 2));
    let fm = b.reshape(fx, Shape::Matrix(2, 2));
    let ops = [
        b.mul(x, y),
        b.dot(x, y),
        b.matmul(m, m),
        b.fixmul(fx, fx),
        b.matmul_rescale(fm, fm, 16),
        b.reveal(owned),
        b.ltz(x),
        b.lt(x, y),
        b.le(x, y),
        b.gt(x, y),
        b.ge(x, y),
        b.eq(x, y),
        b.relu(x),
        b.max(x, y),
        b.min(x, y),
        b.select(x, y, owned),
        b.max_all(x),
        b.argmax(x),
        b.bits(x),
        b.msb_onehot(x, 8),
        b.best_k(x, 2, true),
        b.onehot_low(x, 2, 4),
    ];
    for (i, v) in ops.into_iter().enumerate() {
        b.output_to_client(&format!("o{i}"), v);
    }
    let p = b.finish().expect("valid");
    let cost = program_cost(&p);
    let interactive = cost.per_op.iter().filter(|c| c.rounds > 0).count();
    assert!(interactive >= 23, "{interactive} interactive ops");
    assert_eq!(unverified_op(&p, &cost), None);
    veil_runtime::verify::check_program(&p, &cost).expect("within the proofs' bounds");
}

/// Fixed-point layers: a product and a matrix product rescaled (mul + `Rescale`, a fused
/// `MatMulRescale` of two secrets), a secret times public weights rescaled (`MatMulRescale` with
/// a public operand), and a ReLU — the shape of an MLP layer.
fn fixed_program() -> ValidatedProgram {
    let f = veil_circuits::Fixed::default();
    let mut b = Builder::new();
    let x = b.secret_vector("x", 6, f);
    let y = b.secret_vector("y", 6, f);
    let xy = b.fixmul(x, y);
    let m = b.reshape(x, Shape::Matrix(2, 3));
    let w = b.reshape(y, Shape::Matrix(3, 2));
    let mm = b.matmul_rescale(m, w, 16);
    let weights = b.constant(
        f,
        Shape::Matrix(3, 2),
        [3i64 << 16, -(1 << 15), 7, -(5 << 16), 1 << 16, 12345]
            .map(|v| v as u64)
            .to_vec(),
    );
    let public = b.matmul_rescale(m, weights, 16);
    let act = b.relu(public);
    // Shifts at the ends of the range: 1, and 62 (a product with the most fractional bits a
    // type allows, 62).
    let one = b.matmul_rescale(m, w, 1);
    let f31 = veil_circuits::Fixed(veil_circuits::FracBits(31));
    let s31 = b.secret_matrix("s", 2, 3, f31);
    let t31 = b.secret_matrix("t", 3, 2, f31);
    let sign = b.matmul_rescale(s31, t31, 62);
    for (name, v) in [
        ("xy", xy),
        ("mm", mm),
        ("public", public),
        ("act", act),
        ("one", one),
        ("widest", sign),
    ] {
        b.output_to_client(name, v);
    }
    b.finish().expect("valid program")
}

/// Magnitudes below 2^(16+6) (products below 2^44, both signs), or with `wide` any word and
/// the ring's edges (products wrap: exact truncation must still be the evaluator's shift).
fn fixed_inputs(rng: &mut impl Rng, wide: bool) -> HashMap<String, Vec<u64>> {
    let v = |rng: &mut dyn rand::RngCore| -> Vec<u64> {
        match wide {
            true => ring_vec_with_edges(rng, 6),
            false => (0..6)
                .map(|_| (rng.next_u64() as i64 >> 42) as u64)
                .collect(),
        }
    };
    ["x", "y", "s", "t"]
        .into_iter()
        .map(|k| (k.to_string(), v(rng)))
        .collect()
}

/// Malicious mode truncates exactly (the arithmetic shift, as the plaintext evaluator), with
/// the malicious suite's rounds and bytes plus the verification's.
#[test]
fn truncations_are_exact_and_verified_in_malicious_mode() {
    let mut rng = test_rng();
    let p = fixed_program();
    for wide in [false, true, false, true] {
        let plain = fixed_inputs(&mut rng, wide);
        check_honest_malicious_run(&p, &plain, &["xy", "mm", "public", "act", "one", "widest"]);
    }
}

/// The harness on the fixed-point layers (exact truncations): one error per round, sender and
/// recipient.
#[test]
fn any_error_in_a_truncation_aborts_every_honest_party() {
    let mut rng = test_rng();
    let p = fixed_program();
    let plain = fixed_inputs(&mut rng, true);
    let errors = |rng: &mut ChaCha20Rng| {
        let kinds = [1u64, 1 << 63, rng.random::<u64>() | 1, 3 << 62];
        vec![kinds[rng.random_range(0..4)]]
    };
    let trials = cheat_everywhere(&p, &plain, errors, &mut rng);
    assert!(trials > 50, "only {trials} trials fired");
}

/// `lt` of n = 100 elements: round 1 is the sign test's split (an AND round, n words from each
/// party to its predecessor, then the mask injection's words), round 8 its masked opening
/// (⌈100/64⌉ = 2 words to each peer; word 1 opens 36 lanes).
fn sign_test(
    rng: &mut (impl Rng + rand::CryptoRng),
) -> (ValidatedProgram, [HashMap<String, InputValue>; 3]) {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 100, Ring);
    let y = b.secret_vector("y", 100, Ring);
    let lt = b.lt(x, y);
    b.output_to_client("lt", lt);
    let p = b.finish().expect("valid");
    let plain: HashMap<String, Vec<u64>> = ["x", "y"]
        .iter()
        .map(|k| (k.to_string(), ring_vec_with_edges(rng, 100)))
        .collect();
    let inputs = share_inputs(&p, &plain, rng);
    (p, inputs)
}

/// The abort message at each honest party (P1 and P2) when P0 sends `fault`.
fn aborts_when_p0_sends(
    p: &ValidatedProgram,
    inputs: &[HashMap<String, InputValue>; 3],
    fault: Fault,
) -> [String; 2] {
    let (results, fired) = run_with_fault(p, inputs, PartyId::P0, fault);
    assert!(fired, "the fault fired");
    [PartyId::P1, PartyId::P2].map(|h| match &results[h.index()] {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{h} returned outputs"),
    })
}

#[test]
fn a_wrong_and_word_fails_its_senders_proof() {
    let (p, inputs) = sign_test(&mut test_rng());
    // Word 5 of P0's split AND words to P2, changed in one high lane.
    let fault = Fault {
        round: veil_runtime::transport::RoundId(1),
        to: PartyId::P2,
        word: 5,
        error: 1 << 40,
    };
    let msgs = aborts_when_p0_sends(&p, &inputs, fault);
    assert!(
        msgs.iter().any(|m| m.contains("P0's AND words")),
        "a verifier of P0 names its proof of AND words: {msgs:?}"
    );
}

#[test]
fn opened_shares_must_be_well_formed_and_the_same_at_both_peers() {
    let (p, inputs) = sign_test(&mut test_rng());
    let open = |word, error| Fault {
        round: veil_runtime::transport::RoundId(8),
        to: PartyId::P1,
        word,
        error,
    };
    // A lane outside the 36 opened ones: refused by its recipient as malformed.
    let [at_p1, _] = aborts_when_p0_sends(&p, &inputs, open(1, 1 << 63));
    assert!(at_p1.contains("outside the opened lanes"), "{at_p1}");
    // An opened lane changed in P1's copy only: P0's proof covers P2's copy, so the two
    // recipients' digests must catch it.
    let [_, at_p2] = aborts_when_p0_sends(&p, &inputs, open(0, 1 << 7));
    assert!(
        at_p2.contains("P0 sent P2 and P1 different shares of an opened value"),
        "{at_p2}"
    );
}

/// A client that sends one party a different copy of a component than the other holder gets:
/// the session aborts at every party, naming the input.
#[test]
fn inconsistent_client_shares_are_refused_by_name() {
    let p = mixed_program(4);
    let mut rng = test_rng();
    let plain = plain_inputs(4, &mut rng);
    let mut inputs = share_inputs(&p, &plain, &mut rng);
    if let Some(InputValue::Shares(s)) = inputs[1].get_mut("y") {
        s.own[2] ^= 1 << 40; // P1's copy of component 1; P0 holds it as `next`.
    } else {
        panic!("y is client shares");
    }
    let results = run_program3_in(&p, inputs, SecurityMode::Malicious);
    for r in &results {
        match r {
            Err(EngineError::Aborted { what }) => assert!(
                what.contains("reported") || what.contains("input `y`"),
                "{what}"
            ),
            other => panic!("expected Aborted, got {:?}", other.as_ref().map(|_| ())),
        }
    }
    let named = results
        .iter()
        .filter(|r| matches!(r, Err(EngineError::Aborted { what }) if what.contains("input `y`")))
        .count();
    assert!(
        named >= 1,
        "the party that compares the copies names the input"
    );
}

/// An error in a product word is caught by the proof of that word's sender, named as such.
#[test]
fn a_wrong_product_word_fails_its_senders_proof() {
    let mut rng = test_rng();
    let p = mixed_program(8);
    let inputs = share_inputs(&p, &plain_inputs(8, &mut rng), &mut rng);
    // Round 1 carries the first product: P0 sends its masked cross terms to P2.
    let fault = Fault {
        round: veil_runtime::transport::RoundId(1),
        to: PartyId::P2,
        word: 3,
        error: 1 << 63,
    };
    let (results, fired) = run_with_fault(&p, &inputs, PartyId::P0, fault);
    assert!(fired);
    for h in [PartyId::P1, PartyId::P2] {
        match &results[h.index()] {
            Err(EngineError::Aborted { what }) => assert!(
                what.contains("P0's product words") || what.contains("reported"),
                "{h}: {what}"
            ),
            other => panic!(
                "{h}: expected Aborted, got {:?}",
                other.as_ref().map(|_| ())
            ),
        }
    }
    let caught = results.iter().any(
        |r| matches!(r, Err(EngineError::Aborted { what }) if what.contains("P0's product words")),
    );
    assert!(caught, "a verifier of P0 names P0's proof");
}

/// A Z_2^32 product word changed in its low 32 bits fails its sender's proof; one with bits
/// above 2^32 is malformed and refused by its recipient in either mode (narrowing would
/// otherwise drop the change silently).
#[test]
fn ring32_product_words_are_verified_and_bounded() {
    let mut b = Builder::new();
    let x = b.secret_matrix("x", 2, 5, Ring32);
    let y = b.secret_matrix("y", 5, 2, Ring32);
    let xy = b.matmul(x, y);
    b.output_to_client("xy", xy);
    let p = b.finish().expect("valid");
    let mut rng = test_rng();
    let plain: HashMap<String, Vec<u64>> = ["x", "y"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                (0..10).map(|_| rng.random_range(0..1u64 << 32)).collect(),
            )
        })
        .collect();
    let inputs = share_inputs(&p, &plain, &mut rng);
    // Round 1 is the product: P0 sends its 4 masked words to P2.
    let fault = |error| Fault {
        round: veil_runtime::transport::RoundId(1),
        to: PartyId::P2,
        word: 2,
        error,
    };
    let (results, fired) = run_with_fault(&p, &inputs, PartyId::P0, fault(1));
    assert!(fired);
    for h in [PartyId::P1, PartyId::P2] {
        assert!(
            matches!(&results[h.index()], Err(EngineError::Aborted { .. })),
            "{h} aborts"
        );
    }
    assert!(results.iter().any(
        |r| matches!(r, Err(EngineError::Aborted { what }) if what.contains("P0's product words"))
    ));
    for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
        let (results, fired) = run_with_fault_in(&p, &inputs, PartyId::P0, fault(1 << 40), mode);
        assert!(fired);
        let e = results[PartyId::P2.index()]
            .as_ref()
            .map(|_| ())
            .unwrap_err();
        assert!(
            e.to_string().contains("not below 2^32") && e.to_string().contains("P0"),
            "{mode}: {e}"
        );
    }
}

/// A program whose proof would exceed the verification's memory bound is refused up front.
#[test]
fn oversized_proofs_are_refused_before_any_round() {
    let n = veil_runtime::verify::MAX_PROOF_ENTRIES / 2 + 1;
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let z = b.mul(x, y);
    b.output_to_client("z", z);
    let p = b.finish().expect("valid");
    let cost = program_cost(&p);
    match veil_runtime::verify::check_program(&p, &cost) {
        Err(EngineError::ProofTooLarge { entries, limit, .. }) => {
            assert_eq!(entries, 2 * n);
            assert_eq!(limit, veil_runtime::verify::MAX_PROOF_ENTRIES);
        }
        other => panic!("expected ProofTooLarge, got {other:?}"),
    }
}

/// A session that runs several programs verifies each with fresh challenges and masks: two
/// honest runs on one session both pass, and a fault in the second run is caught.
#[test]
fn every_run_of_a_session_is_verified_on_its_own() {
    let mut rng = test_rng();
    let p = mixed_program(8);
    let plain = plain_inputs(8, &mut rng);
    let want = evaluate(&p, &plain).expect("evaluate");
    let inputs = share_inputs(&p, &plain, &mut rng);
    let cost = program_cost(&p);
    let per_run = cost.rounds as u64 + overhead(&p, &cost).rounds;
    // Session setup is round 0; the second run's first round is per_run + 1.
    let fault = Fault {
        round: veil_runtime::transport::RoundId(per_run + 1),
        to: PartyId::P0,
        word: 0,
        error: 1 << 63,
    };
    let (inputs, prog) = (&inputs, &p);
    let results = run3(|net| async move {
        let me = net.me();
        let net = Tamper::new(
            net,
            if me == PartyId::P1 {
                fault
            } else {
                Fault { error: 0, ..fault }
            },
        );
        let mut s = Session::establish(net).await.map_err(|e| e.to_string())?;
        s.set_security(SecurityMode::Malicious);
        let first = s
            .run(prog, inputs[me.index()].clone())
            .await
            .map_err(|e| e.to_string())?;
        let second = s.run(prog, inputs[me.index()].clone()).await;
        Ok::<_, String>((first.0, second.map(|_| ()).map_err(|e| e.to_string())))
    });
    let firsts: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().expect("the first run passes").0.clone())
        .collect();
    let got = collect_outputs(
        &p,
        &[firsts[0].clone(), firsts[1].clone(), firsts[2].clone()],
    )
    .expect("reconstruct");
    assert_eq!(got["xy"], want["xy"]);
    for h in [PartyId::P0, PartyId::P2] {
        let second = &results[h.index()].as_ref().expect("first run").1;
        assert!(second.is_err(), "{h} aborts the tampered second run");
    }
}

/// A client that gives the parties different values of a public input is caught too.
#[test]
fn inconsistent_public_inputs_are_refused_by_name() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring);
    let k = b.public_vector("k", 4, Ring);
    let y = b.mul(x, k);
    let z = b.mul(y, x);
    b.output_to_client("z", z);
    let p = b.finish().expect("valid");
    let plain: HashMap<String, Vec<u64>> = [
        ("x".into(), vec![1, 2, 3, 4]),
        ("k".into(), vec![5, 6, 7, 8]),
    ]
    .into();
    let mut inputs = share_inputs(&p, &plain, &mut test_rng());
    if let Some(InputValue::Plain(k)) = inputs[2].get_mut("k") {
        k[0] = 9;
    } else {
        panic!("k is a public input");
    }
    let results = run_program3_in(&p, inputs, SecurityMode::Malicious);
    assert!(results.iter().all(Result::is_err), "every party aborts");
    let named = results.iter().any(
        |r| matches!(r, Err(EngineError::Aborted { what }) if what.contains("public input `k`")),
    );
    assert!(named, "the abort names the public input");
}
