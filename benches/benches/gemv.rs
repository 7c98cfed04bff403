//! Benchmarks of the i8 × u64 GEMV over Z_2^64, the server kernel of private retrieval.
//!
//! Group `fhe_gemv`, two shapes past every cache: 1000 × 49 152 (49 MB, long rows) and
//! 100 000 × 384 (38 MB, the row length of a corpus of 384-byte embeddings; 1/10 of the
//! 1 000 000-document corpus). Ids: `scalar` (the reference loop), `baseline` (the portable limb
//! path), `single` (one thread, run-time chosen SIMD level), `par_q1` and `par_q4` (rayon over
//! row blocks, 1 and 4 queries in one pass over the matrix). Throughput is in bytes of the matrix
//! per call (for `par_q4`, one pass serves four queries), so ratios and GB/s come out of one run.
//!
//! `cargo bench -p veil-benches --bench gemv -- --warm-up-time 1 --measurement-time 3`

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_runtime::kernels::{self, PreparedVector, SimdLevel, gemv_i8};

/// Matrix shapes, rows × cols of i8.
const SHAPES: [(usize, usize); 2] = [(1000, 49_152), (100_000, 384)];

fn fhe_gemv(c: &mut Criterion) {
    eprintln!(
        "gemv: dispatching at SIMD level {:?}, {} CPUs",
        kernels::simd_level(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut g = c.benchmark_group("fhe_gemv");
    g.sample_size(10);
    for (rows, cols) in SHAPES {
        let d: Vec<i8> = (0..rows * cols).map(|_| rng.random()).collect();
        let bs: Vec<Vec<u64>> = (0..4)
            .map(|_| (0..cols).map(|_| rng.random()).collect())
            .collect();
        let queries: Vec<PreparedVector> = bs.iter().map(|b| PreparedVector::new(b)).collect();
        let shape = format!("{rows}x{cols}");
        g.throughput(Throughput::Bytes(d.len() as u64));
        g.bench_with_input(BenchmarkId::new("scalar", &shape), &d, |bench, d| {
            bench.iter(|| kernels::gemv_i8_u64_scalar(black_box(d), rows, &bs[0]))
        });
        g.bench_with_input(BenchmarkId::new("baseline", &shape), &d, |bench, d| {
            bench.iter(|| {
                gemv_i8::at_level::gemv_i8_u64(SimdLevel::Baseline, black_box(d), rows, &queries[0])
            })
        });
        g.bench_with_input(BenchmarkId::new("single", &shape), &d, |bench, d| {
            bench.iter(|| kernels::gemv_i8_u64(black_box(d), rows, &queries[0]))
        });
        for nq in [1, 4] {
            let id = BenchmarkId::new(format!("par_q{nq}"), &shape);
            g.bench_with_input(id, &d, |bench, d| {
                bench.iter(|| kernels::par_gemm_i8_u64(black_box(d), rows, &queries[..nq]))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, fhe_gemv);
criterion_main!(benches);
