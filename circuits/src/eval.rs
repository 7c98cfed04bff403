//! Plaintext evaluator: the reference semantics of every op.
//!
//! Values are `Vec<u64>` of row-major words. All arithmetic wraps in Z_2^64 (signed values in
//! two's complement), so secret and public evaluation agree bit for bit except for rescale:
//!
//! - `Mul`, `Dot` and `MatMul` are plain wrapping products and sums; `Fixed(f)·Fixed(g)` is exact
//!   with `f + g` fractional bits.
//! - `Rescale { bits }` is an arithmetic shift right: `⌊v / 2^bits⌋` of the signed value
//!   (rounding toward −∞, so −1.5 → −2 when dropping all fractional bits).
//! - The MPC runtime rescales secret values by probabilistic truncation, which returns this
//!   floor or floor + 1 (one ulp of the result), except with the small failure probability
//!   given by the error budget in [`crate::fixed`]. Tests of secret rescales compare with a
//!   tolerance of one ulp; everything else must match exactly.
//! - `Reveal` is the identity.
//! - Comparisons read words as signed (two's complement) and are **defined through the wrapping
//!   difference**, exactly as the protocols compute them: `Ltz(x)` is the most significant bit,
//!   `Lt(a, b) = Ltz(a − b)`, `Gt(a, b) = Ltz(b − a)`, `Le = 1 − Gt`, `Ge = 1 − Lt`,
//!   `Eq = 1 − Lt − Gt` (wrapping). They equal the true comparisons whenever |a − b| < 2^63,
//!   e.g. when both operands lie in [−2^62, 2^62); outside that range they are what the
//!   protocol yields (e.g. `Eq` is 2^64 − 1 when a − b = −2^63).
//! - `Relu(x)` is x when its MSB is 0, else 0. `Select` is `b + cond·(a − b)`; `Max` is
//!   `a + Lt(a, b)·(b − a)` and `Min` is `b + Lt(a, b)·(a − b)` (all wrapping).
//! - `MaxAll` and `ArgMax` run the protocol's tournament: each level pairs elements 2j and
//!   2j+1 (an odd last element passes through unchanged); the pair's winner is the right one iff
//!   `Lt(left, right)` = 1, so `ArgMax` keeps the lowest index among equal maxima.
//! - `BestK` runs the protocol's comparator network ([`crate::selection::best_k_plain`]), which
//!   for elements in [−2^62, 2^62) is the sorted best k. `OneHotLow` sets column
//!   `⌊x / 2^skip⌋ mod 2^bits`.
//! - **Ring32** values are words below 2^32 (read signed as i32): every op with a Ring32
//!   result reduces it mod 2^32, so `Add`, `Sub`, `Neg` and `MatMul` wrap in Z_2^32.
//!   `Widen` is `x·2^32` (wrapping in Z_2^64), `Narrow` is `x mod 2^32`. Ring32 inputs must be
//!   reduced ([`EvalError::Ring32Input`] otherwise).

use crate::error::EvalError;
use crate::program::{Op, SumAxis};
use crate::selection;
use crate::types::{ElemType, RING32_MASK, Shape};
use crate::validate::ValidatedProgram;
use std::collections::HashMap;

/// Evaluates `p` on `inputs` (name → words) and returns every output (name → words).
///
/// ```
/// use std::collections::HashMap;
/// use veil_circuits::{Builder, Fixed, eval, fixed};
///
/// let mut b = Builder::new();
/// let x = b.secret_vector("x", 3, Fixed::default());
/// let y = b.relu(x);
/// b.output_to_client("y", y);
/// let program = b.finish().unwrap();
///
/// let words = |xs: &[f64]| fixed::encode_slice(xs, Fixed::default().0).unwrap();
/// let inputs = HashMap::from([("x".to_string(), words(&[-1.5, 0.0, 2.25]))]);
/// let out = eval::evaluate(&program, &inputs).unwrap();
/// assert_eq!(out["y"], words(&[0.0, 0.0, 2.25]));
/// ```
pub fn evaluate(
    p: &ValidatedProgram,
    inputs: &HashMap<String, Vec<u64>>,
) -> Result<HashMap<String, Vec<u64>>, EvalError> {
    let values = evaluate_all(p, inputs)?;
    Ok(p.program()
        .outputs
        .iter()
        .map(|o| (o.name.clone(), values[o.value.index()].clone()))
        .collect())
}

/// Evaluates `p` on `inputs` and returns the value of every op: `result[i]` is `ValueId(i)`.
pub fn evaluate_all(
    p: &ValidatedProgram,
    inputs: &HashMap<String, Vec<u64>>,
) -> Result<Vec<Vec<u64>>, EvalError> {
    let prog = p.program();
    for name in inputs.keys() {
        if p.input_index(name).is_none() {
            return Err(EvalError::UnknownInput { name: name.clone() });
        }
    }
    for decl in &prog.inputs {
        let expected = decl.ty.shape.len();
        let Some(v) = inputs.get(&decl.name) else {
            return Err(EvalError::MissingInput {
                name: decl.name.clone(),
                expected,
            });
        };
        if v.len() != expected {
            return Err(EvalError::InputLength {
                name: decl.name.clone(),
                expected,
                found: v.len(),
            });
        }
        if decl.ty.elem == ElemType::Bit
            && let Some(position) = v.iter().position(|&w| w > 1)
        {
            return Err(EvalError::BitInput {
                name: decl.name.clone(),
                position,
            });
        }
        if decl.ty.elem == ElemType::Ring32
            && let Some(position) = v.iter().position(|&w| w > RING32_MASK)
        {
            return Err(EvalError::Ring32Input {
                name: decl.name.clone(),
                position,
            });
        }
    }

    let types = p.types();
    let mut vals: Vec<Vec<u64>> = Vec::with_capacity(prog.ops.len());
    for (i, op) in prog.ops.iter().enumerate() {
        let out_shape = types[i].shape;
        let shape_of = |v: crate::program::ValueId| types[v.index()].shape;
        let r = match op {
            Op::Input { input } => inputs[&prog.inputs[*input].name].clone(),
            Op::Constant { values, .. } => values.clone(),
            Op::Add(a, b) => elementwise(&vals, *a, *b, out_shape, u64::wrapping_add),
            Op::Sub(a, b) => elementwise(&vals, *a, *b, out_shape, u64::wrapping_sub),
            Op::Mul(a, b) => elementwise(&vals, *a, *b, out_shape, u64::wrapping_mul),
            Op::Neg(a) => vals[a.index()].iter().map(|x| x.wrapping_neg()).collect(),
            Op::Ltz(a) => vals[a.index()].iter().map(|&x| ltz(x)).collect(),
            Op::Lt(a, b) => elementwise(&vals, *a, *b, out_shape, lt),
            Op::Le(a, b) => elementwise(&vals, *a, *b, out_shape, le),
            Op::Gt(a, b) => elementwise(&vals, *a, *b, out_shape, gt),
            Op::Ge(a, b) => elementwise(&vals, *a, *b, out_shape, ge),
            Op::Eq(a, b) => elementwise(&vals, *a, *b, out_shape, eq),
            Op::Max(a, b) => elementwise(&vals, *a, *b, out_shape, max),
            Op::Min(a, b) => elementwise(&vals, *a, *b, out_shape, min),
            Op::Relu(a) => vals[a.index()].iter().map(|&x| relu(x)).collect(),
            Op::Select { cond, a, b } => {
                let (c, x, y) = (&vals[cond.index()], &vals[a.index()], &vals[b.index()]);
                let n = out_shape.len();
                let at = |v: &Vec<u64>, i: usize| if v.len() == n { v[i] } else { v[0] };
                (0..n)
                    .map(|i| select(at(c, i), at(x, i), at(y, i)))
                    .collect()
            }
            Op::MaxAll(a) => vec![tournament(&vals[a.index()]).0],
            Op::ArgMax(a) => vec![tournament(&vals[a.index()]).1 as u64],
            Op::Bits(a) => bits(&vals[a.index()]),
            Op::MsbOneHot { a, lanes } => msb_onehot(&vals[a.index()], *lanes),
            Op::BestK {
                a,
                k,
                largest,
                groups,
            } => selection::best_k_plain_with(&vals[a.index()], *k, *largest, groups.as_deref()),
            Op::OneHotLow { a, bits, n, skip } => {
                selection::onehot_bits_plain(&vals[a.index()], *skip, *bits, *n)
            }
            Op::Widen { a } => vals[a.index()].iter().map(|&x| x << 32).collect(),
            Op::Narrow { a } => vals[a.index()].iter().map(|&x| x & RING32_MASK).collect(),
            Op::Dot(a, b) => {
                let (x, y) = (&vals[a.index()], &vals[b.index()]);
                let cols = match shape_of(*a) {
                    Shape::Matrix(_, c) => c,
                    _ => x.len(),
                };
                let rows = out_shape.len();
                (0..rows)
                    .map(|r| dot(&x[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]))
                    .collect()
            }
            Op::MatMul(a, b) | Op::MatMulRescale { a, b, .. } => {
                let (Shape::Matrix(m, k), Shape::Matrix(_, n)) = (shape_of(*a), shape_of(*b))
                else {
                    unreachable!("validated: matmul operands are matrices");
                };
                let p = matmul(&vals[a.index()], &vals[b.index()], m, k, n);
                match op {
                    Op::MatMulRescale { bits, .. } => {
                        p.into_iter().map(|x| ((x as i64) >> bits) as u64).collect()
                    }
                    _ => p,
                }
            }
            Op::Sum { a, axis } => {
                let x = &vals[a.index()];
                match (axis, shape_of(*a)) {
                    (SumAxis::Rows, Shape::Matrix(_, c)) if c > 0 => x
                        .chunks(c)
                        .map(|row| row.iter().fold(0u64, |s, v| s.wrapping_add(*v)))
                        .collect(),
                    (SumAxis::Rows, _) => vec![0; out_shape.len()],
                    (SumAxis::All, _) => vec![x.iter().fold(0u64, |s, v| s.wrapping_add(*v))],
                }
            }
            Op::Rescale { a, bits } => vals[a.index()]
                .iter()
                .map(|&x| ((x as i64) >> bits) as u64)
                .collect(),
            Op::Reshape { a, .. } | Op::Reveal(a) => vals[a.index()].clone(),
            Op::Slice { a, start, end } => {
                let width = match shape_of(*a) {
                    Shape::Matrix(_, c) => c,
                    _ => 1,
                };
                vals[a.index()][start * width..end * width].to_vec()
            }
            Op::Im2Col { a, geometry } => {
                let Shape::Matrix(batch, _) = shape_of(*a) else {
                    unreachable!("validated: im2col operand is a matrix");
                };
                crate::conv::im2col(&vals[a.index()], batch, geometry)
            }
            Op::Concat(parts) => parts
                .iter()
                .flat_map(|v| vals[v.index()].iter().copied())
                .collect(),
            Op::Transpose(a) => {
                let Shape::Matrix(r, c) = shape_of(*a) else {
                    unreachable!("validated: transpose operand is a matrix");
                };
                let x = &vals[a.index()];
                let mut out = Vec::with_capacity(r * c);
                for j in 0..c {
                    out.extend((0..r).map(|i| x[i * c + j]));
                }
                out
            }
        };
        debug_assert_eq!(r.len(), out_shape.len());
        let mut r = r;
        if types[i].elem == ElemType::Ring32 {
            r.iter_mut().for_each(|x| *x &= RING32_MASK);
        }
        vals.push(r);
    }
    Ok(vals)
}

fn elementwise(
    vals: &[Vec<u64>],
    a: crate::program::ValueId,
    b: crate::program::ValueId,
    out: Shape,
    f: impl Fn(u64, u64) -> u64,
) -> Vec<u64> {
    let (x, y) = (&vals[a.index()], &vals[b.index()]);
    let n = out.len();
    // A length-1 operand of a longer result is a broadcast scalar.
    let at = |v: &Vec<u64>, i: usize| if v.len() == n { v[i] } else { v[0] };
    (0..n).map(|i| f(at(x, i), at(y, i))).collect()
}

fn dot(x: &[u64], y: &[u64]) -> u64 {
    x.iter()
        .zip(y)
        .fold(0u64, |s, (a, b)| s.wrapping_add(a.wrapping_mul(*b)))
}

fn matmul(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    let mut out = vec![0u64; m * n];
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for l in 0..k {
            let s = a[i * k + l];
            for (o, &bv) in row.iter_mut().zip(&b[l * n..(l + 1) * n]) {
                *o = o.wrapping_add(s.wrapping_mul(bv));
            }
        }
    }
    out
}

/// 1 if the signed word is negative (its most significant bit), else 0.
pub fn ltz(x: u64) -> u64 {
    x >> 63
}

/// `Ltz(a − b)` (wrapping): a < b whenever |a − b| < 2^63.
pub fn lt(a: u64, b: u64) -> u64 {
    ltz(a.wrapping_sub(b))
}

/// `Ltz(b − a)` (wrapping): a > b whenever |a − b| < 2^63.
pub fn gt(a: u64, b: u64) -> u64 {
    lt(b, a)
}

/// `1 − Gt(a, b)`: a ≤ b whenever |a − b| < 2^63.
pub fn le(a: u64, b: u64) -> u64 {
    1 - gt(a, b)
}

/// `1 − Lt(a, b)`: a ≥ b whenever |a − b| < 2^63.
pub fn ge(a: u64, b: u64) -> u64 {
    1 - lt(a, b)
}

/// `1 − Lt(a, b) − Gt(a, b)` (wrapping): a = b whenever |a − b| < 2^63 (2^64 − 1 when
/// a − b = −2^63).
pub fn eq(a: u64, b: u64) -> u64 {
    1u64.wrapping_sub(lt(a, b)).wrapping_sub(gt(a, b))
}

/// x if its most significant bit is 0, else 0.
pub fn relu(x: u64) -> u64 {
    if ltz(x) == 0 { x } else { 0 }
}

/// `b + cond·(a − b)` (wrapping).
pub fn select(cond: u64, a: u64, b: u64) -> u64 {
    b.wrapping_add(cond.wrapping_mul(a.wrapping_sub(b)))
}

/// `a + Lt(a, b)·(b − a)` (wrapping).
pub fn max(a: u64, b: u64) -> u64 {
    select(lt(a, b), b, a)
}

/// `b + Lt(a, b)·(a − b)` (wrapping).
pub fn min(a: u64, b: u64) -> u64 {
    select(lt(a, b), a, b)
}

/// The 64 bits of each word, least significant first, one 0/1 word each (`Bits`).
pub fn bits(x: &[u64]) -> Vec<u64> {
    x.iter()
        .flat_map(|w| (0..64).map(move |i| (w >> i) & 1))
        .collect()
}

/// For each word, `lanes` 0/1 words with a 1 at the position of its most significant set bit
/// (all zeros for 0, or when that bit is at or above `lanes`) (`MsbOneHot`).
pub fn msb_onehot(x: &[u64], lanes: u32) -> Vec<u64> {
    x.iter()
        .flat_map(|&w| {
            let top = (w != 0).then(|| 63 - w.leading_zeros());
            (0..lanes).map(move |i| u64::from(top == Some(i)))
        })
        .collect()
}

/// Tournament maximum of a slice: `(value, index)` of the winner (`MaxAll`, `ArgMax`). Each
/// level pairs elements 2j and 2j+1, the right one winning iff `Lt(left, right)` = 1; an odd
/// last element passes through. Validation rules out an empty slice; it gives `(0, 0)`.
pub fn tournament(x: &[u64]) -> (u64, usize) {
    let mut level: Vec<(u64, usize)> = x.iter().copied().zip(0..).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match *pair {
                [l, r] => {
                    if lt(l.0, r.0) == 1 {
                        r
                    } else {
                        l
                    }
                }
                [only] => only,
                _ => unreachable!("chunks(2) yields one or two elements"),
            })
            .collect();
    }
    level.first().copied().unwrap_or((0, 0))
}
