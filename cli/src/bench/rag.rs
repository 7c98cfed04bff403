//! `veil bench --ops rag`: one private RAG query (score every chunk, top-k, fetch the k texts)
//! on a synthetic corpus, for both backends beside a plaintext search of the same int8 corpus:
//! - **mpc**: the corpus secret-shared into a gRPC devnet ([`veil_client::rag`]); the asker's wall
//!   time per query (query upload, invoke, fetch, clean-up) and the nodes' session time;
//! - **fhe**: the TFHE path in this process (server scan time, client encrypt/decode), as
//!   `fhe_score` measures it.
//!
//! Every MPC answer is checked against the plaintext top-k (ids, scores and texts); a mismatch
//! fails the run.

use super::{BenchError, median};
use serde::Serialize;
use std::time::Instant;
use veil_client::Client;
use veil_client::rag::{self, MpcCorpus};
use veil_node::retrieval_files::{synthetic_embeddings, synthetic_passages};
use veil_runtime::fhe::corpus::{normalise_and_quantise, quantise_query};

/// Bytes of text per synthetic chunk slot (synthetic passages are 31–215 bytes).
const TEXT_BYTES: usize = 256;

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
    /// The link profile the top-k plan was chosen for.
    pub link: super::LinkChoice,
    /// MPC: median asker wall time per query (upload query, invoke, fetch, clean-up), seconds.
    pub mpc_median_s: f64,
    /// MPC: median session time at the slowest node (the circuit over the network), seconds.
    pub mpc_session_median_s: f64,
    /// MPC: communication rounds of the circuit.
    pub mpc_rounds: u64,
    /// MPC: bytes each node sent per query.
    pub mpc_bytes_per_node: [u64; 3],
    /// MPC: one-time upload of the corpus into the cluster, seconds.
    pub mpc_ingest_s: f64,
    /// FHE: median server time per query (clustered scan), seconds.
    pub fhe_server_median_s: f64,
    /// FHE: median client encrypt + decode time, seconds.
    pub fhe_client_s: f64,
    /// FHE: bytes uploaded per query.
    pub fhe_upload_bytes: usize,
    /// FHE: bytes of the hint (once per corpus version).
    pub fhe_hint_bytes: usize,
    /// Median plaintext int8 search of all chunks + top-k in this process, seconds.
    pub plaintext_median_s: f64,
}

/// Runs the RAG benchmark at `size` chunks on the cluster behind `client` (owner and asker),
/// one row per link profile in `links` (non-empty): each query runs once per profile, the
/// profiles alternating, so their medians come from the same stretch of time.
pub async fn run_rag(
    client: &mut Client,
    (size, dim, k): (usize, usize, usize),
    reps: usize,
    links: &[super::LinkChoice],
) -> Result<Vec<RagBenchResult>, BenchError> {
    let fail = |what: String| BenchError::Devnet(what);
    let emb = synthetic_embeddings(size, dim, 42);
    let (_, quant) = normalise_and_quantise(&emb, dim).map_err(|e| fail(e.to_string()))?;
    let texts = synthetic_passages(size, 43);
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let name = format!("bench{size}x{dim}");
    eprintln!("  mpc: uploading {size} chunks…");
    let t = Instant::now();
    let upload = rag::CorpusUpload {
        name: &name,
        emb: &quant,
        dim,
        texts: &refs,
        width: rag::text_width(TEXT_BYTES),
        askers: &[],
        ks: &[],
    };
    let mut corpus: MpcCorpus = rag::upload(client, upload, |_, _| {})
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mpc_ingest_s = t.elapsed().as_secs_f64();

    let queries: Vec<Vec<i8>> = (0..reps as u64)
        .map(|i| quantise_query(&synthetic_embeddings(1, dim, 1000 + i)))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let mut plain = Vec::new();
    let mut wall = vec![Vec::new(); links.len()];
    let mut session = vec![Vec::new(); links.len()];
    let mut last: Vec<Option<_>> = (0..links.len()).map(|_| None).collect();
    for ((i, q), (l, link)) in queries
        .iter()
        .enumerate()
        .flat_map(|q| links.iter().enumerate().map(move |l| (q, l)))
    {
        eprintln!("  mpc: query {}/{reps} (plan for {link:?})…", i + 1);
        let ans = rag::ask_with_link(client, &mut corpus, q, k, &link.profile())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let t = Instant::now();
        let want = rag::plaintext_search(&quant, dim, q, k);
        plain.push(t.elapsed().as_secs_f64());
        let got: Vec<(usize, i64)> = ans.hits.iter().map(|h| (h.doc, h.score)).collect();
        let expect: Vec<(usize, i64)> = want.iter().map(|d| (d.doc as usize, d.score)).collect();
        if got != expect || ans.hits.iter().any(|h| h.text != texts[h.doc]) {
            return Err(fail(format!(
                "rag: the cluster's top-{k} {got:?} differs from plaintext {expect:?}"
            )));
        }
        wall[l].push(ans.wall.as_secs_f64());
        session[l].push(ans.invoke.session_time.as_secs_f64());
        last[l] = Some(ans.invoke);
    }
    rag::delete(client, &corpus)
        .await
        .map_err(|e| fail(e.to_string()))?;

    eprintln!("  fhe: preparing and scoring…");
    let fhe = tokio::task::spawn_blocking(move || super::fhe::run_score(size, dim, k, reps))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))?;
    let plaintext_median_s = median(plain);
    let mut rows = Vec::with_capacity(links.len());
    for (l, &link) in links.iter().enumerate() {
        let invoke = last[l]
            .take()
            .ok_or_else(|| fail("no queries (reps = 0)".into()))?;
        rows.push(RagBenchResult {
            op: "rag",
            size,
            dim,
            k,
            link,
            mpc_median_s: median(std::mem::take(&mut wall[l])),
            mpc_session_median_s: median(std::mem::take(&mut session[l])),
            mpc_rounds: invoke.rounds,
            mpc_bytes_per_node: invoke.bytes_sent,
            mpc_ingest_s,
            fhe_server_median_s: fhe.median_s,
            fhe_client_s: fhe.client_encrypt_s + fhe.client_decode_s,
            fhe_upload_bytes: fhe.upload_bytes,
            fhe_hint_bytes: fhe.hint_bytes,
            plaintext_median_s,
        });
    }
    Ok(rows)
}
