//! Bodies of the fuzz targets for this crate's decoders (`fuzz/fuzz_targets/*.rs` call them;
//! `tests/fuzz_corpus.rs` replays the committed corpus through them on stable). Each takes
//! arbitrary bytes and must return without panicking, looping or allocating beyond what the
//! input's declared sizes allow after the checks a node applies.

use crate::eval::evaluate;
use crate::onnx::{self, CompileOptions, OnnxModel};
use crate::{Program, ValidatedProgram};
use std::collections::HashMap;

/// Most elements, summed over every value a program defines, that a fuzz target evaluates
/// (a node refuses larger programs from their types before running them; see
/// `veil_node::limits`).
pub const MAX_EVAL_ELEMENTS: u64 = 1 << 16;

/// Program JSON: parse and validate; what validates must round-trip through JSON to the same
/// id, and — when small — evaluate in plaintext on zero inputs without panicking.
pub fn program_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(program) = Program::from_json(text) else {
        return;
    };
    let Ok(valid) = program.validate() else {
        return;
    };
    assert_json_round_trip(&valid);
    evaluate_small(&valid);
}

/// A valid program re-parses from its own JSON to the same id.
fn assert_json_round_trip(p: &ValidatedProgram) {
    let again = Program::from_json(&p.program().to_json())
        .and_then(|q| q.validate())
        .expect("a valid program re-parses from its own JSON");
    assert_eq!(again.id(), p.id(), "JSON round trip changes the id");
}

/// Elements of all values `p` defines, summed (what a node's `max_program_elements` bounds).
fn elements(p: &ValidatedProgram) -> u64 {
    p.types().iter().fold(0u64, |s, t| {
        s.saturating_add(t.shape.checked_len().map_or(u64::MAX, |n| n as u64))
    })
}

/// Evaluates `p` on all-zero inputs if its values total at most [`MAX_EVAL_ELEMENTS`].
fn evaluate_small(p: &ValidatedProgram) {
    if elements(p) > MAX_EVAL_ELEMENTS {
        return;
    }
    let inputs: HashMap<String, Vec<u64>> = p
        .program()
        .inputs
        .iter()
        .map(|d| (d.name.clone(), vec![0; d.ty.shape.len()]))
        .collect();
    // Errors are fine (e.g. a division's domain); panics are not.
    let _ = evaluate(p, &inputs);
}

/// ONNX bytes: decode, compile for batch 1 (with and without the weights), and evaluate the
/// compiled program when small.
pub fn onnx_model(data: &[u8]) {
    let Ok(model) = OnnxModel::from_bytes(data) else {
        return;
    };
    let opts = CompileOptions::default();
    if let Ok(compiled) = onnx::compile(&model, &opts) {
        evaluate_small(&compiled.program);
        let arch = onnx::compile(&model.architecture(), &opts)
            .expect("the architecture of a model that compiles compiles");
        assert_eq!(
            arch.program.id(),
            compiled.program.id(),
            "architecture compiles to another program"
        );
    }
}

/// Structure-aware programs: `data` drives a [`Builder`](crate::Builder) — each byte pair
/// picks an op and its operands among the values built so far (small vectors and matrices of
/// ring, ring32 and fixed-point elements, public and secret) — so nearly every input is a well-formed
/// program that reaches validation, the cost model and the plaintext evaluator. Whatever the
/// builder accepts must serialise, re-parse to the same id, have a cost, and evaluate on
/// inputs taken from `data` without panicking.
pub fn program_ops(data: &[u8]) {
    use crate::{Builder, Fixed, Recipient, Ring, Shape, Value};
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut b = Builder::new();
    let fx = Fixed::with_frac_bits(8);
    let mut vals: Vec<Value> = vec![
        b.secret_vector("w", 4, crate::Ring32),
        b.secret_vector("a", 4, Ring),
        b.secret_vector("b", 4, fx),
        b.input(
            "m",
            crate::Owner::Client("c".into()),
            crate::ValueType {
                vis: crate::Visibility::Secret,
                elem: Ring.into(),
                shape: Shape::Matrix(2, 4),
            },
        ),
        b.public_vector("p", 4, Ring),
        b.secret_scalar("s", Ring),
    ];
    let mut ops = 0;
    while let (Some(op), Some(args)) = (next(), next()) {
        if ops == 48 {
            break;
        }
        ops += 1;
        let pick = |k: u8| vals[usize::from(k) % vals.len()];
        let (x, y, z) = (pick(args), pick(args >> 3), pick(args.rotate_left(2)));
        let small = usize::from(args % 5);
        let v = match op % 36 {
            0 => b.add(x, y),
            1 => b.sub(x, y),
            2 => b.neg(x),
            3 => b.mul(x, y),
            4 => b.dot(x, y),
            5 => b.matmul(x, y),
            6 => b.sum(x),
            7 => b.sum_rows(x),
            8 => b.rescale(x, u32::from(args % 9)),
            9 => b.reshape(x, Shape::Matrix(small.max(1), 4 / small.max(1))),
            10 => b.slice(x, small / 2, small),
            11 => b.concat(&[x, y]),
            12 => b.transpose(x),
            13 => b.ltz(x),
            14 => b.lt(x, y),
            15 => b.eq(x, y),
            16 => b.relu(x),
            17 => b.select(x, y, z),
            18 => b.max(x, y),
            19 => b.min(x, y),
            20 => b.max_all(x),
            21 => b.argmax(x),
            22 => b.bits(x),
            23 => b.onehot(x, small + 1),
            24 => b.gather_row(x, y),
            25 => b.best_k_with_indices(x, small).0,
            26 => b.best_k(x, small, args & 1 == 1),
            27 => b.fixmul(x, y),
            28 => b.const_ring(i64::from(args as i8)),
            29 => b.const_fixed(f64::from(args as i8) / 4.0, fx),
            30 => b.msb_onehot(x, u32::from(args % 66)),
            31 => b.sigmoid(x),
            32 => b.widen(x),
            33 => b.narrow(x),
            34 => b.onehot_bits(x, u32::from(args % 8), u32::from(args % 5), small + 1),
            _ => b.const_ring32_vector(&[i64::from(args as i8), 1, -1, 0]),
        };
        vals.push(v);
    }
    let last = *vals.last().expect("inputs were pushed");
    b.output("out", last, Recipient::Client("c".into()));
    let Ok(p) = b.finish() else {
        return;
    };
    assert_json_round_trip(&p);
    let _ = crate::cost::program_cost(&p);
    // As a node would: evaluate only what its limits admit (doubling concats reach 2^32
    // elements in a few dozen ops, which validation accepts and a node's limits refuse).
    if elements(&p) > MAX_EVAL_ELEMENTS {
        return;
    }
    let mut fill = data.iter().rev().cycle().copied();
    let inputs: HashMap<String, Vec<u64>> = p
        .program()
        .inputs
        .iter()
        .map(|d| {
            let n = d.ty.shape.len();
            let mask = match d.ty.elem {
                crate::ElemType::Ring32 => crate::RING32_MASK,
                _ => u64::MAX,
            };
            let words = (0..n)
                .map(|_| i64::from(fill.next().unwrap_or(0) as i8) as u64 & mask)
                .collect();
            (d.name.clone(), words)
        })
        .collect();
    let _ = evaluate(&p, &inputs);
}
