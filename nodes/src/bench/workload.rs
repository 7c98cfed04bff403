//! The benchmark workloads: for each op, the veil program, random inputs, and the plaintext
//! twin computed with the same kernels, so MPC and plaintext are measured side by side.

use rand::Rng;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use veil_circuits::{Builder, Fixed, Ring, ValidatedProgram, ValidationError};
use veil_runtime::fixed;
use veil_runtime::kernels;

/// Length of each dot product in the `dot` workload.
pub const DOT_LEN: usize = 384;

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
}

impl BenchOp {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BenchOp::Mul => "mul",
            BenchOp::FixMul => "fixmul",
            BenchOp::Dot => "dot",
            BenchOp::MatMul => "matmul",
        }
    }

    /// Largest size accepted, so inputs and shares fit comfortably in memory.
    pub fn max_size(self) -> usize {
        match self {
            BenchOp::Mul | BenchOp::FixMul => 1 << 25,
            BenchOp::Dot => 1 << 17,
            BenchOp::MatMul => 2048,
        }
    }

    /// Size used when `--size` is not given: the sizes the project's performance targets
    /// are stated for (1M elements, 10,000 dot products, 128×128 matrices).
    pub fn default_size(self) -> usize {
        match self {
            BenchOp::Mul | BenchOp::FixMul => 1_000_000,
            BenchOp::Dot => 10_000,
            BenchOp::MatMul => 128,
        }
    }

    /// Units of work per run at `size` (elements, dot products, or one matrix product).
    pub fn work_items(self, size: usize) -> f64 {
        match self {
            BenchOp::MatMul => 1.0,
            _ => size as f64,
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
        Ok(match s {
            "mul" => BenchOp::Mul,
            "fixmul" => BenchOp::FixMul,
            "dot" => BenchOp::Dot,
            "matmul" => BenchOp::MatMul,
            other => {
                return Err(format!(
                    "unknown op `{other}` (known: mul, fixmul, dot, matmul)"
                ));
            }
        })
    }
}

/// A program plus plaintext inputs for one op and size.
pub struct Workload {
    /// The op.
    pub op: BenchOp,
    /// Its size.
    pub size: usize,
    /// The validated program (inputs `x`, `y`; output `z` to the client).
    pub program: ValidatedProgram,
    /// Plaintext inputs by name.
    pub inputs: HashMap<String, Vec<u64>>,
}

/// Random fixed-point words in [−8, 8) with the default 16 fractional bits: products stay far
/// inside the truncation error budget.
fn fixed_words<R: Rng>(rng: &mut R, n: usize) -> Vec<u64> {
    let f = Fixed::default().0;
    (0..n)
        .map(|_| fixed::encode(rng.random_range(-8.0..8.0), f).expect("in range"))
        .collect()
}

impl Workload {
    /// Build the workload for `op` at `size` with inputs from `rng`.
    pub fn new<R: Rng>(op: BenchOp, size: usize, rng: &mut R) -> Result<Self, ValidationError> {
        let mut b = Builder::new();
        let (x_len, y_len) = match op {
            BenchOp::Mul => {
                let x = b.secret_vector("x", size, Ring);
                let y = b.secret_vector("y", size, Ring);
                let z = b.mul(x, y);
                b.output_to_client("z", z);
                (size, size)
            }
            BenchOp::FixMul => {
                let x = b.secret_vector("x", size, Fixed::default());
                let y = b.secret_vector("y", size, Fixed::default());
                let z = b.fixmul(x, y);
                b.output_to_client("z", z);
                (size, size)
            }
            BenchOp::Dot => {
                let x = b.secret_matrix("x", size, DOT_LEN, Fixed::default());
                let y = b.secret_matrix("y", size, DOT_LEN, Fixed::default());
                let z = b.fixdot(x, y);
                b.output_to_client("z", z);
                (size * DOT_LEN, size * DOT_LEN)
            }
            BenchOp::MatMul => {
                let x = b.secret_matrix("x", size, size, Fixed::default());
                let y = b.secret_matrix("y", size, size, Fixed::default());
                let z = b.fixmatmul(x, y);
                b.output_to_client("z", z);
                (size * size, size * size)
            }
        };
        let program = b.finish()?;
        let (x, y) = match op {
            BenchOp::Mul => (
                (0..x_len).map(|_| rng.random()).collect(),
                (0..y_len).map(|_| rng.random()).collect(),
            ),
            _ => (fixed_words(rng, x_len), fixed_words(rng, y_len)),
        };
        let inputs = HashMap::from([("x".to_string(), x), ("y".to_string(), y)]);
        Ok(Workload {
            op,
            size,
            program,
            inputs,
        })
    }

    /// The same computation in the clear with the runtime's kernels (the baseline).
    pub fn plaintext(&self) -> Vec<u64> {
        let (x, y) = (&self.inputs["x"], &self.inputs["y"]);
        let f = Fixed::default().0.0;
        match self.op {
            BenchOp::Mul => {
                let mut z = x.clone();
                kernels::ring_mul_assign(&mut z, y);
                z
            }
            BenchOp::FixMul => {
                let mut z = x.clone();
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
        }
    }
}
