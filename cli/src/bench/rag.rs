//! `veil bench --ops rag`: one private RAG query (score every chunk, top-k, fetch the k texts)
//! on a synthetic corpus, for both backends beside a plaintext search of the same int8 corpus:
//! - **mpc**: the corpus secret-shared compact into a gRPC devnet
//!   ([`veil_client::rag::blocked`]), queried in `exact` and/or `clustered` mode; the asker's
//!   wall time per query and the nodes' session time, rounds and bytes, and what each node
//!   stores;
//! - **fhe** (unless `--no-fhe`): the TFHE path in this process (server scan time, client
//!   encrypt/decode), as `fhe_score` measures it.
//!
//! Every MPC answer is checked against its plaintext reference (ids, scores and texts; the
//! clustered one on the same clusters); a mismatch fails the run. Clustered rows also report
//! recall against the exact top k.

use super::{BenchError, check_mode, median};
use serde::Serialize;
use std::time::Instant;
use veil_client::Client;
use veil_client::rag::blocked::{self, BlockedUpload, Mode};
use veil_client::rag::plaintext_search;
use veil_node::retrieval_files::{synthetic_embeddings, synthetic_passages};
use veil_runtime::SecurityMode;
use veil_runtime::fhe::corpus::{normalise_and_quantise, quantise_query};

/// Bytes of text per synthetic chunk slot (synthetic passages are 31–215 bytes).
const TEXT_BYTES: usize = 216;

/// How the MPC queries select their candidates (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RagMode {
    /// Score every chunk, exact top-k over all of them.
    Exact,
    /// Score every chunk, top-k among the chunks of the `--probe` best clusters (approximate).
    Clustered,
}

impl RagMode {
    /// The client's query mode (`probe` clusters in clustered mode).
    fn query_mode(self, probe: usize) -> Mode {
        match self {
            RagMode::Exact => Mode::Exact,
            RagMode::Clustered => Mode::Clustered { p: probe },
        }
    }
}

/// The RAG options of `veil bench`.
#[derive(Clone, Debug)]
pub struct RagOptions {
    /// Retrieval modes to measure (each gets a row per link).
    pub modes: Vec<RagMode>,
    /// Clusters of the corpus (clustered mode); `None`: about 1.25·n / R for R ≈ √n.
    pub clusters: Option<usize>,
    /// Clusters searched per query (clustered mode).
    pub probe: usize,
    /// Also measure the TFHE path on the same corpus size.
    pub fhe: bool,
}

/// The default cluster count for `n` chunks: enough clusters of at most 80% of a
/// power-of-two block (R ≈ √n) that the capacity-bounded k-means fits them.
pub fn default_clusters(n: usize) -> usize {
    (5 * n)
        .div_ceil(4 * blocked::exact_block_rows(n))
        .clamp(1, n)
}

/// One measured RAG configuration (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct RagBenchResult {
    /// Always `rag`.
    pub op: &'static str,
    /// Chunks in the corpus.
    pub size: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Chunks returned per query.
    pub k: usize,
    /// Exact or clustered.
    pub mode: RagMode,
    /// Clusters of the stored corpus (clustered layouts).
    pub clusters: Option<usize>,
    /// Clusters searched per query (clustered mode).
    pub probe: Option<usize>,
    /// Rows per stored block (R) and blocks.
    pub block_rows: usize,
    /// Stored blocks.
    pub blocks: usize,
    /// The link profile the top-k plans were chosen for.
    pub link: super::LinkChoice,
    /// Security mode of the MPC sessions: `semi-honest` or `malicious` (the FHE path has none).
    pub security: &'static str,
    /// MPC: median asker wall time per query (store the program, invoke, decode), seconds.
    pub mpc_median_s: f64,
    /// MPC: median session time at the slowest node (the circuit over the network), seconds.
    pub mpc_session_median_s: f64,
    /// MPC: communication rounds of the circuit.
    pub mpc_rounds: u64,
    /// MPC: bytes each node sent per query.
    pub mpc_bytes_per_node: [u64; 3],
    /// MPC: bytes of share components each node stores for the corpus.
    pub mpc_stored_bytes_per_node: [u64; 3],
    /// MPC: one-time upload of the corpus into the cluster, seconds.
    pub mpc_ingest_s: f64,
    /// Clustered mode: mean fraction of the exact top k that the answer contains.
    pub recall_vs_exact: Option<f64>,
    /// FHE: median server time per query (clustered scan), seconds (with `fhe`).
    pub fhe_server_median_s: Option<f64>,
    /// FHE: median client encrypt + decode time, seconds.
    pub fhe_client_s: Option<f64>,
    /// FHE: bytes uploaded per query.
    pub fhe_upload_bytes: Option<usize>,
    /// FHE: bytes of the hint (once per corpus version).
    pub fhe_hint_bytes: Option<usize>,
    /// Median plaintext int8 search of all chunks + top-k in this process, seconds.
    pub plaintext_median_s: f64,
}

/// Runs the RAG benchmark at `size` chunks on the cluster behind `client` (owner and asker),
/// whose nodes run `security`, one row per (mode, link): each query runs once per mode and
/// link, alternating, so their medians come from the same stretch of time. In malicious mode
/// a retrieval program with an op that has no maliciously secure protocol is refused
/// ([`BenchError::NotMalicious`]) after the upload, before any query.
pub async fn run_rag(
    client: &mut Client,
    (size, dim, k): (usize, usize, usize),
    reps: usize,
    (links, security): (&[super::LinkChoice], SecurityMode),
    opts: &RagOptions,
) -> Result<Vec<RagBenchResult>, BenchError> {
    let fail = |what: String| BenchError::Devnet(what);
    let emb = synthetic_embeddings(size, dim, 42);
    let (_, quant) = normalise_and_quantise(&emb, dim).map_err(|e| fail(e.to_string()))?;
    drop(emb);
    let texts = synthetic_passages(size, 43);
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let clustered = opts.modes.contains(&RagMode::Clustered);
    let clusters = clustered.then(|| opts.clusters.unwrap_or_else(|| default_clusters(size)));
    let name = format!("bench{size}x{dim}");
    match clusters {
        Some(c) => eprintln!("  mpc: clustering {size} chunks into {c} clusters and uploading…"),
        None => eprintln!("  mpc: uploading {size} chunks…"),
    }
    let t = Instant::now();
    let upload = BlockedUpload {
        name: &name,
        emb: &quant,
        dim,
        texts: &refs,
        text_bytes: TEXT_BYTES,
        clusters,
        askers: &[],
        ks: &[],
        ps: &[],
    };
    let mut shown = 0;
    let mut corpus = blocked::upload_blocked(client, upload, |done, total| {
        // About every 10%, with the elapsed time.
        if done * 10 / total > shown || done == total {
            shown = done * 10 / total;
            eprintln!(
                "  mpc: stored {done}/{total} blocks ({:.0} s)",
                t.elapsed().as_secs_f64()
            );
        }
    })
    .await
    .map_err(|e| fail(e.to_string()))?;
    let mpc_ingest_s = t.elapsed().as_secs_f64();
    let stored = blocked::stored_bytes_per_node(&corpus);

    let queries: Vec<Vec<i8>> = (0..reps as u64)
        .map(|i| quantise_query(&synthetic_embeddings(1, dim, 1000 + i)))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let runs: Vec<(RagMode, super::LinkChoice)> = opts
        .modes
        .iter()
        .flat_map(|&m| links.iter().map(move |&l| (m, l)))
        .collect();
    for &(mode, link) in &runs {
        let program = blocked::program_for(
            &corpus,
            k,
            mode.query_mode(opts.probe),
            client.name(),
            &link.profile(),
        )
        .map_err(|e| fail(e.to_string()))?;
        let refused = check_mode(&program, security, || {
            format!("rag at size {size} ({mode:?}, plan for {link:?})").to_lowercase()
        });
        if let Err(e) = refused {
            blocked::delete_blocked(client, &corpus)
                .await
                .map_err(|e| fail(e.to_string()))?;
            return Err(e);
        }
    }
    let mut plain = Vec::new();
    let mut wall = vec![Vec::new(); runs.len()];
    let mut session = vec![Vec::new(); runs.len()];
    let mut recall = vec![Vec::new(); runs.len()];
    let mut last: Vec<Option<_>> = (0..runs.len()).map(|_| None).collect();
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let exact = plaintext_search(&quant, dim, q, k);
        plain.push(t.elapsed().as_secs_f64());
        for (r, &(mode, link)) in runs.iter().enumerate() {
            let mode = mode.query_mode(opts.probe);
            eprintln!(
                "  mpc: query {}/{reps} ({mode:?}, plan for {link:?})…",
                i + 1
            );
            let ans = blocked::ask_blocked(client, &mut corpus, q, k, mode, &link.profile())
                .await
                .map_err(|e| fail(e.to_string()))?;
            let want = blocked::plaintext_blocked(&corpus, &quant, q, k, mode)
                .map_err(|e| fail(e.to_string()))?;
            let got: Vec<(usize, i64)> = ans.hits.iter().map(|h| (h.doc, h.score)).collect();
            if got != want || ans.hits.iter().any(|h| h.text != texts[h.doc]) {
                return Err(fail(format!(
                    "rag: the cluster's top-{k} {got:?} differs from plaintext {want:?}"
                )));
            }
            if let Mode::Clustered { .. } = mode {
                let found = exact
                    .iter()
                    .filter(|d| got.iter().any(|g| g.0 == d.doc as usize))
                    .count();
                recall[r].push(found as f64 / k as f64);
            }
            wall[r].push(ans.wall.as_secs_f64());
            session[r].push(ans.invoke.session_time.as_secs_f64());
            last[r] = Some(ans.invoke);
        }
    }
    blocked::delete_blocked(client, &corpus)
        .await
        .map_err(|e| fail(e.to_string()))?;

    let fhe = if opts.fhe {
        eprintln!("  fhe: preparing and scoring…");
        Some(
            tokio::task::spawn_blocking(move || super::fhe::run_score(size, dim, k, reps))
                .await
                .map_err(|e| fail(e.to_string()))?
                .map_err(|e| fail(e.to_string()))?,
        )
    } else {
        None
    };
    let plaintext_median_s = median(plain);
    let mut rows = Vec::with_capacity(runs.len());
    for (r, &(mode, link)) in runs.iter().enumerate() {
        let invoke = last[r]
            .take()
            .ok_or_else(|| fail("no queries (reps = 0)".into()))?;
        let recall = std::mem::take(&mut recall[r]);
        rows.push(RagBenchResult {
            op: "rag",
            size,
            dim,
            k,
            mode,
            clusters,
            probe: (mode == RagMode::Clustered).then_some(opts.probe),
            block_rows: corpus.shape.block_rows,
            blocks: corpus.shape.blocks.len(),
            link,
            security: security.as_str(),
            mpc_median_s: median(std::mem::take(&mut wall[r])),
            mpc_session_median_s: median(std::mem::take(&mut session[r])),
            mpc_rounds: invoke.rounds,
            mpc_bytes_per_node: invoke.bytes_sent,
            mpc_stored_bytes_per_node: stored,
            mpc_ingest_s,
            recall_vs_exact: (!recall.is_empty())
                .then(|| recall.iter().sum::<f64>() / recall.len() as f64),
            fhe_server_median_s: fhe.as_ref().map(|f| f.median_s),
            fhe_client_s: fhe.as_ref().map(|f| f.client_encrypt_s + f.client_decode_s),
            fhe_upload_bytes: fhe.as_ref().map(|f| f.upload_bytes),
            fhe_hint_bytes: fhe.as_ref().map(|f| f.hint_bytes),
            plaintext_median_s,
        });
    }
    Ok(rows)
}
