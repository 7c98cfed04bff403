//! `veil bench --device`: the CPU runs, an unknown device is a usage error, and CUDA in a build
//! without the `gpu` feature is refused with a message that says how to get it (never a panic).

use std::process::Command;

fn bench(device: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "bench", "--ops", "mul", "--size", "8", "--reps", "1", "--json",
        ])
        .args(["--device", device])
        .output()
        .expect("run veil")
}

#[test]
fn the_cpu_device_runs_the_bench() {
    let out = bench("cpu");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("veil bench: device cpu"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"op\":\"mul\""));
}

#[test]
fn an_unknown_device_is_a_usage_error() {
    let out = bench("tpu");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown device"), "{stderr}");
}

#[cfg(not(feature = "gpu"))]
#[test]
fn cuda_without_the_feature_says_how_to_build_it() {
    let out = bench("cuda");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no GPU support"), "{stderr}");
    assert!(stderr.contains("--features gpu"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was measured");
}
