//! The hot kernels with the signatures of their CPU twins, each sent to the process's GPU when
//! the work is large enough to pay for the host↔device copies, and to the CPU otherwise.
//!
//! The protocols call these (through `protocols::hot`) when the crate is built with `gpu`; without
//! the feature they call [`crate::kernels`] directly. The device is the one chosen for the
//! process ([`crate::device`]); on the CPU device every function here is its CPU twin.
//!
//! Results never depend on the choice: the GPU kernels equal the CPU ones bit for bit. If a GPU
//! call fails at run time (out of memory, a driver error), the CPU computes the result instead
//! (a GPU call leaves its output untouched unless it succeeds), the first such error is printed
//! once on stderr, and [`gpu_fallbacks`] counts them.
//!
//! # Thresholds
//! Work below which the CPU runs the kernel. Every GPU call copies its inputs and output over
//! PCIe (≈ 25 GB/s), so the elementwise kernels (48 bytes moved per element for the cross
//! terms, 8 per word per operand for the AND layers) are copy-bound and gain little even when
//! large; the GEMM moves O(n²) words for O(n³) work and gains most. The values are first
//! estimates from those costs and are to be tuned on a GPU with `benches/benches/gpu.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Gpu, GpuError};
use crate::device;
use crate::kernels::{self, PreparedVector};

/// Fewest elements for which [`rep3_cross_add_assign`] runs on the GPU.
pub const MIN_CROSS_ELEMENTS: usize = 1 << 22;
/// Fewest `rows · cols` for which [`rep3_dot_rows_add_assign`] runs on the GPU.
pub const MIN_DOT_ELEMENTS: usize = 1 << 20;
/// Fewest multiply-adds `m · k · n` for which the GEMMs run on the GPU.
pub const MIN_GEMM_MACS: u128 = 1 << 24;
/// Fewest words for which the AND layers run on the GPU.
pub const MIN_AND_WORDS: usize = 1 << 22;
/// Fewest bytes of `D` times queries for which [`par_gemm_i8_u64`] uploads `D` and runs on the
/// GPU (for a matrix used many times, keep it resident with [`super::ResidentI8Matrix`]).
pub const MIN_GEMV_I8_BYTES: usize = 1 << 26;

static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// How many GPU calls failed and were recomputed on the CPU in this process.
pub fn gpu_fallbacks() -> u64 {
    FALLBACKS.load(Ordering::Relaxed)
}

/// The process's GPU if it has one and `work ≥ min`.
fn gpu_for(work: u128, min: u128) -> Option<&'static Arc<Gpu>> {
    if work < min {
        return None;
    }
    device::active_gpu()
}

/// Whether a GPU call succeeded; a failure is counted (and the first one printed).
fn succeeded(op: &str, r: Result<(), GpuError>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            if FALLBACKS.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("veil: GPU {op} failed ({e}); computing on the CPU instead");
            }
            false
        }
    }
}

/// [`kernels::rep3_cross_add_assign`], on the GPU from [`MIN_CROSS_ELEMENTS`].
pub fn rep3_cross_add_assign(out: &mut [u64], x0: &[u64], x1: &[u64], y0: &[u64], y1: &[u64]) {
    if let Some(gpu) = gpu_for(out.len() as u128, MIN_CROSS_ELEMENTS as u128)
        && succeeded(
            "rep3_cross_add_assign",
            gpu.rep3_cross_add_assign(out, x0, x1, y0, y1),
        )
    {
        return;
    }
    kernels::rep3_cross_add_assign(out, x0, x1, y0, y1)
}

/// [`kernels::rep3_dot_rows_add_assign`], on the GPU from [`MIN_DOT_ELEMENTS`].
pub fn rep3_dot_rows_add_assign(
    cols: usize,
    out: &mut [u64],
    x0: &[u64],
    x1: &[u64],
    y0: &[u64],
    y1: &[u64],
) {
    let work = out.len() as u128 * cols as u128;
    if let Some(gpu) = gpu_for(work, MIN_DOT_ELEMENTS as u128)
        && succeeded(
            "rep3_dot_rows_add_assign",
            gpu.rep3_dot_rows_add_assign(cols, out, x0, x1, y0, y1),
        )
    {
        return;
    }
    kernels::rep3_dot_rows_add_assign(cols, out, x0, x1, y0, y1)
}

/// [`kernels::rep3_matmul_add_assign`], on the GPU from [`MIN_GEMM_MACS`].
pub fn rep3_matmul_add_assign(
    (m, k, n): (usize, usize, usize),
    x0: &[u64],
    x1: &[u64],
    y0: &[u64],
    y1: &[u64],
    out: &mut [u64],
) {
    let work = m as u128 * k as u128 * n as u128;
    if let Some(gpu) = gpu_for(work, MIN_GEMM_MACS)
        && succeeded(
            "rep3_matmul_add_assign",
            gpu.rep3_matmul_add_assign((m, k, n), x0, x1, y0, y1, out),
        )
    {
        return;
    }
    kernels::rep3_matmul_add_assign((m, k, n), x0, x1, y0, y1, out)
}

/// [`kernels::par_gemm_u64_add_assign`], on the GPU from [`MIN_GEMM_MACS`].
pub fn par_gemm_u64_add_assign(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    let work = m as u128 * k as u128 * n as u128;
    if let Some(gpu) = gpu_for(work, MIN_GEMM_MACS)
        && succeeded(
            "gemm_u64_add_assign",
            gpu.gemm_u64_add_assign(m, k, n, a, b, c),
        )
    {
        return;
    }
    kernels::par_gemm_u64_add_assign(m, k, n, a, b, c)
}

/// [`kernels::par_gemm_i8_u64`], on the GPU from [`MIN_GEMV_I8_BYTES`] (uploading `d` for this
/// call only).
pub fn par_gemm_i8_u64(d: &[i8], rows: usize, queries: &[PreparedVector]) -> Vec<Vec<u64>> {
    if let Some(gpu) = gpu_for(
        d.len() as u128 * queries.len() as u128,
        MIN_GEMV_I8_BYTES as u128,
    ) {
        let cols = queries.first().map_or(0, PreparedVector::len);
        if rows.checked_mul(cols) == Some(d.len()) && queries.iter().all(|q| q.len() == cols) {
            let mut result = Vec::new();
            let run = super::ResidentI8Matrix::upload(gpu, d, rows, cols)
                .and_then(|m| m.gemm(queries))
                .map(|r| result = r);
            if succeeded("gemv_i8_u64", run) {
                return result;
            }
        }
        // Bad shapes: the CPU kernel panics with its own message.
    }
    kernels::par_gemm_i8_u64(d, rows, queries)
}

/// [`kernels::rep3_and_cross_xor_assign`], on the GPU from [`MIN_AND_WORDS`].
pub fn rep3_and_cross_xor_assign(out: &mut [u64], a0: &[u64], a1: &[u64], b0: &[u64], b1: &[u64]) {
    if let Some(gpu) = gpu_for(out.len() as u128, MIN_AND_WORDS as u128)
        && succeeded(
            "rep3_and_cross_xor_assign",
            gpu.rep3_and_cross_xor_assign(out, a0, a1, b0, b1),
        )
    {
        return;
    }
    kernels::rep3_and_cross_xor_assign(out, a0, a1, b0, b1)
}

/// [`kernels::rep3_and_prefix_xor_assign`], on the GPU from [`MIN_AND_WORDS`].
pub fn rep3_and_prefix_xor_assign(
    k: u32,
    with_p: bool,
    out: &mut [u64],
    p0: &[u64],
    p1: &[u64],
    g0: &[u64],
    g1: &[u64],
) {
    if let Some(gpu) = gpu_for(out.len() as u128, MIN_AND_WORDS as u128)
        && succeeded(
            "rep3_and_prefix_xor_assign",
            gpu.rep3_and_prefix_xor_assign(k, with_p, out, p0, p1, g0, g1),
        )
    {
        return;
    }
    kernels::rep3_and_prefix_xor_assign(k, with_p, out, p0, p1, g0, g1)
}
