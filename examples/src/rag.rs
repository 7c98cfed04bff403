//! Private RAG end to end, as a library: embed chunks offline, start (or join) a cluster,
//! ingest as the data owner, ask as the asker with either backend.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use veil_examples::{chunk::ChunkOptions, embed::Embedder, ingest, rag};
//! let chunks = ingest::default_corpus(&ChunkOptions::default()).chunks;
//! let embedder = Embedder::builtin()?;
//! let corpus = rag::Corpus::embed(chunks, embedder, |_, _| {})?;
//! let cluster = rag::DemoCluster::start(7300, Some(&corpus), Default::default()).await?;
//! let mut rag = rag::Rag::connect(&cluster, &corpus, &rag::MpcSearch::default(), |_, _| {}).await?;
//! let answer = rag.ask(embedder, "How are shares stored?", 4, rag::Backend::Mpc).await?;
//! for hit in &answer.hits {
//!     println!("{} {}", hit.score, corpus.chunks[hit.doc].heading);
//! }
//! # Ok(()) }
//! ```
//!
//! Who sees what: the owner embeds and secret-shares its chunks on its own machine; the asker
//! embeds the question on its own machine. MPC backend: no node sees the corpus, the question,
//! the scores or the chosen chunks (see [`veil_client::rag`]). FHE backend: node 0 holds the
//! corpus in the clear and learns nothing about the question or which passages were fetched
//! (see `veil_runtime::fhe`).

use crate::chunk::Chunk;
use crate::embed::{EmbedError, Embedder};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use veil_circuits::cost::LinkProfile;
use veil_client::rag::blocked::{self, BlockedCorpus, BlockedUpload, Mode};
use veil_client::rag::{self as mpc, RagError};
use veil_client::{Client, CorpusHandle, RetrievalClient, RetrievalError};
use veil_node::devnet::{LocalCluster, Runner};
use veil_node::retrieval_files::write_corpus_dir;
use veil_runtime::SecurityMode;
use veil_runtime::fhe::corpus::{ScoredDoc, best_k, normalise_and_quantise, quantise_query};
use veil_runtime::fhe::{Clustering, FheError, PassageDb, ScoringCorpus};

/// Up to this many chunks the FHE corpus is one cluster, so its search is exact over all
/// chunks (the hint grows by 16 KiB per chunk); above, k-means clusters (Tiptoe-style: the
/// client searches its nearest cluster only).
pub const FHE_SINGLE_CLUSTER_MAX: usize = 4096;

/// Name of the corpus on the cluster (MPC value prefix and FHE corpus name).
pub const CORPUS_NAME: &str = "rag";

/// Client names of the local cluster.
pub const OWNER: &str = "owner";
/// The asker's client name.
pub const ASKER: &str = "asker";

/// A RAG step failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Embedding failed.
    #[error("embedding: {0}")]
    Embed(#[from] EmbedError),
    /// No chunk had any known token.
    #[error("no chunk could be embedded (every chunk had no known token)")]
    NothingToEmbed,
    /// Quantisation or the FHE corpus refused the data.
    #[error("{0}")]
    Fhe(#[from] FheError),
    /// The MPC path failed.
    #[error(transparent)]
    Mpc(#[from] RagError),
    /// The FHE service failed.
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
    /// Starting or reaching the cluster failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The question is unusable.
    #[error("question: {0}")]
    Question(String),
}

/// Chunks with their embeddings, as the owner prepared them.
pub struct Corpus {
    /// The chunks (chunk id = position).
    pub chunks: Vec<Chunk>,
    /// Embedding dimension.
    pub dim: usize,
    /// n × dim float embeddings (FHE corpus input).
    pub embeddings: Vec<f32>,
    /// n × dim int8 embeddings (normalised, one global scale): what both backends score.
    pub quant: Vec<i8>,
    /// Chunks dropped because no token of theirs is in the vocabulary.
    pub dropped: usize,
    /// Time spent embedding.
    pub embed_time: Duration,
}

impl Corpus {
    /// Embeds every chunk (chunks without a known token are dropped and counted);
    /// `progress(done, total)` after each.
    pub fn embed(
        chunks: Vec<Chunk>,
        embedder: &Embedder,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Corpus, PipelineError> {
        let start = Instant::now();
        let total = chunks.len();
        let (mut kept, mut embeddings, mut dropped) = (Vec::new(), Vec::new(), 0);
        for (i, c) in chunks.into_iter().enumerate() {
            match embedder.embed(&c.text) {
                Ok(e) => {
                    embeddings.extend(e);
                    kept.push(c);
                }
                Err(EmbedError::NoTokens) => dropped += 1,
                Err(e) => return Err(e.into()),
            }
            progress(i + 1, total);
        }
        Corpus::from_embeddings(kept, embeddings, embedder.dim(), dropped, start.elapsed())
    }

    /// A corpus from chunks and their embeddings (n × dim), e.g. from another embedder.
    pub fn from_embeddings(
        chunks: Vec<Chunk>,
        embeddings: Vec<f32>,
        dim: usize,
        dropped: usize,
        embed_time: Duration,
    ) -> Result<Corpus, PipelineError> {
        if chunks.is_empty() {
            return Err(PipelineError::NothingToEmbed);
        }
        let (_, quant) = normalise_and_quantise(&embeddings, dim)?;
        Ok(Corpus {
            chunks,
            dim,
            embeddings,
            quant,
            dropped,
            embed_time,
        })
    }

    /// Plaintext reference: the exact int8 top-k over all chunks (ties to the lower id).
    pub fn plaintext_search(&self, query: &[i8], k: usize) -> Vec<ScoredDoc> {
        mpc::plaintext_search(&self.quant, self.dim, query, k)
    }

    /// The FHE corpus of these chunks (one cluster up to [`FHE_SINGLE_CLUSTER_MAX`] chunks).
    pub fn fhe_corpus(&self) -> Result<(ScoringCorpus, PassageDb), PipelineError> {
        let n = self.chunks.len();
        let clustering = if n <= FHE_SINGLE_CLUSTER_MAX {
            Clustering::RandomBalanced {
                clusters: 1,
                seed: 0,
            }
        } else {
            Clustering::KMeans {
                clusters: Clustering::default_clusters(n, self.dim),
                iterations: 8,
                seed: 1,
            }
        };
        let corpus = ScoringCorpus::prepare(&self.embeddings, self.dim, clustering)?;
        let texts: Vec<&[u8]> = self.chunks.iter().map(|c| c.text.as_bytes()).collect();
        Ok((corpus, PassageDb::new(&texts)?))
    }

    /// The FHE backend's own plaintext reference: exact top-k within the cluster its client
    /// searches (all chunks when the corpus is one cluster).
    pub fn fhe_plaintext_search(
        corpus: &ScoringCorpus,
        unit_query: &[f32],
        query: &[i8],
        k: usize,
    ) -> Vec<ScoredDoc> {
        let cluster = corpus.info.nearest_cluster(unit_query);
        best_k(corpus.plaintext_scores(cluster, query), k)
    }
}

/// Quantises a question embedding exactly as both backends do.
pub fn quantise(embedding: &[f32]) -> Result<Vec<i8>, PipelineError> {
    Ok(quantise_query(embedding)?)
}

/// The examples' cluster: three nodes on loopback run inside this process
/// ([`veil_node::devnet::LocalCluster`] with [`Runner::InProcess`]: each node has its own port,
/// certificate and store, and they talk gRPC with mutual TLS exactly as `veil devnet`'s
/// processes do), with an owner and an asker identity. Node 0 also serves the FHE corpus when
/// one is given. The nodes stop when this is dropped.
pub struct DemoCluster {
    /// `cluster.toml` of the data owner.
    pub owner_toml: PathBuf,
    /// `cluster.toml` of the asker.
    pub asker_toml: PathBuf,
    /// Whether node 0 serves the FHE corpus.
    pub serves_fhe: bool,
    _nodes: LocalCluster,
}

impl DemoCluster {
    /// Writes certificates and configs to a temporary directory and starts the nodes on
    /// `127.0.0.1:base_port..base_port+2` in security mode `security` (the clients then
    /// require it); with `fhe`, prepares its corpus for node 0 first.
    pub async fn start(
        base_port: u16,
        fhe: Option<&Corpus>,
        security: SecurityMode,
    ) -> Result<Self, PipelineError> {
        let err = |e: &dyn std::fmt::Display| PipelineError::Cluster(e.to_string());
        let mut nodes = LocalCluster::temp(base_port, &[OWNER, ASKER], Runner::InProcess)
            .map_err(|e| err(&e))?;
        if security != SecurityMode::default() {
            nodes.layout().set_security(security).map_err(|e| err(&e))?;
        }
        if let Some(corpus) = fhe {
            let (scoring, passages) = corpus.fhe_corpus()?;
            let corpus_dir = nodes.layout().dir.join("fhe-corpus");
            write_corpus_dir(&corpus_dir, &scoring, Some(&passages)).map_err(|e| err(&e))?;
            nodes
                .serve_corpus(0, CORPUS_NAME, &corpus_dir)
                .map_err(|e| err(&e))?;
        }
        nodes.start().map_err(|e| err(&e))?;
        Ok(DemoCluster {
            owner_toml: nodes.cluster_toml(OWNER),
            asker_toml: nodes.cluster_toml(ASKER),
            serves_fhe: fhe.is_some(),
            _nodes: nodes,
        })
    }
}

/// Which retrieval backend answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Three-party MPC on secret shares: no node sees corpus, question or result.
    Mpc,
    /// TFHE against node 0: the node sees the corpus, never the question.
    Fhe,
}

/// One retrieved chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Chunk id.
    pub doc: usize,
    /// Exact int8 score.
    pub score: i64,
    /// The chunk text as retrieved (privately) from the cluster.
    pub text: String,
}

/// The answer to one question, with what it cost.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Best first.
    pub hits: Vec<Hit>,
    /// Embedding the question locally.
    pub embed_time: Duration,
    /// Retrieval (MPC: upload query, invoke, fetch; FHE: encrypt, score, decode, fetch).
    pub retrieve_time: Duration,
    /// MPC rounds (0 for FHE).
    pub rounds: u64,
    /// Bytes sent by each node (MPC) or by the client and node 0 (FHE: [upload, download, 0]).
    pub bytes: [u64; 3],
}

/// How the MPC backend stores and searches the corpus ([`veil_client::rag::blocked`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpcSearch {
    /// Exact (every chunk) or clustered (the chunks of the p best clusters).
    pub mode: Mode,
    /// Clusters to build at upload (needed for the clustered mode); `None`: chunk order.
    pub clusters: Option<usize>,
    /// The result sizes the owner approves for the asker.
    pub ks: Vec<usize>,
}

impl Default for MpcSearch {
    /// Exact search over chunks in order, k = 1..=[`MAX_K`] approved.
    fn default() -> Self {
        MpcSearch {
            mode: Mode::Exact,
            clusters: None,
            ks: (1..=MAX_K).collect(),
        }
    }
}

/// Clients of one cluster: the owner's upload done, the asker ready to ask.
pub struct Rag {
    asker: Client,
    mpc: BlockedCorpus,
    mode: Mode,
    fhe: Option<(RetrievalClient, CorpusHandle)>,
    /// Time the owner's upload took.
    pub ingest_time: Duration,
}

/// The largest k the owner approves for the asker on the MPC backend: the upload grants the
/// retrieval program of each k in `1..=MAX_K` (see `veil_node::policy`).
pub const MAX_K: usize = 16;

/// Connects to a cluster, waiting up to 30 s for its nodes to start.
async fn connect_ready(toml: &Path) -> Result<Client, PipelineError> {
    Client::connect_ready(toml, Duration::from_secs(30))
        .await
        .map_err(|e| PipelineError::Cluster(format!("{}: {e}", toml.display())))
}

impl Rag {
    /// Uploads `corpus` as the owner of the local cluster and connects the asker.
    pub async fn connect(
        cluster: &DemoCluster,
        corpus: &Corpus,
        search: &MpcSearch,
        progress: impl FnMut(usize, usize),
    ) -> Result<Rag, PipelineError> {
        // Wait until all three nodes answer before opening the FHE link to node 0.
        connect_ready(&cluster.asker_toml).await?;
        let fhe = if cluster.serves_fhe {
            let mut c = RetrievalClient::connect(&cluster.asker_toml, 0).await?;
            let handle = c.fetch_corpus(CORPUS_NAME).await?;
            Some((c, handle))
        } else {
            None
        };
        Self::join(
            &cluster.owner_toml,
            &cluster.asker_toml,
            corpus,
            fhe,
            search,
            progress,
        )
        .await
    }

    /// Uploads `corpus` with `owner_toml`'s identity and asks with `asker_toml`'s (the same file
    /// for a single-identity cluster such as `veil devnet`'s `cluster.toml`). MPC only.
    pub async fn join(
        owner_toml: &Path,
        asker_toml: &Path,
        corpus: &Corpus,
        fhe: Option<(RetrievalClient, CorpusHandle)>,
        search: &MpcSearch,
        progress: impl FnMut(usize, usize),
    ) -> Result<Rag, PipelineError> {
        let mut owner = connect_ready(owner_toml).await?;
        let asker = connect_ready(asker_toml).await?;
        let start = Instant::now();
        let texts: Vec<&[u8]> = corpus.chunks.iter().map(|c| c.text.as_bytes()).collect();
        let max = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        let askers = [asker.name()];
        let n = corpus.chunks.len();
        let ks: Vec<usize> = search.ks.iter().copied().filter(|&k| k <= n).collect();
        let ps: Vec<usize> = match search.mode {
            Mode::Clustered { p } => vec![p],
            Mode::Exact => Vec::new(),
        };
        let upload = BlockedUpload {
            name: CORPUS_NAME,
            emb: &corpus.quant,
            dim: corpus.dim,
            texts: &texts,
            text_bytes: max,
            clusters: search.clusters,
            askers: &askers,
            ks: &ks,
            ps: &ps,
        };
        let mpc = blocked::upload_blocked(&mut owner, upload, progress).await?;
        Ok(Rag {
            asker,
            mpc,
            mode: search.mode,
            fhe,
            ingest_time: start.elapsed(),
        })
    }

    /// Embeds `question` locally and retrieves the `k` best chunks with `backend`.
    pub async fn ask(
        &mut self,
        embedder: &Embedder,
        question: &str,
        k: usize,
        backend: Backend,
    ) -> Result<Answer, PipelineError> {
        let start = Instant::now();
        let embedding = embedder.embed(question).map_err(|e| match e {
            EmbedError::NoTokens => {
                PipelineError::Question("it has no word the embedder knows".into())
            }
            e => e.into(),
        })?;
        let embed_time = start.elapsed();
        self.ask_embedding(&embedding, k, backend)
            .await
            .map(|a| Answer { embed_time, ..a })
    }

    /// Retrieves the `k` best chunks for an embedding already computed.
    pub async fn ask_embedding(
        &mut self,
        embedding: &[f32],
        k: usize,
        backend: Backend,
    ) -> Result<Answer, PipelineError> {
        let start = Instant::now();
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        match backend {
            Backend::Mpc => {
                let q = quantise(embedding)?;
                let ans = blocked::ask_blocked(
                    &mut self.asker,
                    &mut self.mpc,
                    &q,
                    k,
                    self.mode,
                    &LinkProfile::default(),
                )
                .await?;
                Ok(Answer {
                    hits: ans
                        .hits
                        .into_iter()
                        .map(|h| Hit {
                            doc: h.doc,
                            score: h.score,
                            text: text(h.text),
                        })
                        .collect(),
                    embed_time: Duration::ZERO,
                    retrieve_time: start.elapsed(),
                    rounds: ans.invoke.rounds,
                    bytes: ans.invoke.bytes_sent,
                })
            }
            Backend::Fhe => {
                let Some((client, handle)) = self.fhe.as_mut() else {
                    return Err(PipelineError::Cluster(
                        "no node serves the FHE corpus (start the local cluster with it)".into(),
                    ));
                };
                let best = client.score(handle, embedding, k).await?;
                let ids: Vec<usize> = best.iter().map(|d| d.doc as usize).collect();
                let passages = client.fetch(handle, &ids).await?;
                Ok(Answer {
                    hits: best
                        .iter()
                        .zip(passages)
                        .map(|(d, p)| Hit {
                            doc: d.doc as usize,
                            score: d.score,
                            text: text(p),
                        })
                        .collect(),
                    embed_time: Duration::ZERO,
                    retrieve_time: start.elapsed(),
                    rounds: 0,
                    bytes: [0; 3],
                })
            }
        }
    }

    /// The MPC corpus as stored.
    pub fn mpc_corpus(&self) -> &BlockedCorpus {
        &self.mpc
    }

    /// The plaintext twin of the MPC backend's answer for `query` (the same chunks and
    /// scores; in clustered mode on the same clusters).
    pub fn mpc_plaintext(
        &self,
        corpus: &Corpus,
        query: &[i8],
        k: usize,
    ) -> Result<Vec<(usize, i64)>, PipelineError> {
        Ok(blocked::plaintext_blocked(
            &self.mpc,
            &corpus.quant,
            query,
            k,
            self.mode,
        )?)
    }
}
