//! Benchmarks of the TFHE retrieval path end to end, beside plaintext search in the same run.
//!
//! Group `fhe_score`, a synthetic corpus of 100,000 documents × 384 dimensions (prepared once,
//! outside timing): `server` (one encrypted query scanned: the GEMV over ≈ 38 MB), `server_q4`
//! (four queries in one pass), `client_encrypt` (fresh key + seeded GLWE list), `client_decode`
//! (hint inner products + top-8), and `plaintext_search` (the same int8 scores of all documents
//! in the clear + top-8). Group `fhe_fetch`: one of 10,000 passages of 512 bytes by linear PIR.
//! The FheInt baseline lives in `fhe_baseline.rs`, the bare kernel in `gemv.rs`.
//!
//! `cargo bench -p veil-benches --bench fhe -- --warm-up-time 1 --measurement-time 5`

/// Same allocator as the `veil` binary, so benches measure what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_runtime::fhe::corpus::{best_k, quantise_query};
use veil_runtime::fhe::{Clustering, FetchQuery, PassageDb, ScoreQuery, ScoringCorpus};

const DOCS: usize = 100_000;
const DIM: usize = 384;
const PASSAGES: usize = 10_000;
const PASSAGE_BYTES: usize = 512;

fn fhe_score(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let emb: Vec<f32> = (0..DOCS * DIM)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let clusters = Clustering::default_clusters(DOCS, DIM);
    let corpus =
        ScoringCorpus::prepare(&emb, DIM, Clustering::RandomBalanced { clusters, seed: 1 })
            .expect("synthetic corpus fits the budget");
    drop(emb);
    let hint = corpus.db.hint();
    let q: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
    let qq = quantise_query(&q).expect("non-zero query");
    let (query, ct) = ScoreQuery::new(&corpus.info, &q).expect("query encrypts");
    let answer = corpus.score(&ct).expect("server answers");
    let cluster = query.cluster();
    // Outside timing: the encrypted result must equal plaintext, or the numbers mean nothing.
    let got = best_k(
        query.decode(&corpus.info, &hint, &answer).expect("decodes"),
        8,
    );
    assert_eq!(got, best_k(corpus.plaintext_scores(cluster, &qq), 8));
    let batch: Vec<_> = (0..4)
        .map(|_| ScoreQuery::new(&corpus.info, &q).expect("encrypts").1)
        .collect();

    let mut g = c.benchmark_group("fhe_score");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(corpus.db.scan_bytes() as u64));
    g.bench_function(format!("server/{DOCS}x{DIM}"), |b| {
        b.iter(|| corpus.score(black_box(&ct)).expect("answers"))
    });
    g.bench_function(format!("server_q4/{DOCS}x{DIM}"), |b| {
        b.iter(|| corpus.db.answer_batch(black_box(&batch)).expect("answers"))
    });
    g.bench_function(format!("plaintext_search/{DOCS}x{DIM}"), |b| {
        b.iter(|| corpus.plaintext_search(black_box(&qq), 8))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("client_encrypt/{DOCS}x{DIM}"), |b| {
        b.iter(|| ScoreQuery::new(&corpus.info, black_box(&q)).expect("encrypts"))
    });
    g.bench_function(format!("client_decode/{DOCS}x{DIM}"), |b| {
        b.iter_batched(
            || ScoreQuery::new(&corpus.info, &q).expect("encrypts").0,
            |query| {
                best_k(
                    query
                        .decode(&corpus.info, &hint, black_box(&answer))
                        .expect("decodes"),
                    8,
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn fhe_fetch(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let passages: Vec<Vec<u8>> = (0..PASSAGES)
        .map(|_| {
            (0..PASSAGE_BYTES)
                .map(|_| rng.random_range(b' '..=b'~'))
                .collect()
        })
        .collect();
    let db = PassageDb::new(&passages).expect("passages fit");
    let hint = db.db().hint();
    let (fetch, ct) = FetchQuery::new(db.db().shape(), 1234).expect("encrypts");
    let answer = db
        .answer_batch(std::slice::from_ref(&ct))
        .expect("answers")
        .remove(0);
    assert_eq!(
        fetch.decode(&hint, &answer).expect("decodes"),
        passages[1234]
    );

    let mut g = c.benchmark_group("fhe_fetch");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(db.db().scan_bytes() as u64));
    g.bench_function(format!("server/{PASSAGES}x{PASSAGE_BYTES}"), |b| {
        b.iter(|| {
            db.answer_batch(black_box(std::slice::from_ref(&ct)))
                .expect("answers")
        })
    });
    g.finish();
}

criterion_group!(benches, fhe_score, fhe_fetch);
criterion_main!(benches);
