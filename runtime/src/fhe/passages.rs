//! Private passage fetch: linear PIR (SimplePIR-style) over the passage texts with the same
//! scan as scoring.
//!
//! Passage j becomes column j of P ∈ i8^{W × n}: a 4-byte little-endian length, the UTF-8
//! bytes, zero padding (W = 4 + the longest passage). A query is the one-hot vector e_j,
//! encrypted; the answer row b is P[b, j], so the client decodes column j — every byte exact —
//! while the server, which sees only a fresh-key GLWE encryption of e_j, learns nothing about j.
//! The server scans all of P for every fetch: that is the price of hiding the index.

use super::db::{DbShape, EncryptedQuery, Hint, LinearDb};
use super::error::{FheError, Result};
use super::query::{PendingQuery, encrypt};

/// Longest passage accepted, in bytes (the hint grows by 16 KiB per byte of width).
pub const MAX_PASSAGE_BYTES: usize = 8192;
const LEN_BYTES: usize = 4;

/// The server's passage matrix.
#[derive(Clone, Debug)]
pub struct PassageDb {
    db: LinearDb,
}

impl PassageDb {
    /// Lays out the passages as a PIR matrix, refusing empty sets and over-long passages.
    pub fn new<T: AsRef<[u8]>>(passages: &[T]) -> Result<Self> {
        if passages.is_empty() {
            return Err(FheError::Invalid("no passages to serve".into()));
        }
        let mut width = 0;
        for (j, p) in passages.iter().enumerate() {
            let len = p.as_ref().len();
            if len > MAX_PASSAGE_BYTES {
                return Err(FheError::Invalid(format!(
                    "passage {j} has {len} bytes; the limit is {MAX_PASSAGE_BYTES} (split it into chunks)"
                )));
            }
            width = width.max(len);
        }
        let rows = LEN_BYTES + width;
        let cols = passages.len();
        let mut data = vec![0i8; rows * cols];
        for (j, p) in passages.iter().enumerate() {
            let p = p.as_ref();
            let header = (p.len() as u32).to_le_bytes();
            for (b, &byte) in header.iter().chain(p).enumerate() {
                data[b * cols + j] = byte as i8;
            }
        }
        Ok(Self {
            db: LinearDb::new(rows, cols, &data, 1, 1)?,
        })
    }

    pub(crate) fn from_db(db: LinearDb) -> Self {
        Self { db }
    }

    /// Number of passages.
    pub fn len(&self) -> usize {
        self.db.shape().cols
    }

    /// Whether there are no passages (never true for a constructed database).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The scan database (shape, hint, answers).
    pub fn db(&self) -> &LinearDb {
        &self.db
    }

    /// Server side: answers fetch queries in one pass.
    pub fn answer_batch(&self, queries: &[EncryptedQuery]) -> Result<Vec<Vec<u64>>> {
        self.db.answer_batch(queries)
    }
}

/// A fetch in flight.
#[derive(Debug)]
pub struct FetchQuery {
    pending: PendingQuery,
}

impl FetchQuery {
    /// Client side: encrypts the one-hot vector of passage `index`.
    pub fn new(shape: &DbShape, index: usize) -> Result<(Self, EncryptedQuery)> {
        if index >= shape.cols {
            return Err(FheError::Invalid(format!(
                "passage {index} does not exist ({} passages)",
                shape.cols
            )));
        }
        let mut v = vec![0i64; shape.cols];
        v[index] = 1;
        let (pending, ct) = encrypt(shape, &v)?;
        Ok((Self { pending }, ct))
    }

    /// Decodes the answer into the passage bytes.
    pub fn decode(self, hint: &Hint, answer: &[u64]) -> Result<Vec<u8>> {
        let column: Vec<u8> = self
            .pending
            .decode(hint, answer)?
            .into_iter()
            .map(|x| x as u8)
            .collect();
        if column.len() < LEN_BYTES {
            return Err(FheError::Format {
                what: "fetched passage",
                reason: format!("{} rows cannot hold the 4-byte length header", column.len()),
            });
        }
        let len = u32::from_le_bytes(column[..LEN_BYTES].try_into().expect("4 bytes")) as usize;
        if len > column.len() - LEN_BYTES {
            return Err(FheError::Format {
                what: "fetched passage",
                reason: format!(
                    "length header {len} exceeds the {} byte width",
                    column.len() - LEN_BYTES
                ),
            });
        }
        Ok(column[LEN_BYTES..LEN_BYTES + len].to_vec())
    }
}
