//! `veil bench --device`: choose where this process's kernels run, and with a GPU, time each
//! kernel on the CPU and the GPU side by side (host↔device copies included).

use anyhow::Result;
use veil_runtime::device::{Device, select_device};

/// Selects `device` for this process (once, before any op runs) and says what it is. Without
/// the `gpu` feature, or without a driver, a device or NVRTC, asking for CUDA is an error that
/// names the missing piece. Over `--transport grpc` the node processes choose their own device
/// from `VEIL_DEVICE`.
pub fn use_device(device: Device, reps: usize, json: bool) -> Result<()> {
    let info = select_device(device)?;
    let mut what = info.name.clone();
    if let Some((major, minor)) = info.compute_capability {
        what += &format!(", compute capability {major}.{minor}");
    }
    if let Some(bytes) = info.memory_bytes {
        what += &format!(", {:.1} GiB", bytes as f64 / (1u64 << 30) as f64);
    }
    eprintln!("veil bench: device {device} ({what})");
    kernels_beside_cpu(device, reps, json)
}

/// With a GPU: every kernel at the sizes of the issue's goals on the CPU and the GPU.
#[cfg(feature = "gpu")]
fn kernels_beside_cpu(device: Device, reps: usize, json: bool) -> Result<()> {
    use veil_runtime::gpu::Gpu;
    use veil_runtime::gpu::bench::{KernelBenchSizes, run_kernel_benches};
    let Device::Cuda { ordinal } = device else {
        return Ok(());
    };
    let gpu = Gpu::open(ordinal)?;
    eprintln!("veil bench: kernels on the CPU and the GPU (copies included)…");
    for t in run_kernel_benches(Some(&gpu), &KernelBenchSizes::issue_goals(), reps.max(1))? {
        if json {
            println!("{}", t.to_json());
        } else {
            let gpu_s = t.gpu_median_s.map_or("-".into(), |s| format!("{s:.6}"));
            println!(
                "kernel {:<9} {:<18} cpu {:.6} s  gpu {gpu_s} s  matches cpu: {}",
                t.kernel, t.size, t.cpu_median_s, t.matches_cpu
            );
        }
    }
    Ok(())
}

/// Without the `gpu` feature there is no GPU to compare with (`select_device` refused CUDA).
#[cfg(not(feature = "gpu"))]
fn kernels_beside_cpu(_device: Device, _reps: usize, _json: bool) -> Result<()> {
    Ok(())
}
