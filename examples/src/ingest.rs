//! Loading documents for private RAG: a folder of Markdown / text files, one named file, or
//! the built-in default corpus (veil's own docs).
//!
//! Bad inputs give clear, typed errors or per-file skip reasons — never a panic or a hang: the
//! size is checked from metadata before reading (and the read is capped anyway), symlinked
//! directories are not followed, and only regular files are opened (a FIFO named `x.md` is
//! never read).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::chunk::{Chunk, ChunkOptions, OptionsError, chunk_document};

/// Files larger than this are skipped (or rejected when named directly): 8 MiB.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// Extensions (ASCII case-insensitive) picked up when walking a folder.
pub const TEXT_EXTENSIONS: &[&str] = &["md", "markdown", "txt"];

/// How much of a file the binary sniffing looks at.
const SNIFF_BYTES: usize = 8 << 10;

/// The default corpus, compiled in: (source name, contents).
pub const DEFAULT_CORPUS: &[(&str, &str)] = &[
    ("README.md", include_str!("../../README.md")),
    (
        "docs/architecture.md",
        include_str!("../../docs/architecture.md"),
    ),
    ("docs/protocols.md", include_str!("../../docs/protocols.md")),
    ("docs/security.md", include_str!("../../docs/security.md")),
    (
        "docs/benchmarks.md",
        include_str!("../../docs/benchmarks.md"),
    ),
];

/// Why one file cannot be used (a skip reason in a folder, an error for a named file).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// NUL bytes or mostly control characters near the start.
    #[error("binary file")]
    Binary,
    /// Not valid UTF-8; the offset is that of the first invalid byte.
    #[error("not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// Larger than the size limit.
    #[error("too large ({size} bytes, limit {limit} bytes)")]
    TooLarge {
        /// The file's size in bytes (at least this many when it grew while being read).
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// Could not be opened or read.
    #[error("unreadable: {0}")]
    Unreadable(#[source] io::Error),
}

/// Why an ingest failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The path does not exist.
    #[error("{}: no such file or directory", .path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The path exists but is neither a regular file nor a directory (a FIFO, a socket, …).
    #[error("{}: not a regular file or a directory", .path.display())]
    NotADirectoryOrFile {
        /// The path as given.
        path: PathBuf,
    },
    /// Nothing usable: no candidate files, all of them skipped, or no text in any of them.
    #[error("{}: nothing to ingest: {}", .path.display(), empty_detail(*.files, .skipped, *.ignored))]
    Empty {
        /// The folder or file as given.
        path: PathBuf,
        /// Files read that held no text.
        files: usize,
        /// Candidate files that were skipped, with why.
        skipped: Vec<Skipped>,
        /// Files ignored for their extension.
        ignored: usize,
    },
    /// A folder could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file named directly cannot be used.
    #[error("{}: {source}", .path.display())]
    File {
        /// The file as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: FileError,
    },
    /// The chunk options are invalid.
    #[error("bad chunk options: {0}")]
    BadOptions(#[from] OptionsError),
}

/// Explains an `Empty` error, listing the first few skips.
fn empty_detail(files: usize, skipped: &[Skipped], ignored: usize) -> String {
    const SHOWN: usize = 5;
    let mut parts = Vec::new();
    if files > 0 {
        parts.push(format!("{files} file(s) held no text"));
    }
    if !skipped.is_empty() {
        let mut part = format!("{} skipped", skipped.len());
        for skip in skipped.iter().take(SHOWN) {
            let _ = write!(part, "; {}: {}", skip.path.display(), skip.reason);
        }
        if skipped.len() > SHOWN {
            let _ = write!(part, "; and {} more", skipped.len() - SHOWN);
        }
        parts.push(part);
    }
    if parts.is_empty() {
        parts.push("no .md, .markdown or .txt files found".to_owned());
    }
    let mut out = parts.join(", ");
    if ignored > 0 {
        let _ = write!(out, " ({ignored} file(s) with other extensions ignored)");
    }
    out
}

/// Why a file was skipped (reported to the user, ingest continues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file (or unreadable folder), as walked from the path given.
    pub path: PathBuf,
    /// Human-readable reason, e.g. "binary file".
    pub reason: String,
}

/// Result of an ingest.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    /// All chunks, in file order then document order.
    pub chunks: Vec<Chunk>,
    /// Files read successfully (including ones that held no text).
    pub files: usize,
    /// Candidate files (and unreadable folders) that were skipped, with why.
    pub skipped: Vec<Skipped>,
    /// Bytes read from the files counted in `files`.
    pub bytes: u64,
    /// Files ignored for their extension (not `.md`, `.markdown` or `.txt`).
    pub ignored: usize,
}

/// Load and chunk every Markdown/text file under `path` (a folder, recursively, sorted by path for determinism; or one file).
///
/// In a folder, hidden entries (names starting with `.`), `target/` folders and symlinked
/// folders are not entered, and files with other extensions are counted in `ignored`. Chunk
/// sources are paths relative to the folder with `/` separators (so `--docs .` in the repo
/// names files like the default corpus). A single file may have any extension (`.txt` is
/// plain text, anything else Markdown) and its problems are errors, not skips. Non-UTF-8
/// files are rejected, not decoded lossily: replacement characters would be embedded and
/// shared as if they were the user's text, and the offset tells the user what to fix.
pub fn ingest_path(path: &Path, opts: &ChunkOptions) -> Result<Ingested, IngestError> {
    opts.validate()?;
    // `metadata` follows a symlink the user named, which is what they meant.
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(IngestError::NotFound {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(IngestError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if meta.is_file() {
        ingest_file(path, opts)
    } else if meta.is_dir() {
        ingest_dir(path, opts)
    } else {
        Err(IngestError::NotADirectoryOrFile {
            path: path.to_owned(),
        })
    }
}

/// The default corpus: veil's own README.md and docs/*.md, compiled into the binary (include_str!), so the demo answers questions about veil with nothing to read at run time.
///
/// Invalid options are clamped as in [`chunk_document`].
pub fn default_corpus(opts: &ChunkOptions) -> Ingested {
    let mut out = Ingested::default();
    for (source, text) in DEFAULT_CORPUS {
        out.chunks.extend(chunk_document(source, text, opts));
        out.files += 1;
        out.bytes += text.len() as u64;
    }
    out
}

/// Ingests one file the user named: any extension, problems are errors.
fn ingest_file(path: &Path, opts: &ChunkOptions) -> Result<Ingested, IngestError> {
    let text = read_text(path, MAX_FILE_BYTES).map_err(|source| IngestError::File {
        path: path.to_owned(),
        source,
    })?;
    let chunks = chunk_document(&path.to_string_lossy(), &text, opts);
    if chunks.is_empty() {
        return Err(IngestError::Empty {
            path: path.to_owned(),
            files: 1,
            skipped: Vec::new(),
            ignored: 0,
        });
    }
    Ok(Ingested {
        chunks,
        files: 1,
        skipped: Vec::new(),
        bytes: text.len() as u64,
        ignored: 0,
    })
}

/// Ingests every candidate file under `root`, skipping (and reporting) the bad ones.
fn ingest_dir(root: &Path, opts: &ChunkOptions) -> Result<Ingested, IngestError> {
    let mut out = Ingested::default();
    let candidates = walk(root, &mut out)?;
    for file in candidates {
        match read_text(&file, MAX_FILE_BYTES) {
            Ok(text) => {
                let source = relative_source(root, &file);
                out.chunks.extend(chunk_document(&source, &text, opts));
                out.files += 1;
                out.bytes += text.len() as u64;
            }
            Err(reason) => out.skipped.push(Skipped {
                path: file,
                reason: reason.to_string(),
            }),
        }
    }
    if out.chunks.is_empty() {
        let Ingested {
            files,
            skipped,
            ignored,
            ..
        } = out;
        return Err(IngestError::Empty {
            path: root.to_owned(),
            files,
            skipped,
            ignored,
        });
    }
    Ok(out)
}

/// Collects candidate files under `root`, sorted by path; records skips and ignored files.
///
/// Iterative, so a very deep tree cannot overflow the stack; symlinked folders are never
/// entered, so there are no loops to detect.
fn walk(root: &Path, out: &mut Ingested) -> Result<Vec<PathBuf>, IngestError> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // The folder the user named must be readable; deeper ones are skipped.
            Err(source) if dir == root => return Err(IngestError::Io { path: dir, source }),
            Err(e) => {
                out.skipped.push(Skipped {
                    path: dir,
                    reason: format!("unreadable folder: {e}"),
                });
                continue;
            }
        };
        for entry in entries {
            match entry.and_then(|e| Ok((e.path(), e.file_type()?))) {
                Ok((path, kind)) => classify(path, kind, &mut dirs, &mut files, out),
                Err(e) => out.skipped.push(Skipped {
                    path: dir.clone(),
                    reason: format!("unreadable entry: {e}"),
                }),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Sorts one folder entry into "descend", "candidate file" or "ignore".
fn classify(
    path: PathBuf,
    kind: fs::FileType,
    dirs: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
    out: &mut Ingested,
) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with('.') {
        return;
    }
    if kind.is_dir() {
        if name != "target" {
            dirs.push(path);
        }
        return;
    }
    if !has_text_extension(&path) {
        out.ignored += 1;
        return;
    }
    // A symlink to a file is followed (a broken one fails later with its io error); a
    // symlink to a folder is not, which is what rules out loops.
    let is_file = kind.is_file()
        || (kind.is_symlink() && fs::metadata(&path).map(|m| m.is_file()).unwrap_or(true));
    if is_file {
        files.push(path);
    } else if !kind.is_symlink() {
        // FIFOs, sockets, devices: opening one could block forever.
        out.skipped.push(Skipped {
            path,
            reason: "not a regular file".to_owned(),
        });
    }
}

/// True for `.md`, `.markdown` and `.txt` (ASCII case-insensitive).
fn has_text_extension(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| TEXT_EXTENSIONS.iter().any(|t| ext.eq_ignore_ascii_case(t)))
}

/// The path of `file` relative to `root`, `/`-separated.
fn relative_source(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Reads a whole text file: size-checked first, then sniffed for binary, then UTF-8 decoded.
fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    let file = File::open(path).map_err(FileError::Unreadable)?;
    let size = file.metadata().map_err(FileError::Unreadable)?.len();
    if size > limit {
        return Err(FileError::TooLarge { size, limit });
    }
    // Cap the read too: the file may grow after the check, or report a size of 0 (procfs).
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::Unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    if looks_binary(&bytes) {
        return Err(FileError::Binary);
    }
    let mut text = String::from_utf8(bytes).map_err(|e| FileError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })?;
    // A UTF-8 byte-order mark is not text; dropping it after decoding keeps offsets right.
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// NUL bytes in the first 8 KiB, or more than 10% control characters there.
///
/// Bytes ≥ 0x80 are not counted: Latin-1 or other legacy text is not binary, and it gets
/// the more useful "not UTF-8" reason instead.
fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if head.contains(&0) {
        return true;
    }
    let control = head
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f)
        .count();
    control * 10 > head.len()
}
