//! The i8 × u64 GEMV of the TFHE scan on the GPU (`cuda/gemv_i8.cu`), with the database matrix
//! resident on the device: [`ResidentI8Matrix::upload`] copies `D` once, and every
//! [`ResidentI8Matrix::gemm`] then moves only the queries (8 bytes per column) and the answers
//! (8 bytes per row). Twin of [`crate::kernels::par_gemm_i8_u64`], equal to it bit for bit.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::{Gpu, GpuError, driver, nvrtc};
use crate::kernels::PreparedVector;
use crate::kernels::rep3::check_shape;

/// Bytes of `D` per chunk (one `uint4` load).
const CHUNK: usize = 16;
/// Queries per kernel pass (`GEMV_MAX_QUERIES` in `cuda/gemv_i8.cu`).
const MAX_QUERIES: usize = 4;
/// Warps per block (one row each at a time).
const WARPS: u32 = 8;
/// Warps the launch aims for (enough to cover a large GPU's latency several times over).
const TARGET_WARPS: u64 = 1 << 16;
/// Bytes of padded rows staged on the host per upload step.
const STAGING_BYTES: usize = 64 << 20;

/// Splits `b` into balanced signed 32-bit limbs `(l0, l1)` with `b ≡ l0 + l1·2^32 (mod 2^64)`:
/// `l0` is the low half read as an i32, `l1` the high half of `b − l0` (the carry out of the top
/// vanishes mod 2^64). The kernel multiplies each byte of `D` by both (see `cuda/gemv_i8.cu`).
pub fn split_limbs32(b: u64) -> (i32, i32) {
    let l0 = b as u32 as i32;
    let l1 = (b.wrapping_sub(l0 as i64 as u64) >> 32) as u32 as i32;
    (l0, l1)
}

/// A row-major i8 matrix (the scan database) held in device memory, rows padded with zeros to a
/// multiple of 16 bytes.
pub struct ResidentI8Matrix {
    gpu: Arc<Gpu>,
    d: CudaSlice<i8>,
    rows: usize,
    cols: usize,
    /// 16-byte chunks per padded row.
    chunks: usize,
}

impl std::fmt::Debug for ResidentI8Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentI8Matrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl ResidentI8Matrix {
    /// Uploads `d` (`rows × cols`, row-major) to `gpu`. Panics if `d.len() != rows · cols`.
    pub fn upload(gpu: &Arc<Gpu>, d: &[i8], rows: usize, cols: usize) -> Result<Self, GpuError> {
        check_shape("ResidentI8Matrix::upload", "d", d.len(), rows, cols);
        let chunks = cols.div_ceil(CHUNK);
        let stride = chunks * CHUNK;
        // One word at least, so that the empty matrix is a valid (unused) buffer.
        let total = (rows * stride).max(1);
        let stream = gpu.stream();
        let mut dev = stream
            .alloc_zeros::<i8>(total)
            .map_err(driver("allocating the matrix"))?;
        if stride == cols && !d.is_empty() {
            stream
                .memcpy_htod(d, &mut dev)
                .map_err(driver("copying the matrix"))?;
        } else if cols > 0 {
            // Pad each row to `stride` bytes through a bounded host staging buffer.
            let rows_per_step = (STAGING_BYTES / stride).max(1);
            let mut staging = vec![0i8; rows_per_step.min(rows) * stride];
            for (step, block) in d.chunks(rows_per_step * cols).enumerate() {
                let n = block.len() / cols;
                for (dst, src) in staging.chunks_mut(stride).zip(block.chunks(cols)) {
                    dst[..cols].copy_from_slice(src);
                }
                let start = step * rows_per_step * stride;
                let mut view = dev.slice_mut(start..start + n * stride);
                stream
                    .memcpy_htod(&staging[..n * stride], &mut view)
                    .map_err(driver("copying the matrix"))?;
                // The staging buffer is reused: wait until the copy has read it.
                gpu.sync()?;
            }
        }
        gpu.sync()?;
        Ok(ResidentI8Matrix {
            gpu: gpu.clone(),
            d: dev,
            rows,
            cols,
            chunks,
        })
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `s[r] = Σ_j D[r, j]·b[j] mod 2^64` for one query. Panics if `b.len() != cols`.
    pub fn gemv(&self, b: &[u64]) -> Result<Vec<u64>, GpuError> {
        let mut out = self.gemm_words(&[b])?;
        Ok(out.pop().expect("one query in, one result out"))
    }

    /// [`crate::kernels::par_gemm_i8_u64`] against the resident matrix: one `Vec` of `rows`
    /// results per query, in order. Panics if a query's length is not `cols`.
    pub fn gemm(&self, queries: &[PreparedVector]) -> Result<Vec<Vec<u64>>, GpuError> {
        let words: Vec<Vec<u64>> = queries.iter().map(PreparedVector::to_words).collect();
        let refs: Vec<&[u64]> = words.iter().map(Vec::as_slice).collect();
        self.gemm_words(&refs)
    }

    /// [`ResidentI8Matrix::gemm`] on raw query words.
    pub fn gemm_words(&self, queries: &[&[u64]]) -> Result<Vec<Vec<u64>>, GpuError> {
        for (i, q) in queries.iter().enumerate() {
            assert!(
                q.len() == self.cols,
                "ResidentI8Matrix::gemm: query {i} has {} columns, the matrix {}",
                q.len(),
                self.cols
            );
        }
        let nq = queries.len();
        if nq == 0 {
            return Ok(Vec::new());
        }
        if self.rows == 0 || self.cols == 0 {
            return Ok(vec![vec![0; self.rows]; nq]);
        }
        // Limbs of every query, (l0, l1) per column, each query padded to the row stride.
        let stride = self.chunks * CHUNK;
        let mut limbs = vec![0i32; nq * stride * 2];
        for (q, b) in queries.iter().enumerate() {
            let dst = &mut limbs[q * stride * 2..];
            for (j, &v) in b.iter().enumerate() {
                let (l0, l1) = split_limbs32(v);
                dst[2 * j] = l0;
                dst[2 * j + 1] = l1;
            }
        }
        let gpu = &self.gpu;
        let f = gpu.function(&nvrtc::GEMV_I8, "gemv_i8_u64")?;
        let d_limbs = gpu.upload(&limbs)?;
        let mut d_out = gpu
            .stream()
            .alloc_zeros::<u64>(nq * self.rows)
            .map_err(driver("allocating the answers"))?;
        let (cfg, seg_chunks) = self.launch_config();
        let (rows, chunks) = (self.rows as u64, self.chunks as u64);
        for q0 in (0..nq).step_by(MAX_QUERIES) {
            let (q0_arg, group) = (q0 as u32, (nq - q0).min(MAX_QUERIES) as u32);
            let mut launch = gpu.stream().launch_builder(&f);
            launch
                .arg(&self.d)
                .arg(&rows)
                .arg(&chunks)
                .arg(&d_limbs)
                .arg(&q0_arg)
                .arg(&group)
                .arg(&seg_chunks)
                .arg(&mut d_out);
            // SAFETY: D holds rows × chunks 16-byte chunks (16-byte aligned: a fresh
            // allocation), the limbs nq × chunks × 16 (l0, l1) pairs, the answers nq × rows
            // words; the kernel reads chunks c < chunks of rows r < rows for queries
            // q0..q0 + group ≤ nq, and adds into out[q·rows + r].
            unsafe { launch.launch(cfg) }.map_err(driver("launching gemv_i8_u64"))?;
        }
        let mut out = vec![0u64; nq * self.rows];
        gpu.download(&d_out, &mut out)?;
        Ok(out.chunks(self.rows).map(<[u64]>::to_vec).collect())
    }

    /// Grid and segment length: column segments of at least 32 chunks (one per lane) so that
    /// about [`TARGET_WARPS`] warps run even when there are few, long rows.
    fn launch_config(&self) -> (LaunchConfig, u64) {
        let (rows, chunks) = (self.rows as u64, self.chunks as u64);
        let segments = TARGET_WARPS.div_ceil(rows).clamp(1, chunks.div_ceil(32));
        let seg_chunks = chunks.div_ceil(segments);
        let cfg = LaunchConfig {
            grid_dim: (
                chunks.div_ceil(seg_chunks) as u32,
                rows.div_ceil(u64::from(WARPS)).min(65_535) as u32,
                1,
            ),
            block_dim: (32 * WARPS, 1, 1),
            shared_mem_bytes: 0,
        };
        (cfg, seg_chunks)
    }
}
