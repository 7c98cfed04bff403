//! Plaintext evaluator and cost model.

use std::collections::HashMap;
use veil_circuits::cost::{Cost, op_cost, output_cost, program_cost};
use veil_circuits::eval::{evaluate, evaluate_all};
use veil_circuits::fixed::{decode, encode, from_signed};
use veil_circuits::{
    Builder, ElemType, EvalError, Fixed, FracBits, Owner, PartyId, Recipient, Ring, Shape,
    ValidatedProgram, Value, ValueType, Visibility,
};

const F16: FracBits = FracBits(16);

fn s(xs: &[i64]) -> Vec<u64> {
    xs.iter().map(|&x| from_signed(x)).collect()
}

fn fx(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|&x| encode(x, F16).unwrap()).collect()
}

fn inputs(pairs: &[(&str, Vec<u64>)]) -> HashMap<String, Vec<u64>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Evaluates and returns every value.
fn all(b: Builder, ins: &[(&str, Vec<u64>)]) -> Vec<Vec<u64>> {
    evaluate_all(&b.finish().unwrap(), &inputs(ins)).unwrap()
}

fn at(vals: &[Vec<u64>], v: Value) -> Vec<u64> {
    vals[v.id().index()].clone()
}

#[test]
fn elementwise_wrapping_and_broadcast() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let y = b.public_vector("y", 3, Ring);
    let k = b.const_ring(-2);
    let add = b.add(x, y);
    let sub = b.sub(x, y);
    let mul = b.mul(x, y);
    let neg = b.neg(x);
    let bk = b.mul(k, x);
    let ak = b.add(x, k);
    let v = all(b, &[("x", s(&[1, -5, i64::MAX])), ("y", s(&[2, 3, 1]))]);
    assert_eq!(at(&v, add), s(&[3, -2, i64::MIN]));
    assert_eq!(at(&v, sub), s(&[-1, -8, i64::MAX - 1]));
    assert_eq!(at(&v, mul), s(&[2, -15, i64::MAX]));
    assert_eq!(at(&v, neg), s(&[-1, 5, -i64::MAX]));
    assert_eq!(at(&v, bk), s(&[-2, 10, 2]));
    assert_eq!(at(&v, ak), s(&[-1, -7, i64::MAX - 2]));
}

#[test]
fn fixed_point_mul_and_rescale_floor() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Fixed::default());
    let y = b.secret_vector("y", 3, Fixed::default());
    let p = b.mul(x, y);
    let r = b.rescale(p, 16);
    let fm = b.fixmul(x, y);
    let whole = b.rescale(x, 16);
    let v = all(
        b,
        &[
            ("x", fx(&[-1.5, 2.5, -0.25])),
            ("y", fx(&[2.25, -4.0, -0.5])),
        ],
    );
    // The product is exact with 32 fractional bits.
    let p32: Vec<f64> = at(&v, p).iter().map(|&w| decode(w, FracBits(32))).collect();
    assert_eq!(p32, [-3.375, -10.0, 0.125]);
    assert_eq!(at(&v, r), fx(&[-3.375, -10.0, 0.125]));
    assert_eq!(at(&v, fm), at(&v, r));
    // Dropping every fractional bit floors: -1.5 → -2, 2.5 → 2, -0.25 → -1.
    assert_eq!(at(&v, whole), s(&[-2, 2, -1]));
}

#[test]
fn rescale_floor_rounds_toward_negative_infinity() {
    let mut b = Builder::new();
    let x = b.public_vector("x", 5, Fixed::with_frac_bits(2));
    let r = b.rescale(x, 1);
    let zero = b.rescale(x, 0);
    // Fixed(2) words: -6 = -1.5, -1 = -0.25, 3 = 0.75, 5 = 1.25, -7 = -1.75.
    let v = all(b, &[("x", s(&[-6, -1, 3, 5, -7]))]);
    // Fixed(1): -3 = -1.5 (exact), -1 = -0.5 (floor of -0.125·4), 1, 2, -4 = -2.0 (floor -3.5).
    assert_eq!(at(&v, r), s(&[-3, -1, 1, 2, -4]));
    assert_eq!(at(&v, zero), s(&[-6, -1, 3, 5, -7]));
}

#[test]
fn dot_matmul_sum() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let m = b.secret_matrix("m", 2, 3, Ring);
    let n = b.public_matrix("n", 3, 2, Ring);
    let d = b.dot(x, x);
    let dm = b.dot(m, m);
    let mm = b.matmul(m, n);
    let sa = b.sum(m);
    let sr = b.sum_rows(m);
    let sx = b.sum(x);
    let v = all(
        b,
        &[
            ("x", s(&[1, -2, 3])),
            ("m", s(&[1, 2, 3, 4, 5, -6])),
            ("n", s(&[1, 0, 0, 1, 2, -1])),
        ],
    );
    assert_eq!(at(&v, d), s(&[14]));
    assert_eq!(at(&v, dm), s(&[14, 77]));
    // [1 2 3; 4 5 -6] · [1 0; 0 1; 2 -1] = [7 -1; -8 11]
    assert_eq!(at(&v, mm), s(&[7, -1, -8, 11]));
    assert_eq!(at(&v, sa), s(&[9]));
    assert_eq!(at(&v, sr), s(&[6, 3]));
    assert_eq!(at(&v, sx), s(&[2]));
}

#[test]
fn fixed_point_dot_and_matmul() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 2, Fixed::default());
    let m = b.secret_matrix("m", 2, 2, Fixed::default());
    let d = b.fixdot(x, x);
    let mm = b.fixmatmul(m, m);
    let v = all(
        b,
        &[("x", fx(&[-1.5, 0.5])), ("m", fx(&[1.0, -0.5, 2.0, 0.25]))],
    );
    assert_eq!(at(&v, d), fx(&[2.5]));
    // [1 -0.5; 2 0.25]^2 = [0 -0.625; 2.5 -0.9375]
    assert_eq!(at(&v, mm), fx(&[0.0, -0.625, 2.5, -0.9375]));
}

#[test]
fn data_movement() {
    let mut b = Builder::new();
    let m = b.secret_matrix("m", 2, 3, Ring);
    let x = b.public_vector("x", 2, Ring);
    let t = b.transpose(m);
    let r = b.reshape(m, Shape::Vector(6));
    let sv = b.slice(r, 1, 4);
    let sm = b.slice(m, 1, 2);
    let cv = b.concat(&[x, sv, x]);
    let cm = b.concat(&[sm, m]);
    let rv = b.reveal(cv);
    let c = b.constant(ElemType::Ring, Shape::Matrix(1, 2), s(&[9, -9]));
    let e = b.slice(r, 6, 6);
    let v = all(b, &[("m", s(&[1, 2, 3, 4, 5, 6])), ("x", s(&[7, 8]))]);
    assert_eq!(at(&v, t), s(&[1, 4, 2, 5, 3, 6]));
    assert_eq!(at(&v, r), s(&[1, 2, 3, 4, 5, 6]));
    assert_eq!(at(&v, sv), s(&[2, 3, 4]));
    assert_eq!(at(&v, sm), s(&[4, 5, 6]));
    assert_eq!(at(&v, cv), s(&[7, 8, 2, 3, 4, 7, 8]));
    assert_eq!(at(&v, cm), s(&[4, 5, 6, 1, 2, 3, 4, 5, 6]));
    assert_eq!(at(&v, rv), at(&v, cv));
    assert_eq!(at(&v, c), s(&[9, -9]));
    assert!(at(&v, e).is_empty());
}

#[test]
fn empty_shapes() {
    let mut b = Builder::new();
    let m = b.secret_matrix("m", 3, 0, Ring);
    let d = b.dot(m, m);
    let sr = b.sum_rows(m);
    let mt = b.transpose(m);
    let mm = b.matmul(m, mt);
    let v = all(b, &[("m", vec![])]);
    assert_eq!(at(&v, d), s(&[0, 0, 0]));
    assert_eq!(at(&v, sr), s(&[0, 0, 0]));
    assert_eq!(at(&v, mm), vec![0; 9]);
}

#[test]
fn outputs_and_input_errors() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 2, Ring);
    let flag = b.public_scalar("flag", ElemType::Bit);
    let y = b.add(x, x);
    b.output_to_client("y", y);
    b.output("x", x, Recipient::Party(PartyId::P0));
    b.output("flag", flag, Recipient::AllParties);
    let p = b.finish().unwrap();
    let out = evaluate(&p, &inputs(&[("x", s(&[3, -4])), ("flag", vec![1])])).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out["y"], s(&[6, -8]));
    assert_eq!(out["x"], s(&[3, -4]));
    assert_eq!(out["flag"], vec![1]);

    let err = |ins: &[(&str, Vec<u64>)]| evaluate(&p, &inputs(ins)).unwrap_err();
    assert_eq!(
        err(&[("flag", vec![1])]),
        EvalError::MissingInput {
            name: "x".into(),
            expected: 2
        }
    );
    assert_eq!(
        err(&[("x", s(&[1])), ("flag", vec![0])]),
        EvalError::InputLength {
            name: "x".into(),
            expected: 2,
            found: 1
        }
    );
    assert_eq!(
        err(&[("x", s(&[1, 2])), ("flag", vec![0]), ("z", vec![])]),
        EvalError::UnknownInput { name: "z".into() }
    );
    let e = err(&[("x", s(&[1, 2])), ("flag", vec![2])]);
    assert_eq!(
        e,
        EvalError::BitInput {
            name: "flag".into(),
            position: 0
        }
    );
    let e = err(&[("x", s(&[1, 123_456_789]))]);
    assert!(!e.to_string().contains("123456789"));
}

fn secret(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Secret,
        elem,
        shape,
    }
}

fn costs(p: &ValidatedProgram) -> Vec<Cost> {
    (0..p.program().ops.len()).map(|i| op_cost(p, i)).collect()
}

fn c(rounds: u32, bytes_sent: [u64; 3]) -> Cost {
    Cost { rounds, bytes_sent }
}

#[test]
fn cost_table() {
    let mut b = Builder::new();
    let x = b.input(
        "x",
        Owner::Party(PartyId::P1),
        secret(ElemType::Ring, Shape::Vector(5)),
    );
    let pub_party = b.input(
        "pp",
        Owner::Party(PartyId::P0),
        ValueType {
            vis: Visibility::Public,
            elem: ElemType::Ring,
            shape: Shape::Vector(5),
        },
    );
    let y = b.secret_vector("y", 5, Fixed::default());
    let m = b.secret_matrix("m", 2, 3, Ring);
    let n = b.secret_matrix("n", 3, 4, Ring);
    let pm = b.public_matrix("pm", 3, 4, Ring);
    let mul = b.mul(x, y); // 5 elements
    let mul_pub = b.mul(x, pub_party);
    let dot = b.dot(x, x); // 1 element
    let mm = b.matmul(m, n); // 8 elements
    let mm_pub = b.matmul(m, pm);
    let resc = b.rescale(y, 4);
    let pf = b.public_scalar("pf", Fixed::default());
    let resc_pub = b.rescale(pf, 1);
    let rev = b.reveal(y);
    let add = b.add(x, x);
    let sum = b.sum(x);
    let tr = b.transpose(m);
    let k = b.const_ring(1);
    let p = b.finish_with_outputs(&[
        ("to_p2", mul, Recipient::Party(PartyId::P2)),
        ("to_all", mm, Recipient::AllParties),
        ("to_client", x, Recipient::Client("c".into())),
        ("pub_to_p0", rev, Recipient::Party(PartyId::P0)),
    ]);
    let z = Cost::FREE;
    let per_op = costs(&p);
    assert_eq!(per_op[x.id().index()], c(1, [0, 80, 0]));
    assert_eq!(per_op[pub_party.id().index()], z);
    assert_eq!(per_op[y.id().index()], z);
    assert_eq!(per_op[mul.id().index()], c(1, [40; 3]));
    assert_eq!(per_op[mul_pub.id().index()], z);
    assert_eq!(per_op[dot.id().index()], c(1, [8; 3]));
    assert_eq!(per_op[mm.id().index()], c(1, [64; 3]));
    assert_eq!(per_op[mm_pub.id().index()], z);
    assert_eq!(per_op[resc.id().index()], c(1, [0, 40, 0]));
    assert_eq!(per_op[resc_pub.id().index()], z);
    assert_eq!(per_op[rev.id().index()], c(1, [80; 3]));
    for v in [add, sum, tr, k] {
        assert_eq!(per_op[v.id().index()], z);
    }
    assert_eq!(op_cost(&p, 10_000), z);
    assert_eq!(output_cost(&p, 0), c(1, [40, 40, 0]));
    assert_eq!(output_cost(&p, 1), c(1, [128; 3]));
    assert_eq!(output_cost(&p, 2), z);
    assert_eq!(output_cost(&p, 3), z);
    assert_eq!(output_cost(&p, 99), z);

    let pc = program_cost(&p);
    assert_eq!(pc.per_op, per_op);
    assert_eq!(pc.per_output.len(), 4);
    let total: u64 = per_op
        .iter()
        .chain(&pc.per_output)
        .map(|c| c.bytes_sent[1])
        .sum();
    assert_eq!(pc.bytes_sent[1], total);
    // input (1) → mul (2) → output to P2 (3).
    assert_eq!(pc.depth[mul.id().index()], 2);
    assert_eq!(pc.depth[mm.id().index()], 1);
    assert_eq!(pc.rounds, 3);
}

trait FinishWith {
    fn finish_with_outputs(self, outs: &[(&str, Value, Recipient)]) -> ValidatedProgram;
}

impl FinishWith for Builder {
    fn finish_with_outputs(mut self, outs: &[(&str, Value, Recipient)]) -> ValidatedProgram {
        for (name, v, r) in outs {
            self.output(name, *v, r.clone());
        }
        self.finish().unwrap()
    }
}

#[test]
fn program_rounds() {
    // Empty program.
    assert_eq!(program_cost(&Builder::new().finish().unwrap()).rounds, 0);

    // 1000 independent secret multiplications share one round.
    let mut b = Builder::new();
    let x = b.secret_vector("x", 1000, Ring);
    let mut outs = vec![];
    for i in 0..1000 {
        let xi = b.slice(x, i, i + 1);
        outs.push(b.mul(xi, xi));
    }
    let cat = b.concat(&outs);
    b.output_to_client("y", cat);
    let pc = program_cost(&b.finish().unwrap());
    assert_eq!(pc.rounds, 1);
    assert_eq!(pc.bytes_sent, [8000; 3]);

    // Fixed-point multiplication: mul then rescale = 2 rounds.
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Fixed::default());
    let y = b.fixmul(x, x);
    b.output_to_client("y", y);
    let pc = program_cost(&b.finish().unwrap());
    assert_eq!(pc.rounds, 2);
    assert_eq!(pc.bytes_sent, [32, 64, 32]);
    assert_eq!(pc.depth, vec![0, 1, 2]);

    // Input from a party, mul, output to a party = 3 rounds.
    let mut b = Builder::new();
    let x = b.input(
        "x",
        Owner::Party(PartyId::P0),
        secret(ElemType::Ring, Shape::Vector(2)),
    );
    let y = b.secret_vector("y", 2, Ring);
    let z = b.mul(x, y);
    b.output("z", z, Recipient::Party(PartyId::P1));
    let pc = program_cost(&b.finish().unwrap());
    assert_eq!(pc.rounds, 3);
    assert_eq!(pc.depth, vec![1, 0, 2]);
    assert_eq!(pc.per_output, vec![c(1, [16, 0, 16])]);
    assert_eq!(pc.bytes_sent, [32 + 16 + 16, 16, 16 + 16]);

    // Local ops add no rounds; a reveal does.
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let y = b.add(x, x);
    let z = b.neg(y);
    let r = b.reveal(z);
    b.output("r", r, Recipient::AllParties);
    let pc = program_cost(&b.finish().unwrap());
    assert_eq!(pc.rounds, 1);
    assert_eq!(pc.bytes_sent, [48; 3]);
}
