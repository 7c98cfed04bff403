//! Corpus preparation and client scoring in the Tiptoe layout (Henzinger et al., SOSP 2023, §4).
//!
//! Server, offline, per corpus version: L2-normalise the embeddings, quantise them to int8 with
//! one global scale (so cosine similarity becomes an integer dot product), group them into C
//! clusters of at most M documents, and lay them out as D ∈ i8^{M × C·d}: row r holds the r-th
//! document of every cluster, side by side. Client: pick the nearest centroid c, build a query
//! vector that is the quantised question in block c and zero elsewhere, encrypt it
//! ([`super::query`]); the server's GEMV then yields, for every row r, the score of the r-th
//! document of cluster c — and nothing it can read. The client decodes M exact scores and
//! takes its top-k locally. Results are exact for the chosen cluster; documents of other
//! clusters are not scored (the usual clustered-retrieval approximation).

use super::db::{DbShape, EncryptedQuery, Hint, LinearDb};
use super::error::{FheError, Result};
use super::query::{PendingQuery, encrypt};
use crate::cluster::{centroids_of, kmeans};
use crate::kernels::dot_i8;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// Largest absolute value of a quantised coordinate.
pub const QUANT_MAX: i32 = 127;

/// How documents are grouped into clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clustering {
    /// Spherical k-means (Lloyd iterations on normalised vectors) with capacity-bounded final
    /// assignment ([`crate::cluster::kmeans`]): no cluster exceeds ⌈1.25·n/C⌉ documents.
    KMeans {
        /// Number of clusters C.
        clusters: usize,
        /// Lloyd iterations.
        iterations: usize,
        /// Seed of the initial centroid choice (public; only affects quality).
        seed: u64,
    },
    /// A random balanced assignment (sizes differ by at most one): for synthetic benchmark
    /// corpora, where clustering quality does not matter and k-means would dominate the time.
    RandomBalanced {
        /// Number of clusters C.
        clusters: usize,
        /// Seed of the shuffle.
        seed: u64,
    },
}

impl Clustering {
    /// A default cluster count: ⌈√n⌉ rounded up so C·dim fills whole GLWE ciphertexts when
    /// that costs at most a few extra clusters.
    pub fn default_clusters(n: usize, dim: usize) -> usize {
        let c = (n as f64).sqrt().ceil().max(1.0) as usize;
        let step = super::params::POLY_SIZE / gcd(super::params::POLY_SIZE, dim.max(1));
        let rounded = c.div_ceil(step) * step;
        if rounded <= c + c / 8 { rounded } else { c }.min(n.max(1))
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Public corpus metadata a client downloads with the hint.
#[derive(Clone, Debug)]
pub struct CorpusInfo {
    /// Embedding dimension d.
    pub dim: usize,
    /// Normalised centroids, C × d.
    pub centroids: Vec<f32>,
    /// Document ids of each cluster, in row order (cluster c's r-th document sits in row r).
    pub members: Vec<Vec<u32>>,
    /// Shape of the scan database (rows = M, cols = C·d).
    pub shape: DbShape,
}

impl CorpusInfo {
    /// Number of clusters C.
    pub fn clusters(&self) -> usize {
        self.members.len()
    }

    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.members.iter().map(Vec::len).sum()
    }

    /// The cluster whose centroid is most similar to a normalised vector (ties → lowest).
    pub fn nearest_cluster(&self, unit: &[f32]) -> usize {
        let mut best = (f32::NEG_INFINITY, 0);
        for (c, centroid) in self.centroids.chunks_exact(self.dim).enumerate() {
            let s: f32 = centroid.iter().zip(unit).map(|(a, b)| a * b).sum();
            if s > best.0 {
                best = (s, c);
            }
        }
        best.1
    }
}

/// A prepared corpus: the public info plus the server's scan database.
#[derive(Clone, Debug)]
pub struct ScoringCorpus {
    /// Public metadata.
    pub info: CorpusInfo,
    /// The Tiptoe-layout matrix.
    pub db: LinearDb,
}

/// One scored document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoredDoc {
    /// Document id (position in the prepared embeddings).
    pub doc: u32,
    /// Exact integer dot product of the quantised document and query.
    pub score: i64,
}

/// L2-normalises `v`, refusing empty, non-finite or zero vectors (`what` names it in errors).
pub fn normalise(v: &[f32], what: &str) -> Result<Vec<f32>> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(FheError::Invalid(format!(
            "{what} has a non-finite coordinate"
        )));
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return Err(FheError::Invalid(format!("{what} is the zero vector")));
    }
    Ok(v.iter().map(|x| x / norm).collect())
}

/// Quantises a query embedding: normalise, then scale so its largest coordinate is ±127.
/// (A positive per-query scale does not change the ranking.)
pub fn quantise_query(embedding: &[f32]) -> Result<Vec<i8>> {
    let unit = normalise(embedding, "query embedding")?;
    let max = unit.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = QUANT_MAX as f32 / max;
    Ok(unit.iter().map(|x| (x * scale).round() as i8).collect())
}

/// Corpus quantisation shared by every retrieval backend: each embedding (rows of `dim`) is
/// L2-normalised, then all are scaled by one global factor so the largest coordinate is ±127.
/// Returns the unit vectors and the int8 rows. `dim` must divide the length (checked by callers).
pub fn normalise_and_quantise(embeddings: &[f32], dim: usize) -> Result<(Vec<f32>, Vec<i8>)> {
    let mut unit = embeddings.to_vec();
    unit.par_chunks_exact_mut(dim)
        .enumerate()
        .try_for_each(|(i, v)| {
            let u = normalise(v, &format!("embedding of document {i}"))?;
            v.copy_from_slice(&u);
            Ok::<_, FheError>(())
        })?;
    let max = unit.par_iter().map(|x| x.abs()).reduce(|| 0f32, f32::max);
    let scale = QUANT_MAX as f32 / max;
    let quant: Vec<i8> = unit.par_iter().map(|x| (x * scale).round() as i8).collect();
    Ok((unit, quant))
}

impl ScoringCorpus {
    /// Prepares `n = embeddings.len() / dim` documents (document i = rows i·dim..(i+1)·dim).
    pub fn prepare(embeddings: &[f32], dim: usize, clustering: Clustering) -> Result<Self> {
        if dim == 0 || embeddings.is_empty() || !embeddings.len().is_multiple_of(dim) {
            return Err(FheError::Invalid(format!(
                "embeddings: {} values do not form whole vectors of dimension {dim}",
                embeddings.len()
            )));
        }
        let n = embeddings.len() / dim;
        if n > u32::MAX as usize {
            return Err(FheError::Invalid(format!(
                "{n} documents exceed the 2^32 id space"
            )));
        }
        let (unit, quant) = normalise_and_quantise(embeddings, dim)?;

        let (members, centroids) = match clustering {
            Clustering::RandomBalanced { clusters, seed } => {
                check_clusters(clusters, n)?;
                let mut order: Vec<u32> = (0..n as u32).collect();
                order.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
                let mut members = vec![Vec::with_capacity(n.div_ceil(clusters)); clusters];
                for (i, doc) in order.into_iter().enumerate() {
                    members[i % clusters].push(doc);
                }
                let centroids = centroids_of(&unit, dim, &members);
                (members, centroids)
            }
            Clustering::KMeans {
                clusters,
                iterations,
                seed,
            } => {
                check_clusters(clusters, n)?;
                let capacity = (n * 5).div_ceil(clusters * 4).max(n.div_ceil(clusters));
                let kmeans = kmeans(&unit, dim, clusters, iterations, seed, capacity)
                    .map_err(|e| FheError::Invalid(e.to_string()))?;
                (kmeans.members, kmeans.centroids)
            }
        };
        let rows = members.iter().map(Vec::len).max().unwrap_or(0);
        let cols = members.len() * dim;
        let mut data = vec![0i8; rows * cols];
        for (c, docs) in members.iter().enumerate() {
            for (r, &doc) in docs.iter().enumerate() {
                let src = &quant[doc as usize * dim..(doc as usize + 1) * dim];
                data[r * cols + c * dim..r * cols + (c + 1) * dim].copy_from_slice(src);
            }
        }
        let db = LinearDb::new(rows, cols, &data, QUANT_MAX as u32, dim)?;
        let info = CorpusInfo {
            dim,
            centroids,
            members,
            shape: db.shape().clone(),
        };
        Ok(Self { info, db })
    }

    /// Server side: scores one encrypted query.
    pub fn score(&self, query: &EncryptedQuery) -> Result<Vec<u64>> {
        self.db.answer(query)
    }

    /// Plaintext reference: exact scores of `query` against every document of `cluster`.
    pub fn plaintext_scores(&self, cluster: usize, query: &[i8]) -> Vec<ScoredDoc> {
        let dim = self.info.dim;
        self.info.members[cluster]
            .iter()
            .enumerate()
            .map(|(r, &doc)| {
                let row = &self.db.row(r)[cluster * dim..(cluster + 1) * dim];
                let score = row
                    .iter()
                    .zip(query)
                    .map(|(&a, &b)| i64::from(a) * i64::from(b))
                    .sum();
                ScoredDoc { doc, score }
            })
            .collect()
    }
}

impl ScoringCorpus {
    /// Plaintext reference search over **all** documents (not only one cluster): the exact
    /// int8 scores of `query` against every document, best k first (ties → lower id). This is
    /// the clear computation the encrypted path replaces, scanning the same bytes.
    pub fn plaintext_search(&self, query: &[i8], k: usize) -> Vec<ScoredDoc> {
        let dim = self.info.dim;
        let mut scored: Vec<ScoredDoc> = Vec::with_capacity(self.info.documents());
        scored.par_extend(
            (0..self.info.shape.rows)
                .into_par_iter()
                .flat_map_iter(|r| {
                    let row = self.db.row(r);
                    self.info
                        .members
                        .iter()
                        .enumerate()
                        .filter_map(move |(c, m)| {
                            let block = &row[c * dim..(c + 1) * dim];
                            m.get(r).map(|&doc| ScoredDoc {
                                doc,
                                score: i64::from(dot_i8(block, query)),
                            })
                        })
                }),
        );
        best_k(scored, k)
    }
}

fn check_clusters(clusters: usize, n: usize) -> Result<()> {
    if clusters == 0 || clusters > n {
        return Err(FheError::Invalid(format!(
            "{clusters} clusters for {n} documents (need 1..=n)"
        )));
    }
    Ok(())
}

/// A scoring query in flight: which cluster it targets and its one-time key.
#[derive(Debug)]
pub struct ScoreQuery {
    cluster: usize,
    pending: PendingQuery,
}

impl ScoreQuery {
    /// Client side: quantise the question embedding, choose the nearest cluster, encrypt.
    pub fn new(info: &CorpusInfo, embedding: &[f32]) -> Result<(Self, EncryptedQuery)> {
        if embedding.len() != info.dim {
            return Err(FheError::Shape {
                what: "query embedding",
                expected: info.dim,
                got: embedding.len(),
            });
        }
        let unit = normalise(embedding, "query embedding")?;
        let cluster = info.nearest_cluster(&unit);
        let q = quantise_query(embedding)?;
        let mut v = vec![0i64; info.shape.cols];
        for (dst, &x) in v[cluster * info.dim..(cluster + 1) * info.dim]
            .iter_mut()
            .zip(&q)
        {
            *dst = i64::from(x);
        }
        let (pending, ct) = encrypt(&info.shape, &v)?;
        Ok((Self { cluster, pending }, ct))
    }

    /// The cluster this query scores (known to the client only).
    pub fn cluster(&self) -> usize {
        self.cluster
    }

    /// Decodes the answer into the exact score of every document of the chosen cluster.
    pub fn decode(self, info: &CorpusInfo, hint: &Hint, answer: &[u64]) -> Result<Vec<ScoredDoc>> {
        info.shape.check_id("hint", &hint.shape.id)?;
        let scores = self.pending.decode(hint, answer)?;
        Ok(info.members[self.cluster]
            .iter()
            .zip(scores)
            .map(|(&doc, score)| ScoredDoc { doc, score })
            .collect())
    }
}

/// The k best documents: highest score first, ties broken by the lower document id.
pub fn best_k(mut scored: Vec<ScoredDoc>, k: usize) -> Vec<ScoredDoc> {
    let order = |a: &ScoredDoc, b: &ScoredDoc| b.score.cmp(&a.score).then(a.doc.cmp(&b.doc));
    if k == 0 {
        return Vec::new();
    }
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_by(order);
    scored
}
