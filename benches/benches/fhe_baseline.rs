//! Baseline for veil's private-retrieval scan: the same computation done with tfhe's
//! high-level integer API, so the scan's speedup can be quoted against a general-purpose FHE
//! library rather than against nothing.
//!
//! The computation is one document's score `Σ_j q[j] · D[r][j]`: a clear int8 corpus row
//! `D[r]` (64 dims) against an int8 query `q` encrypted element-wise as [`FheInt32`] with
//! `ConfigBuilder::default()` parameters (`|Σ| ≤ 64·128·128 = 2^20`, so 32 bits is the
//! smallest `FheIntN` that holds it). What a server does per document is timed: 64 scalar
//! (clear-operand) multiplications `&enc_q[j] * |D[r][j]|` and the encrypted sums of the
//! positive and the negative terms (tfhe's `Sum`, which its docs recommend over chained `+`),
//! then one subtraction. Multiplying by `|d|` rather than by `d as i32` keeps the baseline
//! fair: tfhe's scalar multiplication costs one addition per set bit of the 32-bit scalar, so
//! a negative `d` would cost several times more (see [`fhe_dot`]).
//!
//! Group `fhe_baseline` (throughput: documents):
//! - `fheint32_dot/64`: the encrypted dot product of one document; iterations cycle through a
//!   fixed 8-document corpus, so the time averages over 8 sets of scalars (tfhe's scalar
//!   multiplication cost depends on the scalar's bits).
//! - `plaintext_dot/64`: the same dot product in the clear, for reference.
//!
//! Key generation, encryption and decryption are outside the timed part; key generation time
//! is printed once. Before timing, one document's encrypted score is decrypted and checked
//! against the plaintext one, so the bench cannot time a wrong computation.
//!
//! **Slow:** one encrypted document takes about a minute on 2 cores (median 64.6 s), and
//! criterion needs at least 10 samples plus a warm-up iteration, so with the pre-timing check
//! the bench runs ~12 documents (~15 minutes) whatever `--measurement-time` says.
//!
//! `cargo bench -p veil-benches --bench fhe_baseline -- --warm-up-time 1 --measurement-time 20`

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Instant;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tfhe::prelude::*;
use tfhe::{ClientKey, ConfigBuilder, FheInt32, generate_keys, set_server_key};

/// Query and document dimension.
const DIM: usize = 64;
/// Documents in the corpus; timed iterations cycle through them.
const DOCS: usize = 8;

/// The server's work for one document: scalar multiplications by the clear row, then
/// encrypted sums.
///
/// tfhe's scalar multiplication adds one shifted copy of the ciphertext per set bit of the
/// scalar (over all 32 bits), so multiplying by a negative `i8` cast to `i32` (~25 set bits)
/// costs several times multiplying by its magnitude (≤ 7). A server therefore multiplies by
/// `|d|` and subtracts the negative terms: `Σ_{d>0} q·d − Σ_{d<0} q·|d|`, the same value.
fn fhe_dot(enc_q: &[FheInt32], row: &[i8]) -> FheInt32 {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for (e, &d) in enc_q.iter().zip(row).filter(|(_, d)| **d != 0) {
        let prod = e * i32::from(d.unsigned_abs());
        if d > 0 {
            pos.push(prod)
        } else {
            neg.push(prod)
        }
    }
    let sum = |v: Vec<FheInt32>| {
        if v.is_empty() {
            None
        } else {
            Some(v.into_iter().sum::<FheInt32>())
        }
    };
    match (sum(pos), sum(neg)) {
        (Some(p), Some(n)) => p - n,
        (Some(p), None) => p,
        (None, Some(n)) => -n,
        // An all-zero row.
        (None, None) => FheInt32::encrypt_trivial(0i32),
    }
}

fn plain_dot(q: &[i8], row: &[i8]) -> i32 {
    q.iter()
        .zip(row)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

fn fheint32_dot(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let corpus: Vec<Vec<i8>> = (0..DOCS)
        .map(|_| (0..DIM).map(|_| rng.random()).collect())
        .collect();
    let query: Vec<i8> = (0..DIM).map(|_| rng.random()).collect();

    let t = Instant::now();
    let (client_key, server_key): (ClientKey, _) = generate_keys(ConfigBuilder::default());
    eprintln!("fhe_baseline: generate_keys took {:.2?}", t.elapsed());
    // The high-level API's server key is thread-local; criterion runs the closures on this
    // thread (tfhe's internal rayon work gets the key passed down), so setting it once is enough.
    set_server_key(server_key);

    let t = Instant::now();
    let enc_q: Vec<FheInt32> = query
        .iter()
        .map(|&x| FheInt32::encrypt(i32::from(x), &client_key))
        .collect();
    eprintln!(
        "fhe_baseline: encrypting the {DIM}-element query took {:.2?}",
        t.elapsed()
    );

    // One document is enough to check the computation (every document runs the same code);
    // each takes about a minute on 2 cores.
    let t = Instant::now();
    let got: i32 = fhe_dot(&enc_q, &corpus[0]).decrypt(&client_key);
    assert_eq!(
        got,
        plain_dot(&query, &corpus[0]),
        "FHE dot product is wrong"
    );
    eprintln!(
        "fhe_baseline: one checked document (dot product + decryption) took {:.2?}",
        t.elapsed()
    );

    let mut g = c.benchmark_group("fhe_baseline");
    g.throughput(Throughput::Elements(1));

    // One iteration takes seconds: 10 samples of (usually) one iteration each. Warm-up and
    // measurement time come from the command line.
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut r = 0;
    g.bench_with_input(BenchmarkId::new("fheint32_dot", DIM), &enc_q, |b, enc_q| {
        b.iter(|| {
            r = (r + 1) % DOCS;
            fhe_dot(black_box(enc_q), black_box(&corpus[r]))
        })
    });

    g.sampling_mode(SamplingMode::Auto);
    let mut r = 0;
    g.bench_with_input(
        BenchmarkId::new("plaintext_dot", DIM),
        &query,
        |b, query| {
            b.iter(|| {
                r = (r + 1) % DOCS;
                plain_dot(black_box(query), black_box(&corpus[r]))
            })
        },
    );
    g.finish();
}

criterion_group!(benches, fheint32_dot);
criterion_main!(benches);
