//! Retrieval over a large corpus stored as compact Z_2^32 blocks: exact top-k over every chunk,
//! or a clustered (IVF-style) search that ranks only the chunks of the best `p` clusters, and in
//! both cases a **two-level fetch** of the chosen texts that never builds a k × n one-hot.
//!
//! # Layout
//! The corpus is cut into `nb` blocks of exactly `R = block_rows` rows (a power of two ≥ 2);
//! block b holds `blocks[b] ≤ R` present chunks in its first rows and zero rows after them
//! (padding). Chunk `row` of block `block` has the document id `block·R + row`, so an id has
//! `B = log2 R + ⌈log2 nb⌉ ≤ 32` bits: the low `log2 R` bits are the row, the bits above the
//! block. Embeddings (`emb_b`, R × dim) and packed texts (`text_b`, R × width) are
//! [`ElemType::Ring32`] secrets — int8 embeddings and 4 text bytes per word fit, and shares are
//! half the size of ring shares. The query (`query`, dim × 1) is Ring32 too.
//!
//! # Scores and keys
//! `s_b = emb_b · query` is a Ring32 matrix product (one reshared word per chunk, 1 round):
//! the true integer score modulo 2^32, which is the score itself read as a signed i32 as long as
//! |s| < 2^31. [`BlockedShape::check`] refuses shapes whose declared bound (by default
//! `dim·127²`, the largest int8 score) exceeds [`MAX_ABS_SCORE32`] = 2^30 − 2, so the scores are
//! exact. Then **Widen** (local, 0 rounds) turns each into `s·2^32` in Z_2^64 — exactly, because
//! the unknown carries of the three mod-2^32 components are multiplied by 2^64 ≡ 0 — and
//!
//! `key_j = −s_j·2^32 + j + pad_j`, with `pad_j` = [`PAD_KEY32`] = 2^62 − 2^32 on padding rows
//! and 0 elsewhere (a public constant built from `O(nb + R)` words).
//!
//! The smallest key is the highest score, ties going to the lowest id; every present chunk's key
//! lies in [−(2^30 − 2)·2^32, (2^30 − 1)·2^32) and every padding key in [2^62 − 2^32, 2^62), so
//! padding ranks after every chunk and all keys stay in [−2^62, 2^62), where `BestK`'s
//! comparisons are exact. [`decode_key32`] splits a key back into (score, id).
//!
//! # Exact mode ([`exact_program`])
//! `best = BestK(keys, k, smallest)` over all `nb·R` keys (plan chosen for the link, as
//! [`super::retrieval_program_for`]), then the two-level fetch.
//!
//! # Clustered mode ([`clustered_program`])
//! Each block is a cluster with a Ring32 centroid (input `centroids`, C × dim, C = nb).
//! `ckeys = −Widen(centroids · query) + [0, 1, …, C − 1]`, `bestc = BestK(ckeys, p)`, and
//! `ohc = OneHotLow(bestc, ⌈log2 C⌉, C)` (p × C, one 1 per row). Every chunk's key is computed
//! as in exact mode and viewed as a C × R matrix; `gathered = ohc · keys` (p × R, 1 round,
//! p·R reshared words) holds the keys of the chosen clusters, and `best = BestK(gathered, k)`.
//! Gathering *keys* costs p·n local multiplications; gathering the clusters' *rows* first
//! and scoring only them would cost p·n·dim, p times a full scoring pass, and gathering scores
//! before Widen would save nothing (the key is one local op away). The selection then runs on
//! C + p·R keys instead of n.
//!
//! **Accuracy trade-off**: clustered mode returns the best k chunks *of the p chosen clusters*,
//! which equals the exact answer whenever the true top k lie in those clusters (always for
//! p = C); the recall depends on how well the centroids partition the corpus (the usual IVF
//! trade-off: larger p, better recall, more keys to select from). It is exact with respect to
//! its own definition, which [`plain_clustered`] states.
//!
//! # Two-level fetch
//! With `r_j` = the row bits and `c_j` = the block bits of a chosen key:
//! 1. `oh_row = OneHotLow(best, log2 R, skip 0, R)` (k × R) and `oh_blk = OneHotLow(best,
//!    ⌈log2 nb⌉, skip log2 R, nb)` (k × nb), in parallel, both narrowed to Ring32 (local);
//! 2. per block, `S_b = oh_row · text_b` (k × width, 1 round, k·width words per block): row i
//!    is row `r_i` of block b, for every block;
//! 3. `texts[i] = oh_blk[i] · [S_0[i]; S_1[i]; …]` — for each chosen i a (1 × nb)·(nb × width)
//!    product (1 round, k·width words in all); the stacking is local data movement.
//!
//! This is one round more than a one-level fetch (`OneHotLow(best, B, n)` then one product per
//! block), but its one-hots have k·(R + nb) entries instead of k·n. Cost ([`fetch_cost`]):
//! `max(onehot_low_rounds(0, log2 R) + 1, onehot_low_rounds(log2 R, ⌈log2 nb⌉)) + 1` rounds
//! (step 2 overlaps the block one-hot, whose adder runs to bit B), and
//! per party `k·(low_bits_range_bytes(0, log2 R) + low_bits_range_bytes(log2 R, ⌈log2 nb⌉)) +
//! 8·k·(onehot_products(log2 R, R) + onehot_products(⌈log2 nb⌉, nb)) + 8·k·width·(nb + 1)`
//! bytes — linear in k·(nb·width + R + nb), not in k·n (a single block skips step 3). The
//! row-first order is the cheaper one when nb ≤ R (block-first would reshare k·R·width words
//! in its first step), so choose `R ≥ √n`.
//!
//! # Security
//! Semi-honest, honest majority, as every op used: the nodes see only the public sizes — n (the
//! present chunks per block, `blocks`), dim, width, R, nb, C, p, k — and the plan derived from
//! them. Which chunks, clusters and texts are chosen stays secret: the one-hots are secret and
//! every block, cluster and row takes part in every product, so the access pattern is fixed.
//! The asker receives the k keys (scores and ids of the chosen chunks) and their texts.

use super::{KEYS, QUERY, TEXTS, emb_input, index_bits, text_input};
use crate::builder::{Builder, Value};
use crate::cost::{Cost, LinkProfile, onehot_low_bytes, onehot_low_rounds};
use crate::error::ValidationError;
use crate::program::{Owner, Recipient};
use crate::types::{ElemType, RING32_MASK, Shape, ValueType, Visibility};
use crate::validate::{MAX_ELEMENTS, ValidatedProgram};

/// Input name of the cluster centroids (clustered mode).
pub const CENTROIDS: &str = "centroids";

/// Largest number of id bits, `log2 R + ⌈log2 nb⌉`: ids live in the low 32 bits of a key.
pub const MAX_INDEX_BITS: u32 = 32;

/// Largest |score| supported: 2^30 − 2. Below 2^31 the Ring32 scores are exact; below 2^30 − 1
/// every chunk's key stays under [`PAD_KEY32`] and inside [−2^62, 2^62).
pub const MAX_ABS_SCORE32: u64 = (1 << 30) - 2;

/// Offset of the padding rows' keys, 2^62 − 2^32: above every present chunk's key.
pub const PAD_KEY32: u64 = (1 << 62) - (1 << 32);

/// Largest magnitude of an int8 vector component (the default score bound is `dim·127²`).
pub const INT8_MAX_ABS: u64 = 127;

/// Sizes of a blocked corpus, which fix the retrieval circuits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedShape {
    /// Embedding dimension.
    pub dim: usize,
    /// Ring32 words per packed chunk text.
    pub width: usize,
    /// Rows of every stored block, `R`: a power of two ≥ 2 (padding rows included).
    pub block_rows: usize,
    /// Present chunks in each block (each ≤ R; its first rows, the rest are zero padding).
    pub blocks: Vec<usize>,
    /// Declared bound on |score| (chunks and centroids); `None`: int8 vectors, `dim·127²`.
    pub max_abs_score: Option<u64>,
}

/// Why a blocked retrieval circuit or reference cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockedError {
    /// No block.
    #[error("a blocked corpus needs at least one block")]
    NoBlocks,
    /// A zero embedding dimension or text width.
    #[error("{what} must be at least 1")]
    Empty {
        /// "dim" or "width".
        what: &'static str,
    },
    /// `block_rows` is not a power of two ≥ 2.
    #[error("block_rows = {rows} must be a power of two ≥ 2")]
    BlockRows {
        /// The value given.
        rows: usize,
    },
    /// A block declares more present chunks than it has rows.
    #[error("block {block} has {present} chunks but only {rows} rows")]
    BlockTooFull {
        /// Block index.
        block: usize,
        /// Chunks declared present.
        present: usize,
        /// `block_rows`.
        rows: usize,
    },
    /// Document ids need more than 32 bits.
    #[error("ids need {bits} bits (log2 R + ⌈log2 blocks⌉); at most {max} fit in a key")]
    IndexBits {
        /// `log2 R + ⌈log2 nb⌉`.
        bits: u32,
        /// [`MAX_INDEX_BITS`].
        max: u32,
    },
    /// A value of the circuit would have more than 2^32 elements.
    #[error("{what} would have more than 2^32 elements")]
    TooLarge {
        /// Which value.
        what: &'static str,
    },
    /// The score bound could overflow the 32-bit ring or the key packing.
    #[error(
        "scores up to {bound} in magnitude (the declared bound, or dim·127² for int8 vectors) \
         could overflow: Ring32 scores and packed keys need |score| ≤ {max} = 2^30 − 2"
    )]
    ScoreBound {
        /// The bound in force.
        bound: u64,
        /// [`MAX_ABS_SCORE32`].
        max: u64,
    },
    /// A count (k or p) outside its range.
    #[error("{what} = {got} is outside 1..={max}")]
    Count {
        /// "k" or "p".
        what: &'static str,
        /// The value given.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A reference input of the wrong length.
    #[error("{what} has {found} words, expected {expected}")]
    InputLength {
        /// Which input.
        what: String,
        /// Expected words.
        expected: usize,
        /// Words given.
        found: usize,
    },
    /// A reference input word that is not a reduced Ring32 word.
    #[error("{what}: word {position} is not below 2^32")]
    NotRing32 {
        /// Which input.
        what: String,
        /// Word position.
        position: usize,
    },
    /// A padding row of a reference input is not zero.
    #[error("block {block}, row {row} is padding but its embedding is not zero")]
    PaddingNotZero {
        /// Block index.
        block: usize,
        /// Row in the block.
        row: usize,
    },
    /// A score of the reference data exceeds the shape's bound (the circuit would not be exact).
    #[error("the score of {what} {index} exceeds the bound {bound}")]
    ScoreOutOfRange {
        /// "chunk" (index = id) or "centroid".
        what: &'static str,
        /// Id or centroid index.
        index: usize,
        /// The shape's bound.
        bound: u64,
    },
    /// The program failed validation.
    #[error(transparent)]
    Validation(#[from] ValidationError),
}

impl BlockedShape {
    /// A shape of int8 vectors (score bound `dim·127²`).
    pub fn new(dim: usize, width: usize, block_rows: usize, blocks: Vec<usize>) -> Self {
        BlockedShape {
            dim,
            width,
            block_rows,
            blocks,
            max_abs_score: None,
        }
    }

    /// Number of blocks (= clusters in clustered mode), `nb`.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Present chunks, Σ blocks.
    pub fn documents(&self) -> usize {
        self.blocks.iter().sum()
    }

    /// Stored rows, `nb·R` (present and padding): the number of keys.
    pub fn slots(&self) -> usize {
        self.blocks.len().saturating_mul(self.block_rows)
    }

    /// Row bits, `log2 R`.
    pub fn row_bits(&self) -> u32 {
        self.block_rows.max(1).trailing_zeros()
    }

    /// Block bits, `⌈log2 nb⌉` (0 for one block).
    pub fn block_bits(&self) -> u32 {
        self.blocks
            .len()
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
    }

    /// Id bits `B = log2 R + ⌈log2 nb⌉`.
    pub fn index_bits(&self) -> u32 {
        self.row_bits() + self.block_bits()
    }

    /// The score bound in force: the declared one, else `dim·127²` (saturating).
    pub fn score_bound(&self) -> u64 {
        self.max_abs_score
            .unwrap_or_else(|| (self.dim as u64).saturating_mul(INT8_MAX_ABS * INT8_MAX_ABS))
    }

    /// Document id of `row` in `block`: `block·R + row`.
    pub fn doc_id(&self, block: usize, row: usize) -> usize {
        block * self.block_rows + row
    }

    /// Whether id `doc` is a padding row (or beyond the stored rows).
    pub fn is_padding(&self, doc: usize) -> bool {
        let (block, row) = (doc / self.block_rows.max(1), doc % self.block_rows.max(1));
        self.blocks.get(block).is_none_or(|&present| row >= present)
    }

    /// Checks the sizes: at least one block, `dim, width ≥ 1`, R a power of two ≥ 2, each block
    /// ≤ R, ids within [`MAX_INDEX_BITS`], and the score bound within [`MAX_ABS_SCORE32`].
    pub fn check(&self) -> Result<(), BlockedError> {
        if self.blocks.is_empty() {
            return Err(BlockedError::NoBlocks);
        }
        if self.dim == 0 {
            return Err(BlockedError::Empty { what: "dim" });
        }
        if self.width == 0 {
            return Err(BlockedError::Empty { what: "width" });
        }
        if self.block_rows < 2 || !self.block_rows.is_power_of_two() {
            return Err(BlockedError::BlockRows {
                rows: self.block_rows,
            });
        }
        if let Some((block, &present)) = self
            .blocks
            .iter()
            .enumerate()
            .find(|(_, p)| **p > self.block_rows)
        {
            return Err(BlockedError::BlockTooFull {
                block,
                present,
                rows: self.block_rows,
            });
        }
        if self.index_bits() > MAX_INDEX_BITS {
            return Err(BlockedError::IndexBits {
                bits: self.index_bits(),
                max: MAX_INDEX_BITS,
            });
        }
        let rows = self.block_rows;
        for (what, n) in [
            ("a block's embeddings", rows.checked_mul(self.dim)),
            ("a block's texts", rows.checked_mul(self.width)),
            ("the centroids", self.blocks.len().checked_mul(self.dim)),
        ] {
            if n.is_none_or(|n| n > MAX_ELEMENTS) {
                return Err(BlockedError::TooLarge { what });
            }
        }
        let bound = self.score_bound();
        if bound > MAX_ABS_SCORE32 {
            return Err(BlockedError::ScoreBound {
                bound,
                max: MAX_ABS_SCORE32,
            });
        }
        Ok(())
    }
}

/// The fetch stacks k·width words per block: at most [`MAX_ELEMENTS`] in all.
fn check_fetch(shape: &BlockedShape, k: usize) -> Result<(), BlockedError> {
    let words = k
        .checked_mul(shape.width)
        .and_then(|w| w.checked_mul(shape.blocks.len() + 1));
    match words {
        Some(w) if w <= MAX_ELEMENTS => Ok(()),
        _ => Err(BlockedError::TooLarge {
            what: "the fetched texts of every block",
        }),
    }
}

fn count(what: &'static str, got: usize, max: usize) -> Result<(), BlockedError> {
    if (1..=max).contains(&got) {
        Ok(())
    } else {
        Err(BlockedError::Count { what, got, max })
    }
}

/// Splits a key back into (score, document id): `key = −score·2^32 + id` with the id in the
/// low `bits` bits. For a padding key (see [`is_padding_key32`]) the score is meaningless.
pub fn decode_key32(key: u64, bits: u32) -> (i64, usize) {
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    ((key as i64 >> 32).wrapping_neg(), (key & mask) as usize)
}

/// Whether `key` belongs to a padding row (only chosen when fewer than k chunks were ranked).
pub fn is_padding_key32(key: u64) -> bool {
    (key as i64) >= PAD_KEY32 as i64
}

/// The corpus part of both programs: the Ring32 inputs and every chunk's key.
struct Corpus {
    query: Value,
    texts: Vec<Value>,
    /// `nb·R` ring keys, block-major.
    keys: Value,
}

fn secret(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Secret,
        elem,
        shape,
    }
}

/// `key_j = base_j − Widen(s_j)` with the public `base_j = j + pad_j`; the query is input
/// first, then each block's embeddings and texts.
fn corpus(b: &mut Builder, shape: &BlockedShape, owner: &str, asker: &str) -> Corpus {
    let client = |name: &str| Owner::Client(name.to_string());
    let query = b.input(
        QUERY,
        client(asker),
        secret(ElemType::Ring32, Shape::Matrix(shape.dim, 1)),
    );
    let rows = shape.block_rows;
    let mut scores = Vec::with_capacity(shape.blocks.len());
    let mut texts = Vec::with_capacity(shape.blocks.len());
    for i in 0..shape.blocks.len() {
        let emb = b.input(
            &emb_input(i),
            client(owner),
            secret(ElemType::Ring32, Shape::Matrix(rows, shape.dim)),
        );
        let text = b.input(
            &text_input(i),
            client(owner),
            secret(ElemType::Ring32, Shape::Matrix(rows, shape.width)),
        );
        let s = b.matmul(emb, query);
        scores.push(b.reshape(s, Shape::Vector(rows)));
        texts.push(text);
    }
    let s = b.concat(&scores);
    let widened = b.widen(s);
    let base = key_base(b, shape);
    let keys = b.sub(base, widened);
    Corpus { query, texts, keys }
}

/// The public `nb·R` vector `j + pad_j`, from `O(nb + R)` constant words: the ids are the
/// product of `[b·R, 1]` (nb × 2) and `[1 …; 0 1 … R−1]` (2 × R), and the padding mask is
/// `row ≥ present_b`, a public comparison of two rank-1 products.
fn key_base(b: &mut Builder, shape: &BlockedShape) -> Value {
    let (nb, rows) = (shape.blocks.len(), shape.block_rows);
    let ring = |b: &mut Builder, r: usize, c: usize, v: Vec<u64>| {
        b.constant(ElemType::Ring, Shape::Matrix(r, c), v)
    };
    let offsets = ring(
        b,
        nb,
        2,
        (0..nb).flat_map(|i| [(i * rows) as u64, 1]).collect(),
    );
    let row_ids: Vec<u64> = (0..rows as u64).collect();
    let ones_row = vec![1u64; rows];
    let basis = ring(b, 2, rows, [ones_row.clone(), row_ids.clone()].concat());
    let ids = b.matmul(offsets, basis);
    let base = if shape.blocks.iter().all(|&p| p == rows) {
        ids
    } else {
        let ones_col = ring(b, nb, 1, vec![1; nb]);
        let row_ids = ring(b, 1, rows, row_ids);
        let row_of = b.matmul(ones_col, row_ids);
        let present = ring(b, nb, 1, shape.blocks.iter().map(|&p| p as u64).collect());
        let ones_row = ring(b, 1, rows, ones_row);
        let present = b.matmul(present, ones_row);
        let padding = b.ge(row_of, present);
        let pad = b.constant(ElemType::Ring, Shape::Scalar, vec![PAD_KEY32]);
        let pad = b.mul(padding, pad);
        b.add(ids, pad)
    };
    b.reshape(base, Shape::Vector(nb * rows))
}

/// The two-level fetch of the texts of the k chosen keys `best` (see the module docs).
fn fetch(b: &mut Builder, shape: &BlockedShape, best: Value, k: usize, texts: &[Value]) -> Value {
    let (rb, nbits) = (shape.row_bits(), shape.block_bits());
    let (nb, width) = (shape.blocks.len(), shape.width);
    let oh_row = b.onehot_bits(best, 0, rb, shape.block_rows);
    let oh_row = b.narrow(oh_row);
    if nb == 1 {
        return b.matmul(oh_row, texts[0]);
    }
    let oh_blk = b.onehot_bits(best, rb, nbits, nb);
    let oh_blk = b.narrow(oh_blk);
    let per_block: Vec<Value> = texts
        .iter()
        .map(|&t| {
            let s = b.matmul(oh_row, t);
            b.reshape(s, Shape::Matrix(1, k * width))
        })
        .collect();
    // Row b of `stacked` is S_b flattened; its transpose has S_b[i] in rows i·width.. and
    // column b, so rows i·width..(i+1)·width, transposed, are [S_0[i]; S_1[i]; …] (nb × width).
    let stacked = b.concat(&per_block);
    let by_choice = b.transpose(stacked);
    let rows: Vec<Value> = (0..k)
        .map(|i| {
            let part = b.slice(by_choice, i * width, (i + 1) * width);
            let candidates = b.transpose(part);
            let pick = b.slice(oh_blk, i, i + 1);
            b.matmul(pick, candidates)
        })
        .collect();
    b.concat(&rows)
}

/// Rounds and bytes per party of the two-level fetch of `k` texts (see the module docs); the
/// ops after the last `BestK` of [`exact_program`] and [`clustered_program`] cost exactly this.
pub fn fetch_cost(shape: &BlockedShape, k: usize) -> Cost {
    let (rb, nbits) = (shape.row_bits(), shape.block_bits());
    let (nb, width) = (shape.blocks.len(), shape.width as u64);
    let kk = k as u64;
    let row = Cost {
        rounds: onehot_low_rounds(0, rb),
        bytes_sent: onehot_low_bytes(k, 0, rb, shape.block_rows),
    };
    let words = |w: u64| [8 * w; 3];
    if nb <= 1 {
        return Cost {
            rounds: row.rounds + 1,
            bytes_sent: add(row.bytes_sent, words(kk * width)),
        };
    }
    let blk = Cost {
        rounds: onehot_low_rounds(rb, nbits),
        bytes_sent: onehot_low_bytes(k, rb, nbits, nb),
    };
    Cost {
        // S_b needs only the row one-hot; the last products need S_b and the block one-hot.
        rounds: (row.rounds + 1).max(blk.rounds) + 1,
        bytes_sent: add(
            add(row.bytes_sent, blk.bytes_sent),
            words(kk * width * (nb as u64 + 1)),
        ),
    }
}

fn add(a: [u64; 3], b: [u64; 3]) -> [u64; 3] {
    [0, 1, 2].map(|i| a[i].saturating_add(b[i]))
}

/// The exact blocked retrieval program: the best `k` of all `nb·R` keys
/// (`1 ≤ k ≤ nb·R`; padding rows rank last), corpus owned by the client `owner`, query and
/// outputs (`keys`: k ring words, `texts`: k × width Ring32 words) for `asker`, the top-k plan
/// chosen for `link`. See the [module docs](self) for the construction and its cost.
pub fn exact_program(
    shape: &BlockedShape,
    k: usize,
    owner: &str,
    asker: &str,
    link: &LinkProfile,
) -> Result<ValidatedProgram, BlockedError> {
    shape.check()?;
    count("k", k, shape.slots())?;
    check_fetch(shape, k)?;
    let mut b = Builder::new();
    let c = corpus(&mut b, shape, owner, asker);
    let best = b.best_k_for_link(c.keys, k, false, link);
    let texts = fetch(&mut b, shape, best, k, &c.texts);
    finish(b, best, texts, asker)
}

/// The clustered retrieval program: the best `p` of the `C = nb` centroids (input
/// `centroids`, C × dim Ring32, owned by `owner`), then the best `k` keys of those clusters'
/// `p·R` rows (`1 ≤ p ≤ C`, `1 ≤ k ≤ p·R`), then the two-level fetch; outputs as
/// [`exact_program`]. See the [module docs](self) for the accuracy trade-off and the cost.
pub fn clustered_program(
    shape: &BlockedShape,
    p: usize,
    k: usize,
    owner: &str,
    asker: &str,
    link: &LinkProfile,
) -> Result<ValidatedProgram, BlockedError> {
    shape.check()?;
    let nc = shape.blocks.len();
    count("p", p, nc)?;
    count("k", k, p.saturating_mul(shape.block_rows))?;
    check_fetch(shape, k)?;
    let mut b = Builder::new();
    let c = corpus(&mut b, shape, owner, asker);
    let centroids = b.input(
        CENTROIDS,
        Owner::Client(owner.to_string()),
        secret(ElemType::Ring32, Shape::Matrix(nc, shape.dim)),
    );
    let s = b.matmul(centroids, c.query);
    let s = b.reshape(s, Shape::Vector(nc));
    let widened = b.widen(s);
    let ids = b.constant(ElemType::Ring, Shape::Vector(nc), (0..nc as u64).collect());
    let ckeys = b.sub(ids, widened);
    let best_c = b.best_k_for_link(ckeys, p, false, link);
    let oh_c = b.onehot_low(best_c, index_bits(nc), nc);
    let keys = b.reshape(c.keys, Shape::Matrix(nc, shape.block_rows));
    let gathered = b.matmul(oh_c, keys);
    let gathered = b.reshape(gathered, Shape::Vector(p * shape.block_rows));
    let best = b.best_k_for_link(gathered, k, false, link);
    let texts = fetch(&mut b, shape, best, k, &c.texts);
    finish(b, best, texts, asker)
}

fn finish(
    mut b: Builder,
    best: Value,
    texts: Value,
    asker: &str,
) -> Result<ValidatedProgram, BlockedError> {
    let to_asker = || Recipient::Client(asker.to_string());
    b.output(KEYS, best, to_asker());
    b.output(TEXTS, texts, to_asker());
    Ok(b.finish()?)
}

/// A reduced Ring32 word read as a signed i32.
fn signed32(w: u64) -> i64 {
    i64::from(w as u32 as i32)
}

fn check_words(
    what: impl Fn() -> String,
    words: &[u64],
    expected: usize,
) -> Result<(), BlockedError> {
    if words.len() != expected {
        return Err(BlockedError::InputLength {
            what: what(),
            expected,
            found: words.len(),
        });
    }
    match words.iter().position(|&w| w > RING32_MASK) {
        Some(position) => Err(BlockedError::NotRing32 {
            what: what(),
            position,
        }),
        None => Ok(()),
    }
}

/// Exact integer scores of the rows of `m` (rows × dim Ring32 words) against `query`.
fn scores(m: &[u64], query: &[u64], dim: usize) -> Vec<i128> {
    m.chunks(dim)
        .map(|row| {
            row.iter()
                .zip(query)
                .map(|(&e, &q)| i128::from(signed32(e)) * i128::from(signed32(q)))
                .sum()
        })
        .collect()
}

/// A ranked candidate: padding last, then the higher score, then the lower id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    padding: bool,
    neg_score: i64,
    id: usize,
}

impl Rank {
    fn key(self) -> u64 {
        if self.padding {
            PAD_KEY32 + self.id as u64
        } else {
            (self.neg_score << 32) as u64 + self.id as u64
        }
    }
}

/// Every stored row's rank, after checking the inputs (lengths, reduced words, zero padding,
/// scores within the bound).
fn ranks(
    shape: &BlockedShape,
    query: &[u64],
    emb: &[Vec<u64>],
) -> Result<Vec<Vec<Rank>>, BlockedError> {
    shape.check()?;
    check_words(|| QUERY.to_string(), query, shape.dim)?;
    if emb.len() != shape.blocks.len() {
        return Err(BlockedError::InputLength {
            what: "blocks".to_string(),
            expected: shape.blocks.len(),
            found: emb.len(),
        });
    }
    let bound = shape.score_bound();
    let mut out = Vec::with_capacity(emb.len());
    for (block, (m, &present)) in emb.iter().zip(&shape.blocks).enumerate() {
        check_words(|| emb_input(block), m, shape.block_rows * shape.dim)?;
        let mut ranked = Vec::with_capacity(shape.block_rows);
        for (row, s) in scores(m, query, shape.dim).into_iter().enumerate() {
            let id = shape.doc_id(block, row);
            let padding = row >= present;
            if padding
                && m[row * shape.dim..(row + 1) * shape.dim]
                    .iter()
                    .any(|&w| w != 0)
            {
                return Err(BlockedError::PaddingNotZero { block, row });
            }
            if s.unsigned_abs() > u128::from(bound) {
                return Err(BlockedError::ScoreOutOfRange {
                    what: "chunk",
                    index: id,
                    bound,
                });
            }
            ranked.push(Rank {
                padding,
                neg_score: -(s as i64),
                id,
            });
        }
        out.push(ranked);
    }
    Ok(out)
}

fn best(mut candidates: Vec<Rank>, k: usize) -> Vec<u64> {
    candidates.sort_unstable();
    candidates.truncate(k);
    candidates.into_iter().map(Rank::key).collect()
}

/// Plaintext reference of [`exact_program`]'s `keys`: the k best stored rows — present chunks
/// by score descending, ties to the lower id, then padding rows by id — as keys
/// `−score·2^32 + id` (padding: [`PAD_KEY32`]` + id`). `query` has dim Ring32 words, `emb[b]`
/// R × dim (row-major, zero padding rows).
pub fn plain_exact(
    shape: &BlockedShape,
    k: usize,
    query: &[u64],
    emb: &[Vec<u64>],
) -> Result<Vec<u64>, BlockedError> {
    let all = ranks(shape, query, emb)?;
    count("k", k, shape.slots())?;
    Ok(best(all.into_iter().flatten().collect(), k))
}

/// Plaintext reference of [`clustered_program`]'s `keys`: the `p` clusters with the highest
/// centroid scores (ties to the lower index), then the k best of their stored rows as in
/// [`plain_exact`]. `centroids` has C × dim Ring32 words.
pub fn plain_clustered(
    shape: &BlockedShape,
    p: usize,
    k: usize,
    query: &[u64],
    centroids: &[u64],
    emb: &[Vec<u64>],
) -> Result<Vec<u64>, BlockedError> {
    let all = ranks(shape, query, emb)?;
    let nc = shape.blocks.len();
    count("p", p, nc)?;
    count("k", k, p.saturating_mul(shape.block_rows))?;
    check_words(|| CENTROIDS.to_string(), centroids, nc * shape.dim)?;
    let bound = shape.score_bound();
    let mut clusters = Vec::with_capacity(nc);
    for (c, s) in scores(centroids, query, shape.dim).into_iter().enumerate() {
        if s.unsigned_abs() > u128::from(bound) {
            return Err(BlockedError::ScoreOutOfRange {
                what: "centroid",
                index: c,
                bound,
            });
        }
        clusters.push((-(s as i64), c));
    }
    clusters.sort_unstable();
    let candidates = clusters
        .iter()
        .take(p)
        .flat_map(|&(_, c)| all[c].iter().copied())
        .collect();
    Ok(best(candidates, k))
}

/// Plaintext reference of the `texts` output: row `id` of the texts (`texts[b]`: R × width
/// Ring32 words) for each key's id, k × width words.
pub fn plain_fetch(
    shape: &BlockedShape,
    keys: &[u64],
    texts: &[Vec<u64>],
) -> Result<Vec<u64>, BlockedError> {
    shape.check()?;
    if texts.len() != shape.blocks.len() {
        return Err(BlockedError::InputLength {
            what: "text blocks".to_string(),
            expected: shape.blocks.len(),
            found: texts.len(),
        });
    }
    for (i, t) in texts.iter().enumerate() {
        check_words(|| text_input(i), t, shape.block_rows * shape.width)?;
    }
    let bits = shape.index_bits();
    let mut out = Vec::with_capacity(keys.len() * shape.width);
    for &key in keys {
        let (_, id) = decode_key32(key, bits);
        let (block, row) = (id / shape.block_rows, id % shape.block_rows);
        match texts.get(block) {
            Some(t) => out.extend_from_slice(&t[row * shape.width..(row + 1) * shape.width]),
            None => out.extend(std::iter::repeat_n(0, shape.width)),
        }
    }
    Ok(out)
}
