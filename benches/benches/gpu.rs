//! CPU versus GPU for every GPU kernel, host↔device copies included (feature `gpu`).
//!
//! Groups `gpu/mul`, `gpu/dot`, `gpu/matmul`, `gpu/fhe_scan`, `gpu/aes_ctr`, `gpu/and`; in each,
//! id `cpu` is the CPU twin (the baseline, same inputs, same run) and id `cuda` the GPU kernel,
//! timed from host slices to host slices (uploads, launch, download). `gpu/fhe_scan` keeps its
//! matrix resident on the device (uploaded once, outside the timed loop) and moves only the
//! query and the answers per call. Without a CUDA driver or device only the `cpu` ids run, and
//! the reason is printed.
//!
//! `cargo bench -p veil-benches --features gpu --bench gpu -- --warm-up-time 1 --measurement-time 3`

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::{Arc, OnceLock};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_runtime::gpu::{DeviceAesCtr, Gpu, ResidentI8Matrix};
use veil_runtime::kernels::{self, AesCtr, PreparedVector};

/// The GPU, opened once; `None` (with the reason printed once) without a driver or device.
fn gpu() -> Option<&'static Arc<Gpu>> {
    static GPU: OnceLock<Option<Arc<Gpu>>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::open(0) {
        Ok(gpu) => {
            let info = gpu.info();
            eprintln!(
                "gpu: {} (compute capability {:?}, {} GiB)",
                info.name,
                info.compute_capability.unwrap_or_default(),
                info.memory_bytes.unwrap_or_default() >> 30
            );
            Some(gpu)
        }
        Err(e) => {
            eprintln!("gpu: no CUDA device ({e}); only the cpu baselines run");
            None
        }
    })
    .as_ref()
}

fn words(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.random()).collect()
}

fn mul(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("gpu/mul");
    for n in [1 << 16, 1 << 20, 1 << 24] {
        let [x0, x1, y0, y1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, n));
        let mut z = vec![0u64; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("cpu", n), &n, |b, _| {
            b.iter(|| kernels::rep3_cross_add_assign(black_box(&mut z), &x0, &x1, &y0, &y1))
        });
        if let Some(gpu) = gpu() {
            g.bench_with_input(BenchmarkId::new("cuda", n), &n, |b, _| {
                b.iter(|| gpu.rep3_cross_add_assign(black_box(&mut z), &x0, &x1, &y0, &y1))
            });
        }
    }
    g.finish();
}

fn dot(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut g = c.benchmark_group("gpu/dot");
    for rows in [1000, 10_000, 100_000] {
        let cols = 384;
        let [x0, x1, y0, y1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, rows * cols));
        let mut z = vec![0u64; rows];
        let id = format!("{rows}x{cols}");
        g.throughput(Throughput::Elements((rows * cols) as u64));
        g.bench_with_input(BenchmarkId::new("cpu", &id), &rows, |b, _| {
            b.iter(|| {
                kernels::rep3_dot_rows_add_assign(cols, black_box(&mut z), &x0, &x1, &y0, &y1)
            })
        });
        if let Some(gpu) = gpu() {
            g.bench_with_input(BenchmarkId::new("cuda", &id), &rows, |b, _| {
                b.iter(|| gpu.rep3_dot_rows_add_assign(cols, black_box(&mut z), &x0, &x1, &y0, &y1))
            });
        }
    }
    g.finish();
}

fn matmul(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut g = c.benchmark_group("gpu/matmul");
    g.sample_size(10);
    for n in [128, 512, 1024] {
        let [x0, x1, y0, y1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, n * n));
        let mut z = vec![0u64; n * n];
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64)); // multiply-adds
        g.bench_with_input(BenchmarkId::new("cpu", n), &n, |b, _| {
            b.iter(|| {
                kernels::rep3_matmul_add_assign((n, n, n), &x0, &x1, &y0, &y1, black_box(&mut z))
            })
        });
        if let Some(gpu) = gpu() {
            g.bench_with_input(BenchmarkId::new("cuda", n), &n, |b, _| {
                b.iter(|| {
                    gpu.rep3_matmul_add_assign((n, n, n), &x0, &x1, &y0, &y1, black_box(&mut z))
                })
            });
        }
    }
    g.finish();
}

fn fhe_scan(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut g = c.benchmark_group("gpu/fhe_scan");
    g.sample_size(10);
    let cols = 2048;
    for rows in [1024, 16_384] {
        let d: Vec<i8> = (0..rows * cols).map(|_| rng.random()).collect();
        let q = [PreparedVector::new(&words(&mut rng, cols))];
        let id = format!("{rows}x{cols}");
        g.throughput(Throughput::Bytes((rows * cols) as u64));
        g.bench_with_input(BenchmarkId::new("cpu", &id), &rows, |b, _| {
            b.iter(|| kernels::par_gemm_i8_u64(black_box(&d), rows, &q))
        });
        if let Some(gpu) = gpu() {
            let resident = ResidentI8Matrix::upload(gpu, &d, rows, cols).expect("upload");
            g.bench_with_input(BenchmarkId::new("cuda", &id), &rows, |b, _| {
                b.iter(|| resident.gemm(black_box(&q)))
            });
        }
    }
    g.finish();
}

fn aes_ctr(c: &mut Criterion) {
    let mut g = c.benchmark_group("gpu/aes_ctr");
    let key = [7u8; 16];
    let cpu = AesCtr::new(&key);
    let dev = gpu().map(|gpu| DeviceAesCtr::new(gpu, &key).expect("key upload"));
    for n in [1 << 16, 1 << 20, 1 << 24] {
        let mut out = vec![0u64; n];
        g.throughput(Throughput::Bytes(8 * n as u64));
        g.bench_with_input(BenchmarkId::new("cpu", n), &n, |b, _| {
            b.iter(|| cpu.fill_at(3, 0, black_box(&mut out)))
        });
        if let Some(dev) = &dev {
            g.bench_with_input(BenchmarkId::new("cuda", n), &n, |b, _| {
                b.iter(|| dev.fill_at(3, 0, black_box(&mut out)))
            });
        }
    }
    g.finish();
}

fn and(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut g = c.benchmark_group("gpu/and");
    for n in [1 << 16, 1 << 20, 1 << 24] {
        let [a0, a1, b0, b1]: [Vec<u64>; 4] = std::array::from_fn(|_| words(&mut rng, n));
        let mut z = vec![0u64; n];
        g.throughput(Throughput::Elements(64 * n as u64)); // AND gates
        g.bench_with_input(BenchmarkId::new("cpu", n), &n, |b, _| {
            b.iter(|| kernels::rep3_and_cross_xor_assign(black_box(&mut z), &a0, &a1, &b0, &b1))
        });
        if let Some(gpu) = gpu() {
            g.bench_with_input(BenchmarkId::new("cuda", n), &n, |b, _| {
                b.iter(|| gpu.rep3_and_cross_xor_assign(black_box(&mut z), &a0, &a1, &b0, &b1))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, mul, dot, matmul, fhe_scan, aes_ctr, and);
criterion_main!(benches);
