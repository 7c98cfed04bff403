//! Corpus directories of the Retrieval service: what a preparation step writes and a node loads.
//!
//! | file | content | required |
//! |---|---|---|
//! | `corpus.bin` | [`ScoringCorpus::to_bytes`]: public metadata and the int8 scoring matrix | yes |
//! | `corpus.hint` | [`Hint::to_bytes`] of the scoring matrix | yes |
//! | `passages.bin` | [`PassageDb::to_bytes`]: the passage matrix | no |
//! | `passages.hint` | [`Hint::to_bytes`] of the passage matrix | with `passages.bin` |
//!
//! Hints are expensive (NTTs over the whole matrix), so [`write_corpus_dir`] computes them once,
//! per corpus version, and a node only checks them when it loads the directory
//! ([`load_corpus_dir`]): every hint must belong to the matrix beside it (same content id).
//! Files are written under a temporary name and renamed, so a reader never sees half a file.
//!
//! Everything here is public data or the server's clear corpus; nothing is secret.

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use veil_runtime::fhe::{DbShape, FheError, Hint, PassageDb, ScoringCorpus};

/// The prepared scoring corpus ([`ScoringCorpus::to_bytes`]).
pub const CORPUS_FILE: &str = "corpus.bin";
/// The scoring matrix's hint ([`Hint::to_bytes`]).
pub const CORPUS_HINT_FILE: &str = "corpus.hint";
/// The optional passage matrix ([`PassageDb::to_bytes`]).
pub const PASSAGES_FILE: &str = "passages.bin";
/// The passage matrix's hint, present exactly when [`PASSAGES_FILE`] is.
pub const PASSAGES_HINT_FILE: &str = "passages.hint";

/// A corpus directory could not be written or loaded, or an input file is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusDirError {
    /// A file or directory operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not decode, or its content is refused by the FHE library.
    #[error("{path}: {source}")]
    Fhe {
        /// The file.
        path: PathBuf,
        /// What the library said.
        #[source]
        source: FheError,
    },
    /// Files of the directory do not belong together, or an input is malformed.
    #[error("{path}: {problem}")]
    Invalid {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CorpusDirError + 'a {
    move |source| CorpusDirError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn fhe_err(path: &Path) -> impl FnOnce(FheError) -> CorpusDirError + '_ {
    move |source| CorpusDirError::Fhe {
        path: path.to_path_buf(),
        source,
    }
}

/// A corpus as a node serves it: the scoring matrix in memory, and the encoded public objects
/// a client downloads, kept as bytes so they stream without copies.
#[derive(Debug)]
pub struct LoadedCorpus {
    /// The scoring corpus (metadata and matrix).
    pub corpus: ScoringCorpus,
    /// [`veil_runtime::fhe::CorpusInfo::to_bytes`] of `corpus.info`.
    pub info_bytes: Bytes,
    /// The scoring hint, as stored in `corpus.hint` (checked against the matrix).
    pub hint_bytes: Bytes,
    /// The passages, when the directory has them.
    pub passages: Option<LoadedPassages>,
}

/// The passage half of a [`LoadedCorpus`].
#[derive(Debug)]
pub struct LoadedPassages {
    /// The passage matrix.
    pub db: PassageDb,
    /// The passage hint, as stored in `passages.hint` (checked against the matrix).
    pub hint_bytes: Bytes,
}

/// What [`write_corpus_dir`] wrote.
#[derive(Clone, Debug)]
pub struct WrittenCorpus {
    /// Every file written, with its size in bytes.
    pub files: Vec<(PathBuf, u64)>,
    /// Shape (and content id) of the scoring matrix.
    pub score_shape: DbShape,
    /// Time to compute the scoring hint.
    pub score_hint_time: Duration,
    /// Shape of the passage matrix, when passages were written.
    pub passage_shape: Option<DbShape>,
    /// Time to compute the passage hint.
    pub passage_hint_time: Option<Duration>,
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename; returns the path.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(PathBuf, u64), CorpusDirError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    Ok((path, bytes.len() as u64))
}

/// Computes the hints and writes a corpus directory (created if needed): `corpus.bin`,
/// `corpus.hint`, and with `passages` also `passages.bin` and `passages.hint`. Without
/// `passages`, stale passage files in `dir` are removed so the directory stays consistent.
pub fn write_corpus_dir(
    dir: &Path,
    corpus: &ScoringCorpus,
    passages: Option<&PassageDb>,
) -> Result<WrittenCorpus, CorpusDirError> {
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let start = Instant::now();
    let hint = corpus.db.hint();
    let score_hint_time = start.elapsed();
    let mut files = vec![
        write_file(dir, CORPUS_FILE, &corpus.to_bytes())?,
        write_file(dir, CORPUS_HINT_FILE, &hint.to_bytes())?,
    ];
    drop(hint);
    let (mut passage_shape, mut passage_hint_time) = (None, None);
    match passages {
        Some(p) => {
            let start = Instant::now();
            let hint = p.db().hint();
            passage_hint_time = Some(start.elapsed());
            files.push(write_file(dir, PASSAGES_FILE, &p.to_bytes())?);
            files.push(write_file(dir, PASSAGES_HINT_FILE, &hint.to_bytes())?);
            passage_shape = Some(p.db().shape().clone());
        }
        None => {
            for name in [PASSAGES_FILE, PASSAGES_HINT_FILE] {
                let path = dir.join(name);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &path)(e)),
                }
            }
        }
    }
    Ok(WrittenCorpus {
        files,
        score_shape: corpus.db.shape().clone(),
        score_hint_time,
        passage_shape,
        passage_hint_time,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CorpusDirError> {
    std::fs::read(path).map_err(io_err("read", path))
}

/// Reads a hint file and checks that it belongs to `shape` (same content id and size).
fn read_hint(path: &Path, shape: &DbShape) -> Result<Bytes, CorpusDirError> {
    let bytes = read(path)?;
    let hint = Hint::from_bytes(&bytes).map_err(fhe_err(path))?;
    if &hint.shape != shape {
        return Err(CorpusDirError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "hint of database {} ({} rows), but the matrix beside it is database {} ({} rows); \
                 prepare the directory again",
                hint.shape.id.short(),
                hint.shape.rows,
                shape.id.short(),
                shape.rows
            ),
        });
    }
    Ok(Bytes::from(bytes))
}

/// Loads and checks a corpus directory: decodes the matrices (re-checking their content ids
/// and noise budget) and checks that each hint belongs to its matrix. Errors name the file.
pub fn load_corpus_dir(dir: &Path) -> Result<LoadedCorpus, CorpusDirError> {
    if !dir.is_dir() {
        return Err(CorpusDirError::Invalid {
            path: dir.to_path_buf(),
            problem: "not a directory".into(),
        });
    }
    let path = dir.join(CORPUS_FILE);
    let corpus = ScoringCorpus::from_bytes(&read(&path)?).map_err(fhe_err(&path))?;
    let hint_bytes = read_hint(&dir.join(CORPUS_HINT_FILE), corpus.db.shape())?;
    let info_bytes = Bytes::from(corpus.info.to_bytes());
    let (db_path, hint_path) = (dir.join(PASSAGES_FILE), dir.join(PASSAGES_HINT_FILE));
    let passages = match (db_path.exists(), hint_path.exists()) {
        (false, false) => None,
        (true, true) => {
            let db = PassageDb::from_bytes(&read(&db_path)?).map_err(fhe_err(&db_path))?;
            let hint_bytes = read_hint(&hint_path, db.db().shape())?;
            Some(LoadedPassages { db, hint_bytes })
        }
        (has_db, _) => {
            let (missing, present) = if has_db {
                (hint_path, PASSAGES_FILE)
            } else {
                (db_path, PASSAGES_HINT_FILE)
            };
            return Err(CorpusDirError::Invalid {
                path: missing,
                problem: format!("missing, but {present} is present (they come together)"),
            });
        }
    };
    Ok(LoadedCorpus {
        corpus,
        info_bytes,
        hint_bytes,
        passages,
    })
}

/// Reads embeddings stored as raw little-endian f32, document after document (`n × dim`
/// values); refuses files that are not whole vectors.
pub fn read_embeddings_f32(path: &Path, dim: usize) -> Result<Vec<f32>, CorpusDirError> {
    let bytes = read(path)?;
    if dim == 0 || bytes.is_empty() || !bytes.len().is_multiple_of(4 * dim) {
        return Err(CorpusDirError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "{} bytes are not whole little-endian f32 vectors of dimension {dim}",
                bytes.len()
            ),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect())
}

/// Reads every `*.txt` file of `dir` as one passage, in file-name order.
pub fn read_passages_dir(dir: &Path) -> Result<Vec<Vec<u8>>, CorpusDirError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err("read directory", dir))?
        .map(|e| e.map(|e| e.path()).map_err(io_err("read directory", dir)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt") && p.is_file())
        .collect();
    if paths.is_empty() {
        return Err(CorpusDirError::Invalid {
            path: dir.to_path_buf(),
            problem: "no *.txt passages".into(),
        });
    }
    paths.sort();
    paths.iter().map(|p| read(p)).collect()
}

/// Synthetic embeddings for tests and demos: `n × dim` values uniform in [−1, 1), a
/// deterministic function of `seed`.
pub fn synthetic_embeddings(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0f32; n * dim];
    v.par_chunks_mut(dim.max(1) * 1024)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            chunk
                .iter_mut()
                .for_each(|x| *x = rng.random_range(-1.0..1.0));
        });
    v
}

/// Synthetic passages for tests and demos: passage i is `"passage i: "` followed by 20 to 200
/// printable ASCII bytes, a deterministic function of `seed`.
pub fn synthetic_passages(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let len = rng.random_range(20..=200);
            let mut p = format!("passage {i}: ").into_bytes();
            p.extend((0..len).map(|_| rng.random_range(b' '..=b'~')));
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_runtime::fhe::Clustering;

    fn small() -> (ScoringCorpus, PassageDb) {
        let emb = synthetic_embeddings(50, 16, 1);
        let corpus = ScoringCorpus::prepare(
            &emb,
            16,
            Clustering::RandomBalanced {
                clusters: 5,
                seed: 2,
            },
        )
        .unwrap();
        (corpus, PassageDb::new(&synthetic_passages(20, 3)).unwrap())
    }

    #[test]
    fn written_directories_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let (corpus, passages) = small();
        let w = write_corpus_dir(dir.path(), &corpus, Some(&passages)).unwrap();
        assert_eq!(w.files.len(), 4);
        assert_eq!(&w.score_shape, corpus.db.shape());
        let loaded = load_corpus_dir(dir.path()).unwrap();
        assert_eq!(loaded.corpus.db.shape(), corpus.db.shape());
        assert_eq!(loaded.info_bytes, corpus.info.to_bytes());
        assert_eq!(loaded.hint_bytes, corpus.db.hint().to_bytes());
        let p = loaded.passages.unwrap();
        assert_eq!(p.db.len(), 20);
        assert_eq!(p.hint_bytes, passages.db().hint().to_bytes());

        // Rewriting without passages removes the stale passage files.
        write_corpus_dir(dir.path(), &corpus, None).unwrap();
        assert!(load_corpus_dir(dir.path()).unwrap().passages.is_none());
    }

    #[test]
    fn mismatched_or_missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (corpus, passages) = small();
        write_corpus_dir(dir.path(), &corpus, Some(&passages)).unwrap();
        // The passage hint in place of the scoring hint: another database.
        std::fs::copy(
            dir.path().join(PASSAGES_HINT_FILE),
            dir.path().join(CORPUS_HINT_FILE),
        )
        .unwrap();
        let e = load_corpus_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(CORPUS_HINT_FILE) && e.contains("database"),
            "{e}"
        );

        write_corpus_dir(dir.path(), &corpus, Some(&passages)).unwrap();
        std::fs::remove_file(dir.path().join(PASSAGES_HINT_FILE)).unwrap();
        let e = load_corpus_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(PASSAGES_HINT_FILE) && e.contains("missing"),
            "{e}"
        );

        // A truncated matrix is a format error naming the file.
        let bytes = std::fs::read(dir.path().join(CORPUS_FILE)).unwrap();
        std::fs::write(dir.path().join(CORPUS_FILE), &bytes[..bytes.len() / 2]).unwrap();
        let e = load_corpus_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains(CORPUS_FILE) && e.contains("malformed"), "{e}");

        let e = load_corpus_dir(&dir.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn input_readers_refuse_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("e.f32");
        std::fs::write(&f, [0u8; 4 * 7]).unwrap();
        assert!(read_embeddings_f32(&f, 7).is_ok());
        let e = read_embeddings_f32(&f, 3).unwrap_err().to_string();
        assert!(e.contains("dimension 3"), "{e}");
        let e = read_passages_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no *.txt"), "{e}");
        std::fs::write(dir.path().join("b.txt"), "second").unwrap();
        std::fs::write(dir.path().join("a.txt"), "first").unwrap();
        assert_eq!(
            read_passages_dir(dir.path()).unwrap(),
            vec![b"first".to_vec(), b"second".to_vec()]
        );
    }
}
