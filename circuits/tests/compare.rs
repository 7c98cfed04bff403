//! Comparison, selection and max ops: type rules, plaintext semantics and cost.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use veil_circuits::cost::{
    Cost, LTZ_ROUNDS, MAX_ROUNDS, ltz_bytes, op_cost, program_cost, tournament_bytes,
    tournament_pairs,
};
use veil_circuits::eval::evaluate_all;
use veil_circuits::fixed::{from_signed, to_signed};
use veil_circuits::{
    Builder, ElemType, Fixed, FracBits, InputDecl, Op, Owner, PROGRAM_VERSION, Program, Recipient,
    Ring, Shape, ValidationError, Value, ValueId, ValueType, Visibility,
};

const F16: ElemType = ElemType::Fixed(FracBits(16));
const A: ValueId = ValueId(0);
const B: ValueId = ValueId(1);
const C: ValueId = ValueId(2);

fn secret(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Secret,
        elem,
        shape,
    }
}

fn public(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Public,
        elem,
        shape,
    }
}

/// Type of the last op of a program reading each input once (op i reads input i), then `ops`.
fn infer(inputs: Vec<ValueType>, ops: Vec<Op>) -> Result<ValueType, ValidationError> {
    let n = inputs.len();
    let p = Program {
        version: PROGRAM_VERSION,
        inputs: inputs
            .into_iter()
            .enumerate()
            .map(|(i, ty)| InputDecl {
                name: format!("in{i}"),
                owner: Owner::Client("c".into()),
                ty,
            })
            .collect(),
        ops: (0..n).map(|input| Op::Input { input }).chain(ops).collect(),
        outputs: vec![],
    };
    Ok(*p.validate()?.types().last().unwrap())
}

fn s(xs: &[i64]) -> Vec<u64> {
    xs.iter().map(|&x| from_signed(x)).collect()
}

fn all(b: Builder, ins: &[(&str, Vec<u64>)]) -> Vec<Vec<u64>> {
    let ins: HashMap<String, Vec<u64>> = ins
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    evaluate_all(&b.finish().unwrap(), &ins).unwrap()
}

fn at(vals: &[Vec<u64>], v: Value) -> Vec<u64> {
    vals[v.id().index()].clone()
}

fn c(rounds: u32, bytes_sent: [u64; 3]) -> Cost {
    Cost { rounds, bytes_sent }
}

// ---------------------------------------------------------------- type rules

#[test]
fn names_and_operands() {
    let ops = [
        (Op::Ltz(A), "ltz", vec![A]),
        (Op::Lt(A, B), "lt", vec![A, B]),
        (Op::Le(A, B), "le", vec![A, B]),
        (Op::Gt(A, B), "gt", vec![A, B]),
        (Op::Ge(A, B), "ge", vec![A, B]),
        (Op::Eq(A, B), "eq", vec![A, B]),
        (Op::Relu(A), "relu", vec![A]),
        (
            Op::Select {
                cond: C,
                a: A,
                b: B,
            },
            "select",
            vec![C, A, B],
        ),
        (Op::Max(A, B), "max", vec![A, B]),
        (Op::Min(A, B), "min", vec![A, B]),
        (Op::MaxAll(A), "max_all", vec![A]),
        (Op::ArgMax(A), "argmax", vec![A]),
    ];
    for (op, name, operands) in ops {
        assert_eq!(op.name(), name);
        assert_eq!(op.operands(), operands, "{name}");
    }
}

#[test]
fn comparisons_yield_ring() {
    let f = secret(F16, Shape::Vector(3));
    let fp = public(F16, Shape::Vector(3));
    let k = public(F16, Shape::Scalar);
    let r = public(ElemType::Ring, Shape::Matrix(2, 2));
    let ring_s3 = secret(ElemType::Ring, Shape::Vector(3));
    for op in [
        Op::Lt(A, B),
        Op::Le(A, B),
        Op::Gt(A, B),
        Op::Ge(A, B),
        Op::Eq(A, B),
    ] {
        let name = op.name();
        assert_eq!(infer(vec![f, fp], vec![op.clone()]).unwrap(), ring_s3);
        // Scalar broadcast, either side.
        assert_eq!(infer(vec![f, k], vec![op.clone()]).unwrap(), ring_s3);
        assert_eq!(infer(vec![k, f], vec![op.clone()]).unwrap(), ring_s3);
        // All public stays public.
        assert_eq!(infer(vec![r, r], vec![op.clone()]).unwrap(), r);
        assert_eq!(
            infer(
                vec![f, public(ElemType::Ring, Shape::Vector(3))],
                vec![op.clone()]
            ),
            Err(ValidationError::ElemMismatch {
                op: 2,
                name,
                left: F16,
                right: ElemType::Ring
            })
        );
        assert!(matches!(
            infer(
                vec![f, secret(ElemType::Fixed(FracBits(8)), Shape::Vector(3))],
                vec![op.clone()]
            ),
            Err(ValidationError::ElemMismatch { .. })
        ));
        assert_eq!(
            infer(vec![f, public(F16, Shape::Matrix(2, 2))], vec![op.clone()]),
            Err(ValidationError::ShapeMismatch {
                op: 2,
                name,
                left: Shape::Vector(3),
                right: Shape::Matrix(2, 2)
            })
        );
    }
    assert_eq!(infer(vec![f], vec![Op::Ltz(A)]).unwrap(), ring_s3);
    assert_eq!(infer(vec![r], vec![Op::Ltz(A)]).unwrap(), r);
}

#[test]
fn relu_max_min_keep_type() {
    let f = secret(F16, Shape::Matrix(2, 3));
    let k = public(F16, Shape::Scalar);
    assert_eq!(infer(vec![f], vec![Op::Relu(A)]).unwrap(), f);
    assert_eq!(infer(vec![f, k], vec![Op::Max(A, B)]).unwrap(), f);
    assert_eq!(infer(vec![k, f], vec![Op::Min(A, B)]).unwrap(), f);
    let r = public(ElemType::Ring, Shape::Vector(2));
    assert_eq!(infer(vec![r, r], vec![Op::Max(A, B)]).unwrap(), r);
    assert!(matches!(
        infer(vec![f, r], vec![Op::Min(A, B)]),
        Err(ValidationError::ElemMismatch { name: "min", .. })
    ));
}

#[test]
fn bits_rejected() {
    let bit = public(ElemType::Bit, Shape::Vector(2));
    let r = public(ElemType::Ring, Shape::Vector(2));
    for op in [
        Op::Ltz(A),
        Op::Lt(A, B),
        Op::Le(B, A),
        Op::Gt(A, B),
        Op::Ge(B, A),
        Op::Eq(A, B),
        Op::Relu(A),
        Op::Max(A, B),
        Op::Min(B, A),
        Op::MaxAll(A),
        Op::ArgMax(A),
        Op::Select {
            cond: A,
            a: B,
            b: B,
        },
        Op::Select {
            cond: B,
            a: A,
            b: B,
        },
        Op::Select {
            cond: B,
            a: B,
            b: A,
        },
    ] {
        let name = op.name();
        assert_eq!(
            infer(vec![bit, r], vec![op]),
            Err(ValidationError::BitUnsupported { op: 2, name })
        );
    }
}

#[test]
fn select_rules() {
    let cond = secret(ElemType::Ring, Shape::Vector(3));
    let f = public(F16, Shape::Vector(3));
    let fs = secret(F16, Shape::Vector(3));
    let sel = Op::Select {
        cond: A,
        a: B,
        b: C,
    };
    assert_eq!(infer(vec![cond, f, f], vec![sel.clone()]).unwrap(), fs);
    // Visibility joins over all three operands.
    let pc = public(ElemType::Ring, Shape::Vector(3));
    assert_eq!(
        infer(vec![pc, f, f], vec![sel.clone()]).unwrap(),
        public(F16, Shape::Vector(3))
    );
    assert_eq!(infer(vec![pc, f, fs], vec![sel.clone()]).unwrap(), fs);
    // Scalars broadcast: a scalar condition, or scalar branches.
    let sc = secret(ElemType::Ring, Shape::Scalar);
    let k = public(F16, Shape::Scalar);
    assert_eq!(infer(vec![sc, f, k], vec![sel.clone()]).unwrap(), fs);
    assert_eq!(infer(vec![cond, k, k], vec![sel.clone()]).unwrap(), fs);
    assert_eq!(
        infer(vec![sc, k, k], vec![sel.clone()]).unwrap(),
        secret(F16, Shape::Scalar)
    );
    // The condition must be ring.
    let e = infer(vec![fs, f, f], vec![sel.clone()]).unwrap_err();
    assert_eq!(
        e,
        ValidationError::CondNotRing {
            op: 3,
            name: "select",
            elem: F16
        }
    );
    assert!(e.to_string().contains("select"), "{e}");
    // Branches need equal element types.
    assert!(matches!(
        infer(vec![cond, f, pc], vec![sel.clone()]),
        Err(ValidationError::ElemMismatch { name: "select", .. })
    ));
    // Shapes: condition against branches, and branches against each other.
    assert!(matches!(
        infer(
            vec![secret(ElemType::Ring, Shape::Vector(4)), f, f],
            vec![sel.clone()]
        ),
        Err(ValidationError::ShapeMismatch { name: "select", .. })
    ));
    assert!(matches!(
        infer(vec![sc, f, public(F16, Shape::Vector(2))], vec![sel]),
        Err(ValidationError::ShapeMismatch { name: "select", .. })
    ));
}

#[test]
fn max_all_and_argmax_rules() {
    for shape in [Shape::Scalar, Shape::Vector(5), Shape::Matrix(2, 3)] {
        assert_eq!(
            infer(vec![secret(F16, shape)], vec![Op::MaxAll(A)]).unwrap(),
            secret(F16, Shape::Scalar)
        );
    }
    for shape in [Shape::Vector(0), Shape::Matrix(0, 3), Shape::Matrix(2, 0)] {
        let e = infer(vec![secret(F16, shape)], vec![Op::MaxAll(A)]).unwrap_err();
        assert_eq!(
            e,
            ValidationError::EmptyOperand {
                op: 1,
                name: "max_all",
                shape
            }
        );
    }
    assert_eq!(
        infer(vec![secret(F16, Shape::Vector(5))], vec![Op::ArgMax(A)]).unwrap(),
        secret(ElemType::Ring, Shape::Scalar)
    );
    assert_eq!(
        infer(
            vec![public(ElemType::Ring, Shape::Vector(1))],
            vec![Op::ArgMax(A)]
        )
        .unwrap(),
        public(ElemType::Ring, Shape::Scalar)
    );
    for shape in [Shape::Scalar, Shape::Matrix(2, 3), Shape::Vector(0)] {
        let e = infer(vec![secret(F16, shape)], vec![Op::ArgMax(A)]).unwrap_err();
        assert_eq!(
            e,
            ValidationError::NotNonEmptyVector {
                op: 1,
                name: "argmax",
                shape
            }
        );
    }
}

#[test]
fn builder_records_errors_and_json_round_trips() {
    let mut b = Builder::new();
    let m = b.secret_matrix("m", 2, 2, Ring);
    let f = b.secret_vector("f", 2, Fixed::default());
    let ok = b.relu(f);
    assert_eq!(ok.ty(), f.ty());
    let _ = b.argmax(m);
    let _ = b.select(f, f, f);
    assert!(matches!(
        b.finish(),
        Err(ValidationError::NotNonEmptyVector { op: 3, .. })
    ));

    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring);
    let y = b.public_vector("y", 4, Ring);
    let lt = b.lt(x, y);
    let outs = [
        b.ltz(x),
        lt,
        b.le(x, y),
        b.gt(x, y),
        b.ge(x, y),
        b.eq(x, y),
        b.relu(x),
        b.select(lt, x, y),
        b.max(x, y),
        b.min(x, y),
        b.max_all(x),
        b.argmax(x),
    ];
    for (i, v) in outs.iter().enumerate() {
        b.output_to_client(&format!("o{i}"), *v);
    }
    let p = b.finish().unwrap();
    let back = Program::from_json(&p.program().to_json()).unwrap();
    assert_eq!(&back, p.program());
    assert_eq!(back.id(), *p.id());
}

// ---------------------------------------------------------------- semantics

#[test]
fn comparisons_in_range() {
    const H: i64 = 1 << 62;
    let xs = [
        3,
        -5,
        2,
        0,
        -1,
        0,
        H - 1,
        -H,
        i64::MAX,
        i64::MAX - 1,
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        i64::MIN + 1,
    ];
    let ys = [
        3,
        2,
        -5,
        0,
        0,
        -1,
        -H,
        H - 1,
        i64::MAX - 1,
        i64::MAX,
        i64::MIN + 1,
        i64::MIN,
        0,
        0,
    ];
    let n = xs.len();
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.public_vector("y", n, Ring);
    let ops = [
        b.lt(x, y),
        b.le(x, y),
        b.gt(x, y),
        b.ge(x, y),
        b.eq(x, y),
        b.max(x, y),
        b.min(x, y),
        b.ltz(x),
    ];
    let v = all(b, &[("x", s(&xs)), ("y", s(&ys))]);
    let bit = |c: bool| u64::from(c);
    let want: [Vec<u64>; 8] = [
        xs.iter().zip(&ys).map(|(a, b)| bit(a < b)).collect(),
        xs.iter().zip(&ys).map(|(a, b)| bit(a <= b)).collect(),
        xs.iter().zip(&ys).map(|(a, b)| bit(a > b)).collect(),
        xs.iter().zip(&ys).map(|(a, b)| bit(a >= b)).collect(),
        xs.iter().zip(&ys).map(|(a, b)| bit(a == b)).collect(),
        xs.iter()
            .zip(&ys)
            .map(|(a, b)| from_signed(*a.max(b)))
            .collect(),
        xs.iter()
            .zip(&ys)
            .map(|(a, b)| from_signed(*a.min(b)))
            .collect(),
        xs.iter().map(|a| bit(*a < 0)).collect(),
    ];
    for (op, w) in ops.iter().zip(&want) {
        assert_eq!(&at(&v, *op), w, "op {}", op.id());
    }
    // Spot checks of the hand-made table.
    assert_eq!(at(&v, ops[0])[..4], [0, 1, 0, 0]);
    assert_eq!(at(&v, ops[4])[..4], [1, 0, 0, 1]);
}

#[test]
fn comparisons_out_of_range_follow_the_wrapping_definition() {
    // a − b = −2^63: Lt(a, b) = Ltz(2^63) = 1 and Gt(a, b) = Ltz(2^63) = 1.
    let mut b = Builder::new();
    let x = b.public_vector("x", 2, Ring);
    let y = b.public_vector("y", 2, Ring);
    let ops = [
        b.lt(x, y),
        b.gt(x, y),
        b.le(x, y),
        b.ge(x, y),
        b.eq(x, y),
        b.max(x, y),
    ];
    let v = all(b, &[("x", s(&[i64::MIN, i64::MAX])), ("y", s(&[0, -1]))]);
    // Second pair: MAX − (−1) wraps to MIN, and so does −1 − MAX: both "less" and "greater".
    assert_eq!(at(&v, ops[0]), [1, 1]);
    assert_eq!(at(&v, ops[1]), [1, 1]);
    assert_eq!(at(&v, ops[2]), [0, 0]);
    assert_eq!(at(&v, ops[3]), [0, 0]);
    assert_eq!(at(&v, ops[4]), [u64::MAX, u64::MAX]);
    // Max = a + Lt·(b − a) = b.
    assert_eq!(at(&v, ops[5]), s(&[0, -1]));
}

#[test]
fn ltz_relu_broadcast_and_fixed() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 5, Ring);
    let k = b.const_ring(0);
    let ltz = b.ltz(x);
    let relu = b.relu(x);
    let gt0 = b.gt(x, k);
    let kle = b.le(k, x);
    let f = b.public_vector("f", 3, Fixed::default());
    let fk = b.const_fixed(0.5, Fixed::default());
    let fgt = b.gt(f, fk);
    let frelu = b.relu(f);
    let fmax = b.max(f, fk);
    let xs = [5, 0, -3, i64::MIN, i64::MAX];
    let fs = [-0.75, 0.5, 2.25];
    let fw: Vec<u64> = fs
        .iter()
        .map(|&x| veil_circuits::fixed::encode(x, FracBits(16)).unwrap())
        .collect();
    let v = all(b, &[("x", s(&xs)), ("f", fw.clone())]);
    assert_eq!(at(&v, ltz), [0, 0, 1, 1, 0]);
    assert_eq!(at(&v, relu), s(&[5, 0, 0, 0, i64::MAX]));
    // i64::MIN − 0 is out of range (|a − b| = 2^63): Gt(MIN, 0) = Ltz(0 − MIN) = Ltz(MIN) = 1.
    assert_eq!(at(&v, gt0), [1, 0, 0, 1, 1]);
    assert_eq!(at(&v, kle), [1, 1, 0, 0, 1]);
    assert_eq!(at(&v, fgt), [0, 0, 1]);
    assert_eq!(at(&v, frelu), [0, fw[1], fw[2]]);
    assert_eq!(at(&v, fmax), [fw[1], fw[1], fw[2]]);
}

#[test]
fn select_semantics() {
    let mut b = Builder::new();
    let cond = b.secret_vector("c", 4, Ring);
    let x = b.secret_vector("x", 4, Ring);
    let y = b.public_vector("y", 4, Ring);
    let sc = b.public_scalar("sc", Ring);
    let k = b.const_ring(-7);
    let sel = b.select(cond, x, y);
    let sel_scalar_cond = b.select(sc, x, y);
    let sel_scalar_b = b.select(cond, x, k);
    let v = all(
        b,
        &[
            ("c", s(&[1, 0, 1, 0])),
            ("x", s(&[10, -20, i64::MIN, 0])),
            ("y", s(&[-1, 2, 3, i64::MAX])),
            ("sc", s(&[0])),
        ],
    );
    assert_eq!(at(&v, sel), s(&[10, 2, i64::MIN, i64::MAX]));
    assert_eq!(at(&v, sel_scalar_cond), s(&[-1, 2, 3, i64::MAX]));
    assert_eq!(at(&v, sel_scalar_b), s(&[10, -7, i64::MIN, -7]));
    // Defined as b + cond·(a − b) also for non-0/1 conditions.
    assert_eq!(veil_circuits::eval::select(2, 5, 1), 9);
}

/// Reference: true maximum and the lowest index holding it.
fn reference(xs: &[i64]) -> (i64, usize) {
    let m = *xs.iter().max().unwrap();
    (m, xs.iter().position(|&x| x == m).unwrap())
}

fn max_and_argmax(xs: &[i64]) -> (u64, u64) {
    let mut b = Builder::new();
    let x = b.secret_vector("x", xs.len(), Ring);
    let m = b.max_all(x);
    let i = b.argmax(x);
    let v = all(b, &[("x", s(xs))]);
    (at(&v, m)[0], at(&v, i)[0])
}

#[test]
fn max_all_and_argmax_hand_made() {
    let cases: &[(&[i64], i64, u64)] = &[
        (&[42], 42, 0),
        (&[-42], -42, 0),
        (&[0], 0, 0),
        (&[3, 3], 3, 0),
        (&[2, 3], 3, 1),
        (&[1, 9, 9, 0, 9], 9, 1),
        (&[1, 2, 3, 4, 10], 10, 4),
        (&[-5, -5, -5, -5, -5, -5, -5], -5, 0),
        (&[-9, -3, -7, -3, -8, -4, -3], -3, 1),
        (&[0, -1, -2, -3, -4, -5, 0], 0, 0),
        (&[-1, -2, -3, -4, -5, -6, 7], 7, 6),
        (&[0, 5, 5, 5], 5, 1),
        (&[5, 4, 3, 2, 1, 0, -1, 5], 5, 0),
        (
            &[
                i64::MIN / 2,
                i64::MAX / 2 - 1,
                i64::MAX / 2 - 1,
                i64::MIN / 2,
            ],
            i64::MAX / 2 - 1,
            1,
        ),
    ];
    for &(xs, max, idx) in cases {
        assert_eq!(max_and_argmax(xs), (from_signed(max), idx), "{xs:?}");
        assert_eq!(reference(xs), (max, idx as usize), "{xs:?}");
    }
    // A matrix reduces over all its elements.
    let mut b = Builder::new();
    let m = b.secret_matrix("m", 2, 3, Fixed::default());
    let mx = b.max_all(m);
    let v = all(b, &[("m", s(&[-4, 7, 1, 7, -9, 0]))]);
    assert_eq!(at(&v, mx), s(&[7]));
}

#[test]
fn max_all_and_argmax_random_in_range() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for len in 1..=20 {
        for _ in 0..5 {
            // Few distinct values so ties are common; full range otherwise.
            let xs: Vec<i64> = if rng.random_bool(0.5) {
                (0..len).map(|_| rng.random_range(-3..=3)).collect()
            } else {
                (0..len)
                    .map(|_| rng.random_range(-(1i64 << 62)..(1i64 << 62)))
                    .collect()
            };
            let (m, i) = max_and_argmax(&xs);
            let (rm, ri) = reference(&xs);
            assert_eq!((to_signed(m), i), (rm, ri as u64), "{xs:?}");
        }
    }
}

// ---------------------------------------------------------------- cost

#[test]
fn cost_constants() {
    assert_eq!(LTZ_ROUNDS, 8);
    assert_eq!(MAX_ROUNDS, 8);
    // Hand-computed from the packed MSB tree (see `ltz_bytes`): G, five levels, the opened
    // last level, the mask's injection.
    assert_eq!(ltz_bytes(1), [136, 120, 120]);
    assert_eq!(ltz_bytes(3), [232, 184, 184]);
    assert_eq!(ltz_bytes(6), [384, 288, 288]);
    assert_eq!(ltz_bytes(64), [3568, 2544, 2544]);
    assert_eq!(tournament_bytes(5, 1), [480, 416, 416]);
    assert_eq!(tournament_bytes(8, 2), [696, 584, 584]);
    assert_eq!(tournament_pairs(0), Vec::<usize>::new());
    assert_eq!(tournament_pairs(1), Vec::<usize>::new());
    assert_eq!(tournament_pairs(2), vec![1]);
    assert_eq!(tournament_pairs(5), vec![2, 1, 1]);
    assert_eq!(tournament_pairs(7), vec![3, 2, 1]);
    assert_eq!(tournament_pairs(8), vec![4, 2, 1]);
    for n in 1..100 {
        assert_eq!(tournament_pairs(n).iter().sum::<usize>(), n - 1);
    }
}

#[test]
fn elementwise_costs() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let y = b.public_vector("y", 3, Ring);
    let k = b.const_ring(1);
    let cs = b.secret_scalar("cs", Ring);
    let secret_ops = [
        b.ltz(x),
        b.lt(x, y),
        b.le(y, x),
        b.gt(x, x),
        b.ge(k, x),
        b.eq(x, y),
        b.relu(x),
        b.max(x, y),
        b.min(k, x),
    ];
    let want = [
        c(8, [232, 184, 184]),
        c(8, [232, 184, 184]),
        c(8, [232, 184, 184]),
        c(8, [232, 184, 184]),
        c(8, [232, 184, 184]),
        c(8, [384, 288, 288]),
        c(8, [256, 208, 208]),
        c(8, [256, 208, 208]),
        c(8, [256, 208, 208]),
    ];
    // Public operands only: free.
    let public_ops = [
        b.ltz(y),
        b.lt(y, k),
        b.le(y, y),
        b.gt(k, y),
        b.ge(y, y),
        b.eq(y, k),
        b.relu(y),
        b.max(y, y),
        b.min(k, y),
        b.max_all(y),
        b.argmax(y),
    ];
    let cond = b.lt(x, y);
    let pcond = b.lt(y, k);
    let sel_ss = b.select(cond, x, y);
    let sel_sp = b.select(cond, y, k);
    let sel_ps = b.select(pcond, x, x);
    let sel_scalar = b.select(cs, x, x);
    let p = b.finish().unwrap();
    for (v, w) in secret_ops.iter().zip(want) {
        assert_eq!(op_cost(&p, v.id().index()), w, "op {}", v.id());
    }
    for v in public_ops {
        assert_eq!(op_cost(&p, v.id().index()), Cost::FREE, "op {}", v.id());
    }
    assert_eq!(op_cost(&p, sel_ss.id().index()), c(1, [24; 3]));
    assert_eq!(op_cost(&p, sel_sp.id().index()), Cost::FREE);
    assert_eq!(op_cost(&p, sel_ps.id().index()), Cost::FREE);
    assert_eq!(op_cost(&p, sel_scalar.id().index()), c(1, [24; 3]));
}

#[test]
fn reduction_costs() {
    // (N, levels, pairs)
    for (n, levels) in [(1usize, 0u32), (2, 1), (5, 3), (8, 3)] {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, Fixed::default());
        let m = b.max_all(x);
        let i = b.argmax(x);
        b.output("m", m, Recipient::AllParties);
        b.output_to_client("i", i);
        let p = b.finish().unwrap();
        assert_eq!(
            op_cost(&p, m.id().index()),
            c(8 * levels, tournament_bytes(n, 1)),
            "max_all N={n}"
        );
        assert_eq!(
            op_cost(&p, i.id().index()),
            c(8 * levels, tournament_bytes(n, 2)),
            "argmax N={n}"
        );
        // ASAP depth: both reductions run in parallel, then the output round.
        let pc = program_cost(&p);
        assert_eq!(pc.depth, vec![0, 8 * levels, 8 * levels]);
        assert_eq!(pc.rounds, 8 * levels + 1);
    }
    // Explicit values for N = 5 and N = 8.
    let cost_of = |n: usize| {
        let mut b = Builder::new();
        let x = b.secret_vector("x", n, Ring);
        let m = b.max_all(x);
        let i = b.argmax(x);
        let p = b.finish().unwrap();
        (op_cost(&p, m.id().index()), op_cost(&p, i.id().index()))
    };
    assert_eq!(cost_of(5), (c(24, [480, 416, 416]), c(24, [512, 448, 448])));
    assert_eq!(cost_of(8), (c(24, [640, 528, 528]), c(24, [696, 584, 584])));
    assert_eq!(cost_of(1), (Cost::FREE, Cost::FREE));
    assert_eq!(cost_of(2), (c(8, [144, 128, 128]), c(8, [152, 136, 136])));
}

#[test]
fn depth_chains_through_comparisons() {
    // x → lt (8) → select (1) → relu (8) → max (8); reveal (1).
    let mut b = Builder::new();
    let x = b.secret_vector("x", 2, Ring);
    let y = b.secret_vector("y", 2, Ring);
    let lt = b.lt(x, y);
    let sel = b.select(lt, x, y);
    let r = b.relu(sel);
    let m = b.max(r, x);
    let rev = b.reveal(m);
    let pc = program_cost(&b.finish().unwrap());
    assert_eq!(
        [lt, sel, r, m, rev].map(|v| pc.depth[v.id().index()]),
        [8, 9, 17, 25, 26]
    );
    assert_eq!(pc.rounds, 26);
}
