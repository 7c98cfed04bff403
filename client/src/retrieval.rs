//! [`RetrievalClient`]: private retrieval (TFHE) against one node's Retrieval service.

use crate::error::RetrievalError;
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;
use veil_proto::config::ClusterConfig;
use veil_proto::pb::{self, retrieval_client::RetrievalClient as RetrievalGrpc};
use veil_proto::tls::{self, PinnedConnector};
use veil_runtime::fhe::corpus::best_k;
use veil_runtime::fhe::{
    CorpusInfo, DbShape, EncryptedQuery, FetchQuery, Hint, ScoreQuery, ScoredDoc,
};
use veil_runtime::kernels::{le_bytes_to_words, words_to_le_bytes};

/// What a client keeps of one corpus version: the public metadata and the hints it decodes
/// answers with (downloaded once by [`RetrievalClient::fetch_corpus`]).
#[derive(Clone, Debug)]
pub struct CorpusHandle {
    /// The corpus name on the node.
    pub name: String,
    /// Dimension, centroids, cluster members and the scoring shape.
    pub info: CorpusInfo,
    /// The scoring hint.
    pub hint: Hint,
    /// The passage hint (its `shape` is the passage matrix's), when the corpus has passages.
    pub passages: Option<Hint>,
}

impl CorpusHandle {
    /// Shape of the passage matrix, when the corpus has passages.
    pub fn passage_shape(&self) -> Option<&DbShape> {
        self.passages.as_ref().map(|h| &h.shape)
    }
}

/// Largest corpus object (info or hint) a client accepts from a stream: 4 GiB.
const MAX_CORPUS_OBJECT_BYTES: u64 = 4 << 30;

/// Largest message a [`RetrievalClient`] decodes (answers are far smaller; corpus chunks are
/// at most [`veil_proto::wire::CORPUS_CHUNK_BYTES`]).
const RETRIEVAL_DECODE_LIMIT: usize = 64 << 20;

/// Query bytes per `Fetch` call before [`RetrievalClient::fetch`] starts another call (stays
/// under the node's default 64 MiB message limit).
const FETCH_BATCH_BYTES: usize = 32 << 20;

/// A client of the Retrieval service of ONE node: downloads a corpus's public objects, then
/// scores encrypted queries and fetches passages privately. Queries are encrypted locally
/// under fresh one-time keys; the node never sees an embedding or a passage index.
///
/// ```no_run
/// # async fn demo() -> Result<(), veil_client::RetrievalError> {
/// use veil_client::RetrievalClient;
/// let mut c = RetrievalClient::connect("devnet/cluster.toml".as_ref(), 0).await?;
/// let corpus = c.fetch_corpus("docs").await?;
/// let question = vec![0.1f32; corpus.info.dim];
/// let best = c.score(&corpus, &question, 4).await?;
/// let ids: Vec<usize> = best.iter().map(|d| d.doc as usize).collect();
/// let passages = c.fetch(&corpus, &ids).await?;
/// # let _ = passages; Ok(()) }
/// ```
pub struct RetrievalClient {
    node: usize,
    inner: RetrievalGrpc<Channel>,
    connector: PinnedConnector,
}

impl RetrievalClient {
    /// Connect to node `party` of `cluster.toml`, presenting the client identity it names and
    /// accepting only the node certificate it pins for that party.
    pub async fn connect(cluster_toml: &Path, party: usize) -> Result<Self, RetrievalError> {
        let cfg = ClusterConfig::load(cluster_toml)?;
        let node = cfg
            .node(party)
            .ok_or(RetrievalError::NoSuchNode { node: party })?;
        let tls = tls::PinnedTls::load(&cfg.ca, &cfg.client.cert, &cfg.client.key)?;
        let connector = tls.connector(party, &node.addr, &node.cert_sha256)?;
        let channel = connector
            .endpoint()
            .map_err(|source| RetrievalError::Connect {
                node: party,
                source,
            })?
            .connect_timeout(Duration::from_secs(10))
            .initial_stream_window_size(8 << 20)
            .initial_connection_window_size(8 << 20)
            .connect_with_connector_lazy(connector.clone());
        Ok(RetrievalClient {
            node: party,
            inner: RetrievalGrpc::new(channel)
                .max_decoding_message_size(RETRIEVAL_DECODE_LIMIT)
                .max_encoding_message_size(usize::MAX),
            connector,
        })
    }

    fn status(&self) -> impl FnOnce(tonic::Status) -> RetrievalError + use<> {
        let (node, connector) = (self.node, self.connector.clone());
        move |status| match connector.refused() {
            Some(source) if status.code() == tonic::Code::Unavailable => {
                RetrievalError::WrongNodeCertificate { node, source }
            }
            _ => RetrievalError::Status { node, status },
        }
    }

    fn malformed(&self, what: impl Into<String>) -> RetrievalError {
        RetrievalError::Malformed {
            node: self.node,
            what: what.into(),
        }
    }

    /// The corpora the node serves, with sizes and database ids.
    pub async fn list_corpora(&mut self) -> Result<Vec<pb::CorpusSummary>, RetrievalError> {
        let status = self.status();
        Ok(self
            .inner
            .list_corpora(pb::ListCorporaRequest {})
            .await
            .map_err(status)?
            .into_inner()
            .corpora)
    }

    /// Downloads (streamed, reassembled) and decodes a corpus's info and hints.
    pub async fn fetch_corpus(&mut self, name: &str) -> Result<CorpusHandle, RetrievalError> {
        let status = self.status();
        let mut stream = self
            .inner
            .get_corpus(pb::GetCorpusRequest {
                corpus: name.to_string(),
            })
            .await
            .map_err(status)?
            .into_inner();
        // parts[p] = (total, bytes so far) of CorpusPart p.
        let mut parts: [Option<(u64, Vec<u8>)>; 4] = Default::default();
        let mut last_part = 0;
        loop {
            let status = self.status();
            let Some(chunk) = stream.message().await.map_err(status)? else {
                break;
            };
            let p = match pb::CorpusPart::try_from(chunk.part) {
                Ok(pb::CorpusPart::Unspecified) | Err(_) => {
                    return Err(self.malformed(format!("unknown corpus part {}", chunk.part)));
                }
                Ok(p) => p as usize,
            };
            if p < last_part {
                return Err(self.malformed("corpus parts out of order"));
            }
            last_part = p;
            if chunk.total > MAX_CORPUS_OBJECT_BYTES {
                return Err(self.malformed(format!("a {} byte corpus object", chunk.total)));
            }
            let (total, buf) = parts[p].get_or_insert_with(|| {
                let cap = chunk.total.min(RETRIEVAL_DECODE_LIMIT as u64) as usize;
                (chunk.total, Vec::with_capacity(cap))
            });
            let end = chunk.offset.checked_add(chunk.data.len() as u64);
            if *total != chunk.total || chunk.offset != buf.len() as u64 || end > Some(*total) {
                return Err(self.malformed(format!(
                    "chunk at offset {} (+{} bytes) of a {} byte object does not follow the {} \
                     bytes received",
                    chunk.offset,
                    chunk.data.len(),
                    chunk.total,
                    buf.len()
                )));
            }
            buf.extend_from_slice(&chunk.data);
        }
        let mut complete = |p: pb::CorpusPart| -> Result<Option<Vec<u8>>, RetrievalError> {
            match parts[p as usize].take() {
                None => Ok(None),
                Some((total, buf)) if buf.len() as u64 == total => Ok(Some(buf)),
                Some((total, buf)) => Err(RetrievalError::Malformed {
                    node: self.node,
                    what: format!(
                        "{} ended after {} of {total} bytes",
                        p.as_str_name(),
                        buf.len()
                    ),
                }),
            }
        };
        let info = complete(pb::CorpusPart::Info)?;
        let hint = complete(pb::CorpusPart::ScoreHint)?;
        let passages = complete(pb::CorpusPart::PassageHint)?;
        let (Some(info), Some(hint)) = (info, hint) else {
            return Err(self.malformed("the corpus stream lacks the info or the scoring hint"));
        };
        let info = CorpusInfo::from_bytes(&info)?;
        let hint = Hint::from_bytes(&hint)?;
        if hint.shape != info.shape {
            return Err(self.malformed(format!(
                "the scoring hint is for database {}, the corpus info for {}",
                hint.shape.id.short(),
                info.shape.id.short()
            )));
        }
        let passages = passages.map(|b| Hint::from_bytes(&b)).transpose()?;
        Ok(CorpusHandle {
            name: name.to_string(),
            info,
            hint,
            passages,
        })
    }

    /// Scores `embedding` privately: encrypts it for its nearest cluster, has the node scan the
    /// corpus, decodes the exact scores of that cluster's documents and returns the best `k`
    /// (highest score first, ties to the lower document id).
    pub async fn score(
        &mut self,
        corpus: &CorpusHandle,
        embedding: &[f32],
        k: usize,
    ) -> Result<Vec<ScoredDoc>, RetrievalError> {
        let (query, encrypted) = ScoreQuery::new(&corpus.info, embedding)?;
        let answer = self.score_encrypted(&corpus.name, &encrypted).await?;
        let scored = query.decode(&corpus.info, &corpus.hint, &answer)?;
        Ok(best_k(scored, k))
    }

    /// Fetches passages `indices` privately (in order). Queries go in as few `Fetch` calls as
    /// the message limits allow, each answered in one pass over the passage matrix.
    pub async fn fetch(
        &mut self,
        corpus: &CorpusHandle,
        indices: &[usize],
    ) -> Result<Vec<Vec<u8>>, RetrievalError> {
        let (Some(hint), Some(shape)) = (corpus.passages.as_ref(), corpus.passage_shape()) else {
            return Err(RetrievalError::NoPassages {
                corpus: corpus.name.clone(),
            });
        };
        let per_call = (FETCH_BATCH_BYTES / (shape.padded_cols() * 8).max(1))
            .clamp(1, veil_proto::wire::MAX_FETCH_QUERIES);
        let mut out = Vec::with_capacity(indices.len());
        for batch in indices.chunks(per_call) {
            let (pending, queries): (Vec<_>, Vec<_>) = batch
                .iter()
                .map(|&i| FetchQuery::new(shape, i))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let answers = self.fetch_encrypted(&corpus.name, &queries).await?;
            for (p, a) in pending.into_iter().zip(&answers) {
                out.push(p.decode(hint, a)?);
            }
        }
        Ok(out)
    }

    /// Low level: sends one encrypted scoring query as it is and returns the raw answer words.
    pub async fn score_encrypted(
        &mut self,
        corpus: &str,
        query: &EncryptedQuery,
    ) -> Result<Vec<u64>, RetrievalError> {
        let status = self.status();
        let answer = self
            .inner
            .score(pb::ScoreRequest {
                corpus: corpus.to_string(),
                db_id: Bytes::copy_from_slice(&query.db.0),
                bodies: words_to_le_bytes(&query.bodies).into(),
            })
            .await
            .map_err(status)?
            .into_inner()
            .answer;
        self.words("score answer", &answer)
    }

    /// Low level: sends encrypted passage queries as they are (one `Fetch` call) and returns
    /// the raw answer words, one vector per query.
    pub async fn fetch_encrypted(
        &mut self,
        corpus: &str,
        queries: &[EncryptedQuery],
    ) -> Result<Vec<Vec<u64>>, RetrievalError> {
        let status = self.status();
        let answers = self
            .inner
            .fetch(pb::FetchRequest {
                corpus: corpus.to_string(),
                queries: queries
                    .iter()
                    .map(|q| pb::EncryptedQuery {
                        db_id: Bytes::copy_from_slice(&q.db.0),
                        bodies: words_to_le_bytes(&q.bodies).into(),
                    })
                    .collect(),
            })
            .await
            .map_err(status)?
            .into_inner()
            .answers;
        if answers.len() != queries.len() {
            return Err(self.malformed(format!(
                "{} answers to {} fetch queries",
                answers.len(),
                queries.len()
            )));
        }
        answers
            .iter()
            .map(|a| self.words("fetch answer", a))
            .collect()
    }

    fn words(&self, what: &str, bytes: &[u8]) -> Result<Vec<u64>, RetrievalError> {
        if !bytes.len().is_multiple_of(8) {
            return Err(self.malformed(format!(
                "{what} of {} bytes is not whole u64 words",
                bytes.len()
            )));
        }
        Ok(le_bytes_to_words(bytes))
    }
}
