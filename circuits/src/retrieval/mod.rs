//! The private retrieval circuit of veil's RAG: score every document against a query, select
//! the best k without revealing which, and fetch their texts obliviously.
//!
//! Inputs (all secret, from clients): the query `vector[dim]` (ring words of small signed
//! integers, e.g. int8 embeddings), and the corpus in `blocks` of rows: embeddings
//! `emb_b: matrix[rows_b × dim]` and texts `text_b: matrix[rows_b × width]` (each chunk packed
//! into `width` words). Blocks exist so a large corpus is uploaded and stored in pieces.
//!
//! Computation:
//! 1. scores `s = E·q` (one secret matrix product per block, 1 round);
//! 2. keys `key_j = −s_j·2^B + j` with `B = ⌈log2 n⌉` index bits (local): the **smallest** key
//!    is the highest score, and among equal scores the lowest index — the plaintext tie rule;
//! 3. `BestK(keys, k, smallest)`: the k best keys, best first (comparator network, or rank
//!    selection in all-pairs groups on a high-latency link: [`retrieval_program_for`]);
//! 4. `OneHotLow(best, B, n)`: row r is the one-hot of document `key_r mod 2^B` = its index;
//! 5. texts `T = Σ_b onehot[:, block b]·text_b` (k × width, one matrix product per block).
//!
//! Outputs to the asker only: `keys` (k words; [`decode_key`] gives score and index) and
//! `texts` (k × width words). No party learns the query, the corpus, the scores or which
//! documents were chosen; they learn n, dim, width, k, the block sizes and the timing.
//!
//! Range: keys must stay within [−2^62, 2^62) for exact comparisons, so
//! `max |score| < 2^(62 − B)`; [`score_bound_ok`] checks it (int8 embeddings of 384 dimensions
//! score at most 384·127² < 2^23, far below).
//!
//! For corpora of a million chunks and more, [`blocked`] stores the corpus as compact Z_2^32
//! blocks, fetches the texts in two levels and offers a clustered mode.

pub mod blocked;

pub use blocked::{
    BlockedError, BlockedShape, clustered_program, decode_key32, exact_program, plain_clustered,
    plain_exact,
};

use crate::builder::Builder;
use crate::cost::LinkProfile;
use crate::error::ValidationError;
use crate::program::{Owner, Recipient};
use crate::types::{ElemType, Shape, ValueType, Visibility};
use crate::validate::ValidatedProgram;

/// Sizes of a stored corpus, which fix the retrieval circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrievalShape {
    /// Embedding dimension.
    pub dim: usize,
    /// Words per packed chunk text.
    pub width: usize,
    /// Rows of each stored block (documents in order: block 0 first).
    pub blocks: Vec<usize>,
}

impl RetrievalShape {
    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.blocks.iter().sum()
    }

    /// Index bits B = ⌈log2 n⌉ (at least 1) packed into the low bits of each key.
    pub fn index_bits(&self) -> u32 {
        index_bits(self.documents())
    }
}

/// B = ⌈log2 n⌉, at least 1: enough bits for every index `0..n`.
pub fn index_bits(n: usize) -> u32 {
    n.max(2).next_power_of_two().trailing_zeros()
}

/// Whether scores up to `max_abs_score` in magnitude keep every key inside [−2^62, 2^62).
pub fn score_bound_ok(max_abs_score: u64, n: usize) -> bool {
    let b = index_bits(n);
    b < 62 && max_abs_score < (1u64 << (62 - b)) - 1
}

/// Splits a key back into (score, document index): `key = −score·2^B + index`.
pub fn decode_key(key: u64, bits: u32) -> (i64, usize) {
    let index = (key & ((1u64 << bits) - 1)) as usize;
    let score = -((key as i64) >> bits);
    (score, index)
}

/// Input name of the query.
pub const QUERY: &str = "query";
/// Output name of the selected keys.
pub const KEYS: &str = "keys";
/// Output name of the fetched texts.
pub const TEXTS: &str = "texts";

/// Input name of block `b`'s embeddings.
pub fn emb_input(b: usize) -> String {
    format!("emb_{b}")
}

/// Input name of block `b`'s texts.
pub fn text_input(b: usize) -> String {
    format!("text_{b}")
}

/// The retrieval program for `shape` (at least one block, `1 ≤ k ≤ n`), top `k`, corpus owned by `owner` and query and outputs
/// belonging to `asker`.
pub fn retrieval_program(
    shape: &RetrievalShape,
    k: usize,
    owner: &str,
    asker: &str,
) -> Result<ValidatedProgram, ValidationError> {
    retrieval_program_for(shape, k, owner, asker, &LinkProfile::default())
}

/// [`retrieval_program`] with the top-k plan chosen for the parties' `link`
/// ([`Builder::best_k_for_link`]): on [`LinkProfile::LOOPBACK`] (the default) and
/// [`LinkProfile::LAN`] the comparator network, the same program (and id) as
/// [`retrieval_program`]; on [`LinkProfile::WAN`] rank selection in all-pairs groups (RAG
/// over 10,000 chunks, k = 8: 60 rounds instead of 216, at about 6× the bytes).
pub fn retrieval_program_for(
    shape: &RetrievalShape,
    k: usize,
    owner: &str,
    asker: &str,
    link: &LinkProfile,
) -> Result<ValidatedProgram, ValidationError> {
    let n = shape.documents();
    let bits = shape.index_bits();
    let mut b = Builder::new();
    let client = |name: &str| Owner::Client(name.to_string());
    let secret = |shape| ValueType {
        vis: Visibility::Secret,
        elem: ElemType::Ring,
        shape,
    };
    let query = b.input(QUERY, client(asker), secret(Shape::Matrix(shape.dim, 1)));
    let mut scores = Vec::with_capacity(shape.blocks.len());
    let mut texts = Vec::with_capacity(shape.blocks.len());
    for (i, &rows) in shape.blocks.iter().enumerate() {
        let emb = b.input(
            &emb_input(i),
            client(owner),
            secret(Shape::Matrix(rows, shape.dim)),
        );
        let text = b.input(
            &text_input(i),
            client(owner),
            secret(Shape::Matrix(rows, shape.width)),
        );
        let s = b.matmul(emb, query);
        scores.push(b.reshape(s, Shape::Vector(rows)));
        texts.push(text);
    }
    let s = b.concat(&scores);
    let scale = b.const_ring(-(1i64 << bits));
    let shifted = b.mul(s, scale);
    let iota = b.constant(ElemType::Ring, Shape::Vector(n), (0..n as u64).collect());
    let keys = b.add(shifted, iota);
    let best = b.best_k_for_link(keys, k, false, link);
    let onehot = b.onehot_low(best, bits, n);
    // Columns of block b are rows of the transpose; slice, transpose back, multiply.
    let by_doc = b.transpose(onehot);
    let mut start = 0;
    let mut fetched = None;
    for (i, &rows) in shape.blocks.iter().enumerate() {
        let part = b.slice(by_doc, start, start + rows);
        let part = b.transpose(part);
        let t = b.matmul(part, texts[i]);
        fetched = Some(match fetched {
            None => t,
            Some(acc) => b.add(acc, t),
        });
        start += rows;
    }
    let to_asker = || Recipient::Client(asker.to_string());
    b.output(KEYS, best, to_asker());
    if let Some(t) = fetched {
        b.output(TEXTS, t, to_asker());
    }
    b.finish()
}
