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
    let again = Program::from_json(&valid.program().to_json())
        .and_then(|p| p.validate())
        .expect("a validated program re-parses from its own JSON");
    assert_eq!(again.id(), valid.id(), "JSON round trip changes the id");
    evaluate_small(&valid);
}

/// Evaluates `p` on all-zero inputs if its values total at most [`MAX_EVAL_ELEMENTS`].
fn evaluate_small(p: &ValidatedProgram) {
    let total = p.types().iter().fold(0u64, |s, t| {
        s.saturating_add(t.shape.checked_len().map_or(u64::MAX, |n| n as u64))
    });
    if total > MAX_EVAL_ELEMENTS {
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
