//! `veil bench --ops fhe_score,fhe_fetch`: the TFHE retrieval path measured in-process (server
//! and client in this process, no network), beside plaintext search of the same corpus.
//!
//! Corpus preparation (synthetic embeddings → int8 → random balanced clusters → layout) and
//! the hint are timed separately and never inside the query time. Per query the report gives
//! the server's scan time (`median_s`), its GEMV throughput per core, the client's encrypt and
//! decode times, and the bytes a client uploads, downloads and fetches once (hint + metadata).
//! Every query's decoded scores are checked against plaintext; a mismatch fails the bench.

use super::median;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;
use veil_runtime::fhe::corpus::{best_k, quantise_query};
use veil_runtime::fhe::{Clustering, FetchQuery, FheError, PassageDb, ScoreQuery, ScoringCorpus};

/// Bytes of every synthetic passage in `fhe_fetch`.
pub const FETCH_PASSAGE_BYTES: usize = 512;

/// Queries answered together in the batched measurement.
pub const BATCH: usize = 4;

/// A retrieval-path op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FheOp {
    /// Score an encrypted query against `size` documents (size = documents).
    Score,
    /// Fetch one of `size` passages of 512 bytes by linear PIR (size = passages).
    Fetch,
}

impl FheOp {
    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FheOp::Score => "fhe_score",
            FheOp::Fetch => "fhe_fetch",
        }
    }

    /// Size when none is given.
    pub fn default_size(self) -> usize {
        match self {
            FheOp::Score => 100_000,
            FheOp::Fetch => 10_000,
        }
    }

    /// Largest size accepted (memory: the score corpus is generated as f32 first).
    pub fn max_size(self) -> usize {
        match self {
            FheOp::Score => 1 << 21,
            FheOp::Fetch => 1 << 18,
        }
    }
}

impl fmt::Display for FheOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FheOp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fhe_score" => Ok(FheOp::Score),
            "fhe_fetch" => Ok(FheOp::Fetch),
            _ => Err(format!("unknown FHE op {s:?}")),
        }
    }
}

/// One measured retrieval op (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct FheBenchResult {
    /// Op name.
    pub op: &'static str,
    /// Documents or passages.
    pub size: usize,
    /// Embedding dimension (score) or passage bytes (fetch).
    pub dim: usize,
    /// Always `local`: server and client in this process.
    pub transport: &'static str,
    /// Median server time of one query, seconds.
    pub median_s: f64,
    /// Server time per query when answering 4 queries in one pass, seconds.
    pub batched_per_query_s: f64,
    /// Matrix bytes scanned per second per worker thread at the median.
    pub gemv_gb_per_s_per_core: f64,
    /// Worker threads of the scan.
    pub threads: usize,
    /// Bytes of the scanned matrix.
    pub scan_bytes: usize,
    /// Median client encryption time, seconds.
    pub client_encrypt_s: f64,
    /// Median client decode (+ top-k) time, seconds.
    pub client_decode_s: f64,
    /// Bytes a query uploads (GLWE bodies).
    pub upload_bytes: usize,
    /// Bytes an answer downloads.
    pub download_bytes: usize,
    /// Bytes of the hint (downloaded once per corpus version).
    pub hint_bytes: usize,
    /// Bytes of the public metadata (centroids, cluster members; once per version).
    pub info_bytes: usize,
    /// Corpus preparation (quantise, cluster, lay out), seconds; offline.
    pub prepare_s: f64,
    /// Hint computation, seconds; offline.
    pub hint_s: f64,
    /// Median of the same search in the clear (int8 scan of all documents + top-k), seconds.
    pub plaintext_median_s: f64,
    /// `median_s / plaintext_median_s`.
    pub ratio_to_plaintext: f64,
}

/// Why a retrieval benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum FheBenchError {
    /// The FHE path refused or failed.
    #[error("{op} at size {size}: {source}")]
    Fhe {
        /// Op.
        op: FheOp,
        /// Size.
        size: usize,
        /// Cause.
        #[source]
        source: FheError,
    },
    /// Decoded results differ from plaintext.
    #[error("{op} at size {size}: decrypted result differs from plaintext ({what})")]
    Mismatch {
        /// Op.
        op: FheOp,
        /// Size.
        size: usize,
        /// Which result.
        what: &'static str,
    },
    /// The size is outside what the op supports.
    #[error("{op}: size {size} is outside 1..={max}")]
    Size {
        /// Op.
        op: FheOp,
        /// Requested size.
        size: usize,
        /// Largest supported size.
        max: usize,
    },
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

/// Measures `fhe_score` at `size` documents of `dim` dimensions, top-`k`, `reps` queries.
pub fn run_score(
    size: usize,
    dim: usize,
    k: usize,
    reps: usize,
) -> Result<FheBenchResult, FheBenchError> {
    let op = FheOp::Score;
    check_size(op, size)?;
    let fhe = |source| FheBenchError::Fhe { op, size, source };
    let reps = reps.max(1);
    let seed: u64 = rand::rng().random();
    let embeddings = veil_node::retrieval_files::synthetic_embeddings(size, dim, seed);
    let clusters = Clustering::default_clusters(size, dim);
    eprintln!("  preparing {size} × {dim} corpus in {clusters} clusters…");
    let (corpus, prepare_s) = timed(|| {
        ScoringCorpus::prepare(
            &embeddings,
            dim,
            Clustering::RandomBalanced { clusters, seed },
        )
    });
    let corpus = corpus.map_err(fhe)?;
    drop(embeddings);
    eprintln!(
        "  prepared in {prepare_s:.2} s; computing the hint ({} rows)…",
        corpus.info.shape.rows
    );
    let (hint, hint_s) = timed(|| corpus.db.hint());
    eprintln!("  hint in {hint_s:.2} s");

    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let (mut server, mut enc, mut dec, mut plain) = (vec![], vec![], vec![], vec![]);
    let mut upload = 0;
    for _ in 0..reps {
        let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (made, t) = timed(|| ScoreQuery::new(&corpus.info, &q));
        enc.push(t);
        let (query, ct) = made.map_err(fhe)?;
        upload = ct.bodies.len() * 8;
        let (answer, t) = timed(|| corpus.score(&ct));
        server.push(t);
        let answer = answer.map_err(fhe)?;
        let cluster = query.cluster();
        let (got, t) = timed(|| {
            query
                .decode(&corpus.info, &hint, &answer)
                .map(|s| best_k(s, k))
        });
        dec.push(t);
        let got = got.map_err(fhe)?;

        let qq = quantise_query(&q).map_err(fhe)?;
        let (all, t) = timed(|| corpus.plaintext_search(&qq, k));
        plain.push(t);
        std::hint::black_box(all);
        if got != best_k(corpus.plaintext_scores(cluster, &qq), k) {
            return Err(FheBenchError::Mismatch {
                op,
                size,
                what: "top-k of the query's cluster",
            });
        }
    }
    let batch: Vec<_> = (0..BATCH)
        .map(|_| {
            let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            ScoreQuery::new(&corpus.info, &q).map(|(_, ct)| ct)
        })
        .collect::<Result<_, _>>()
        .map_err(fhe)?;
    let (answers, batch_s) = timed(|| corpus.db.answer_batch(&batch));
    answers.map_err(fhe)?;
    Ok(result(
        (op, size, dim),
        &corpus.db,
        Timings {
            server,
            enc,
            dec,
            plain,
            batch_s,
            prepare_s,
            hint_s,
        },
        (
            upload,
            corpus.info.shape.rows * 8,
            hint.byte_len(),
            corpus.info.to_bytes().len(),
        ),
    ))
}

/// Measures `fhe_fetch` over `size` passages of 512 bytes, `reps` fetches.
pub fn run_fetch(size: usize, reps: usize) -> Result<FheBenchResult, FheBenchError> {
    let op = FheOp::Fetch;
    check_size(op, size)?;
    let fhe = |source| FheBenchError::Fhe { op, size, source };
    let reps = reps.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(rand::rng().random());
    let passages: Vec<Vec<u8>> = (0..size)
        .map(|_| {
            (0..FETCH_PASSAGE_BYTES)
                .map(|_| rng.random_range(b' '..=b'~'))
                .collect()
        })
        .collect();
    let (db, prepare_s) = timed(|| PassageDb::new(&passages));
    let db = db.map_err(fhe)?;
    eprintln!("  laid out in {prepare_s:.2} s; computing the hint…");
    let (hint, hint_s) = timed(|| db.db().hint());
    let shape = db.db().shape().clone();
    let (mut server, mut enc, mut dec, mut plain) = (vec![], vec![], vec![], vec![]);
    let mut upload = 0;
    for _ in 0..reps {
        let index = rng.random_range(0..size);
        let (made, t) = timed(|| FetchQuery::new(&shape, index));
        enc.push(t);
        let (fetch, ct) = made.map_err(fhe)?;
        upload = ct.bodies.len() * 8;
        let (answer, t) = timed(|| db.answer_batch(std::slice::from_ref(&ct)));
        server.push(t);
        let answer = answer.map_err(fhe)?.pop().expect("one answer");
        let (got, t) = timed(|| fetch.decode(&hint, &answer));
        dec.push(t);
        let (copy, t) = timed(|| std::hint::black_box(passages[index].clone()));
        plain.push(t);
        if got.map_err(fhe)? != copy {
            return Err(FheBenchError::Mismatch {
                op,
                size,
                what: "fetched passage",
            });
        }
    }
    let batch: Vec<_> = (0..BATCH)
        .map(|i| FetchQuery::new(&shape, i % size).map(|(_, ct)| ct))
        .collect::<Result<_, _>>()
        .map_err(fhe)?;
    let (answers, batch_s) = timed(|| db.answer_batch(&batch));
    answers.map_err(fhe)?;
    Ok(result(
        (op, size, FETCH_PASSAGE_BYTES),
        db.db(),
        Timings {
            server,
            enc,
            dec,
            plain,
            batch_s,
            prepare_s,
            hint_s,
        },
        (upload, shape.rows * 8, hint.byte_len(), 0),
    ))
}

/// Refuse a size outside what `op` supports.
pub fn check_size(op: FheOp, size: usize) -> Result<(), FheBenchError> {
    if size == 0 || size > op.max_size() {
        return Err(FheBenchError::Size {
            op,
            size,
            max: op.max_size(),
        });
    }
    Ok(())
}

struct Timings {
    server: Vec<f64>,
    enc: Vec<f64>,
    dec: Vec<f64>,
    plain: Vec<f64>,
    batch_s: f64,
    prepare_s: f64,
    hint_s: f64,
}

fn result(
    (op, size, dim): (FheOp, usize, usize),
    db: &veil_runtime::fhe::LinearDb,
    t: Timings,
    (upload_bytes, download_bytes, hint_bytes, info_bytes): (usize, usize, usize, usize),
) -> FheBenchResult {
    let median_s = median(t.server);
    let plaintext_median_s = median(t.plain);
    let threads = rayon::current_num_threads();
    FheBenchResult {
        op: op.name(),
        size,
        dim,
        transport: "local",
        median_s,
        batched_per_query_s: t.batch_s / BATCH as f64,
        gemv_gb_per_s_per_core: db.scan_bytes() as f64 / median_s / threads as f64 / 1e9,
        threads,
        scan_bytes: db.scan_bytes(),
        client_encrypt_s: median(t.enc),
        client_decode_s: median(t.dec),
        upload_bytes,
        download_bytes,
        hint_bytes,
        info_bytes,
        prepare_s: t.prepare_s,
        hint_s: t.hint_s,
        plaintext_median_s,
        ratio_to_plaintext: median_s / plaintext_median_s,
    }
}
