//! Owner-side clustering of a corpus: capacity-bounded spherical k-means, and the blocked
//! layout that clustered oblivious retrieval stores.
//!
//! * [`kmeans`]: spherical k-means (Lloyd iterations on unit vectors, Dhillon & Modha, Machine
//!   Learning 42, 2001) followed by a capacity-bounded assignment — documents in order of
//!   decreasing affinity take their most similar centroid that still has room — so no cluster
//!   exceeds a given capacity. The TFHE path ([`crate::fhe::corpus`]) uses it with capacity
//!   ⌈1.25·n/C⌉ (its scan matrix has as many rows as the largest cluster).
//! * [`layout_blocks`]: clusters an int8 corpus into C blocks of R = 2^r rows each for the MPC
//!   blocked/clustered retrieval circuits: block b holds cluster b, padded with zero rows to R,
//!   document position = b·R + row; plus the int8 centroids the query scores first.
//!
//! Everything here is plaintext, sync and deterministic for a given seed (rayon only splits
//! work whose results are collected in order). The clustering is the owner's: the nodes of
//! the MPC path see only the public sizes (C, R, the dimension), never the centroids or the
//! assignment, which are uploaded secret-shared.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// Largest absolute value of a quantised coordinate (as in [`crate::fhe::corpus::QUANT_MAX`]).
pub const QUANT_MAX: i32 = 127;

/// Slack of the blocked layout: blocks hold at least `1.25 · n / C` rows (as a ratio 5/4).
pub const LAYOUT_SLACK: (usize, usize) = (5, 4);

/// Preferences kept per document for the capacity-bounded pass; a document whose first
/// `PREFERENCES` clusters are all full has its full order recomputed (same result, rarer).
const PREFERENCES: usize = 32;

/// Why a clustering or layout was refused. Messages carry sizes only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The value slice does not hold whole vectors of the dimension, or is empty.
    #[error("{values} values do not form a non-empty set of vectors of dimension {dim}")]
    Shape {
        /// Values given.
        values: usize,
        /// Dimension asked for.
        dim: usize,
    },
    /// More clusters than documents, or none.
    #[error("{clusters} clusters for {documents} documents (need 1..=documents)")]
    Clusters {
        /// Clusters asked for.
        clusters: usize,
        /// Documents in the corpus.
        documents: usize,
    },
    /// `clusters · capacity` cannot hold every document.
    #[error("{clusters} clusters of capacity {capacity} cannot hold {documents} documents")]
    Capacity {
        /// Clusters asked for.
        clusters: usize,
        /// Largest cluster allowed.
        capacity: usize,
        /// Documents in the corpus.
        documents: usize,
    },
    /// Document ids or positions would not fit the 32-bit index of the retrieval keys.
    #[error("{blocks} blocks of {block_rows} rows exceed the 2^32 positions of the retrieval keys")]
    TooLarge {
        /// Blocks (clusters).
        blocks: usize,
        /// Rows per block.
        block_rows: usize,
    },
    /// More documents than 32-bit ids.
    #[error("{documents} documents exceed the 2^32 id space")]
    TooManyDocuments {
        /// Documents in the corpus.
        documents: usize,
    },
    /// An embedding coordinate is NaN or infinite.
    #[error("embedding of document {doc} has a non-finite coordinate")]
    NonFinite {
        /// The document.
        doc: usize,
    },
}

/// The result of [`kmeans`]: which documents each cluster holds and its centroid.
#[derive(Clone, Debug, PartialEq)]
pub struct Clusters {
    /// Document ids of each cluster, ascending.
    pub members: Vec<Vec<u32>>,
    /// Normalised centroid of each cluster's final members, C × dim (see [`centroids_of`]).
    pub centroids: Vec<f32>,
}

/// Normalised mean of each cluster's members (a unit vector along the first axis if the
/// cluster is empty or its mean is zero). `unit` holds the documents' rows of `dim` values.
pub fn centroids_of(unit: &[f32], dim: usize, members: &[Vec<u32>]) -> Vec<f32> {
    members
        .par_iter()
        .flat_map_iter(|docs| {
            let mut mean = vec![0f32; dim];
            for &d in docs {
                for (m, x) in mean
                    .iter_mut()
                    .zip(&unit[d as usize * dim..(d as usize + 1) * dim])
                {
                    *m += x;
                }
            }
            let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                mean.iter_mut().for_each(|x| *x /= norm);
            } else {
                mean[0] = 1.0;
            }
            mean
        })
        .collect()
}

/// Index of the largest value (the first one on ties; 0 for an empty slice).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Spherical k-means with a capacity-bounded final assignment.
///
/// `unit` holds n documents of `dim` values, each L2-normalised (zero rows are allowed: they
/// are equally similar to every centroid). Initial centroids are `clusters` distinct documents
/// drawn with `seed`; each of the `iterations` Lloyd steps assigns every document to its most
/// similar centroid (cosine = dot product; ties → lowest cluster), re-seeds empty clusters
/// with a random document and recomputes the centroids. The final pass sorts documents by
/// decreasing best similarity and gives each its most similar cluster with fewer than
/// `capacity` members, so every cluster ends with at most `capacity` documents (some may end
/// empty). Returns the members (ascending ids) and the centroids of the final members.
///
/// Cost: (iterations + 1) · n · C · dim multiply-adds (about 5·10^9 per second and core on
/// the 2-core VM: 112,668 × 336 × 256 with 8 iterations took 11–23 s); memory
/// O(n·min(C, 32) + C·dim).
pub fn kmeans(
    unit: &[f32],
    dim: usize,
    clusters: usize,
    iterations: usize,
    seed: u64,
    capacity: usize,
) -> Result<Clusters, ClusterError> {
    let n = check_rows(unit.len(), dim)?;
    if n > u32::MAX as usize {
        return Err(ClusterError::TooManyDocuments { documents: n });
    }
    if clusters == 0 || clusters > n {
        return Err(ClusterError::Clusters {
            clusters,
            documents: n,
        });
    }
    if clusters.saturating_mul(capacity) < n {
        return Err(ClusterError::Capacity {
            clusters,
            capacity,
            documents: n,
        });
    }
    if let Some(doc) = unit
        .par_chunks_exact(dim)
        .position_first(|v| v.iter().any(|x| !x.is_finite()))
    {
        return Err(ClusterError::NonFinite { doc });
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut pick: Vec<usize> = (0..n).collect();
    pick.shuffle(&mut rng);
    let mut centroids: Vec<f32> = pick[..clusters]
        .iter()
        .flat_map(|&d| unit[d * dim..(d + 1) * dim].iter().copied())
        .collect();
    for _ in 0..iterations {
        let table = Transposed::new(&centroids, dim, clusters);
        let assign: Vec<u32> = unit
            .par_chunks_exact(dim)
            .map_init(
                || vec![0f32; clusters],
                |sims, v| {
                    table.similarities(v, sims);
                    argmax(sims) as u32
                },
            )
            .collect();
        let mut members = vec![Vec::new(); clusters];
        for (d, &c) in assign.iter().enumerate() {
            members[c as usize].push(d as u32);
        }
        // Re-seed empty clusters with a random document so every cluster stays in use.
        for m in members.iter_mut().filter(|m| m.is_empty()) {
            m.push(rng.random_range(0..n as u32));
        }
        centroids = centroids_of(unit, dim, &members);
    }

    // Capacity-bounded assignment. A document's preference order is its clusters sorted by
    // decreasing similarity, ties → lower cluster; only the first PREFERENCES are kept.
    let table = Transposed::new(&centroids, dim, clusters);
    let keep = clusters.min(PREFERENCES);
    let ranked: Vec<(f32, Vec<u32>)> = unit
        .par_chunks_exact(dim)
        .map_init(
            || vec![0f32; clusters],
            |sims, v| {
                table.similarities(v, sims);
                let order = preferences(sims, keep);
                (sims[order[0] as usize], order)
            },
        )
        .collect();
    let mut docs: Vec<usize> = (0..n).collect();
    docs.sort_by(|&a, &b| ranked[b].0.total_cmp(&ranked[a].0).then(a.cmp(&b)));
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); clusters];
    let mut sims = vec![0f32; clusters];
    for d in docs {
        let room = |c: &u32| members[*c as usize].len() < capacity;
        let c = match ranked[d].1.iter().copied().find(room) {
            Some(c) => c,
            None => {
                table.similarities(&unit[d * dim..(d + 1) * dim], &mut sims);
                // Total capacity ≥ n, so some cluster still has room; 0 is never reached.
                preferences(&sims, clusters)
                    .into_iter()
                    .find(room)
                    .unwrap_or(0)
            }
        };
        members[c as usize].push(d as u32);
    }
    for m in &mut members {
        m.sort_unstable();
    }
    let centroids = centroids_of(unit, dim, &members);
    Ok(Clusters { members, centroids })
}

/// The `keep` most similar clusters, best first (ties → lower cluster).
fn preferences(sims: &[f32], keep: usize) -> Vec<u32> {
    let order = |a: &u32, b: &u32| {
        sims[*b as usize]
            .total_cmp(&sims[*a as usize])
            .then(a.cmp(b))
    };
    let mut all: Vec<u32> = (0..sims.len() as u32).collect();
    if keep < all.len() {
        all.select_nth_unstable_by(keep - 1, order);
        all.truncate(keep);
    }
    all.sort_by(order);
    all
}

/// Centroids stored dimension-major (dim × C), so the similarities of one document to all C
/// centroids are `dim` vectorisable axpy steps. Each similarity is still summed in dimension
/// order from −0.0, exactly as `iter().map(a·b).sum::<f32>()` does, so results are bit-equal
/// to a naive dot product per pair.
struct Transposed {
    data: Vec<f32>,
    clusters: usize,
}

impl Transposed {
    fn new(centroids: &[f32], dim: usize, clusters: usize) -> Self {
        let mut data = vec![0f32; dim * clusters];
        for (c, row) in centroids.chunks_exact(dim).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                data[j * clusters + c] = x;
            }
        }
        Self { data, clusters }
    }

    /// `out[c] = Σ_j v[j]·centroid_c[j]`, summed in order of j.
    fn similarities(&self, v: &[f32], out: &mut [f32]) {
        out.fill(-0.0);
        for (&x, row) in v.iter().zip(self.data.chunks_exact(self.clusters)) {
            for (o, &c) in out.iter_mut().zip(row) {
                *o += c * x;
            }
        }
    }
}

fn check_rows(values: usize, dim: usize) -> Result<usize, ClusterError> {
    if dim == 0 || values == 0 || !values.is_multiple_of(dim) {
        return Err(ClusterError::Shape { values, dim });
    }
    Ok(values / dim)
}

/// Rows per block of the blocked layout of `documents` documents in `clusters` blocks:
/// R = next_power_of_two(⌈1.25·n / C⌉).
///
/// Why: the circuits address a row with log2 R bits (a power of two keeps the two-level
/// one-hot fetch a bit split of the index); the 25 % slack lets k-means keep clusters of
/// uneven size, and since every block is stored with exactly R rows, the capacity-bounded pass
/// may fill a block up to R at no extra cost. A query that gathers p clusters ranks p·R keys,
/// so R/(n/C) ∈ [1.25, 2.5) is the price of that freedom in the clustered top-k.
pub fn block_rows_for(documents: usize, clusters: usize) -> usize {
    let (num, den) = LAYOUT_SLACK;
    (documents.saturating_mul(num))
        .div_ceil(clusters.max(1).saturating_mul(den))
        .max(1)
        .next_power_of_two()
}

/// A corpus laid out for blocked / clustered MPC retrieval (see [`layout_blocks`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockLayout {
    /// Embedding dimension.
    pub dim: usize,
    /// Rows per block R (a power of two); every block is stored with exactly R rows.
    pub block_rows: usize,
    /// Document ids of each block in row order (`members[b][r]` sits at row r of block b); at
    /// most R per block, rows beyond are padding.
    pub members: Vec<Vec<u32>>,
    /// The blocks' centroids quantised to int8, C × dim: each centroid is the normalised mean
    /// of its block's documents, then all are scaled by one factor so the largest coordinate is
    /// ±127 (the corpus embeddings' rule). A block the capacity-bounded pass left empty gets
    /// the first axis; probing it finds only padding rows.
    pub centroids: Vec<i8>,
    /// Where each document sits: `position[doc] = (block, row)`.
    pub position: Vec<(u32, u32)>,
}

impl BlockLayout {
    /// Number of blocks C (= clusters = centroids).
    pub fn blocks(&self) -> usize {
        self.members.len()
    }

    /// Number of documents n.
    pub fn documents(&self) -> usize {
        self.position.len()
    }

    /// Present rows of each block (the circuits' `BlockedShape::blocks`).
    pub fn block_sizes(&self) -> Vec<usize> {
        self.members.iter().map(Vec::len).collect()
    }

    /// log2 R: the low index bits (row within a block).
    pub fn row_bits(&self) -> u32 {
        self.block_rows.trailing_zeros()
    }

    /// ⌈log2 C⌉: the high index bits (block).
    pub fn block_bits(&self) -> u32 {
        self.blocks().next_power_of_two().trailing_zeros()
    }

    /// Position index of a document: block·R + row (what the retrieval keys carry).
    pub fn index_of(&self, doc: u32) -> Option<u64> {
        let &(b, r) = self.position.get(doc as usize)?;
        Some(b as u64 * self.block_rows as u64 + r as u64)
    }

    /// The document at a position index (None for padding rows or out of range).
    pub fn doc_at(&self, index: u64) -> Option<u32> {
        let r = self.block_rows as u64;
        let block = self.members.get(usize::try_from(index / r).ok()?)?;
        block.get((index % r) as usize).copied()
    }

    /// Block `b` of per-document rows of `width` values (embeddings with `width = dim`, packed
    /// texts, …): R × width, document rows in order, zero padding rows. `None` if `b` is out of
    /// range or `values` does not hold `width` values per document.
    pub fn block_of<T: Copy + Default>(
        &self,
        values: &[T],
        width: usize,
        b: usize,
    ) -> Option<Vec<T>> {
        if values.len() != self.documents().checked_mul(width)? {
            return None;
        }
        let docs = self.members.get(b)?;
        let mut out = vec![T::default(); self.block_rows * width];
        for (dst, &d) in out.chunks_exact_mut(width.max(1)).zip(docs) {
            let d = d as usize;
            dst.copy_from_slice(&values[d * width..(d + 1) * width]);
        }
        Some(out)
    }
}

/// Lays out an int8 corpus (`emb`: n rows of `dim`) in `clusters` blocks for clustered
/// retrieval: spherical k-means on the normalised rows (`iterations` Lloyd steps from `seed`)
/// with capacity R = [`block_rows_for`]`(n, C)`, block b = cluster b with its documents in
/// ascending id order, int8 centroids, and each document's (block, row).
///
/// Refuses empty or ragged input, C ∉ 1..=n, and layouts whose index (log2 R row bits plus
/// ⌈log2 C⌉ block bits) would exceed 32 bits.
pub fn layout_blocks(
    emb: &[i8],
    dim: usize,
    clusters: usize,
    iterations: usize,
    seed: u64,
) -> Result<BlockLayout, ClusterError> {
    let n = check_rows(emb.len(), dim)?;
    if clusters == 0 || clusters > n {
        return Err(ClusterError::Clusters {
            clusters,
            documents: n,
        });
    }
    let block_rows = block_rows_for(n, clusters);
    if (clusters.next_power_of_two() as u128) * (block_rows as u128) > 1u128 << 32 {
        return Err(ClusterError::TooLarge {
            blocks: clusters,
            block_rows,
        });
    }
    let unit = unit_rows(emb, dim);
    let Clusters { members, centroids } =
        kmeans(&unit, dim, clusters, iterations, seed, block_rows)?;
    let mut position = vec![(0u32, 0u32); n];
    for (b, docs) in members.iter().enumerate() {
        for (r, &d) in docs.iter().enumerate() {
            position[d as usize] = (b as u32, r as u32);
        }
    }
    Ok(BlockLayout {
        dim,
        block_rows,
        members,
        centroids: quantise_unit(&centroids),
        position,
    })
}

/// The rows of an int8 matrix as L2-normalised f32 rows (zero rows stay zero).
pub fn unit_rows(emb: &[i8], dim: usize) -> Vec<f32> {
    let mut unit: Vec<f32> = emb.par_iter().map(|&x| f32::from(x)).collect();
    unit.par_chunks_exact_mut(dim.max(1)).for_each(|v| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    });
    unit
}

/// Quantises unit vectors with one global scale so the largest coordinate is ±127 (all zeros
/// stay zero).
pub fn quantise_unit(unit: &[f32]) -> Vec<i8> {
    let max = unit.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return vec![0; unit.len()];
    }
    let scale = QUANT_MAX as f32 / max;
    unit.iter().map(|x| (x * scale).round() as i8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_unit(rng: &mut ChaCha20Rng, n: usize, dim: usize) -> Vec<f32> {
        let raw: Vec<f32> = (0..n * dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let mut unit = raw;
        for v in unit.chunks_exact_mut(dim) {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
        }
        unit
    }

    /// The TFHE path's k-means before it moved here, verbatim but for the capacity argument.
    fn reference_kmeans(
        unit: &[f32],
        dim: usize,
        clusters: usize,
        iterations: usize,
        seed: u64,
        capacity: usize,
    ) -> Vec<Vec<u32>> {
        let n = unit.len() / dim;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut pick: Vec<usize> = (0..n).collect();
        pick.shuffle(&mut rng);
        let mut centroids: Vec<f32> = pick[..clusters]
            .iter()
            .flat_map(|&d| unit[d * dim..(d + 1) * dim].iter().copied())
            .collect();
        let sims = |centroids: &[f32], doc: usize| -> Vec<f32> {
            let v = &unit[doc * dim..(doc + 1) * dim];
            centroids
                .chunks_exact(dim)
                .map(|c| c.iter().zip(v).map(|(a, b)| a * b).sum())
                .collect()
        };
        for _ in 0..iterations {
            let assign: Vec<u32> = (0..n)
                .map(|d| argmax(&sims(&centroids, d)) as u32)
                .collect();
            let mut members = vec![Vec::new(); clusters];
            for (d, &c) in assign.iter().enumerate() {
                members[c as usize].push(d as u32);
            }
            for m in members.iter_mut().filter(|m| m.is_empty()) {
                m.push(rng.random_range(0..n as u32));
            }
            centroids = centroids_of(unit, dim, &members);
        }
        let ranked: Vec<(f32, Vec<usize>)> = (0..n)
            .map(|d| {
                let s = sims(&centroids, d);
                let mut order: Vec<usize> = (0..clusters).collect();
                order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
                (s[order[0]], order)
            })
            .collect();
        let mut docs: Vec<usize> = (0..n).collect();
        docs.sort_by(|&a, &b| ranked[b].0.total_cmp(&ranked[a].0).then(a.cmp(&b)));
        let mut members = vec![Vec::new(); clusters];
        for d in docs {
            let c = ranked[d]
                .1
                .iter()
                .copied()
                .find(|&c| members[c].len() < capacity)
                .unwrap();
            members[c].push(d as u32);
        }
        for m in &mut members {
            m.sort_unstable();
        }
        members
    }

    #[test]
    fn cluster_kmeans_equals_the_previous_implementation() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        // Tight capacities (many documents past their 32 preferences) and loose ones.
        for (n, dim, clusters, iterations, capacity) in [
            (300, 24, 16, 4, 24),
            (400, 16, 10, 5, 50),
            (500, 8, 40, 3, 13),
            (5, 8, 1, 1, 5),
            (200, 3, 50, 2, 4),
        ] {
            let unit = random_unit(&mut rng, n, dim);
            let got = kmeans(&unit, dim, clusters, iterations, 9, capacity).unwrap();
            let want = reference_kmeans(&unit, dim, clusters, iterations, 9, capacity);
            assert_eq!(got.members, want, "n={n} C={clusters} cap={capacity}");
            assert_eq!(got.centroids, centroids_of(&unit, dim, &want));
        }
    }

    #[test]
    fn cluster_kmeans_refuses_bad_arguments() {
        let unit = vec![1.0f32; 40];
        let err = |r: Result<Clusters, ClusterError>| r.unwrap_err();
        assert_eq!(
            err(kmeans(&unit, 3, 2, 1, 0, 10)),
            ClusterError::Shape { values: 40, dim: 3 }
        );
        assert!(matches!(
            err(kmeans(&[], 4, 1, 1, 0, 1)),
            ClusterError::Shape { .. }
        ));
        assert_eq!(
            err(kmeans(&unit, 4, 0, 1, 0, 10)),
            ClusterError::Clusters {
                clusters: 0,
                documents: 10
            }
        );
        assert_eq!(
            err(kmeans(&unit, 4, 11, 1, 0, 10)),
            ClusterError::Clusters {
                clusters: 11,
                documents: 10
            }
        );
        assert_eq!(
            err(kmeans(&unit, 4, 3, 1, 0, 3)),
            ClusterError::Capacity {
                clusters: 3,
                capacity: 3,
                documents: 10
            }
        );
        let mut bad = unit.clone();
        bad[21] = f32::NAN;
        assert_eq!(
            err(kmeans(&bad, 4, 2, 1, 0, 10)),
            ClusterError::NonFinite { doc: 5 }
        );
    }

    fn random_i8(rng: &mut ChaCha20Rng, n: usize, dim: usize) -> Vec<i8> {
        // A few well-separated directions plus noise, so clusters have uneven sizes.
        let centres: Vec<Vec<f32>> = (0..5)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = &centres[(i * 7 + i / 3) % 5 * usize::from(i % 4 != 0)];
            out.extend(
                c.iter()
                    .map(|x| ((x + rng.random_range(-0.4f32..0.4)) * 100.0).round() as i8),
            );
        }
        out
    }

    #[test]
    fn cluster_layout_places_every_document_once_within_blocks() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for (n, dim, clusters) in [
            (1000, 16, 32),
            (777, 8, 27),
            (10, 4, 10),
            (5, 4, 1),
            (1, 3, 1),
        ] {
            let emb = random_i8(&mut rng, n, dim);
            let layout = layout_blocks(&emb, dim, clusters, 4, 5).unwrap();
            let r = layout.block_rows;
            assert!(r.is_power_of_two());
            assert_eq!(r, block_rows_for(n, clusters));
            assert!(r >= (5 * n).div_ceil(4 * clusters) && r < 2 * (5 * n).div_ceil(4 * clusters));
            assert_eq!(layout.blocks(), clusters);
            assert_eq!(layout.documents(), n);
            assert_eq!(layout.centroids.len(), clusters * dim);
            assert!(layout.block_sizes().iter().all(|&s| s <= r));
            let mut all: Vec<u32> = layout.members.concat();
            all.sort_unstable();
            assert_eq!(all, (0..n as u32).collect::<Vec<_>>(), "each document once");
            for doc in 0..n as u32 {
                let (b, row) = layout.position[doc as usize];
                assert_eq!(layout.members[b as usize][row as usize], doc);
                let index = layout.index_of(doc).unwrap();
                assert_eq!(index, u64::from(b) * r as u64 + u64::from(row));
                assert_eq!(layout.doc_at(index), Some(doc));
            }
            assert_eq!(layout.index_of(n as u32), None);
            assert_eq!(layout.doc_at((clusters * r) as u64), None);
            assert!(layout.row_bits() + layout.block_bits() <= 32);
            // Blocks of embeddings: R rows, documents in row order, zero padding.
            for b in 0..clusters {
                let block = layout.block_of(&emb, dim, b).unwrap();
                assert_eq!(block.len(), r * dim);
                for (row, got) in block.chunks_exact(dim).enumerate() {
                    match layout.members[b].get(row) {
                        Some(&d) => assert_eq!(got, &emb[d as usize * dim..][..dim]),
                        None => assert!(got.iter().all(|&x| x == 0)),
                    }
                }
            }
            assert_eq!(layout.block_of(&emb, dim, clusters), None);
            assert_eq!(layout.block_of(&emb[dim..], dim, 0), None);
            // Centroids use the full int8 range.
            let max = layout.centroids.iter().map(|x| i32::from(*x).abs()).max();
            assert_eq!(max, Some(QUANT_MAX));
        }
    }

    #[test]
    fn cluster_layout_is_deterministic_for_a_seed() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let emb = random_i8(&mut rng, 2000, 12);
        let a = layout_blocks(&emb, 12, 40, 5, 7).unwrap();
        let b = layout_blocks(&emb, 12, 40, 5, 7).unwrap();
        assert_eq!(a, b);
        let c = layout_blocks(&emb, 12, 40, 5, 8).unwrap();
        assert_ne!(a.members, c.members, "another seed, another clustering");
    }

    #[test]
    fn cluster_layout_centroids_are_the_quantised_block_means() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let emb = random_i8(&mut rng, 300, 10);
        let layout = layout_blocks(&emb, 10, 12, 3, 2).unwrap();
        let unit = unit_rows(&emb, 10);
        let want = quantise_unit(&centroids_of(&unit, 10, &layout.members));
        assert_eq!(layout.centroids, want);
        // A member scores its own centroid well above the average centroid.
        let score = |c: &[i8], q: &[i8]| -> i32 {
            c.iter()
                .zip(q)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum()
        };
        let mut own_best = 0;
        for doc in 0..300 {
            let q = &emb[doc * 10..][..10];
            let scores: Vec<i32> = layout
                .centroids
                .chunks_exact(10)
                .map(|c| score(c, q))
                .collect();
            let own = scores[layout.position[doc].0 as usize];
            own_best += usize::from(scores.iter().all(|&s| s <= own));
        }
        assert!(
            own_best >= 240,
            "{own_best} of 300 documents nearest their own centroid"
        );
    }

    #[test]
    fn cluster_layout_refuses_bad_arguments() {
        assert_eq!(
            layout_blocks(&[1; 10], 3, 1, 1, 0),
            Err(ClusterError::Shape { values: 10, dim: 3 })
        );
        assert_eq!(
            layout_blocks(&[1; 12], 3, 5, 1, 0),
            Err(ClusterError::Clusters {
                clusters: 5,
                documents: 4
            })
        );
        assert_eq!(block_rows_for(100, 10), 16);
        assert_eq!(block_rows_for(1_000_000, 1000), 2048);
        assert_eq!(block_rows_for(1, 1), 2);
        assert_eq!(quantise_unit(&[0.0, 0.0]), vec![0, 0]);
        assert_eq!(quantise_unit(&[0.5, -0.25]), vec![127, -64]);
    }
}
