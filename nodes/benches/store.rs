//! Benchmarks of the node's share store (redb): writing and reading one invocation's result.
//!
//! Group `store`, a result of one output with n = 1 000 000 elements (the node's two
//! components: 16 MB), in a database under the temp dir. `put_result` is one durable write
//! transaction (encode, insert, commit with fsync), each into a fresh id that is deleted
//! outside the timed part; `get_result` reads and decodes it back. Throughput is in bytes of
//! share words, so the MB/s compare with the link's rate.
//!
//! `cargo bench -p veil-node --bench store -- --warm-up-time 1 --measurement-time 5`
// criterion_group! and criterion_main! generate undocumented items.
#![allow(missing_docs)]

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_node::store::{Store, StoredResult};

const N: usize = 1_000_000;

fn store(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("veil-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = Store::open(&dir.join("store.redb")).expect("open store");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut words = || (0..N).map(|_| rng.random()).collect::<Vec<u64>>();
    let result = StoredResult {
        recipient: "alice".into(),
        outputs: vec![("z".into(), words(), words())],
        rounds: 1,
        bytes_sent: 8 * N as u64,
        security: Default::default(),
    };

    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(16 * N as u64));
    let mut next_id = 0u64;
    g.bench_function("put_result/1M", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                next_id += 1;
                let id = format!("r{next_id}");
                let t = Instant::now();
                db.put_result(&id, black_box(&result)).expect("put");
                spent += t.elapsed();
                db.delete_result_for(&id, "alice").expect("delete");
            }
            spent
        })
    });
    db.put_result("kept", &result).expect("put");
    g.bench_function("get_result/1M", |b| {
        b.iter(|| db.get_result(black_box("kept")).expect("get"))
    });
    g.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, store);
criterion_main!(benches);
