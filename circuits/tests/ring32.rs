//! Compact Z_2^32 values (`ElemType::Ring32`), `Widen`, `Narrow` and `OneHotLow` with `skip`:
//! type rules, plaintext semantics, cost, and JSON compatibility of programs written before.

use std::collections::HashMap;
use veil_circuits::cost::{self, low_bits_bytes, low_bits_range_bytes, onehot_low_rounds};
use veil_circuits::{
    Builder, ElemType, EvalError, InputDecl, Op, Owner, PROGRAM_VERSION, Program, RING32_MASK,
    Ring, Ring32, Shape, ValidationError, ValueId, ValueType, Visibility, eval, selection,
};

fn secret(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Secret,
        elem,
        shape,
    }
}

/// Program with the given inputs (each read by op i), then `ops`, no outputs.
fn prog(inputs: Vec<ValueType>, ops: Vec<Op>) -> Program {
    let n = inputs.len();
    Program {
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
    }
}

fn infer(inputs: Vec<ValueType>, ops: Vec<Op>) -> Result<ValueType, ValidationError> {
    let p = prog(inputs, ops).validate()?;
    Ok(*p.types().last().unwrap())
}

const A: ValueId = ValueId(0);
const B: ValueId = ValueId(1);

fn words32(xs: &[i64]) -> Vec<u64> {
    xs.iter().map(|&x| x as u64 & RING32_MASK).collect()
}

#[test]
fn ring32_accepted_ops_keep_ring32() {
    let v = secret(ElemType::Ring32, Shape::Vector(4));
    let m = secret(ElemType::Ring32, Shape::Matrix(2, 4));
    let n = secret(ElemType::Ring32, Shape::Matrix(4, 3));
    for op in [Op::Add(A, B), Op::Sub(A, B), Op::Neg(A)] {
        let t = infer(vec![v, v], vec![op]).unwrap();
        assert_eq!(t.elem, ElemType::Ring32);
        assert_eq!(t.shape, Shape::Vector(4));
    }
    let t = infer(vec![m, n], vec![Op::MatMul(A, B)]).unwrap();
    assert_eq!((t.elem, t.shape), (ElemType::Ring32, Shape::Matrix(2, 3)));
    for (op, shape) in [
        (
            Op::Reshape {
                a: A,
                shape: Shape::Vector(8),
            },
            Shape::Vector(8),
        ),
        (
            Op::Slice {
                a: A,
                start: 1,
                end: 2,
            },
            Shape::Matrix(1, 4),
        ),
        (Op::Transpose(A), Shape::Matrix(4, 2)),
        (Op::Concat(vec![A, A]), Shape::Matrix(4, 4)),
    ] {
        let t = infer(vec![m], vec![op]).unwrap();
        assert_eq!((t.elem, t.shape), (ElemType::Ring32, shape));
    }
}

#[test]
fn widen_and_narrow_convert_types() {
    let v32 = secret(ElemType::Ring32, Shape::Vector(3));
    let v64 = secret(ElemType::Ring, Shape::Vector(3));
    let t = infer(vec![v32], vec![Op::Widen { a: A }]).unwrap();
    assert_eq!(t, secret(ElemType::Ring, Shape::Vector(3)));
    let t = infer(vec![v64], vec![Op::Narrow { a: A }]).unwrap();
    assert_eq!(t, secret(ElemType::Ring32, Shape::Vector(3)));
    let e = infer(vec![v64], vec![Op::Widen { a: A }]).unwrap_err();
    assert!(matches!(
        e,
        ValidationError::ConvertElem {
            expected: ElemType::Ring32,
            found: ElemType::Ring,
            ..
        }
    ));
    let e = infer(vec![v32], vec![Op::Narrow { a: A }]).unwrap_err();
    assert!(matches!(e, ValidationError::ConvertElem { .. }));
    let fx = secret(
        ElemType::Fixed(veil_circuits::FracBits(8)),
        Shape::Vector(3),
    );
    assert!(infer(vec![fx], vec![Op::Narrow { a: A }]).is_err());
}

#[test]
fn ring32_rejected_elsewhere_with_a_hint() {
    let v = secret(ElemType::Ring32, Shape::Vector(4));
    let ops = [
        Op::Mul(A, A),
        Op::Dot(A, A),
        Op::Ltz(A),
        Op::Lt(A, A),
        Op::Relu(A),
        Op::MaxAll(A),
        Op::Bits(A),
        Op::Sum {
            a: A,
            axis: veil_circuits::SumAxis::All,
        },
        Op::BestK {
            a: A,
            k: 1,
            largest: true,
            groups: None,
        },
        Op::OneHotLow {
            a: A,
            bits: 2,
            n: 4,
            skip: 0,
        },
        Op::Reveal(A),
    ];
    for op in ops {
        let e = infer(vec![v], vec![op.clone()]).unwrap_err();
        assert!(
            matches!(e, ValidationError::Ring32Unsupported { .. }),
            "{op:?}: {e}"
        );
        assert!(e.to_string().contains("widen it first"), "{e}");
    }
}

#[test]
fn ring32_does_not_mix_with_ring() {
    let v32 = secret(ElemType::Ring32, Shape::Vector(2));
    let v64 = secret(ElemType::Ring, Shape::Vector(2));
    let m32 = secret(ElemType::Ring32, Shape::Matrix(2, 2));
    let m64 = secret(ElemType::Ring, Shape::Matrix(2, 2));
    for (inputs, op) in [
        (vec![v32, v64], Op::Add(A, B)),
        (vec![v64, v32], Op::Sub(A, B)),
        (vec![m32, m64], Op::MatMul(A, B)),
        (vec![m64, m32], Op::MatMul(A, B)),
        (vec![v32, v64], Op::Concat(vec![A, B])),
    ] {
        let e = infer(inputs, vec![op]).unwrap_err();
        assert!(matches!(e, ValidationError::Ring32Mix { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("Widen") && text.contains("Narrow"), "{text}");
    }
}

#[test]
fn ring32_constants_must_be_reduced() {
    let ok = Op::Constant {
        elem: ElemType::Ring32,
        shape: Shape::Vector(2),
        values: vec![0, RING32_MASK],
    };
    assert!(infer(vec![], vec![ok]).is_ok());
    let bad = Op::Constant {
        elem: ElemType::Ring32,
        shape: Shape::Vector(2),
        values: vec![0, 1 << 32],
    };
    let e = infer(vec![], vec![bad]).unwrap_err();
    assert!(matches!(
        e,
        ValidationError::Ring32Constant { position: 1, .. }
    ));
}

#[test]
fn onehot_skip_limits() {
    let v = secret(ElemType::Ring, Shape::Vector(2));
    let oh = |bits, skip| Op::OneHotLow {
        a: A,
        bits,
        n: 4,
        skip,
    };
    assert_eq!(
        infer(vec![v], vec![oh(2, 60)]).unwrap().shape,
        Shape::Matrix(2, 4)
    );
    let e = infer(vec![v], vec![oh(2, 61)]).unwrap_err();
    assert!(matches!(
        e,
        ValidationError::SizeLimit {
            what: "skip + bits",
            got: 63,
            max: 62,
            ..
        }
    ));
}

#[test]
fn evaluator_wraps_ring32_mod_2_32() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 4, Ring32);
    let y = b.secret_vector("y", 4, Ring32);
    let s = b.add(x, y);
    let d = b.sub(x, y);
    let n = b.neg(x);
    let xm = b.reshape(x, Shape::Matrix(1, 4));
    let ym = b.reshape(y, Shape::Matrix(4, 1));
    let p = b.matmul(xm, ym);
    let w = b.widen(x);
    let back = b.narrow(w);
    let z = b.secret_vector("z", 4, Ring);
    let nz = b.narrow(z);
    for (name, v) in [
        ("s", s),
        ("d", d),
        ("n", n),
        ("p", p),
        ("w", w),
        ("back", back),
        ("nz", nz),
    ] {
        b.output_to_client(name, v);
    }
    let prog = b.finish().unwrap();
    let xs = [i32::MAX as i64, -1, 7, i32::MIN as i64];
    let ys = [1i64, -1, -9, -1];
    let zs = [1u64 << 40 | 5, u64::MAX, 3, 1 << 32];
    let inputs = HashMap::from([
        ("x".to_string(), words32(&xs)),
        ("y".to_string(), words32(&ys)),
        ("z".to_string(), zs.to_vec()),
    ]);
    let out = eval::evaluate(&prog, &inputs).unwrap();
    let wrap = |v: i64| (v as u64) & RING32_MASK;
    let expect = |f: &dyn Fn(i64, i64) -> i64| -> Vec<u64> {
        xs.iter().zip(&ys).map(|(&a, &b)| wrap(f(a, b))).collect()
    };
    assert_eq!(out["s"], expect(&|a, b| a + b));
    assert_eq!(out["d"], expect(&|a, b| a - b));
    assert_eq!(out["n"], expect(&|a, _| -a));
    let dot: i64 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
    assert_eq!(out["p"], vec![wrap(dot)]);
    // Widen: the signed Ring32 value times 2^32, exactly, as a signed ring word.
    let widened: Vec<u64> = xs.iter().map(|&a| (a * (1 << 32)) as u64).collect();
    assert_eq!(out["w"], widened);
    assert_eq!(out["back"], vec![0; 4]);
    assert_eq!(out["nz"], vec![5, RING32_MASK, 3, 0]);
    assert!(out.values().flatten().count() > 0);
    for name in ["s", "d", "n", "p", "back", "nz"] {
        assert!(out[name].iter().all(|&w| w <= RING32_MASK), "{name}");
    }
}

#[test]
fn evaluator_rejects_unreduced_ring32_inputs() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 2, Ring32);
    b.output_to_client("x", x);
    let prog = b.finish().unwrap();
    let inputs = HashMap::from([("x".to_string(), vec![1, 1 << 32])]);
    let e = eval::evaluate(&prog, &inputs).unwrap_err();
    assert!(matches!(e, EvalError::Ring32Input { position: 1, .. }));
}

#[test]
fn onehot_bits_selects_a_bit_range() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let hi = b.onehot_bits(x, 3, 2, 3);
    let lo = b.onehot_low(x, 3, 8);
    b.output_to_client("hi", hi);
    b.output_to_client("lo", lo);
    let prog = b.finish().unwrap();
    // 0b11_101 → high field 3 (≥ n = 3: zero row); 0b01_010 → 1; 0b10_111 → 2.
    let xs = vec![0b11_101, 0b01_010, 0b10_111];
    let out = eval::evaluate(&prog, &HashMap::from([("x".to_string(), xs.clone())])).unwrap();
    assert_eq!(out["hi"], vec![0, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(out["lo"], selection::onehot_low_plain(&xs, 3, 8));
    assert_eq!(selection::onehot_bits_plain(&xs, 0, 3, 8), out["lo"]);
}

#[test]
fn cost_of_ring32_ops() {
    let mut b = Builder::new();
    let m = b.secret_matrix("m", 5, 3, Ring32);
    let q = b.secret_matrix("q", 3, 2, Ring32);
    let p = b.matmul(m, q);
    let w = b.widen(p);
    let nrw = b.narrow(w);
    let x = b.secret_vector("x", 4, Ring);
    let oh = b.onehot_bits(x, 10, 3, 6);
    b.output_to_client("n", nrw);
    b.output_to_client("oh", oh);
    let prog = b.finish().unwrap();
    let c = cost::program_cost(&prog);
    // Ring32 MatMul: one u64 word per output element, as a ring MatMul.
    assert_eq!(c.per_op[p.id().index()].rounds, 1);
    assert_eq!(c.per_op[p.id().index()].bytes_sent, [8 * 10; 3]);
    // Widen and Narrow are local.
    assert_eq!(c.per_op[w.id().index()], cost::Cost::FREE);
    assert_eq!(c.per_op[nrw.id().index()], cost::Cost::FREE);
    // OneHotLow with skip: the adder reaches bit skip + bits, only `bits` lanes are opened.
    let co = c.per_op[oh.id().index()];
    assert_eq!(co.rounds, onehot_low_rounds(10, 3));
    assert_eq!(
        co.rounds,
        2 + cost::low_bits_prefix_levels(13) + selection::onehot_levels(3)
    );
    let per = low_bits_range_bytes(10, 3);
    let products = 8 * selection::onehot_products(3, 6) as u64;
    assert_eq!(co.bytes_sent, per.map(|b| 4 * (b + products)));
    assert_eq!(low_bits_range_bytes(0, 7), low_bits_bytes(7));
    assert_eq!(
        onehot_low_rounds(0, 5),
        2 + cost::low_bits_prefix_levels(5) + 3
    );
}

/// A program written before `skip` existed: compact JSON, exactly as serde wrote it then.
const OLD_JSON: &str = r#"{"version":1,"inputs":[{"name":"x","owner":{"Client":"c"},"ty":{"vis":"Secret","elem":"Ring","shape":{"Vector":3}}}],"ops":[{"Input":{"input":0}},{"OneHotLow":{"a":0,"bits":2,"n":4}}],"outputs":[{"name":"oh","value":1,"recipient":{"Client":"c"}}]}"#;

#[test]
fn onehot_without_skip_keeps_json_and_id() {
    let p = Program::from_json(OLD_JSON).unwrap();
    assert!(matches!(p.ops[1], Op::OneHotLow { skip: 0, .. }));
    // Re-serialised byte for byte, so the content hash (the id) is unchanged.
    assert_eq!(serde_json::to_string(&p).unwrap(), OLD_JSON);
    assert_eq!(
        p.id().to_string(),
        "86f271727e4691637e7be6394c0c90d49ae6c43ec83da5e4d512fcde565f6178",
        "the id of a program without skip changed"
    );
    // The builder's onehot_low writes the same op.
    let mut b = Builder::new();
    let x = b.input(
        "x",
        Owner::Client("c".into()),
        secret(ElemType::Ring, Shape::Vector(3)),
    );
    let oh = b.onehot_low(x, 2, 4);
    b.output("oh", oh, veil_circuits::Recipient::Client("c".into()));
    assert_eq!(b.finish().unwrap().id(), &p.id());
    // With skip the field appears and round-trips.
    let mut q = p.clone();
    q.ops[1] = Op::OneHotLow {
        a: A,
        bits: 2,
        n: 4,
        skip: 5,
    };
    let json = serde_json::to_string(&q).unwrap();
    assert!(json.contains(r#""skip":5"#), "{json}");
    assert_eq!(Program::from_json(&json).unwrap(), q);
    assert_ne!(q.id(), p.id());
}

#[test]
fn ring32_json_name() {
    let json = serde_json::to_string(&ElemType::Ring32).unwrap();
    assert_eq!(json, r#""Ring32""#);
    assert_eq!(ElemType::Ring32.to_string(), "ring32");
}
