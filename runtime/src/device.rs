//! Which device runs the hot kernels of this process: the CPU (always available, the reference)
//! or a CUDA GPU (feature `gpu`).
//!
//! The choice is made **once per process**: explicitly with [`select_device`] (a CLI flag, a
//! node's config), or else on first use from the environment variable [`DEVICE_ENV`]
//! (`VEIL_DEVICE=cpu|cuda|cuda:N`, default `cpu`). Asking for `cuda` where it cannot run is a
//! typed [`DeviceError`] from [`select_device`] — never a panic: the build may lack the `gpu`
//! feature, the machine may lack the driver (`libcuda`), the NVRTC compiler (`libnvrtc`) or a
//! device. When the choice comes implicitly from the environment and CUDA cannot run, the
//! process says why once on stderr and stays on the CPU.
//!
//! On a CUDA device the protocols' kernels run there when the work is large enough to pay for
//! the host↔device copies (`crate::gpu::dispatch`); results are bit-for-bit those of the CPU.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

/// Environment variable naming the device: `cpu`, `cuda` (device 0) or `cuda:N`.
pub const DEVICE_ENV: &str = "VEIL_DEVICE";

/// A device the kernels can run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU kernels of [`crate::kernels`] (SIMD-dispatched; the reference).
    #[default]
    Cpu,
    /// CUDA device number `ordinal` (as the driver counts them, i.e. after
    /// `CUDA_VISIBLE_DEVICES`).
    Cuda {
        /// Device ordinal.
        ordinal: usize,
    },
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda { ordinal: 0 } => f.write_str("cuda"),
            Device::Cuda { ordinal } => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl FromStr for Device {
    type Err = DeviceError;

    /// `cpu`, `cuda` (= `cuda:0`; `gpu` is an alias) or `cuda:N`, case-insensitive,
    /// surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda { ordinal: 0 }),
            _ => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|ordinal| Device::Cuda { ordinal })
                .ok_or_else(|| DeviceError::Unknown(s.to_owned())),
        }
    }
}

/// Why a device cannot be used. Every variant is about the environment or the caller, never a
/// peer; messages name the device and the missing piece.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device name does not parse.
    #[error("unknown device {0:?} (expected cpu, cuda or cuda:N)")]
    Unknown(String),
    /// CUDA was asked for but this binary was built without the `gpu` feature.
    #[error("device {0} requested, but this build has no GPU support (build with --features gpu)")]
    NotBuilt(Device),
    /// No CUDA driver library could be loaded.
    #[error(
        "device {0} requested, but no CUDA driver was found (libcuda.so could not be loaded; \
         is an NVIDIA driver installed?)"
    )]
    NoDriver(Device),
    /// No NVRTC library could be loaded (kernels are compiled at run time).
    #[error(
        "device {0} requested, but the NVRTC runtime compiler was not found (libnvrtc.so.12 \
         could not be loaded; install the CUDA toolkit or `pip install nvidia-cuda-nvrtc-cu12` \
         and put its lib folder on LD_LIBRARY_PATH)"
    )]
    NoNvrtc(Device),
    /// The driver loaded but the device could not be opened (none present, bad ordinal,
    /// driver too old, out of memory …).
    #[error("device {device} could not be opened: {reason}")]
    Unavailable {
        /// The device asked for.
        device: Device,
        /// What the driver said.
        reason: String,
    },
    /// The process already runs on another device (the choice is made once).
    #[error("this process already runs on {current}; it cannot switch to {requested}")]
    AlreadySelected {
        /// The device in use.
        current: Device,
        /// The device asked for.
        requested: Device,
    },
}

/// What runs the kernels, for logs and bench reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device.
    pub device: Device,
    /// Marketing name (`NVIDIA H100 80GB HBM3`), or `cpu (avx512)` for the CPU.
    pub name: String,
    /// CUDA compute capability (major, minor); `None` on the CPU.
    pub compute_capability: Option<(u32, u32)>,
    /// Device memory in bytes; `None` on the CPU.
    pub memory_bytes: Option<u64>,
}

/// The device named by [`DEVICE_ENV`]; [`Device::Cpu`] when it is unset or empty.
pub fn device_from_env() -> Result<Device, DeviceError> {
    match std::env::var(DEVICE_ENV) {
        Ok(v) if !v.trim().is_empty() => v.parse(),
        _ => Ok(Device::Cpu),
    }
}

/// The process's device once chosen.
enum Active {
    Cpu,
    #[cfg(feature = "gpu")]
    Cuda(std::sync::Arc<crate::gpu::Gpu>),
}

impl Active {
    fn device(&self) -> Device {
        match self {
            Active::Cpu => Device::Cpu,
            #[cfg(feature = "gpu")]
            Active::Cuda(gpu) => gpu.info().device,
        }
    }

    fn info(&self) -> DeviceInfo {
        match self {
            Active::Cpu => DeviceInfo {
                device: Device::Cpu,
                name: format!("cpu ({})", crate::kernels::simd_level().name()),
                compute_capability: None,
                memory_bytes: None,
            },
            #[cfg(feature = "gpu")]
            Active::Cuda(gpu) => gpu.info().clone(),
        }
    }

    fn open(device: Device) -> Result<Active, DeviceError> {
        match device {
            Device::Cpu => Ok(Active::Cpu),
            #[cfg(feature = "gpu")]
            Device::Cuda { ordinal } => crate::gpu::Gpu::open(ordinal)
                .map(Active::Cuda)
                .map_err(|e| e.into_device_error(device)),
            #[cfg(not(feature = "gpu"))]
            Device::Cuda { .. } => Err(DeviceError::NotBuilt(device)),
        }
    }
}

static ACTIVE: OnceLock<Active> = OnceLock::new();

/// Chooses the device of this process (once): opens it (for CUDA: loads the driver, creates the
/// context; kernels are compiled on first use) and returns what it is. Calling it again with the
/// same device returns the same info; with another device it is
/// [`DeviceError::AlreadySelected`]. On error nothing is chosen, so the caller may fall back to
/// [`Device::Cpu`].
pub fn select_device(device: Device) -> Result<DeviceInfo, DeviceError> {
    static INIT: Mutex<()> = Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(active) = ACTIVE.get() {
        let current = active.device();
        if current != device {
            return Err(DeviceError::AlreadySelected {
                current,
                requested: device,
            });
        }
        return Ok(active.info());
    }
    let active = Active::open(device)?;
    let info = active.info();
    // Under `INIT`, nothing else sets `ACTIVE`.
    let _ = ACTIVE.set(active);
    Ok(info)
}

/// The process's device, choosing it from [`DEVICE_ENV`] on first use if [`select_device`] was
/// not called. If the environment asks for a device that cannot run, this says why once on
/// stderr and the process stays on the CPU.
fn active() -> &'static Active {
    if let Some(active) = ACTIVE.get() {
        return active;
    }
    let chosen = device_from_env().and_then(select_device);
    if let Err(e) = chosen {
        eprintln!("veil: {DEVICE_ENV}: {e}; running on the CPU");
        // Fails only if another thread chose meanwhile; either way `ACTIVE` is set now.
        let _ = select_device(Device::Cpu);
    }
    ACTIVE.get().expect("a device was chosen above")
}

/// The device this process runs its kernels on (chosen on first call, see [`select_device`]).
pub fn active_device() -> DeviceInfo {
    active().info()
}

/// The process's GPU, if it runs on one.
#[cfg(feature = "gpu")]
pub(crate) fn active_gpu() -> Option<&'static std::sync::Arc<crate::gpu::Gpu>> {
    match active() {
        Active::Cuda(gpu) => Some(gpu),
        Active::Cpu => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print() {
        for (s, d) in [
            ("cpu", Device::Cpu),
            (" CPU ", Device::Cpu),
            ("cuda", Device::Cuda { ordinal: 0 }),
            ("cuda:0", Device::Cuda { ordinal: 0 }),
            ("cuda:3", Device::Cuda { ordinal: 3 }),
        ] {
            assert_eq!(s.parse::<Device>(), Ok(d), "{s}");
        }
        assert_eq!(Device::Cuda { ordinal: 0 }.to_string(), "cuda");
        assert_eq!(Device::Cuda { ordinal: 2 }.to_string(), "cuda:2");
        for bad in ["", "tpu", "cuda:", "cuda:x", "cuda:-1"] {
            assert_eq!(
                bad.parse::<Device>(),
                Err(DeviceError::Unknown(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_say_what_is_missing() {
        let d = Device::Cuda { ordinal: 0 };
        assert!(
            DeviceError::NotBuilt(d)
                .to_string()
                .contains("--features gpu")
        );
        assert!(DeviceError::NoDriver(d).to_string().contains("libcuda"));
        assert!(
            DeviceError::NoNvrtc(d)
                .to_string()
                .contains("LD_LIBRARY_PATH")
        );
    }

    #[cfg(not(feature = "gpu"))]
    #[test]
    fn cuda_without_the_feature_is_a_typed_error() {
        assert_eq!(
            Active::open(Device::Cuda { ordinal: 0 }).err(),
            Some(DeviceError::NotBuilt(Device::Cuda { ordinal: 0 }))
        );
    }
}
