//! Plaintext reference: the ONNX graph evaluated in `f64` with ONNX semantics, the baseline
//! private inference is checked against.

use super::OnnxError;
use super::compile::{argmax_rows, reshape_dims};
use super::model::{NodeKind, OnnxModel};
use std::collections::HashMap;

/// Runs `model` on `batch` samples `x` (row-major, `batch × features`); returns every graph
/// output as (name, row-major values), class indices as whole numbers.
pub fn run(
    model: &OnnxModel,
    x: &[f64],
    batch: usize,
) -> Result<Vec<(String, Vec<f64>)>, OnnxError> {
    let mut dims: Vec<usize> = model.input.dims.iter().map(|d| d.unwrap_or(0)).collect();
    if dims.len() < 2 {
        return Err(OnnxError::InputShape("the input needs a batch axis".into()));
    }
    dims[0] = batch;
    if dims.iter().product::<usize>() != x.len() {
        return Err(OnnxError::InputShape(format!(
            "{} values for input dims {dims:?}",
            x.len()
        )));
    }
    let mut acts: HashMap<&str, (Vec<usize>, Vec<f64>)> = HashMap::new();
    acts.insert(&model.input.name, (dims, x.to_vec()));
    for node in &model.nodes {
        let bad = |what: String| OnnxError::Shape {
            node: node.name.clone(),
            op: node.kind.op_type().to_string(),
            what,
        };
        let get = |k: usize| -> Result<(Vec<usize>, Vec<f64>), OnnxError> {
            let name = node
                .inputs
                .get(k)
                .ok_or_else(|| bad(format!("needs input {k}")))?;
            if let Some(a) = acts.get(name.as_str()) {
                return Ok(a.clone());
            }
            let t = model
                .tensors
                .get(name)
                .ok_or_else(|| bad(format!("unknown input '{name}'")))?;
            if t.data.len() != t.len() {
                return Err(bad(format!("tensor '{name}' has no values")));
            }
            Ok((t.dims.clone(), t.data.clone()))
        };
        let out = match &node.kind {
            NodeKind::Gemm { .. } | NodeKind::MatMul => {
                let (alpha, beta, trans_b) = match node.kind {
                    NodeKind::Gemm {
                        alpha,
                        beta,
                        trans_b,
                    } => (alpha, beta, trans_b),
                    _ => (1.0, 1.0, false),
                };
                let ((xd, xv), (wd, wv)) = (get(0)?, get(1)?);
                let (n, k) = match xd.as_slice() {
                    [n, k] => (*n, *k),
                    d => return Err(bad(format!("input dims {d:?} are not 2-D"))),
                };
                let m = match (wd.as_slice(), trans_b) {
                    ([a, b], false) if *a == k => *b,
                    ([a, b], true) if *b == k => *a,
                    (d, _) => return Err(bad(format!("weight dims {d:?} do not fit {k}"))),
                };
                let bias = if node.inputs.len() > 2 {
                    Some(get(2)?.1)
                } else {
                    None
                };
                let mut y = vec![0.0; n * m];
                for r in 0..n {
                    for j in 0..m {
                        let mut s = 0.0;
                        for t in 0..k {
                            let w = if trans_b {
                                wv[j * k + t]
                            } else {
                                wv[t * m + j]
                            };
                            s += xv[r * k + t] * w;
                        }
                        let b = bias
                            .as_ref()
                            .map_or(0.0, |b| b[if b.len() == 1 { 0 } else { j }]);
                        y[r * m + j] = alpha * s + beta * b;
                    }
                }
                (vec![n, m], y)
            }
            NodeKind::Conv {
                kernel,
                stride,
                pad,
            } => {
                let ((xd, xv), (wd, wv)) = (get(0)?, get(1)?);
                let bias = if node.inputs.len() > 2 {
                    Some(get(2)?.1)
                } else {
                    None
                };
                let ([n, c, h, w], [m, wc, kh, kw]) = (xd.as_slice(), wd.as_slice()) else {
                    return Err(bad(format!("dims {xd:?} and weight {wd:?} are not 4-D")));
                };
                if wc != c || kernel.is_some_and(|k| k != (*kh, *kw)) {
                    return Err(bad(format!("weight {wd:?} does not fit input {xd:?}")));
                }
                if let Some(b) = &bias
                    && b.len() != *m
                    && b.len() != 1
                {
                    return Err(bad(format!("bias of {} values for {m} channels", b.len())));
                }
                let (oh, ow) = window_out((*h, *w), (*kh, *kw), *stride, *pad).map_err(bad)?;
                let mut y = vec![0.0; n * m * oh * ow];
                for b in 0..*n {
                    for o in 0..*m {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut s = bias
                                    .as_ref()
                                    .map_or(0.0, |bv| bv[if bv.len() == 1 { 0 } else { o }]);
                                for ch in 0..*c {
                                    for i in 0..*kh {
                                        for j in 0..*kw {
                                            let v = nchw(
                                                &xv,
                                                &xd,
                                                b,
                                                ch,
                                                oy * stride + i,
                                                ox * stride + j,
                                                *pad,
                                            );
                                            s += v * wv[((o * c + ch) * kh + i) * kw + j];
                                        }
                                    }
                                }
                                y[((b * m + o) * oh + oy) * ow + ox] = s;
                            }
                        }
                    }
                }
                (vec![*n, *m, oh, ow], y)
            }
            NodeKind::MaxPool { kernel, stride } => {
                let (xd, xv) = get(0)?;
                pool(&xd, &xv, *kernel, *stride, 0, |w| {
                    w.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                })
                .map_err(bad)?
            }
            NodeKind::AveragePool {
                kernel,
                stride,
                pad,
            } => {
                let (xd, xv) = get(0)?;
                pool(&xd, &xv, *kernel, *stride, *pad, |w| {
                    w.iter().sum::<f64>() / w.len() as f64
                })
                .map_err(bad)?
            }
            NodeKind::BatchNormalization { epsilon } => {
                let (d, v) = get(0)?;
                let params: Vec<Vec<f64>> = (1..=4)
                    .map(|k| get(k).map(|t| t.1))
                    .collect::<Result<_, _>>()?;
                let c = *d
                    .get(1)
                    .ok_or_else(|| bad(format!("dims {d:?} have no channels")))?;
                if params.iter().any(|p| p.len() != c) {
                    return Err(bad(format!("parameters do not have {c} channels")));
                }
                let spatial: usize = d[2..].iter().product();
                let (g, b, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
                let y = v
                    .iter()
                    .enumerate()
                    .map(|(idx, x)| {
                        let ch = (idx / spatial.max(1)) % c;
                        g[ch] * (x - mean[ch]) / (var[ch] + epsilon).sqrt() + b[ch]
                    })
                    .collect();
                (d, y)
            }
            NodeKind::GlobalAveragePool => {
                let (d, v) = get(0)?;
                let [_, _, h, w] = d[..] else {
                    return Err(bad(format!("dims {d:?} are not 4-D")));
                };
                pool(&d, &v, (h, w), 1, 0, |win| {
                    win.iter().sum::<f64>() / win.len() as f64
                })
                .map_err(bad)?
            }
            NodeKind::Add => {
                let ((ad, av), (bd, bv)) = (get(0)?, get(1)?);
                let (d, big, small) = if av.len() >= bv.len() {
                    (ad, av, bv)
                } else {
                    (bd, bv, av)
                };
                if small.is_empty() || !big.len().is_multiple_of(small.len()) {
                    return Err(bad("operands do not broadcast".into()));
                }
                let y = big
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v + small[i % small.len()])
                    .collect();
                (d, y)
            }
            NodeKind::Relu => {
                let (d, v) = get(0)?;
                (d, v.into_iter().map(|x| x.max(0.0)).collect())
            }
            NodeKind::Sigmoid => {
                let (d, v) = get(0)?;
                (d, v.into_iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect())
            }
            NodeKind::Softmax => {
                let (d, v) = get(0)?;
                let cols = *d.last().unwrap_or(&1);
                let mut y = Vec::with_capacity(v.len());
                for row in v.chunks(cols.max(1)) {
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
                    let s: f64 = e.iter().sum();
                    y.extend(e.iter().map(|x| x / s));
                }
                (d, y)
            }
            NodeKind::Flatten => {
                let (d, v) = get(0)?;
                (vec![d[0], d[1..].iter().product()], v)
            }
            NodeKind::Reshape => {
                let ((d, v), (_, shape)) = (get(0)?, get(1)?);
                (reshape_dims(&d, &shape).map_err(bad)?, v)
            }
            NodeKind::ArgMax { .. } => {
                let (d, v) = get(0)?;
                let cols = *d.last().unwrap_or(&1);
                (vec![d[0], 1], argmax_rows(&v, cols))
            }
            NodeKind::Identity => get(0)?,
        };
        acts.insert(&node.output, out);
    }
    model
        .outputs
        .iter()
        .map(|name| {
            acts.get(name.as_str())
                .map(|(_, v)| (name.clone(), v.clone()))
                .ok_or_else(|| OnnxError::Decode(format!("graph output '{name}' is not computed")))
        })
        .collect()
}

/// Output height and width of a window sliding over `(h, w)` padded by `pad`.
fn window_out(
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    stride: usize,
    pad: usize,
) -> Result<(usize, usize), String> {
    let (ph, pw) = (h + 2 * pad, w + 2 * pad);
    if kh == 0 || kw == 0 || stride == 0 || kh > ph || kw > pw {
        return Err(format!("window {kh}×{kw} does not fit the {h}×{w} input"));
    }
    Ok(((ph - kh) / stride + 1, (pw - kw) / stride + 1))
}

/// Element (b, c, y − pad, x − pad) of an NCHW tensor, 0 in the padding.
fn nchw(v: &[f64], d: &[usize], b: usize, c: usize, y: usize, x: usize, pad: usize) -> f64 {
    let (ch, h, w) = (d[1], d[2], d[3]);
    match (y.checked_sub(pad), x.checked_sub(pad)) {
        (Some(y), Some(x)) if y < h && x < w => v[((b * ch + c) * h + y) * w + x],
        _ => 0.0,
    }
}

/// Per-channel pooling of an NCHW tensor: `reduce` over every window (padding as zeros).
fn pool(
    d: &[usize],
    v: &[f64],
    (kh, kw): (usize, usize),
    stride: usize,
    pad: usize,
    reduce: impl Fn(&[f64]) -> f64,
) -> Result<(Vec<usize>, Vec<f64>), String> {
    let [n, c, h, w] = d else {
        return Err(format!("dims {d:?} are not 4-D"));
    };
    let (oh, ow) = window_out((*h, *w), (kh, kw), stride, pad)?;
    let mut y = Vec::with_capacity(n * c * oh * ow);
    let mut win = Vec::with_capacity(kh * kw);
    for b in 0..*n {
        for ch in 0..*c {
            for oy in 0..oh {
                for ox in 0..ow {
                    win.clear();
                    for i in 0..kh {
                        for j in 0..kw {
                            win.push(nchw(v, d, b, ch, oy * stride + i, ox * stride + j, pad));
                        }
                    }
                    y.push(reduce(&win));
                }
            }
        }
    }
    Ok((vec![*n, *c, oh, ow], y))
}
