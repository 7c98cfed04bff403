//! The benchmark workloads as one table, [`OPS`]: a row per MPC op that `veil bench` and the
//! criterion benchmark `mpc` measure — its name, what its size counts, its default size and
//! cap, what throughput counts, how close MPC must come to plaintext, and two functions: one
//! builds the program with random inputs, the other computes the plaintext twin with the
//! runtime's kernels, so MPC and plaintext are measured side by side. Parsing, listing,
//! defaults, caps, `veil bench --help` and the criterion groups all read the table; adding an op
//! is adding a row.

use rand::{Rng, RngCore};
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

/// Columns of the `softmax` workload.
pub const SOFTMAX_COLS: usize = 128;

/// `k` of the `topk` workload when not given.
pub const DEFAULT_TOPK_K: usize = 8;

/// Tolerance of the exact ops: MPC and plaintext agree word for word.
pub const EXACT: u64 = 0;

/// Tolerance of the fixed-point ops with probabilistic truncation, which may add one ulp.
pub const TRUNCATION: u64 = 1;

/// Tolerance of the approximations (softmax, reciprocal; their twin is computed in f64): 0.01
/// in real terms = 655 ulps at f = 16 — their documented plaintext bounds (3e-3;
/// 1e-4/x + 2^-15) plus truncation noise.
pub const APPROXIMATION: u64 = 655;

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

/// Plaintext inputs of a program, by input name.
pub type Inputs = HashMap<String, Vec<u64>>;

/// Outputs of a plaintext twin: every output of the program, by name.
pub type Twin = Vec<(&'static str, Vec<u64>)>;

/// What one run of an op counts as work, for its throughput.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// `size` items per run (elements, dot products, multiplications); the unit names them.
    PerSize(&'static str),
    /// One item per run whatever the size (a matrix product, a query); the unit names it.
    PerRun(&'static str),
}

impl Work {
    /// Items of work in one run at `size`.
    pub fn items(self, size: usize) -> f64 {
        match self {
            Work::PerSize(_) => size as f64,
            Work::PerRun(_) => 1.0,
        }
    }

    /// What an item is, plural ("elements", "matrix products").
    pub fn unit(self) -> &'static str {
        match self {
            Work::PerSize(unit) | Work::PerRun(unit) => unit,
        }
    }
}

/// One MPC op: a row of [`OPS`].
pub struct OpSpec {
    /// Name on the command line and in reports (`op` of the `--json` line).
    pub name: &'static str,
    /// What it computes, one sentence.
    pub about: &'static str,
    /// What its size counts.
    pub size: &'static str,
    /// Size when `--size` is not given: the size the project's performance targets are stated
    /// for.
    pub default_size: usize,
    /// Largest size accepted, so inputs and shares fit comfortably in memory.
    pub max_size: usize,
    /// What throughput counts.
    pub work: Work,
    /// Largest per-element error (in ulps, i.e. ring words) allowed between the MPC result
    /// and the plaintext twin: [`EXACT`], [`TRUNCATION`] or [`APPROXIMATION`].
    pub tolerance: u64,
    /// Whether `veil bench` runs it when `--ops` is not given.
    pub in_default_ops: bool,
    /// Whether it reads [`Params::k`] (which must then lie in 1..=size).
    pub takes_k: bool,
    /// Whether it is a latency op: `veil bench` also prints the session time per round.
    pub per_round: bool,
    /// Sizes of its group `mpc/<name>` in the criterion benchmark `mpc` (none: not there).
    pub bench_sizes: &'static [usize],
    /// Declares the program's inputs, computation and outputs (all to the client) on the
    /// builder at a size, and returns random plaintext inputs for it.
    pub build: fn(&mut Builder, usize, Params, &mut dyn RngCore) -> Inputs,
    /// The same computation in the clear with the runtime's kernels: every output of the
    /// program, by name.
    pub plaintext: fn(&Workload) -> Twin,
}

/// An op `veil bench` can measure: a row of [`OPS`].
pub type BenchOp = &'static OpSpec;

impl OpSpec {
    /// Items of work in one run at `size` (see [`OpSpec::work`]).
    pub fn work_items(&self, size: usize) -> f64 {
        self.work.items(size)
    }
}

impl PartialEq for OpSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for OpSpec {}

impl fmt::Debug for OpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A name that is no row of [`OPS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOp(pub String);

impl fmt::Display for UnknownOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = OPS.iter().map(|op| op.name).collect();
        write!(f, "unknown op `{}` (known: {})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownOp {}

impl FromStr for BenchOp {
    type Err = UnknownOp;
    fn from_str(s: &str) -> Result<Self, UnknownOp> {
        OPS.iter()
            .find(|op| op.name == s)
            .ok_or_else(|| UnknownOp(s.to_string()))
    }
}

/// The fixed-point type of every fixed-point workload (16 fractional bits).
fn fx() -> Fixed {
    Fixed::default()
}

/// Fractional bits of [`fx`].
fn frac() -> u32 {
    fx().0.0
}

/// Inputs from (name, words) pairs.
fn inputs<const N: usize>(pairs: [(&str, Vec<u64>); N]) -> Inputs {
    pairs
        .into_iter()
        .map(|(name, words)| (name.to_string(), words))
        .collect()
}

/// Uniform ring words.
fn ring_words(rng: &mut dyn RngCore, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.random()).collect()
}

/// `z = x ⊙ y` in the ring, in the clear.
fn ring_product(x: &[u64], y: &[u64]) -> Vec<u64> {
    let mut z = x.to_vec();
    kernels::ring_mul_assign(&mut z, y);
    z
}

/// Every MPC op of `veil bench`, in the order `--help` lists them; the ops run by default
/// first, in their default order.
pub static OPS: [OpSpec; 11] = [
    OpSpec {
        name: "mul",
        about: "Elementwise ring multiplication of two secret vectors.",
        size: "elements",
        default_size: 1_000_000,
        max_size: 1 << 25,
        work: Work::PerSize("elements"),
        tolerance: EXACT,
        in_default_ops: true,
        takes_k: false,
        per_round: false,
        bench_sizes: &[1 << 10, 1 << 16, 1 << 20],
        build: |b, n, _, rng| {
            let x = b.secret_vector("x", n, Ring);
            let y = b.secret_vector("y", n, Ring);
            let z = b.mul(x, y);
            b.output_to_client("z", z);
            inputs([("x", ring_words(rng, n)), ("y", ring_words(rng, n))])
        },
        plaintext: |w| vec![("z", ring_product(w.input("x"), w.input("y")))],
    },
    OpSpec {
        name: "dot",
        about: "Fixed-point dot products of length 384 of two secret matrices' rows, with \
                truncation.",
        size: "dot products",
        default_size: 10_000,
        max_size: 1 << 17,
        work: Work::PerSize("dot products"),
        tolerance: TRUNCATION,
        in_default_ops: true,
        takes_k: false,
        per_round: false,
        bench_sizes: &[10_000],
        build: |b, n, _, rng| {
            let x = b.secret_matrix("x", n, DOT_LEN, fx());
            let y = b.secret_matrix("y", n, DOT_LEN, fx());
            let z = b.fixdot(x, y);
            b.output_to_client("z", z);
            inputs([
                ("x", fixed_words(rng, n * DOT_LEN)),
                ("y", fixed_words(rng, n * DOT_LEN)),
            ])
        },
        plaintext: |w| {
            let (x, y) = (w.input("x"), w.input("y"));
            let mut z: Vec<u64> = x
                .chunks_exact(DOT_LEN)
                .zip(y.chunks_exact(DOT_LEN))
                .map(|(a, b)| kernels::ring_dot(a, b))
                .collect();
            kernels::ring_shr_arith_assign(&mut z, frac());
            vec![("z", z)]
        },
    },
    OpSpec {
        name: "matmul",
        about: "Fixed-point product of two secret square matrices, with truncation.",
        size: "side n of the n×n matrices",
        default_size: 128,
        max_size: 2048,
        work: Work::PerRun("matrix products"),
        tolerance: TRUNCATION,
        in_default_ops: true,
        takes_k: false,
        per_round: false,
        bench_sizes: &[128],
        build: |b, n, _, rng| {
            let x = b.secret_matrix("x", n, n, fx());
            let y = b.secret_matrix("y", n, n, fx());
            let z = b.fixmatmul(x, y);
            b.output_to_client("z", z);
            inputs([
                ("x", fixed_words(rng, n * n)),
                ("y", fixed_words(rng, n * n)),
            ])
        },
        plaintext: |w| {
            let n = w.size;
            let mut z = vec![0u64; n * n];
            kernels::par_gemm_u64_add_assign(n, n, n, w.input("x"), w.input("y"), &mut z);
            kernels::ring_shr_arith_assign(&mut z, frac());
            vec![("z", z)]
        },
    },
    OpSpec {
        name: "fixmul",
        about: "Elementwise fixed-point multiplication of two secret vectors, with truncation.",
        size: "elements",
        default_size: 1_000_000,
        max_size: 1 << 25,
        work: Work::PerSize("elements"),
        tolerance: TRUNCATION,
        in_default_ops: true,
        takes_k: false,
        per_round: false,
        bench_sizes: &[1 << 20],
        build: |b, n, _, rng| {
            let x = b.secret_vector("x", n, fx());
            let y = b.secret_vector("y", n, fx());
            let z = b.fixmul(x, y);
            b.output_to_client("z", z);
            inputs([("x", fixed_words(rng, n)), ("y", fixed_words(rng, n))])
        },
        plaintext: |w| {
            let mut z = ring_product(w.input("x"), w.input("y"));
            kernels::ring_shr_arith_assign(&mut z, frac());
            vec![("z", z)]
        },
    },
    OpSpec {
        name: "ltz",
        about: "Sign bits of a secret ring vector (any 64-bit word).",
        size: "elements",
        default_size: 1_000_000,
        max_size: 1 << 22,
        work: Work::PerSize("elements"),
        tolerance: EXACT,
        in_default_ops: false,
        takes_k: false,
        per_round: false,
        bench_sizes: &[1 << 20],
        build: |b, n, _, rng| {
            // LTZ is exact for every 64-bit word, so the whole ring is fair game.
            let x = b.secret_vector("x", n, Ring);
            let z = b.ltz(x);
            b.output_to_client("z", z);
            inputs([("x", ring_words(rng, n))])
        },
        plaintext: |w| vec![("z", w.input("x").iter().map(|&v| v >> 63).collect())],
    },
    OpSpec {
        name: "relu",
        about: "max(x, 0) of a secret fixed-point vector.",
        size: "elements",
        default_size: 1_000_000,
        max_size: 1 << 22,
        work: Work::PerSize("elements"),
        tolerance: EXACT,
        in_default_ops: false,
        takes_k: false,
        per_round: false,
        bench_sizes: &[1 << 20],
        build: |b, n, _, rng| {
            let x = b.secret_vector("x", n, fx());
            let z = b.relu(x);
            b.output_to_client("z", z);
            inputs([("x", fixed_words(rng, n))])
        },
        plaintext: |w| {
            let z = w
                .input("x")
                .iter()
                .map(|&v| if v >> 63 == 0 { v } else { 0 });
            vec![("z", z.collect())]
        },
    },
    OpSpec {
        name: "topk",
        about: "The --k largest of n secret fixed-point scores, values and indices, ties to \
                the lowest index.",
        size: "n, the scores",
        default_size: 10_000,
        max_size: 1 << 17,
        work: Work::PerRun("queries"),
        tolerance: EXACT,
        in_default_ops: false,
        takes_k: true,
        per_round: false,
        bench_sizes: &[10_000],
        build: |b, n, params, rng| {
            let x = b.secret_vector("x", n, fx());
            let (values, indices) = b.best_k_with_indices(x, params.k);
            b.output_to_client("values", values);
            b.output_to_client("indices", indices);
            inputs([("x", topk_scores(rng, n))])
        },
        plaintext: |w| {
            let (values, indices) = topk_plain(w.input("x"), w.params.k);
            vec![("values", values), ("indices", indices)]
        },
    },
    OpSpec {
        name: "onehot_gather",
        about: "8 rows of a secret fixed-point matrix with 96 columns, each picked by its own \
                secret ring index (one-hot × matrix).",
        size: "rows of the matrix",
        default_size: 100_000,
        max_size: 1 << 18,
        work: Work::PerRun("queries"),
        tolerance: EXACT,
        in_default_ops: false,
        takes_k: false,
        per_round: false,
        bench_sizes: &[100_000],
        build: |b, n, _, rng| {
            let m = b.secret_matrix("m", n, GATHER_COLS, fx());
            let rows: Vec<_> = (0..GATHER_ROWS)
                .map(|r| {
                    let i = b.secret_scalar(&gather_index_name(r), Ring);
                    b.gather_row(i, m)
                })
                .collect();
            let z = b.concat(&rows);
            b.output_to_client("z", z);
            let mut inputs = inputs([("m", fixed_words(rng, n * GATHER_COLS))]);
            for r in 0..GATHER_ROWS {
                inputs.insert(gather_index_name(r), vec![rng.random_range(0..n as u64)]);
            }
            inputs
        },
        plaintext: |w| {
            let m = w.input("m");
            let mut z = Vec::with_capacity(GATHER_ROWS * GATHER_COLS);
            for r in 0..GATHER_ROWS {
                let i = w.input(&gather_index_name(r))[0] as usize;
                z.extend_from_slice(&m[i * GATHER_COLS..(i + 1) * GATHER_COLS]);
            }
            vec![("z", z)]
        },
    },
    OpSpec {
        name: "softmax",
        about: "Row-wise softmax of a secret fixed-point matrix with 128 columns \
                (approximation; twin in f64).",
        size: "rows",
        default_size: 128,
        max_size: 1 << 12,
        work: Work::PerRun("matrices"),
        tolerance: APPROXIMATION,
        in_default_ops: false,
        takes_k: false,
        per_round: false,
        bench_sizes: &[128],
        build: |b, n, _, rng| {
            let x = b.secret_matrix("x", n, SOFTMAX_COLS, fx());
            let z = b.softmax_rows(x);
            b.output_to_client("z", z);
            inputs([("x", fixed_words(rng, n * SOFTMAX_COLS))])
        },
        plaintext: |w| vec![("z", softmax_plain(w.input("x"), frac()))],
    },
    OpSpec {
        name: "recip",
        about: "1/x of a secret fixed-point vector, x log-uniform in [2^-4, 2^12] \
                (approximation; twin in f64).",
        size: "elements",
        default_size: 1_000_000,
        max_size: 1 << 22,
        work: Work::PerSize("elements"),
        tolerance: APPROXIMATION,
        in_default_ops: false,
        takes_k: false,
        per_round: false,
        // 2^16 elements: one run at 1M takes ~11 s (`veil bench --ops recip` measures that).
        bench_sizes: &[1 << 16],
        build: |b, n, _, rng| {
            let x = b.secret_vector("x", n, fx());
            let z = b.reciprocal(x);
            b.output_to_client("z", z);
            let f = fx().0;
            let x = (0..n)
                .map(|_| {
                    let x = 2f64.powf(rng.random_range(-4.0..12.0));
                    fixed::encode(x, f).expect("in range")
                })
                .collect();
            inputs([("x", x)])
        },
        plaintext: |w| {
            let f = FracBits(frac());
            let z = w
                .input("x")
                .iter()
                .map(|&v| fixed::encode(1.0 / fixed::decode(v, f), f))
                .collect::<Result<_, _>>()
                .expect("1/x of x in [2^-4, 2^12] is in range");
            vec![("z", z)]
        },
    },
    OpSpec {
        name: "chain",
        about: "`size` dependent multiplications of secret ring scalars, x·y·y·…·y, one \
                round each: the session time per round is the latency.",
        size: "multiplications",
        default_size: 100,
        max_size: 10_000,
        work: Work::PerSize("multiplications"),
        tolerance: EXACT,
        in_default_ops: false,
        takes_k: false,
        per_round: true,
        bench_sizes: &[],
        build: |b, n, _, rng| {
            let x = b.secret_scalar("x", Ring);
            let y = b.secret_scalar("y", Ring);
            let z = (0..n).fold(x, |acc, _| b.mul(acc, y));
            b.output_to_client("z", z);
            inputs([("x", ring_words(rng, 1)), ("y", ring_words(rng, 1))])
        },
        plaintext: |w| {
            let (x, y) = (w.input("x")[0], w.input("y")[0]);
            vec![("z", vec![(0..w.size).fold(x, |acc, _| acc.wrapping_mul(y))])]
        },
    },
];

/// The ops `veil bench` runs when `--ops` is not given, in order.
pub fn default_ops() -> impl Iterator<Item = BenchOp> {
    OPS.iter().filter(|op| op.in_default_ops)
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
    pub inputs: Inputs,
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
        let inputs = (op.build)(&mut b, size, params, rng);
        let program = b.finish()?;
        Ok(Workload {
            op,
            size,
            params,
            program,
            inputs,
        })
    }

    /// The plaintext input `name` (empty when there is none).
    pub fn input(&self, name: &str) -> &[u64] {
        self.inputs.get(name).map_or(&[][..], Vec::as_slice)
    }

    /// The same computation in the clear with the runtime's kernels (the baseline): every
    /// output of the program, by name.
    pub fn plaintext(&self) -> Twin {
        (self.op.plaintext)(self)
    }
}

/// Random fixed-point words in [−8, 8) with the default 16 fractional bits: products stay far
/// inside the truncation error budget, and differences inside the comparisons' range.
fn fixed_words(rng: &mut dyn RngCore, n: usize) -> Vec<u64> {
    let f = Fixed::default().0;
    (0..n)
        .map(|_| fixed::encode(rng.random_range(-8.0..8.0), f).expect("in range"))
        .collect()
}

/// Scores for `topk`: [`fixed_words`] with ties — a quarter of the elements copy another
/// element, and the maximum appears (at least) three times — so the lowest-index tie rule is
/// exercised inside the top k.
fn topk_scores(rng: &mut dyn RngCore, n: usize) -> Vec<u64> {
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
    use veil_runtime::harness::{collect_outputs, run_program3, share_inputs};

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
    fn every_row_parses_fits_its_cap_and_agrees_with_an_mpc_run() {
        let mut rng = rand::rng();
        for (i, op) in OPS.iter().enumerate() {
            assert_eq!(op.name.parse::<BenchOp>(), Ok(op));
            assert!(OPS[..i].iter().all(|o| o.name != op.name), "{op}: two rows");
            assert!((1..=op.max_size).contains(&op.default_size), "{op}");
            assert!(
                op.bench_sizes.iter().all(|n| (1..=op.max_size).contains(n)),
                "{op}"
            );
            // The smallest size validates (k = 1 so `topk` may run at size 1).
            Workload::with_params(op, 1, Params { k: 1 }, &mut rng)
                .unwrap_or_else(|e| panic!("{op} at size 1: {e}"));
            // At a tiny size the twin has exactly the program's outputs, and three in-memory
            // parties compute it within the row's tolerance.
            let w = Workload::new(op, 16, &mut rng).unwrap_or_else(|e| panic!("{op}: {e}"));
            let want = w.plaintext();
            let declared: Vec<&str> = w
                .program
                .program()
                .outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect();
            let mut twin: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
            twin.sort_unstable();
            let mut declared = declared;
            declared.sort_unstable();
            assert_eq!(twin, declared, "{op}");
            let shared = share_inputs(&w.program, &w.inputs, &mut rng);
            let outputs = run_program3(&w.program, shared)
                .map(|r| r.unwrap_or_else(|e| panic!("{op}: MPC run: {e}")).0);
            let got = collect_outputs(&w.program, &outputs)
                .unwrap_or_else(|e| panic!("{op}: reconstructing: {e}"));
            if let Err(m) = compare_outputs(&got, &want, op.tolerance) {
                panic!("{op}: MPC differs from plaintext: {m}");
            }
        }
    }

    #[test]
    fn default_ops_keep_their_order() {
        let names: Vec<&str> = default_ops().map(|op| op.name).collect();
        assert_eq!(names, ["mul", "dot", "matmul", "fixmul"]);
    }

    #[test]
    fn unknown_op_lists_the_known() {
        let e = "nope".parse::<BenchOp>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown op `nope` (known: mul, dot, matmul, fixmul, ltz, relu, topk, \
             onehot_gather, softmax, recip, chain)"
        );
    }
}
