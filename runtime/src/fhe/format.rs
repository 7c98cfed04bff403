//! Versioned binary encoding of the retrieval objects, for files and for the wire.
//!
//! Every object is `"VEILFHE" ‖ kind (1 byte) ‖ version (u16 LE) ‖ body ‖ SHA-256(all before)`.
//! Integers are little-endian; lengths are u64 and are checked against the bytes left before
//! anything is allocated, so truncated or corrupted input is an error, never a panic or an
//! out-of-memory abort. A database read back is re-hashed and must match its recorded id.

use super::corpus::{CorpusInfo, ScoringCorpus};
use super::db::{DbId, DbShape, Hint, LinearDb};
use super::error::{FheError, Result};
use super::params::POLY_SIZE;
use super::passages::PassageDb;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 7] = b"VEILFHE";
/// Format version written and accepted.
pub const FORMAT_VERSION: u16 = 1;

#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    Hint = 1,
    CorpusInfo = 2,
    ScoringCorpus = 3,
    PassageDb = 4,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Hint => "hint",
            Kind::CorpusInfo => "corpus info",
            Kind::ScoringCorpus => "scoring corpus",
            Kind::PassageDb => "passage database",
        }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: Kind) -> Self {
        let mut v = MAGIC.to_vec();
        v.push(kind as u8);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        Self(v)
    }
    fn u32(&mut self, x: u32) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn len(&mut self, x: usize) {
        self.u64(x as u64);
    }
    fn shape(&mut self, s: &DbShape) {
        self.0.extend_from_slice(&s.id.0);
        self.len(s.rows);
        self.len(s.cols);
        self.u32(s.query_bound);
        self.len(s.query_support);
    }
    fn finish(mut self) -> Vec<u8> {
        let digest = Sha256::digest(&self.0);
        self.0.extend_from_slice(&digest);
        self.0
    }
}

struct Reader<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn open(kind: Kind, bytes: &'a [u8]) -> Result<Self> {
        let what = kind.what();
        let bad = |reason: String| FheError::Format { what, reason };
        if bytes.len() < MAGIC.len() + 3 + 32 {
            return Err(bad(format!("{} bytes is too short", bytes.len())));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if &body[..MAGIC.len()] != MAGIC {
            return Err(bad("not a veil FHE object (bad magic)".into()));
        }
        if body[MAGIC.len()] != kind as u8 {
            return Err(bad(format!(
                "object kind {} is not a {what}",
                body[MAGIC.len()]
            )));
        }
        let version = u16::from_le_bytes([body[MAGIC.len() + 1], body[MAGIC.len() + 2]]);
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        if Sha256::digest(body).as_slice() != digest {
            return Err(bad("checksum mismatch (corrupted or truncated)".into()));
        }
        Ok(Self {
            what,
            rest: &body[MAGIC.len() + 3..],
        })
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(FheError::Format {
                what: self.what,
                reason: format!("needs {n} more bytes, {} left", self.rest.len()),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A count of items of `item_bytes` each, checked against the bytes left.
    fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        if n.saturating_mul(item_bytes as u64) > self.rest.len() as u64 {
            return Err(FheError::Format {
                what: self.what,
                reason: format!(
                    "a length of {n} items exceeds the {} bytes left",
                    self.rest.len()
                ),
            });
        }
        Ok(n as usize)
    }
    fn shape(&mut self) -> Result<DbShape> {
        let id = DbId(self.take(32)?.try_into().expect("32 bytes"));
        let rows = self.u64()? as usize;
        let cols = self.u64()? as usize;
        let query_bound = self.u32()?;
        let query_support = self.u64()? as usize;
        Ok(DbShape {
            id,
            rows,
            cols,
            query_bound,
            query_support,
        })
    }
    fn u64s(&mut self) -> Result<Vec<u64>> {
        let n = self.count(8)?;
        Ok(self
            .take(n * 8)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect())
    }
    fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.count(4)?;
        Ok(self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
    fn i8s(&mut self) -> Result<Vec<i8>> {
        let n = self.count(1)?;
        Ok(self.take(n)?.iter().map(|&b| b as i8).collect())
    }
    fn end(self) -> Result<()> {
        if !self.rest.is_empty() {
            return Err(FheError::Format {
                what: self.what,
                reason: format!("{} trailing bytes", self.rest.len()),
            });
        }
        Ok(())
    }
}

fn write_info(w: &mut Writer, info: &CorpusInfo) {
    w.len(info.dim);
    w.shape(&info.shape);
    w.len(info.centroids.len());
    for x in &info.centroids {
        w.0.extend_from_slice(&x.to_le_bytes());
    }
    w.len(info.members.len());
    for m in &info.members {
        w.len(m.len());
        for &d in m {
            w.u32(d);
        }
    }
}

fn read_info(r: &mut Reader<'_>) -> Result<CorpusInfo> {
    let dim = r.u64()? as usize;
    let shape = r.shape()?;
    let centroids = r.f32s()?;
    let clusters = r.count(8)?;
    let mut members = Vec::with_capacity(clusters);
    for _ in 0..clusters {
        let n = r.count(4)?;
        members.push((0..n).map(|_| r.u32()).collect::<Result<Vec<u32>>>()?);
    }
    let bad = |reason: String| FheError::Format {
        what: "corpus info",
        reason,
    };
    if dim == 0 || centroids.len() != clusters * dim || shape.cols != clusters * dim {
        return Err(bad(format!(
            "{clusters} clusters of dimension {dim} do not match {} centroid values and {} columns",
            centroids.len(),
            shape.cols
        )));
    }
    if members.iter().any(|m| m.len() > shape.rows) {
        return Err(bad(format!(
            "a cluster has more members than the {} rows",
            shape.rows
        )));
    }
    Ok(CorpusInfo {
        dim,
        centroids,
        members,
        shape,
    })
}

fn write_db(w: &mut Writer, db: &LinearDb) {
    let shape = db.shape();
    w.shape(shape);
    w.len(shape.rows * shape.cols);
    for r in 0..shape.rows {
        w.0.extend(db.row(r).iter().map(|&x| x as u8));
    }
}

fn read_db(r: &mut Reader<'_>) -> Result<LinearDb> {
    let shape = r.shape()?;
    let data = r.i8s()?;
    let db = LinearDb::new(
        shape.rows,
        shape.cols,
        &data,
        shape.query_bound,
        shape.query_support,
    )?;
    if db.shape() != &shape {
        return Err(FheError::Format {
            what: r.what,
            reason: "content does not match its recorded database id".into(),
        });
    }
    Ok(db)
}

impl Hint {
    /// Encodes the hint (shape + rows × N coefficients).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::Hint);
        w.shape(&self.shape);
        w.len(self.data.len());
        for x in &self.data {
            w.u64(*x);
        }
        w.finish()
    }

    /// Decodes a hint, checking its size against its shape.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(Kind::Hint, bytes)?;
        let shape = r.shape()?;
        let data = r.u64s()?;
        r.end()?;
        if data.len() != shape.rows.saturating_mul(POLY_SIZE) {
            return Err(FheError::Format {
                what: "hint",
                reason: format!("{} coefficients for {} rows", data.len(), shape.rows),
            });
        }
        Ok(Self { shape, data })
    }
}

impl CorpusInfo {
    /// Encodes the public corpus metadata.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::CorpusInfo);
        write_info(&mut w, self);
        w.finish()
    }

    /// Decodes public corpus metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(Kind::CorpusInfo, bytes)?;
        let info = read_info(&mut r)?;
        r.end()?;
        Ok(info)
    }
}

impl ScoringCorpus {
    /// Encodes the whole prepared corpus (metadata and matrix) for the server's disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::ScoringCorpus);
        write_info(&mut w, &self.info);
        write_db(&mut w, &self.db);
        w.finish()
    }

    /// Decodes a prepared corpus, re-checking the matrix against its id and budget.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(Kind::ScoringCorpus, bytes)?;
        let info = read_info(&mut r)?;
        let db = read_db(&mut r)?;
        r.end()?;
        if db.shape() != &info.shape {
            return Err(FheError::Format {
                what: "scoring corpus",
                reason: "metadata and matrix describe different databases".into(),
            });
        }
        Ok(Self { info, db })
    }
}

impl PassageDb {
    /// Encodes the passage matrix for the server's disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::PassageDb);
        write_db(&mut w, self.db());
        w.finish()
    }

    /// Decodes a passage matrix, re-checking it against its id and budget.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(Kind::PassageDb, bytes)?;
        let db = read_db(&mut r)?;
        r.end()?;
        Ok(PassageDb::from_db(db))
    }
}
