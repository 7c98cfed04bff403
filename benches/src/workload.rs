//! The benchmark workloads: for each op, the veil program, random inputs, and the plaintext
//! twin computed with the same kernels, so MPC and plaintext are measured side by side.

use rand::Rng;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use veil_circuits::{Builder, Fixed, FracBits, Ring, ValidatedProgram, ValidationError};
use veil_runtime::fixed;
use veil_runtime::kernels;

/// Length of each dot product in the `dot` workload.
pub const DOT_LEN: usize = 384;

/// Columns of the secret matrix in the `onehot_gather` workload.
pub const GATHER_COLS: usize = 96;

/// Rows gathered (each by its own secret index) in the `onehot_gather` workload.
pub const GATHER_ROWS: usize = 8;

/// `k` of the `topk` workload when not given.
pub const DEFAULT_TOPK_K: usize = 8;

/// Knobs of the workloads beyond the size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// How many of the largest scores `topk` returns (1..=size).
    pub k: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { k: DEFAULT_TOPK_K }
    }
}

/// An op `veil bench` can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchOp {
    /// Elementwise ring multiplication of two secret vectors (size = elements).
    Mul,
    /// Elementwise fixed-point multiplication with truncation (size = elements).
    FixMul,
    /// Fixed-point dot products of length 384 with truncation (size = number of dot products).
    Dot,
    /// Fixed-point square matrix product with truncation (size = side of the matrices).
    MatMul,
    /// Sign test of a secret ring vector (size = elements).
    Ltz,
    /// max(x, 0) of a secret fixed-point vector (size = elements).
    Relu,
    /// The k largest of n secret fixed-point scores and their indices (size = n).
    TopK,
    /// 8 rows of a secret fixed-point matrix of 96 columns, each picked by its own secret
    /// ring index (one-hot × matrix; size = rows of the matrix).
    OnehotGather,
    /// Row-wise softmax of a secret fixed-point matrix with 128 columns (size = rows).
    Softmax,
    /// 1/x of a secret fixed-point vector, x log-uniform in [2^-4, 2^12] (size = elements).
    Recip,
    /// `size` dependent multiplications of secret ring scalars, x·y·y·…·y: one round each, so
    /// the session time over the rounds is the per-round latency (size = multiplications).
    Chain,
}

/// Columns of the `softmax` workload.
pub const SOFTMAX_COLS: usize = 128;

impl BenchOp {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BenchOp::Mul => "mul",
            BenchOp::FixMul => "fixmul",
            BenchOp::Dot => "dot",
            BenchOp::MatMul => "matmul",
            BenchOp::Ltz => "ltz",
            BenchOp::Relu => "relu",
            BenchOp::TopK => "topk",
            BenchOp::OnehotGather => "onehot_gather",
            BenchOp::Softmax => "softmax",
            BenchOp::Recip => "recip",
            BenchOp::Chain => "chain",
        }
    }

    /// Every op, in the order `--help` lists them.
    pub const ALL: [BenchOp; 11] = [
        BenchOp::Mul,
        BenchOp::FixMul,
        BenchOp::Dot,
        BenchOp::MatMul,
        BenchOp::Ltz,
        BenchOp::Relu,
        BenchOp::TopK,
        BenchOp::OnehotGather,
        BenchOp::Softmax,
        BenchOp::Recip,
        BenchOp::Chain,
    ];

    /// Largest per-element error (in ulps, i.e. ring words) allowed between the MPC result and
    /// the plaintext twin: 1 for ops with probabilistic truncation, 0 for exact ones, and for
    /// the approximations (softmax, reciprocal; twin = f64) 0.01 in real terms = 655 ulps at
    /// f = 16 — their documented plaintext bounds (3e-3; 1e-4/x + 2^-15) plus truncation noise.
    pub fn tolerance(self) -> u64 {
        match self {
            BenchOp::Softmax | BenchOp::Recip => 655,
            BenchOp::FixMul | BenchOp::Dot | BenchOp::MatMul => 1,
            BenchOp::Mul
            | BenchOp::Ltz
            | BenchOp::Relu
            | BenchOp::TopK
            | BenchOp::OnehotGather
            | BenchOp::Chain => 0,
        }
    }

    /// Largest size accepted, so inputs and shares fit comfortably in memory.
    pub fn max_size(self) -> usize {
        match self {
            BenchOp::Mul | BenchOp::FixMul => 1 << 25,
            BenchOp::Dot => 1 << 17,
            BenchOp::MatMul => 2048,
            BenchOp::Ltz | BenchOp::Relu => 1 << 22,
            BenchOp::TopK => 1 << 17,
            BenchOp::OnehotGather => 1 << 18,
            BenchOp::Softmax => 1 << 12,
            BenchOp::Recip => 1 << 22,
            BenchOp::Chain => 10_000,
        }
    }

    /// Size used when `--size` is not given: the sizes the project's performance targets
    /// are stated for (1M elements, 10,000 dot products, 128×128 matrices, top-k of 10,000
    /// scores, gathers from 100,000 rows).
    pub fn default_size(self) -> usize {
        match self {
            BenchOp::Mul | BenchOp::FixMul | BenchOp::Ltz | BenchOp::Relu => 1_000_000,
            BenchOp::Dot | BenchOp::TopK => 10_000,
            BenchOp::MatMul | BenchOp::Softmax => 128,
            BenchOp::Recip => 1_000_000,
            BenchOp::OnehotGather => 100_000,
            BenchOp::Chain => 100,
        }
    }

    /// Units of work per run at `size`: elements, dot products, or 1 for one matrix product,
    /// one top-k query or one 8-row gather.
    pub fn work_items(self, size: usize) -> f64 {
        match self {
            BenchOp::MatMul | BenchOp::TopK | BenchOp::OnehotGather | BenchOp::Softmax => 1.0,
            BenchOp::Mul
            | BenchOp::FixMul
            | BenchOp::Dot
            | BenchOp::Ltz
            | BenchOp::Relu
            | BenchOp::Recip
            | BenchOp::Chain => size as f64,
        }
    }
}

impl fmt::Display for BenchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BenchOp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BenchOp::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = BenchOp::ALL.iter().map(|op| op.name()).collect();
                format!("unknown op `{s}` (known: {})", known.join(", "))
            })
    }
}

/// A program plus plaintext inputs for one op and size.
pub struct Workload {
    /// The op.
    pub op: BenchOp,
    /// Its size.
    pub size: usize,
    /// Its parameters (`k` of `topk`).
    pub params: Params,
    /// The validated program (outputs to the client; see [`Workload::plaintext`]).
    pub program: ValidatedProgram,
    /// Plaintext inputs by name.
    pub inputs: HashMap<String, Vec<u64>>,
}

/// Random fixed-point words in [−8, 8) with the default 16 fractional bits: products stay far
/// inside the truncation error budget, and differences inside the comparisons' range.
fn fixed_words<R: Rng>(rng: &mut R, n: usize) -> Vec<u64> {
    let f = Fixed::default().0;
    (0..n)
        .map(|_| fixed::encode(rng.random_range(-8.0..8.0), f).expect("in range"))
        .collect()
}

/// Scores for `topk`: [`fixed_words`] with ties — a quarter of the elements copy another
/// element, and the maximum appears (at least) three times — so the lowest-index tie rule is
/// exercised inside the top k.
fn topk_scores<R: Rng>(rng: &mut R, n: usize) -> Vec<u64> {
    let mut x = fixed_words(rng, n);
    for _ in 0..n / 4 {
        let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
        x[i] = x[j];
    }
    let top = (0..n).max_by_key(|&i| x[i] as i64).expect("n ≥ 1");
    for _ in 0..2 {
        let i = rng.random_range(0..n);
        x[i] = x[top];
    }
    x
}

/// Name of the secret index input of gathered row `r` in `onehot_gather`.
fn gather_index_name(r: usize) -> String {
    format!("i{r}")
}

/// The k largest of `x` (signed words) in descending order, ties to the lowest index, and
/// their indices; the plaintext twin of [`Builder::best_k_with_indices`].
pub fn topk_plain(x: &[u64], k: usize) -> (Vec<u64>, Vec<u64>) {
    let order = |&a: &usize, &b: &usize| (x[b] as i64).cmp(&(x[a] as i64)).then(a.cmp(&b));
    let mut idx: Vec<usize> = (0..x.len()).collect();
    let k = k.min(x.len());
    if k == 0 {
        return (Vec::new(), Vec::new());
    }
    // The order is total (index breaks ties), so selecting then sorting the first k equals a
    // full sort's first k.
    idx.select_nth_unstable_by(k - 1, order);
    idx.truncate(k);
    idx.sort_unstable_by(order);
    (
        idx.iter().map(|&i| x[i]).collect(),
        idx.iter().map(|&i| i as u64).collect(),
    )
}

/// Where MPC outputs first disagree with the plaintext twin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputMismatch {
    /// Output name.
    pub output: String,
    /// First differing element (or the shorter length when the lengths differ).
    pub index: usize,
    /// MPC word there (`None`: missing).
    pub got: Option<u64>,
    /// Plaintext word there (`None`: missing).
    pub want: Option<u64>,
}

impl fmt::Display for OutputMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |w: Option<u64>| w.map_or("nothing".to_string(), |w| format!("{w:#018x}"));
        write!(
            f,
            "output `{}` element {}: MPC gave {}, plaintext {}",
            self.output,
            self.index,
            word(self.got),
            word(self.want)
        )
    }
}

/// Compare every output: `got` (reconstructed MPC outputs) must have exactly the outputs of
/// `want`, each of the same length and within `tolerance` ulps (wrapping difference) per word.
pub fn compare_outputs(
    got: &HashMap<String, Vec<u64>>,
    want: &[(&str, Vec<u64>)],
    tolerance: u64,
) -> Result<(), OutputMismatch> {
    if let Some(extra) = got.keys().find(|k| !want.iter().any(|(n, _)| n == k)) {
        return Err(OutputMismatch {
            output: extra.clone(),
            index: 0,
            got: got[extra].first().copied(),
            want: None,
        });
    }
    for (name, w) in want {
        let g = got.get(*name).map_or(&[][..], Vec::as_slice);
        let bad = g
            .iter()
            .zip(w)
            .position(|(g, w)| (g.wrapping_sub(*w) as i64).unsigned_abs() > tolerance)
            .or((g.len() != w.len()).then(|| g.len().min(w.len())));
        if let Some(index) = bad {
            return Err(OutputMismatch {
                output: name.to_string(),
                index,
                got: g.get(index).copied(),
                want: w.get(index).copied(),
            });
        }
    }
    Ok(())
}

impl Workload {
    /// Build the workload for `op` at `size` with default [`Params`] and inputs from `rng`.
    pub fn new<R: Rng>(op: BenchOp, size: usize, rng: &mut R) -> Result<Self, ValidationError> {
        Self::with_params(op, size, Params::default(), rng)
    }

    /// Build the workload for `op` at `size` with `params` and inputs from `rng`.
    pub fn with_params<R: Rng>(
        op: BenchOp,
        size: usize,
        params: Params,
        rng: &mut R,
    ) -> Result<Self, ValidationError> {
        let mut b = Builder::new();
        let fx = Fixed::default();
        let mut inputs = HashMap::new();
        let mut input = |name: &str, words: Vec<u64>| inputs.insert(name.to_string(), words);
        match op {
            BenchOp::Mul => {
                let x = b.secret_vector("x", size, Ring);
                let y = b.secret_vector("y", size, Ring);
                let z = b.mul(x, y);
                b.output_to_client("z", z);
                input("x", (0..size).map(|_| rng.random()).collect());
                input("y", (0..size).map(|_| rng.random()).collect());
            }
            BenchOp::FixMul => {
                let x = b.secret_vector("x", size, fx);
                let y = b.secret_vector("y", size, fx);
                let z = b.fixmul(x, y);
                b.output_to_client("z", z);
                input("x", fixed_words(rng, size));
                input("y", fixed_words(rng, size));
            }
            BenchOp::Dot => {
                let x = b.secret_matrix("x", size, DOT_LEN, fx);
                let y = b.secret_matrix("y", size, DOT_LEN, fx);
                let z = b.fixdot(x, y);
                b.output_to_client("z", z);
                input("x", fixed_words(rng, size * DOT_LEN));
                input("y", fixed_words(rng, size * DOT_LEN));
            }
            BenchOp::MatMul => {
                let x = b.secret_matrix("x", size, size, fx);
                let y = b.secret_matrix("y", size, size, fx);
                let z = b.fixmatmul(x, y);
                b.output_to_client("z", z);
                input("x", fixed_words(rng, size * size));
                input("y", fixed_words(rng, size * size));
            }
            BenchOp::Ltz => {
                // LTZ is exact for every 64-bit word, so the whole ring is fair game.
                let x = b.secret_vector("x", size, Ring);
                let z = b.ltz(x);
                b.output_to_client("z", z);
                input("x", (0..size).map(|_| rng.random()).collect());
            }
            BenchOp::Relu => {
                let x = b.secret_vector("x", size, fx);
                let z = b.relu(x);
                b.output_to_client("z", z);
                input("x", fixed_words(rng, size));
            }
            BenchOp::TopK => {
                let x = b.secret_vector("x", size, fx);
                let (values, indices) = b.best_k_with_indices(x, params.k);
                b.output_to_client("values", values);
                b.output_to_client("indices", indices);
                input("x", topk_scores(rng, size));
            }
            BenchOp::OnehotGather => {
                let m = b.secret_matrix("m", size, GATHER_COLS, fx);
                let rows: Vec<_> = (0..GATHER_ROWS)
                    .map(|r| {
                        let i = b.secret_scalar(&gather_index_name(r), Ring);
                        b.gather_row(i, m)
                    })
                    .collect();
                let z = b.concat(&rows);
                b.output_to_client("z", z);
                input("m", fixed_words(rng, size * GATHER_COLS));
                for r in 0..GATHER_ROWS {
                    input(
                        &gather_index_name(r),
                        vec![rng.random_range(0..size as u64)],
                    );
                }
            }
            BenchOp::Softmax => {
                let x = b.secret_matrix("x", size, SOFTMAX_COLS, fx);
                let z = b.softmax_rows(x);
                b.output_to_client("z", z);
                input("x", fixed_words(rng, size * SOFTMAX_COLS));
            }
            BenchOp::Chain => {
                let x = b.secret_scalar("x", Ring);
                let y = b.secret_scalar("y", Ring);
                let z = (0..size).fold(x, |acc, _| b.mul(acc, y));
                b.output_to_client("z", z);
                input("x", vec![rng.random()]);
                input("y", vec![rng.random()]);
            }
            BenchOp::Recip => {
                let x = b.secret_vector("x", size, fx);
                let z = b.reciprocal(x);
                b.output_to_client("z", z);
                let f = fx.0;
                input(
                    "x",
                    (0..size)
                        .map(|_| {
                            let x = 2f64.powf(rng.random_range(-4.0..12.0));
                            fixed::encode(x, f).expect("in range")
                        })
                        .collect(),
                );
            }
        }
        let program = b.finish()?;
        Ok(Workload {
            op,
            size,
            params,
            program,
            inputs,
        })
    }

    /// The same computation in the clear with the runtime's kernels (the baseline): every
    /// output of the program, by name.
    pub fn plaintext(&self) -> Vec<(&'static str, Vec<u64>)> {
        let input = |name: &str| self.inputs.get(name).map_or(&[][..], Vec::as_slice);
        let (x, y) = (input("x"), input("y"));
        let f = Fixed::default().0.0;
        let z = match self.op {
            BenchOp::Mul => {
                let mut z = x.to_vec();
                kernels::ring_mul_assign(&mut z, y);
                z
            }
            BenchOp::FixMul => {
                let mut z = x.to_vec();
                kernels::ring_mul_assign(&mut z, y);
                kernels::ring_shr_arith_assign(&mut z, f);
                z
            }
            BenchOp::Dot => {
                let mut z: Vec<u64> = x
                    .chunks_exact(DOT_LEN)
                    .zip(y.chunks_exact(DOT_LEN))
                    .map(|(a, b)| kernels::ring_dot(a, b))
                    .collect();
                kernels::ring_shr_arith_assign(&mut z, f);
                z
            }
            BenchOp::MatMul => {
                let n = self.size;
                let mut z = vec![0u64; n * n];
                kernels::par_gemm_u64_add_assign(n, n, n, x, y, &mut z);
                kernels::ring_shr_arith_assign(&mut z, f);
                z
            }
            BenchOp::Ltz => x.iter().map(|&v| v >> 63).collect(),
            BenchOp::Chain => vec![(0..self.size).fold(x[0], |acc, _| acc.wrapping_mul(y[0]))],
            BenchOp::Relu => x
                .iter()
                .map(|&v| if v >> 63 == 0 { v } else { 0 })
                .collect(),
            BenchOp::TopK => {
                let (values, indices) = topk_plain(x, self.params.k);
                return vec![("values", values), ("indices", indices)];
            }
            BenchOp::OnehotGather => {
                let m = &self.inputs["m"];
                let mut z = Vec::with_capacity(GATHER_ROWS * GATHER_COLS);
                for r in 0..GATHER_ROWS {
                    let i = self.inputs[&gather_index_name(r)][0] as usize;
                    z.extend_from_slice(&m[i * GATHER_COLS..(i + 1) * GATHER_COLS]);
                }
                z
            }
            BenchOp::Softmax => softmax_plain(x, f),
            BenchOp::Recip => x
                .iter()
                .map(|&v| fixed::encode(1.0 / fixed::decode(v, FracBits(f)), FracBits(f)))
                .collect::<Result<_, _>>()
                .expect("1/x of x in [2^-4, 2^12] is in range"),
        };
        vec![("z", z)]
    }
}

/// Row-wise softmax in f64 (max-subtracted), encoded back to fixed point: the exact reference
/// the MPC approximation is held to.
fn softmax_plain(x: &[u64], f: u32) -> Vec<u64> {
    let f = FracBits(f);
    x.chunks_exact(SOFTMAX_COLS)
        .flat_map(|row| {
            let row: Vec<f64> = row.iter().map(|&v| fixed::decode(v, f)).collect();
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter()
                .map(move |v| fixed::encode(v / s, f).expect("a probability is in range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(xs: &[i64]) -> Vec<u64> {
        xs.iter().map(|&x| x as u64).collect()
    }

    #[test]
    fn topk_plain_orders_by_signed_value_then_index() {
        let x = words(&[3, 5, -1, 5, -7, 5, 4]);
        assert_eq!(topk_plain(&x, 4), (words(&[5, 5, 5, 4]), vec![1, 3, 5, 6]));
        assert_eq!(topk_plain(&x, 1), (words(&[5]), vec![1]));
        let (v, i) = topk_plain(&x, 7);
        assert_eq!(v, words(&[5, 5, 5, 4, 3, -1, -7]));
        assert_eq!(i, vec![1, 3, 5, 6, 0, 2, 4]);
    }

    #[test]
    fn topk_scores_tie_at_the_top() {
        let mut rng = rand::rng();
        let x = topk_scores(&mut rng, 1000);
        let (v, _) = topk_plain(&x, 3);
        assert!(
            v[0] == v[1] && v[1] == v[2],
            "the maximum appears three times"
        );
    }

    #[test]
    fn compare_outputs_checks_every_output() {
        let want = [("a", vec![1, 2, 3]), ("b", vec![7])];
        let got = |a: Vec<u64>, b: Vec<u64>| HashMap::from([("a".into(), a), ("b".into(), b)]);
        assert_eq!(
            compare_outputs(&got(vec![1, 2, 3], vec![7]), &want, 0),
            Ok(())
        );
        assert_eq!(
            compare_outputs(&got(vec![1, 3, 4], vec![7]), &want, 1),
            Ok(())
        );
        let m = compare_outputs(&got(vec![1, 2, 3], vec![8]), &want, 0).unwrap_err();
        assert_eq!((m.output.as_str(), m.index), ("b", 0));
        let m = compare_outputs(&got(vec![1, 2], vec![7]), &want, 0).unwrap_err();
        assert_eq!(
            (m.output.as_str(), m.index, m.got, m.want),
            ("a", 2, None, Some(3))
        );
        let only_a = HashMap::from([("a".to_string(), vec![1, 2, 3])]);
        assert_eq!(compare_outputs(&only_a, &want, 0).unwrap_err().output, "b");
        let mut extra = got(vec![1, 2, 3], vec![7]);
        extra.insert("c".into(), vec![0]);
        assert_eq!(compare_outputs(&extra, &want, 0).unwrap_err().output, "c");
    }

    #[test]
    fn small_workloads_build_and_have_twins() {
        let mut rng = rand::rng();
        for op in BenchOp::ALL {
            let w = Workload::new(op, 16, &mut rng).expect("valid program");
            let outs = w.plaintext();
            let declared: Vec<_> = w
                .program
                .program()
                .outputs
                .iter()
                .map(|o| o.name.clone())
                .collect();
            assert_eq!(outs.len(), declared.len(), "{op}");
            for (name, _) in &outs {
                assert!(declared.iter().any(|d| d == name), "{op}: {name}");
            }
            assert_eq!(op.name().parse::<BenchOp>(), Ok(op));
        }
    }
}
