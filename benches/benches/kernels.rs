//! Benchmarks of the Z_2^64 slice kernels and the u64 GEMM.
//!
//! Groups: `kernels/mul_add`, `kernels/dot` (ids `dispatch` = the run-time chosen SIMD level,
//! `baseline` = the same loop compiled for the target baseline), `kernels/gemm` (ids `serial`,
//! `par`, `baseline` = serial at the baseline level, `naive` = the scalar triple loop), so ratios
//! come out of one run, and `kernels/gemv` (the n = 1 path: ids `dispatch`, `row_dots`, `naive`).
//! `kernels/gemm32` times the replicated mod-2^32 matrix-product terms on compact operands in
//! the two shapes of blocked retrieval (ids `scores_*`: E·q, E 16,384 × 384, n = 1; `fetch_*`:
//! onehot·T, 16 × 16,384 · 16,384 × 64), each with both components explicit (`words`) or one
//! seeded (`seeded`, ChaCha20 expansion included), beside the Z_2^64 kernel on the same shape
//! (`u64`). Throughput is in elements (GEMM and GEMV: multiply-adds).
//!
//! `cargo bench -p veil-benches --bench kernels -- --warm-up-time 1 --measurement-time 2`

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_runtime::kernels::{self, SimdLevel, gemm, ring, scalar};

const SIZES: [usize; 3] = [1 << 10, 1 << 16, 1 << 20];

fn random_vec(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.random()).collect()
}

fn mul_add(c: &mut Criterion) {
    eprintln!(
        "kernels: dispatching at SIMD level {:?}",
        kernels::simd_level()
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("kernels/mul_add");
    for n in SIZES {
        let (a, b) = (random_vec(&mut rng, n), random_vec(&mut rng, n));
        let mut out = random_vec(&mut rng, n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("dispatch", n), &n, |bench, _| {
            bench.iter(|| kernels::ring_mul_add_assign(black_box(&mut out), &a, &b))
        });
        g.bench_with_input(BenchmarkId::new("baseline", n), &n, |bench, _| {
            bench.iter(|| {
                ring::at_level::ring_mul_add_assign(
                    SimdLevel::Baseline,
                    black_box(&mut out),
                    &a,
                    &b,
                )
            })
        });
    }
    g.finish();
}

fn dot(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut g = c.benchmark_group("kernels/dot");
    for n in SIZES {
        let (a, b) = (random_vec(&mut rng, n), random_vec(&mut rng, n));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("dispatch", n), &n, |bench, _| {
            bench.iter(|| kernels::ring_dot(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("baseline", n), &n, |bench, _| {
            bench.iter(|| {
                ring::at_level::ring_dot(SimdLevel::Baseline, black_box(&a), black_box(&b))
            })
        });
    }
    g.finish();
}

fn gemm(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut g = c.benchmark_group("kernels/gemm");
    g.sample_size(10);
    for n in [128, 256] {
        let (a, b) = (random_vec(&mut rng, n * n), random_vec(&mut rng, n * n));
        let mut out = random_vec(&mut rng, n * n);
        g.throughput(Throughput::Elements((n * n * n) as u64));
        g.bench_with_input(BenchmarkId::new("serial", n), &n, |bench, &n| {
            bench.iter(|| kernels::gemm_u64_add_assign(n, n, n, &a, &b, black_box(&mut out)))
        });
        g.bench_with_input(BenchmarkId::new("par", n), &n, |bench, &n| {
            bench.iter(|| kernels::par_gemm_u64_add_assign(n, n, n, &a, &b, black_box(&mut out)))
        });
        g.bench_with_input(BenchmarkId::new("baseline", n), &n, |bench, &n| {
            bench.iter(|| {
                gemm::at_level::gemm_u64_add_assign(
                    SimdLevel::Baseline,
                    n,
                    n,
                    n,
                    &a,
                    &b,
                    black_box(&mut out),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("naive", n), &n, |bench, &n| {
            bench.iter(|| scalar::gemm_u64_add_assign(n, n, n, &a, &b, black_box(&mut out)))
        });
    }
    g.finish();
}

/// Matrix–vector products (n = 1), the shape of private retrieval's scores: a 25,000 × 384
/// matrix (77 MB) times a vector. `dispatch` is `gemm_u64_add_assign` (its n = 1 path),
/// `row_dots` one `ring_dot` per row, `naive` the scalar triple loop.
fn gemv(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut g = c.benchmark_group("kernels/gemv");
    g.sample_size(10);
    let (m, k) = (25_000, 384);
    let (a, b) = (random_vec(&mut rng, m * k), random_vec(&mut rng, k));
    let mut out = random_vec(&mut rng, m);
    g.throughput(Throughput::Elements((m * k) as u64));
    g.bench_function("dispatch", |bench| {
        bench.iter(|| kernels::gemm_u64_add_assign(m, k, 1, &a, &b, black_box(&mut out)))
    });
    g.bench_function("row_dots", |bench| {
        bench.iter(|| {
            for (o, row) in out.iter_mut().zip(a.chunks_exact(k)) {
                *o = o.wrapping_add(kernels::ring_dot(row, &b));
            }
            black_box(&mut out);
        })
    });
    g.bench_function("naive", |bench| {
        bench.iter(|| scalar::gemm_u64_add_assign(m, k, 1, &a, &b, black_box(&mut out)))
    });
    g.finish();
}

/// The replicated mod-2^32 matrix-product terms over compact operands (see the module docs).
fn gemm32(c: &mut Criterion) {
    use veil_runtime::sharing::Comp32;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut g = c.benchmark_group("kernels/gemm32");
    g.sample_size(10);
    let words =
        |rng: &mut ChaCha20Rng, n: usize| -> Vec<u32> { (0..n).map(|_| rng.random()).collect() };
    for (name, (m, k, n), seeded_x) in [
        ("scores", (1usize << 14, 384usize, 1usize), true),
        ("fetch", (16, 1 << 14, 64), false),
    ] {
        let seeded = |len: usize| Comp32::seeded([7; 32], 0, len).expect("in range");
        let (x, y) = (
            Comp32::words(words(&mut rng, m * k)),
            Comp32::words(words(&mut rng, k * n)),
        );
        let (xs, ys) = if seeded_x {
            (seeded(m * k), y.clone())
        } else {
            (x.clone(), seeded(k * n))
        };
        let mut out = vec![0u32; m * n];
        g.throughput(Throughput::Elements((m * k * n) as u64));
        for (id, (a, b)) in [("words", (&x, &y)), ("seeded", (&xs, &ys))] {
            g.bench_function(BenchmarkId::new(name, id), |bench| {
                bench.iter(|| {
                    kernels::rep3_matmul32_add_assign(
                        (m, k, n),
                        a.src(),
                        x.src(),
                        b.src(),
                        y.src(),
                        black_box(&mut out),
                    )
                })
            });
        }
        let (a, b) = (random_vec(&mut rng, m * k), random_vec(&mut rng, k * n));
        let mut out = vec![0u64; m * n];
        g.bench_function(BenchmarkId::new(name, "u64"), |bench| {
            bench.iter(|| {
                kernels::rep3_matmul_add_assign((m, k, n), &a, &a, &b, &b, black_box(&mut out))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, mul_add, dot, gemm, gemv, gemm32);
criterion_main!(benches);
