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

use crate::config::is_corpus_name;
use crate::retrieval_files::LoadedCorpus;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};
use veil_proto::pb;
use veil_runtime::fhe::{DbId, EncryptedQuery, FheError};
use veil_runtime::kernels::{le_bytes_to_words, words_to_le_bytes};

pub use veil_proto::wire::{CORPUS_CHUNK_BYTES, MAX_FETCH_QUERIES};

/// The Retrieval service of one node.
pub struct RetrievalService {
    corpora: BTreeMap<String, Arc<LoadedCorpus>>,
    /// Certificate fingerprint → caller name (clients by name, nodes as `node-<i>`).
    callers: HashMap<String, String>,
}

/// The stream `GetCorpus` returns.
pub type CorpusStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::CorpusChunk, Status>>>;

impl RetrievalService {
    /// Service for the loaded `corpora` (by name); `callers` maps certificate fingerprints of
    /// the clients and nodes allowed to call it to their names.
    pub fn new(
        corpora: BTreeMap<String, Arc<LoadedCorpus>>,
        callers: HashMap<String, String>,
    ) -> Self {
        RetrievalService { corpora, callers }
    }

    /// The caller's name, from its TLS certificate.
    fn caller<T>(&self, req: &Request<T>) -> Result<String, Status> {
        let first = req
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let fp = veil_proto::tls::cert_fingerprint(&first);
        self.callers.get(&fp).cloned().ok_or_else(|| {
            Status::permission_denied("this client certificate is not authorised on this node")
        })
    }

    fn corpus(&self, name: &str) -> Result<Arc<LoadedCorpus>, Status> {
        if !is_corpus_name(name) {
            return Err(Status::invalid_argument(format!(
                "corpus name must be 1..={} characters of [A-Za-z0-9._-]",
                crate::config::MAX_CORPUS_NAME_LEN
            )));
        }
        self.corpora
            .get(name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no corpus '{name}' on this node")))
    }
}

/// Parses one encrypted query off the wire (`what` names it in errors).
fn encrypted_query(what: &str, db_id: &[u8], bodies: &[u8]) -> Result<EncryptedQuery, Status> {
    let id: [u8; 32] = db_id.try_into().map_err(|_| {
        Status::invalid_argument(format!(
            "{what}: db_id has {} bytes, expected 32",
            db_id.len()
        ))
    })?;
    if !bodies.len().is_multiple_of(8) {
        return Err(Status::invalid_argument(format!(
            "{what}: bodies have {} bytes, not a whole number of u64 words",
            bodies.len()
        )));
    }
    Ok(EncryptedQuery {
        db: DbId(id),
        bodies: le_bytes_to_words(bodies),
    })
}

/// The status for a refused query: another database version is a stale client
/// (`FAILED_PRECONDITION`: fetch the corpus again); anything else is a malformed request.
fn fhe_status(corpus: &str, e: FheError) -> Status {
    let message = format!("corpus '{corpus}': {e}");
    match e {
        FheError::WrongDatabase { .. } => Status::failed_precondition(message),
        _ => Status::invalid_argument(message),
    }
}

fn join_status(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("scan task failed: {e}"))
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
        self.caller(&req)?;
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
        let caller = self.caller(&req)?;
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
        let caller = self.caller(&req)?;
        let r = req.into_inner();
        let c = self.corpus(&r.corpus)?;
        let query = encrypted_query("query", &r.db_id, &r.bodies)?;
        let start = Instant::now();
        let answer = tokio::task::spawn_blocking(move || c.corpus.score(&query))
            .await
            .map_err(join_status)?
            .map_err(|e| fhe_status(&r.corpus, e))?;
        tracing::info!(
            client = %caller,
            corpus = %r.corpus,
            query_bytes = r.bodies.len(),
            rows = answer.len(),
            micros = start.elapsed().as_micros() as u64,
            "score"
        );
        Ok(Response::new(pb::ScoreResponse {
            answer: words_to_le_bytes(&answer).into(),
        }))
    }

    async fn fetch(
        &self,
        req: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let caller = self.caller(&req)?;
        let r = req.into_inner();
        let c = self.corpus(&r.corpus)?;
        if c.passages.is_none() {
            return Err(Status::failed_precondition(format!(
                "corpus '{}' serves no passages",
                r.corpus
            )));
        }
        if !(1..=MAX_FETCH_QUERIES).contains(&r.queries.len()) {
            return Err(Status::invalid_argument(format!(
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
        .await
        .map_err(join_status)?
        .map_err(|e| fhe_status(&r.corpus, e))?;
        tracing::info!(
            client = %caller,
            corpus = %r.corpus,
            queries = answers.len(),
            query_bytes,
            micros = start.elapsed().as_micros() as u64,
            "fetch"
        );
        Ok(Response::new(pb::FetchResponse {
            answers: answers
                .iter()
                .map(|a| words_to_le_bytes(a).into())
                .collect(),
        }))
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

    #[test]
    fn malformed_queries_are_invalid_arguments() {
        let e = encrypted_query("query", &[0; 31], &[0; 16]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("db_id has 31 bytes"), "{e:?}");
        let e = encrypted_query("query", &[0; 32], &[0; 17]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("17 bytes"), "{e:?}");
        let q = encrypted_query("query", &[7; 32], &[1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((q.db, q.bodies), (DbId([7; 32]), vec![1]));
    }
}
