//! Z_2^64 products of replicated shares on the GPU (`cuda/ring.cu`): the local cross terms of
//! `mul`, `dot` and `matmul`, and a plain u64 GEMM. Each method has the signature of its CPU
//! twin plus a `Result`, and equals it bit for bit (see the module doc of [`super`]).

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::{Gpu, GpuError, driver, nvrtc};
use crate::kernels::rep3::{check_lens, check_shape};

/// Threads per block of the elementwise and warp-per-row kernels.
pub(crate) const THREADS: u32 = 256;
/// Most blocks of a grid-stride launch (each thread then loops).
pub(crate) const MAX_BLOCKS: u64 = 1 << 16;
/// Output tile of the GEMM kernels (`GEMM_TILE` in `cuda/ring.cu`).
const GEMM_TILE: u64 = 64;
/// Threads per GEMM block (`GEMM_THREADS`).
const GEMM_THREADS: u32 = 256;
/// Most blocks along one grid dimension of the GEMM (the kernel loops beyond).
const GEMM_MAX_GRID: u64 = 65_535;

/// A 1-D grid of `units` work items, `per_block` of them per block, capped at [`MAX_BLOCKS`].
pub(crate) fn grid_1d(units: u64, per_block: u64) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (units.div_ceil(per_block).clamp(1, MAX_BLOCKS) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Gpu {
    /// Copies `host` to a new device buffer.
    pub(crate) fn upload<T: DeviceRepr>(&self, host: &[T]) -> Result<CudaSlice<T>, GpuError> {
        self.stream()
            .clone_htod(host)
            .map_err(driver("copying to the device"))
    }

    /// Copies `dev` back into `host` and waits for it. `host` is written only once the whole
    /// copy succeeded, so a failed call leaves it as it was (the CPU fallback of
    /// [`super::dispatch`] relies on that).
    pub(crate) fn download<T: DeviceRepr + Copy>(
        &self,
        dev: &CudaSlice<T>,
        host: &mut [T],
    ) -> Result<(), GpuError> {
        let v = self
            .stream()
            .clone_dtoh(dev)
            .map_err(driver("copying from the device"))?;
        self.sync()?;
        host.copy_from_slice(&v[..host.len()]);
        Ok(())
    }

    /// [`crate::kernels::rep3_cross_add_assign`] on the GPU:
    /// `out[i] += x0[i]·(y0[i] + y1[i]) + x1[i]·y0[i]`. Panics if lengths differ.
    pub fn rep3_cross_add_assign(
        &self,
        out: &mut [u64],
        x0: &[u64],
        x1: &[u64],
        y0: &[u64],
        y1: &[u64],
    ) -> Result<(), GpuError> {
        let n = out.len();
        check_lens(
            "rep3_cross_add_assign",
            n,
            [x0.len(), x1.len(), y0.len(), y1.len()],
        );
        if n == 0 {
            return Ok(());
        }
        let f = self.function(&nvrtc::RING, "rep3_cross_add_assign")?;
        let mut d_out = self.upload(out)?;
        let [d_x0, d_x1, d_y0, d_y1] = [x0, x1, y0, y1].map(|v| self.upload(v));
        let (d_x0, d_x1, d_y0, d_y1) = (d_x0?, d_x1?, d_y0?, d_y1?);
        let n64 = n as u64;
        let mut launch = self.stream().launch_builder(&f);
        launch
            .arg(&mut d_out)
            .arg(&d_x0)
            .arg(&d_x1)
            .arg(&d_y0)
            .arg(&d_y1)
            .arg(&n64);
        // SAFETY: the kernel reads and writes `n` words of each buffer, all of which hold `n`.
        unsafe { launch.launch(grid_1d(n64, u64::from(THREADS))) }
            .map_err(driver("launching rep3_cross_add_assign"))?;
        self.download(&d_out, out)
    }

    /// [`crate::kernels::rep3_dot_rows_add_assign`] on the GPU: one warp per row. Panics if a
    /// slice is not `out.len() × cols`.
    pub fn rep3_dot_rows_add_assign(
        &self,
        cols: usize,
        out: &mut [u64],
        x0: &[u64],
        x1: &[u64],
        y0: &[u64],
        y1: &[u64],
    ) -> Result<(), GpuError> {
        let rows = out.len();
        for (name, len) in [
            ("x0", x0.len()),
            ("x1", x1.len()),
            ("y0", y0.len()),
            ("y1", y1.len()),
        ] {
            check_shape("rep3_dot_rows_add_assign", name, len, rows, cols);
        }
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let [d_x0, d_x1, d_y0, d_y1] = [x0, x1, y0, y1].map(|v| self.upload(v));
        let (d_x0, d_x1, d_y0, d_y1) = (d_x0?, d_x1?, d_y0?, d_y1?);
        self.dot_rows(out, &d_x0, &d_x1, &d_y0, &d_y1, cols, cols)
    }

    /// `out[r] += Σ_j x0[r,j]·(y0[r·s + j] + y1[r·s + j]) + x1[r,j]·y0[r·s + j]` with
    /// `s = y_stride` (`cols`: row-wise dots; 0: one shared vector).
    #[allow(clippy::too_many_arguments)]
    fn dot_rows(
        &self,
        out: &mut [u64],
        x0: &CudaSlice<u64>,
        x1: &CudaSlice<u64>,
        y0: &CudaSlice<u64>,
        y1: &CudaSlice<u64>,
        cols: usize,
        y_stride: usize,
    ) -> Result<(), GpuError> {
        let f = self.function(&nvrtc::RING, "rep3_dot_rows_add_assign")?;
        let mut d_out = self.upload(out)?;
        let (rows, cols, y_stride) = (out.len() as u64, cols as u64, y_stride as u64);
        let mut launch = self.stream().launch_builder(&f);
        launch
            .arg(&mut d_out)
            .arg(x0)
            .arg(x1)
            .arg(y0)
            .arg(y1)
            .arg(&rows)
            .arg(&cols)
            .arg(&y_stride);
        // SAFETY: rows r < `rows` read x[r·cols..(r+1)·cols] and y[r·s..r·s + cols], inside the
        // buffers (checked by the callers), and write out[r].
        unsafe { launch.launch(grid_1d(rows, u64::from(THREADS / 32))) }
            .map_err(driver("launching rep3_dot_rows_add_assign"))?;
        self.download(&d_out, out)
    }

    /// [`crate::kernels::par_gemm_u64_add_assign`] on the GPU: `c += a·b` with `a` m×k, `b`
    /// k×n, `c` m×n, row-major, wrapping. Panics if a slice does not match its dimensions.
    pub fn gemm_u64_add_assign(
        &self,
        m: usize,
        k: usize,
        n: usize,
        a: &[u64],
        b: &[u64],
        c: &mut [u64],
    ) -> Result<(), GpuError> {
        check_shape("gemm_u64_add_assign", "a", a.len(), m, k);
        check_shape("gemm_u64_add_assign", "b", b.len(), k, n);
        check_shape("gemm_u64_add_assign", "c", c.len(), m, n);
        if m == 0 || k == 0 || n == 0 {
            return Ok(());
        }
        let (d_a, d_b) = (self.upload(a)?, self.upload(b)?);
        let mut d_c = self.upload(c)?;
        let (m64, k64, n64) = (m as u64, k as u64, n as u64);
        if n == 1 {
            let f = self.function(&nvrtc::RING, "gemv_u64_add_assign")?;
            let mut launch = self.stream().launch_builder(&f);
            launch.arg(&mut d_c).arg(&d_a).arg(&d_b).arg(&m64).arg(&k64);
            // SAFETY: row r < m reads a[r·k..(r+1)·k] and b[..k] and writes c[r].
            unsafe { launch.launch(grid_1d(m64, u64::from(THREADS / 32))) }
                .map_err(driver("launching gemv_u64_add_assign"))?;
        } else {
            let f = self.function(&nvrtc::RING, "gemm_u64_add_assign")?;
            let mut launch = self.stream().launch_builder(&f);
            launch
                .arg(&m64)
                .arg(&k64)
                .arg(&n64)
                .arg(&d_a)
                .arg(&d_b)
                .arg(&mut d_c);
            // SAFETY: every load and store is bounds-checked against m, k, n in the kernel.
            unsafe { launch.launch(gemm_grid(m64, n64)) }
                .map_err(driver("launching gemm_u64_add_assign"))?;
        }
        self.download(&d_c, c)
    }

    /// [`crate::kernels::rep3_matmul_add_assign`] on the GPU: `out += x0·(y0 + y1) + x1·y0`
    /// in one fused pass (four input tiles per step). Panics if a slice does not match.
    pub fn rep3_matmul_add_assign(
        &self,
        (m, k, n): (usize, usize, usize),
        x0: &[u64],
        x1: &[u64],
        y0: &[u64],
        y1: &[u64],
        out: &mut [u64],
    ) -> Result<(), GpuError> {
        let op = "rep3_matmul_add_assign";
        check_shape(op, "x0", x0.len(), m, k);
        check_shape(op, "x1", x1.len(), m, k);
        check_shape(op, "y0", y0.len(), k, n);
        check_shape(op, "y1", y1.len(), k, n);
        check_shape(op, "out", out.len(), m, n);
        if m == 0 || k == 0 || n == 0 {
            return Ok(());
        }
        let [d_x0, d_x1, d_y0, d_y1] = [x0, x1, y0, y1].map(|v| self.upload(v));
        let (d_x0, d_x1, d_y0, d_y1) = (d_x0?, d_x1?, d_y0?, d_y1?);
        if n == 1 {
            // Matrix–vector: the row-wise dot kernel with one shared vector (y stride 0).
            return self.dot_rows(out, &d_x0, &d_x1, &d_y0, &d_y1, k, 0);
        }
        let f = self.function(&nvrtc::RING, "rep3_matmul_add_assign")?;
        let mut d_out = self.upload(out)?;
        let (m64, k64, n64) = (m as u64, k as u64, n as u64);
        let mut launch = self.stream().launch_builder(&f);
        launch
            .arg(&m64)
            .arg(&k64)
            .arg(&n64)
            .arg(&d_x0)
            .arg(&d_x1)
            .arg(&d_y0)
            .arg(&d_y1)
            .arg(&mut d_out);
        // SAFETY: every load and store is bounds-checked against m, k, n in the kernel.
        unsafe { launch.launch(gemm_grid(m64, n64)) }
            .map_err(driver("launching rep3_matmul_add_assign"))?;
        self.download(&d_out, out)
    }
}

/// Grid of the tiled GEMM kernels: one block per 64 × 64 tile of the output, capped per
/// dimension (the kernels loop over the rest).
fn gemm_grid(m: u64, n: u64) -> LaunchConfig {
    let tiles = |x: u64| x.div_ceil(GEMM_TILE).clamp(1, GEMM_MAX_GRID) as u32;
    LaunchConfig {
        grid_dim: (tiles(n), tiles(m), 1),
        block_dim: (GEMM_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}
