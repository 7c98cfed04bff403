//! Offline text embedder for private RAG: a static token-embedding table distilled from
//! all-MiniLM-L6-v2 (model2vec-style, int8, 256 dims) plus BERT uncased WordPiece.
//!
//! Text → WordPiece ids over the model's full 30,522-token vocabulary → the table's row for
//! each id that has one (special tokens, `[unused*]`, `[UNK]` and pure punctuation have none
//! and are skipped) → mean → L2 norm. Nothing is downloaded: the table is compiled in
//! (`examples/assets/embedder/minilm-l6-static.bin`, see the README there for how it was made
//! and `examples/tools/distill_embedder.py` to rebuild it).
//!
//! Table format (little-endian): magic `VEILEMB1`; header `version, vocab, dim, flags, rows,
//! unk_id, vocab_bytes` (u32 each); `vocab` × (u8 length + UTF-8 token); a has-row bitmap of
//! `ceil(vocab / 8)` bytes (bit `i % 8` of byte `i / 8`; rows are stored in id order); `rows`
//! × f32 scale; `rows × dim` int8 values (vector = scale × q); SHA-256 of everything before it.

mod wordpiece;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use self::wordpiece::{Normalization, WordPiece};

/// The distilled table compiled into the binary.
static BUILTIN_TABLE: &[u8] = include_bytes!("../../assets/embedder/minilm-l6-static.bin");

/// File magic of an embedding table.
pub const MAGIC: &[u8; 8] = b"VEILEMB1";
/// The table format version this code reads.
pub const FORMAT_VERSION: u32 = 1;
/// Flag: lowercase text before WordPiece.
pub const FLAG_LOWERCASE: u32 = 1;
/// Flag: strip accents (NFD, drop nonspacing marks).
pub const FLAG_STRIP_ACCENTS: u32 = 1 << 1;
/// Flag: make every CJK ideograph its own word.
pub const FLAG_SPLIT_CJK: u32 = 1 << 2;

const KNOWN_FLAGS: u32 = FLAG_LOWERCASE | FLAG_STRIP_ACCENTS | FLAG_SPLIT_CJK;
const HEADER_LEN: usize = 8 + 7 * 4;
const DIGEST_LEN: usize = 32;
/// Sanity bounds checked before anything is allocated.
const MAX_DIM: u32 = 4096;
const MAX_VOCAB: u32 = 1 << 22;
const NO_ROW: u32 = u32::MAX;

/// Why a table could not be loaded or a text could not be embedded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    /// The table file could not be read.
    #[error("cannot read embedding table {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The bytes do not start with `VEILEMB1`.
    #[error("not a veil embedding table (bad magic)")]
    BadMagic,
    /// The table was written by an unknown format version.
    #[error("unsupported embedding table version {0} (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    /// The header sets flag bits this build does not know.
    #[error("unsupported embedding table flags {0:#x}")]
    UnsupportedFlags(u32),
    /// The table is shorter than its header says.
    #[error("embedding table truncated: {expected} bytes expected, {actual} found")]
    Truncated {
        /// Length implied by the header (or the minimum header length).
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// The table is longer than its header says.
    #[error("embedding table has {0} unexpected trailing bytes")]
    TrailingBytes(u64),
    /// The trailing SHA-256 does not match the contents.
    #[error("embedding table checksum mismatch (corrupt file)")]
    ChecksumMismatch,
    /// The header or body is inconsistent (bad sizes, invalid UTF-8, duplicate tokens, …).
    #[error("malformed embedding table: {0}")]
    Malformed(&'static str),
    /// The text has no token with a vector (empty, whitespace, only punctuation or unknown
    /// words), so it has no meaningful direction.
    #[error("text has no token with an embedding")]
    NoTokens,
}

/// Offline text embedder: WordPiece tokens → distilled static vectors → mean → L2 norm.
#[derive(Debug)]
pub struct Embedder {
    wordpiece: WordPiece,
    dim: usize,
    /// Row of each token id, or `NO_ROW`.
    row_of: Vec<u32>,
    scales: Vec<f32>,
    /// `rows × dim` quantised values.
    values: Vec<i8>,
}

impl Embedder {
    /// The table compiled into the binary, parsed once on first use.
    pub fn builtin() -> Result<&'static Embedder, EmbedError> {
        static BUILTIN: OnceLock<Result<Embedder, EmbedError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Embedder::from_bytes(BUILTIN_TABLE))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Reads a table file (see the module docs for the format).
    pub fn from_file(path: &Path) -> Result<Embedder, EmbedError> {
        let bytes = std::fs::read(path).map_err(|e| EmbedError::Io {
            path: path.to_path_buf(),
            source: Arc::new(e),
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses a table: checks magic, version, flags, lengths (before allocating) and the
    /// SHA-256, then builds the WordPiece maps.
    pub fn from_bytes(bytes: &[u8]) -> Result<Embedder, EmbedError> {
        let actual = bytes.len() as u64;
        if bytes.len() < HEADER_LEN + DIGEST_LEN {
            let n = bytes.len().min(MAGIC.len());
            if bytes[..n] != MAGIC[..n] {
                return Err(EmbedError::BadMagic);
            }
            return Err(EmbedError::Truncated {
                expected: (HEADER_LEN + DIGEST_LEN) as u64,
                actual,
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(EmbedError::BadMagic);
        }
        let mut r = Reader { bytes, pos: 8 };
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(EmbedError::UnsupportedVersion(version));
        }
        let (vocab, dim, flags, rows, unk, vocab_bytes) =
            (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(EmbedError::UnsupportedFlags(flags));
        }
        if vocab == 0 || vocab > MAX_VOCAB || dim == 0 || dim > MAX_DIM {
            return Err(EmbedError::Malformed(
                "vocabulary size or dimension out of range",
            ));
        }
        if rows > vocab || unk >= vocab || vocab_bytes < vocab {
            return Err(EmbedError::Malformed("inconsistent header"));
        }
        // Every size is < 2^32, so this u64 arithmetic cannot overflow.
        let (vocab, dim, rows) = (u64::from(vocab), u64::from(dim), u64::from(rows));
        let bitmap_len = vocab.div_ceil(8);
        let expected = HEADER_LEN as u64
            + u64::from(vocab_bytes)
            + bitmap_len
            + 4 * rows
            + rows * dim
            + DIGEST_LEN as u64;
        if actual < expected {
            return Err(EmbedError::Truncated { expected, actual });
        }
        if actual > expected {
            return Err(EmbedError::TrailingBytes(actual - expected));
        }
        let (body, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
        if Sha256::digest(body).as_slice() != digest {
            return Err(EmbedError::ChecksumMismatch);
        }
        // From here on all lengths fit in memory: they add up to `bytes.len()`.
        let (vocab, dim, rows) = (vocab as usize, dim as usize, rows as usize);

        let vocab_section = r.take(vocab_bytes as usize)?;
        let mut tokens = Vec::with_capacity(vocab);
        let mut v = Reader {
            bytes: vocab_section,
            pos: 0,
        };
        for _ in 0..vocab {
            let len = usize::from(v.take(1)?[0]);
            let tok = std::str::from_utf8(v.take(len)?)
                .map_err(|_| EmbedError::Malformed("token is not UTF-8"))?;
            if tok.is_empty() {
                return Err(EmbedError::Malformed("empty token"));
            }
            tokens.push(tok);
        }
        if v.pos != vocab_section.len() {
            return Err(EmbedError::Malformed("vocabulary section length mismatch"));
        }

        let bitmap = r.take(bitmap_len as usize)?;
        let mut row_of = vec![NO_ROW; vocab];
        let mut next = 0u32;
        for (id, slot) in row_of.iter_mut().enumerate() {
            if bitmap[id / 8] >> (id % 8) & 1 == 1 {
                *slot = next;
                next += 1;
            }
        }
        if next as usize != rows || (vocab % 8 != 0 && bitmap[vocab / 8] >> (vocab % 8) != 0) {
            return Err(EmbedError::Malformed(
                "has-row bitmap does not match the row count",
            ));
        }

        let scales: Vec<f32> = r
            .take(4 * rows)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if scales.iter().any(|s| !s.is_finite()) {
            return Err(EmbedError::Malformed("non-finite row scale"));
        }
        let values: Vec<i8> = r.take(rows * dim)?.iter().map(|&b| b as i8).collect();

        let norm = Normalization {
            lowercase: flags & FLAG_LOWERCASE != 0,
            strip_accents: flags & FLAG_STRIP_ACCENTS != 0,
            split_cjk: flags & FLAG_SPLIT_CJK != 0,
        };
        let wordpiece = WordPiece::new(&tokens, unk, norm).map_err(EmbedError::Malformed)?;
        Ok(Embedder {
            wordpiece,
            dim,
            row_of,
            scales,
            values,
        })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Size of the WordPiece vocabulary (token ids are `0..vocab_size()`).
    pub fn vocab_size(&self) -> usize {
        self.row_of.len()
    }

    /// Unit-length embedding of `text`; `Err(EmbedError::NoTokens)` when no token of the text
    /// has a vector (empty, whitespace, only punctuation or unknown words).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let ids = self.tokenize(text);
        let mut acc = vec![0f32; self.dim];
        let mut used = 0usize;
        for &id in &ids {
            let Some(&row) = self.row_of.get(id as usize) else {
                continue;
            };
            if row == NO_ROW {
                continue;
            }
            let row = row as usize;
            let scale = self.scales[row];
            let values = &self.values[row * self.dim..(row + 1) * self.dim];
            for (a, &q) in acc.iter_mut().zip(values) {
                *a += scale * f32::from(q);
            }
            used += 1;
        }
        let norm = acc.iter().map(|x| x * x).sum::<f32>().sqrt();
        if used == 0 || !norm.is_normal() {
            return Err(EmbedError::NoTokens);
        }
        // The mean's 1/used factor cancels in the normalisation.
        acc.iter_mut().for_each(|x| *x /= norm);
        Ok(acc)
    }

    /// WordPiece token ids of `text` (no `[CLS]`/`[SEP]`; unknown words are `[UNK]`).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        self.wordpiece.tokenize_into(text, &mut ids);
        ids
    }
}

/// Cosine similarity of two equal-length vectors (their dot product when both are unit length).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Bounds-checked cursor over the table bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EmbedError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(EmbedError::Malformed("section runs past its end"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, EmbedError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests;
