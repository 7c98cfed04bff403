//! `veil.v1.Retrieval`: private retrieval (TFHE) from the corpora one node serves.
//!
//! Every call is authenticated by the caller's TLS client certificate: its SHA-256 fingerprint
//! must be a configured client's or a node's. Corpora are loaded at startup
//! ([`crate::retrieval_files::load_corpus_dir`]) and shared read-only; the scans (GEMV, rayon)
//! run off the async workers. The node sees only GLWE bodies under one-time keys: it learns the
//! corpus name, the number of queries and their sizes, never what they select. Logs carry the
//! caller, corpus name, sizes and durations only.
//!
//! Message limits: the service is registered with the node's `max_message_bytes` (default
//! 64 MiB) as decoding and encoding limit. A scoring query over 1M documents of 384 dimensions
//! is about 3 MB; a fetch of 8 passages out of 200k about 13 MB. Corpus objects (hints reach
//! tens of MB) are streamed in chunks of [`CORPUS_CHUNK_BYTES`].

use crate::auth::Callers;
use crate::config::is_corpus_name;
use crate::error::NodeError;
use crate::retrieval_files::LoadedCorpus;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};
use veil_proto::convert::encrypted_query;
use veil_proto::pb;
use veil_runtime::kernels::words_to_le_bytes;

pub use veil_proto::wire::{CORPUS_CHUNK_BYTES, MAX_FETCH_QUERIES};

/// The Retrieval service of one node.
pub struct RetrievalService {
    corpora: BTreeMap<String, Arc<LoadedCorpus>>,
    /// The clients (by name) and nodes (as `node-<i>`) allowed to call it.
    callers: Callers,
}

/// The stream `GetCorpus` returns.
pub type CorpusStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::CorpusChunk, Status>>>;

impl RetrievalService {
    /// Service for the loaded `corpora` (by name), accepting `callers`.
    pub fn new(corpora: BTreeMap<String, Arc<LoadedCorpus>>, callers: Callers) -> Self {
        RetrievalService { corpora, callers }
    }

    fn corpus(&self, name: &str) -> Result<Arc<LoadedCorpus>, NodeError> {
        if !is_corpus_name(name) {
            return Err(NodeError::Invalid(format!(
                "corpus name must be 1..={} characters of [A-Za-z0-9._-]",
                crate::config::MAX_CORPUS_NAME_LEN
            )));
        }
        self.corpora
            .get(name)
            .cloned()
            .ok_or_else(|| NodeError::NotFound(format!("no corpus '{name}' on this node")))
    }
}

/// `data` split into chunks of at most [`CORPUS_CHUNK_BYTES`] (one empty chunk if empty).
fn chunks(part: pb::CorpusPart, data: &Bytes) -> impl Iterator<Item = pb::CorpusChunk> + '_ {
    let total = data.len();
    let count = total.div_ceil(CORPUS_CHUNK_BYTES).max(1);
    (0..count).map(move |i| {
        let start = i * CORPUS_CHUNK_BYTES;
        let end = (start + CORPUS_CHUNK_BYTES).min(total);
        pb::CorpusChunk {
            part: part as i32,
            offset: start as u64,
            total: total as u64,
            data: data.slice(start..end),
        }
    })
}

fn summary(name: &str, c: &LoadedCorpus) -> pb::CorpusSummary {
    let info = &c.corpus.info;
    let shape = c.corpus.db.shape();
    let mut s = pb::CorpusSummary {
        name: name.to_string(),
        documents: info.documents() as u64,
        dim: info.dim as u64,
        clusters: info.clusters() as u64,
        score_db_id: Bytes::copy_from_slice(&shape.id.0),
        score_rows: shape.rows as u64,
        score_query_bytes: shape.padded_cols() as u64 * 8,
        info_bytes: c.info_bytes.len() as u64,
        score_hint_bytes: c.hint_bytes.len() as u64,
        ..Default::default()
    };
    if let Some(p) = &c.passages {
        let shape = p.db.db().shape();
        s.passages = p.db.len() as u64;
        s.passage_db_id = Bytes::copy_from_slice(&shape.id.0);
        s.passage_query_bytes = shape.padded_cols() as u64 * 8;
        s.passage_hint_bytes = p.hint_bytes.len() as u64;
    }
    s
}

#[tonic::async_trait]
impl pb::retrieval_server::Retrieval for RetrievalService {
    async fn list_corpora(
        &self,
        req: Request<pb::ListCorporaRequest>,
    ) -> Result<Response<pb::ListCorporaResponse>, Status> {
        self.callers.name(&req)?;
        Ok(Response::new(pb::ListCorporaResponse {
            corpora: self
                .corpora
                .iter()
                .map(|(name, c)| summary(name, c))
                .collect(),
        }))
    }

    type GetCorpusStream = CorpusStream;

    async fn get_corpus(
        &self,
        req: Request<pb::GetCorpusRequest>,
    ) -> Result<Response<Self::GetCorpusStream>, Status> {
        let caller = self.callers.name(&req)?;
        let name = req.into_inner().corpus;
        let c = self.corpus(&name)?;
        let mut out: Vec<Result<pb::CorpusChunk, Status>> =
            chunks(pb::CorpusPart::Info, &c.info_bytes)
                .chain(chunks(pb::CorpusPart::ScoreHint, &c.hint_bytes))
                .map(Ok)
                .collect();
        let mut bytes = c.info_bytes.len() + c.hint_bytes.len();
        if let Some(p) = &c.passages {
            out.extend(chunks(pb::CorpusPart::PassageHint, &p.hint_bytes).map(Ok));
            bytes += p.hint_bytes.len();
        }
        tracing::info!(client = %caller, corpus = %name, bytes, chunks = out.len(), "get corpus");
        Ok(Response::new(tokio_stream::iter(out)))
    }

    async fn score(
        &self,
        req: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let caller = self.callers.name(&req)?;
        Ok(Response::new(self.score(caller, req.into_inner()).await?))
    }

    async fn fetch(
        &self,
        req: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let caller = self.callers.name(&req)?;
        Ok(Response::new(self.fetch(caller, req.into_inner()).await?))
    }
}

impl RetrievalService {
    async fn score(
        &self,
        caller: String,
        r: pb::ScoreRequest,
    ) -> Result<pb::ScoreResponse, NodeError> {
        let c = self.corpus(&r.corpus)?;
        let query = encrypted_query("query", &r.db_id, &r.bodies)?;
        let start = Instant::now();
        let answer = tokio::task::spawn_blocking(move || c.corpus.score(&query))
            .await?
            .map_err(|source| NodeError::Fhe {
                corpus: r.corpus.clone(),
                source,
            })?;
        tracing::info!(
            client = %caller,
            corpus = %r.corpus,
            query_bytes = r.bodies.len(),
            rows = answer.len(),
            micros = start.elapsed().as_micros() as u64,
            "score"
        );
        Ok(pb::ScoreResponse {
            answer: words_to_le_bytes(&answer).into(),
        })
    }

    async fn fetch(
        &self,
        caller: String,
        r: pb::FetchRequest,
    ) -> Result<pb::FetchResponse, NodeError> {
        let c = self.corpus(&r.corpus)?;
        if c.passages.is_none() {
            return Err(NodeError::Stale(format!(
                "corpus '{}' serves no passages",
                r.corpus
            )));
        }
        if !(1..=MAX_FETCH_QUERIES).contains(&r.queries.len()) {
            return Err(NodeError::Invalid(format!(
                "{} queries; a fetch takes 1..={MAX_FETCH_QUERIES}",
                r.queries.len()
            )));
        }
        let queries = r
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| encrypted_query(&format!("query {i}"), &q.db_id, &q.bodies))
            .collect::<Result<Vec<_>, _>>()?;
        let query_bytes: usize = r.queries.iter().map(|q| q.bodies.len()).sum();
        let start = Instant::now();
        let answers = tokio::task::spawn_blocking(move || {
            c.passages
                .as_ref()
                .expect("checked above")
                .db
                .answer_batch(&queries)
        })
        .await?
        .map_err(|source| NodeError::Fhe {
            corpus: r.corpus.clone(),
            source,
        })?;
        tracing::info!(
            client = %caller,
            corpus = %r.corpus,
            queries = answers.len(),
            query_bytes,
            micros = start.elapsed().as_micros() as u64,
            "fetch"
        );
        Ok(pb::FetchResponse {
            answers: answers
                .iter()
                .map(|a| words_to_le_bytes(a).into())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_object_in_order() {
        for len in [
            0,
            1,
            CORPUS_CHUNK_BYTES,
            CORPUS_CHUNK_BYTES + 1,
            3 * CORPUS_CHUNK_BYTES - 5,
        ] {
            let data = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
            let mut joined = Vec::new();
            for c in chunks(pb::CorpusPart::ScoreHint, &data) {
                assert_eq!(c.offset as usize, joined.len());
                assert_eq!(c.total as usize, len);
                assert!(c.data.len() <= CORPUS_CHUNK_BYTES);
                joined.extend_from_slice(&c.data);
            }
            assert_eq!(joined, data);
        }
    }
}
