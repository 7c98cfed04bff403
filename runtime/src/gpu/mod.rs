//! GPU kernels for the hot core (feature `gpu`): CUDA through `cudarc`, kernels written in CUDA C
//! and compiled at run time with NVRTC, so the crate builds with no CUDA installed.
//!
//! # Where this sits
//! ```text
//! protocols (mul, dot, matmul, AND layers) ──► hot kernel call (same signature as the CPU one)
//!        without `gpu`: crate::kernels::*          with `gpu`: gpu::dispatch::*
//!                                                    │ device = cpu, or work below threshold
//!                                                    ├──────────────► crate::kernels::* (CPU)
//!                                                    │ device = cuda and work ≥ threshold
//!                                                    └──► Gpu: upload → kernel → download
//! ```
//! The process's device is chosen once ([`crate::device`], `VEIL_DEVICE=cpu|cuda`). Objects
//! that keep data on the device across calls ([`ResidentI8Matrix`], [`DeviceAesCtr`]) are used
//! directly.
//!
//! # Kernels (each the twin of a CPU kernel, equal to it bit for bit)
//! | GPU | CPU twin | what |
//! |---|---|---|
//! | [`Gpu::rep3_cross_add_assign`] | [`crate::kernels::rep3_cross_add_assign`] | local term of `mul` |
//! | [`Gpu::rep3_dot_rows_add_assign`] | [`crate::kernels::rep3_dot_rows_add_assign`] | local terms of `dot` |
//! | [`Gpu::rep3_matmul_add_assign`] | [`crate::kernels::rep3_matmul_add_assign`] | local terms of `matmul` |
//! | [`Gpu::gemm_u64_add_assign`] | [`crate::kernels::par_gemm_u64_add_assign`] | u64 GEMM/GEMV |
//! | [`ResidentI8Matrix::gemm`] | [`crate::kernels::par_gemm_i8_u64`] | TFHE scan |
//! | [`DeviceAesCtr::fill_at`] | [`crate::kernels::AesCtr::fill_at`] | PRF keystream |
//! | [`Gpu::rep3_and_cross_xor_assign`] | [`crate::kernels::rep3_and_cross_xor_assign`] | AND layer |
//! | [`Gpu::rep3_and_prefix_xor_assign`] | [`crate::kernels::rep3_and_prefix_xor_assign`] | carry level |
//!
//! The MPC kernels add into `out`, which holds the party's zero-sharing mask: the mask add of the
//! reshare is fused into the kernel. Exactness: all arithmetic is on unsigned words (wrapping
//! mod 2^64 by definition), and wrapping addition is associative and commutative, so the GPU's
//! summation orders (warp shuffles, tiles, atomics) give the CPU's result exactly.
//!
//! Prior art: iris-mpc (Worldcoin) runs its 3-party replicated-sharing inner products on H100s
//! through `cudarc` with NVRTC-compiled kernels; Piranha (Watson, Wagh, Popa, USENIX Security
//! 2022) and CryptGPU (Tan et al., S&P 2021) run share GEMMs over Z_2^64 as integer kernels.
//!
//! # Costs
//! Host↔device copies are part of every call (and of the benches, `benches/benches/gpu.rs`);
//! over PCIe (≈ 25 GB/s) the elementwise kernels are copy-bound and only the GEMM (compute-bound,
//! O(n³) work on O(n²) data) and the resident scan gain much. [`dispatch`] sends work to the
//! GPU only above per-kernel thresholds.

mod aes_ctr;
pub mod bench;
mod boolean;
pub mod dispatch;
mod gemv_i8;
pub mod nvrtc;
mod ring;
#[cfg(test)]
mod tests;

pub use aes_ctr::{DeviceAesCtr, aes_sbox, aes128_expand_key};
pub use gemv_i8::{ResidentI8Matrix, split_limbs32};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DriverError};

use crate::device::{Device, DeviceError, DeviceInfo};

/// Why a GPU operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No CUDA driver library could be loaded (environment).
    #[error("no CUDA driver: libcuda could not be loaded")]
    NoDriver,
    /// No NVRTC library could be loaded (environment).
    #[error("no NVRTC: libnvrtc could not be loaded (put its folder on LD_LIBRARY_PATH)")]
    NoNvrtc,
    /// The driver loaded but refused to open the device (environment).
    #[error("CUDA device {ordinal} could not be opened: {reason}")]
    Unavailable {
        /// Device ordinal.
        ordinal: usize,
        /// What the driver said.
        reason: String,
    },
    /// A kernel source failed to compile (a bug in veil, or an NVRTC too old for `arch`).
    #[error("NVRTC could not compile kernel source {kernel} for {arch}: {log}")]
    Compile {
        /// Kernel source name.
        kernel: &'static str,
        /// Target architecture.
        arch: String,
        /// NVRTC's log.
        log: String,
    },
    /// An NVRTC call other than the compilation failed.
    #[error("NVRTC call {op} failed: {error}")]
    Nvrtc {
        /// What was being done.
        op: &'static str,
        /// NVRTC's status.
        error: cudarc::nvrtc::result::NvrtcError,
    },
    /// A CUDA driver call failed (out of memory, launch failure, …).
    #[error("CUDA driver call failed while {op}: {error}")]
    Driver {
        /// What was being done.
        op: &'static str,
        /// The driver's status.
        error: DriverError,
    },
}

impl GpuError {
    /// The [`DeviceError`] to report when opening `device` failed with this error.
    pub fn into_device_error(self, device: Device) -> DeviceError {
        match self {
            GpuError::NoDriver => DeviceError::NoDriver(device),
            GpuError::NoNvrtc => DeviceError::NoNvrtc(device),
            other => DeviceError::Unavailable {
                device,
                reason: other.to_string(),
            },
        }
    }
}

/// `map_err` helper: a driver error while doing `op`.
pub(crate) fn driver(op: &'static str) -> impl Fn(DriverError) -> GpuError {
    move |error| GpuError::Driver { op, error }
}

/// Whether the CUDA driver library can be loaded. `false` means no GPU work is possible.
pub fn driver_available() -> bool {
    // SAFETY: only tries to `dlopen` the library candidates; no symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// One CUDA device, opened once per process: its context, a stream, and the kernel modules
/// compiled for it (NVRTC runs once per kernel source and device, on first use).
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    info: DeviceInfo,
    arch: String,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("info", &self.info)
            .field("arch", &self.arch)
            .finish_non_exhaustive()
    }
}

impl Gpu {
    /// Device `ordinal`, opened on first call and shared afterwards (one context per device per
    /// process). Checks for the driver and NVRTC libraries first (`CudaContext::new` would
    /// panic without the driver) and never panics: every failure is a [`GpuError`].
    pub fn open(ordinal: usize) -> Result<Arc<Gpu>, GpuError> {
        static OPENED: OnceLock<Mutex<HashMap<usize, Arc<Gpu>>>> = OnceLock::new();
        let mut opened = OPENED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(gpu) = opened.get(&ordinal) {
            return Ok(gpu.clone());
        }
        let gpu = Arc::new(Self::create(ordinal)?);
        opened.insert(ordinal, gpu.clone());
        Ok(gpu)
    }

    fn create(ordinal: usize) -> Result<Gpu, GpuError> {
        if !driver_available() {
            return Err(GpuError::NoDriver);
        }
        if !nvrtc::nvrtc_available() {
            return Err(GpuError::NoNvrtc);
        }
        let unavailable = |reason: String| GpuError::Unavailable { ordinal, reason };
        // cudarc panics if the driver lacks a symbol it needs (a driver older than CUDA 12.8's
        // API): report that as an error too.
        let opened = std::panic::catch_unwind(|| {
            let ctx = CudaContext::new(ordinal)?;
            let name = ctx.name()?;
            let (major, minor) = ctx.compute_capability()?;
            let memory = ctx.total_mem()?;
            Ok::<_, DriverError>((ctx, name, major, minor, memory))
        })
        .map_err(|_| unavailable("the CUDA driver lacks a required function (too old?)".into()))?;
        let (ctx, name, major, minor, memory) = opened.map_err(|e| unavailable(e.to_string()))?;
        let stream = ctx.default_stream();
        let (major, minor) = (major.max(0) as u32, minor.max(0) as u32);
        Ok(Gpu {
            ctx,
            stream,
            info: DeviceInfo {
                device: Device::Cuda { ordinal },
                name,
                compute_capability: Some((major, minor)),
                memory_bytes: Some(memory as u64),
            },
            arch: format!("sm_{major}{minor}"),
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// What this device is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The architecture kernels are compiled for (`sm_90` on an H100).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// The stream every operation of this device runs on.
    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Entry point `function` of `src`, compiling and loading `src` on first use.
    pub(crate) fn function(
        &self,
        src: &'static nvrtc::KernelSource,
        function: &str,
    ) -> Result<CudaFunction, GpuError> {
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match modules.get(src.name) {
                Some(m) => m.clone(),
                None => {
                    let compiled = nvrtc::compile(src, &self.arch)?;
                    let ptx = cudarc::nvrtc::Ptx::from_binary(compiled.cubin);
                    let m = self
                        .ctx
                        .load_module(ptx)
                        .map_err(driver("loading a module"))?;
                    modules.insert(src.name, m.clone());
                    m
                }
            }
        };
        module
            .load_function(function)
            .map_err(driver("looking up a kernel"))
    }

    /// Waits for this device's stream (so host buffers written by downloads are complete).
    pub(crate) fn sync(&self) -> Result<(), GpuError> {
        self.stream.synchronize().map_err(driver("synchronising"))
    }
}
