//! CPU-versus-GPU timings of every kernel, host↔device copies included: the runtime side of
//! `veil bench --device cuda`, shared with `benches/benches/gpu.rs`.
//!
//! [`run_kernel_benches`] times each kernel on the CPU and, given a [`Gpu`], on the GPU with the
//! same inputs in the same run, checks that both results are equal, and returns one
//! [`KernelTiming`] per kernel. The scan keeps its matrix resident (the upload is timed apart).

use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::{DeviceAesCtr, Gpu, GpuError, ResidentI8Matrix};
use crate::kernels::{self, AesCtr, PreparedVector};

/// Problem sizes of [`run_kernel_benches`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelBenchSizes {
    /// Elements of the elementwise replicated product (`mul`).
    pub mul: usize,
    /// Rows × columns of the row-wise replicated dot products (`dot`).
    pub dot: (usize, usize),
    /// m × k × n of the replicated matrix product (`matmul`).
    pub matmul: (usize, usize, usize),
    /// Rows × columns of the resident i8 scan matrix (`fhe_scan`).
    pub scan: (usize, usize),
    /// Words of AES-CTR keystream (`aes_ctr`).
    pub aes_words: usize,
    /// Words (64 gates each) of one AND layer (`and`).
    pub and_words: usize,
}

impl KernelBenchSizes {
    /// The sizes of issue 22's goals: dot 10,000 × 384, matmul 4096³, a 384 MB scan (1M × 384
    /// int8 as 187,500 rows of 2048), 2^26 keystream words, a 2^24-word AND layer (top-k of
    /// ~10^6 elements). Needs a GPU and several GB of host memory.
    pub fn issue_goals() -> Self {
        KernelBenchSizes {
            mul: 1 << 24,
            dot: (10_000, 384),
            matmul: (4096, 4096, 4096),
            scan: (187_500, 2048),
            aes_words: 1 << 26,
            and_words: 1 << 24,
        }
    }

    /// Small sizes for a smoke run (seconds on a CPU).
    pub fn smoke() -> Self {
        KernelBenchSizes {
            mul: 1 << 16,
            dot: (1000, 384),
            matmul: (128, 128, 128),
            scan: (1000, 2048),
            aes_words: 1 << 16,
            and_words: 1 << 16,
        }
    }
}

/// One kernel timed on the CPU and (if given one) on the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTiming {
    /// Kernel name (`mul`, `dot`, `matmul`, `fhe_scan`, `aes_ctr`, `and`).
    pub kernel: &'static str,
    /// Problem size, as written in [`KernelBenchSizes`] (`10000x384`).
    pub size: String,
    /// Units of work per call (elements, multiply-adds, bytes of D, words).
    pub work: u64,
    /// What [`KernelTiming::work`] counts.
    pub unit: &'static str,
    /// Median seconds per call on the CPU.
    pub cpu_median_s: f64,
    /// Median seconds per call on the GPU, copies to and from the host included.
    pub gpu_median_s: Option<f64>,
    /// Seconds to make the inputs resident first, where a kernel keeps them (the scan).
    pub gpu_upload_s: Option<f64>,
    /// Whether the GPU result equalled the CPU's bit for bit (`true` without a GPU).
    pub matches_cpu: bool,
}

impl KernelTiming {
    /// One JSON object on one line (the format of `veil bench --json`).
    pub fn to_json(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("null".to_owned(), |x| format!("{x:e}"));
        format!(
            "{{\"kernel\":\"{}\",\"size\":\"{}\",\"work\":{},\"unit\":\"{}\",\"cpu_median_s\":{:e},\
             \"gpu_median_s\":{},\"gpu_upload_s\":{},\"matches_cpu\":{}}}",
            self.kernel,
            self.size,
            self.work,
            self.unit,
            self.cpu_median_s,
            opt(self.gpu_median_s),
            opt(self.gpu_upload_s),
            self.matches_cpu
        )
    }
}

/// Median wall time of `reps` runs of `f` (at least one), after one untimed warm-up run.
fn median_s<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut last = f();
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            last = f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], last)
}

fn words(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.random()).collect()
}

/// Times every kernel at `sizes`, `reps` runs each (median), on the CPU and on `gpu` if given.
/// Fails only on a GPU error; a GPU result that differs from the CPU's is reported in
/// [`KernelTiming::matches_cpu`], not as an error.
pub fn run_kernel_benches(
    gpu: Option<&Arc<Gpu>>,
    sizes: &KernelBenchSizes,
    reps: usize,
) -> Result<Vec<KernelTiming>, GpuError> {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let mut out = Vec::new();
    let timing = |kernel, size: String, work: usize, unit| KernelTiming {
        kernel,
        size,
        work: work as u64,
        unit,
        cpu_median_s: 0.0,
        gpu_median_s: None,
        gpu_upload_s: None,
        matches_cpu: true,
    };

    // mul: elementwise cross terms.
    let n = sizes.mul;
    let [x0, x1, y0, y1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, n));
    let mut t = timing("mul", n.to_string(), n, "elements");
    let (cpu_s, want) = median_s(reps, || {
        let mut z = vec![0u64; n];
        kernels::rep3_cross_add_assign(&mut z, &x0, &x1, &y0, &y1);
        z
    });
    t.cpu_median_s = cpu_s;
    if let Some(gpu) = gpu {
        let (s, got) = median_s(reps, || {
            let mut z = vec![0u64; n];
            gpu.rep3_cross_add_assign(&mut z, &x0, &x1, &y0, &y1)
                .map(|()| z)
        });
        (t.gpu_median_s, t.matches_cpu) = (Some(s), got? == want);
    }
    out.push(t);

    // dot: row-wise cross terms.
    let (rows, cols) = sizes.dot;
    let [x0, x1, y0, y1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, rows * cols));
    let mut t = timing("dot", format!("{rows}x{cols}"), rows * cols, "elements");
    let (cpu_s, want) = median_s(reps, || {
        let mut z = vec![0u64; rows];
        kernels::rep3_dot_rows_add_assign(cols, &mut z, &x0, &x1, &y0, &y1);
        z
    });
    t.cpu_median_s = cpu_s;
    if let Some(gpu) = gpu {
        let (s, got) = median_s(reps, || {
            let mut z = vec![0u64; rows];
            gpu.rep3_dot_rows_add_assign(cols, &mut z, &x0, &x1, &y0, &y1)
                .map(|()| z)
        });
        (t.gpu_median_s, t.matches_cpu) = (Some(s), got? == want);
    }
    out.push(t);

    // matmul: the fused replicated product.
    let (m, k, n) = sizes.matmul;
    let [x0, x1]: [Vec<u64>; 2] = std::array::from_fn(|_| words(&mut rng, m * k));
    let [y0, y1]: [Vec<u64>; 2] = std::array::from_fn(|_| words(&mut rng, k * n));
    let mut t = timing(
        "matmul",
        format!("{m}x{k}x{n}"),
        2 * m * k * n,
        "multiply-adds",
    );
    let (cpu_s, want) = median_s(reps, || {
        let mut z = vec![0u64; m * n];
        kernels::rep3_matmul_add_assign((m, k, n), &x0, &x1, &y0, &y1, &mut z);
        z
    });
    t.cpu_median_s = cpu_s;
    if let Some(gpu) = gpu {
        let (s, got) = median_s(reps, || {
            let mut z = vec![0u64; m * n];
            gpu.rep3_matmul_add_assign((m, k, n), &x0, &x1, &y0, &y1, &mut z)
                .map(|()| z)
        });
        (t.gpu_median_s, t.matches_cpu) = (Some(s), got? == want);
    }
    out.push(t);

    // fhe_scan: i8 × u64 GEMV against a resident matrix.
    let (rows, cols) = sizes.scan;
    let d: Vec<i8> = (0..rows * cols).map(|_| rng.random()).collect();
    let q = [PreparedVector::new(&words(&mut rng, cols))];
    let mut t = timing("fhe_scan", format!("{rows}x{cols}"), rows * cols, "bytes");
    let (cpu_s, want) = median_s(reps, || kernels::par_gemm_i8_u64(&d, rows, &q));
    t.cpu_median_s = cpu_s;
    if let Some(gpu) = gpu {
        let start = Instant::now();
        let resident = ResidentI8Matrix::upload(gpu, &d, rows, cols)?;
        t.gpu_upload_s = Some(start.elapsed().as_secs_f64());
        let (s, got) = median_s(reps, || resident.gemm(&q));
        (t.gpu_median_s, t.matches_cpu) = (Some(s), got? == want);
    }
    out.push(t);

    // aes_ctr: keystream words.
    let n = sizes.aes_words;
    let key: [u8; 16] = rng.random();
    let mut t = timing("aes_ctr", n.to_string(), n, "words");
    let cpu = AesCtr::new(&key);
    let (cpu_s, want) = median_s(reps, || {
        let mut z = vec![0u64; n];
        cpu.fill_at(7, 0, &mut z);
        z
    });
    t.cpu_median_s = cpu_s;
    if let Some(gpu) = gpu {
        let dev = DeviceAesCtr::new(gpu, &key)?;
        let (s, got) = median_s(reps, || {
            let mut z = vec![0u64; n];
            dev.fill_at(7, 0, &mut z).map(|()| z)
        });
        (t.gpu_median_s, t.matches_cpu) = (Some(s), got? == want);
    }
    out.push(t);

    // and: one AND layer of boolean shares.
    let n = sizes.and_words;
    let [a0, a1, b0, b1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, n));
    let mut t = timing("and", n.to_string(), n, "words");
    let (cpu_s, want) = median_s(reps, || {
        let mut z = vec![0u64; n];
        kernels::rep3_and_cross_xor_assign(&mut z, &a0, &a1, &b0, &b1);
        z
    });
    t.cpu_median_s = cpu_s;
    if let Some(gpu) = gpu {
        let (s, got) = median_s(reps, || {
            let mut z = vec![0u64; n];
            gpu.rep3_and_cross_xor_assign(&mut z, &a0, &a1, &b0, &b1)
                .map(|()| z)
        });
        (t.gpu_median_s, t.matches_cpu) = (Some(s), got? == want);
    }
    out.push(t);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_only_run_reports_every_kernel() {
        let sizes = KernelBenchSizes {
            mul: 100,
            dot: (10, 7),
            matmul: (5, 6, 7),
            scan: (9, 33),
            aes_words: 101,
            and_words: 100,
        };
        let t = run_kernel_benches(None, &sizes, 1).unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.kernel).collect();
        assert_eq!(
            names,
            ["mul", "dot", "matmul", "fhe_scan", "aes_ctr", "and"]
        );
        assert!(t.iter().all(|t| t.matches_cpu && t.gpu_median_s.is_none()));
        assert!(
            t[1].to_json()
                .starts_with("{\"kernel\":\"dot\",\"size\":\"10x7\"")
        );
        assert!(t[0].to_json().contains("\"gpu_median_s\":null"));
    }
}
