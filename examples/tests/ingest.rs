//! Bad and odd inputs to `ingest_path`: each gives a clear error or skip, never a panic.

use std::fs::{self, File};
use std::path::Path;

use veil_examples::chunk::ChunkOptions;
use veil_examples::ingest::{
    DEFAULT_CORPUS, FileError, IngestError, MAX_FILE_BYTES, default_corpus, ingest_path,
};

fn write(dir: &Path, rel: &str, contents: &[u8]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().expect("test paths have parents")).expect("mkdir");
    fs::write(path, contents).expect("write");
}

fn opts() -> ChunkOptions {
    ChunkOptions::default()
}

#[test]
fn empty_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "image.png", b"\x89PNG");
    let err = ingest_path(dir.path(), &opts()).expect_err("empty folder");
    assert!(
        matches!(err, IngestError::Empty { ignored: 1, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("no .md, .markdown or .txt files"), "{msg}");
    assert!(
        msg.contains("1 file(s) with other extensions ignored"),
        "{msg}"
    );
}

#[test]
fn binary_file_is_skipped_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.md", b"# Good\nsome text");
    write(dir.path(), "blob.md", b"PK\x03\x04\x00\x00binary");
    write(dir.path(), "ctrl.txt", &[0x01; 100]);
    let got = ingest_path(dir.path(), &opts()).expect("good.md ingests");
    assert_eq!(got.files, 1);
    assert_eq!(got.chunks.len(), 1);
    let reasons: Vec<(&str, &str)> = got
        .skipped
        .iter()
        .map(|s| {
            (
                s.path.file_name().and_then(|n| n.to_str()).unwrap_or(""),
                s.reason.as_str(),
            )
        })
        .collect();
    assert!(reasons.contains(&("blob.md", "binary file")), "{reasons:?}");
    assert!(
        reasons.contains(&("ctrl.txt", "binary file")),
        "{reasons:?}"
    );
}

#[test]
fn non_utf8_file_is_skipped_with_offset_and_named_file_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.md", b"fine");
    write(dir.path(), "latin1.txt", b"caf\xe9 au lait");
    let got = ingest_path(dir.path(), &opts()).expect("good.md ingests");
    assert_eq!(got.skipped.len(), 1);
    assert_eq!(
        got.skipped[0].reason,
        "not UTF-8 (invalid byte at offset 3)"
    );
    let err = ingest_path(&dir.path().join("latin1.txt"), &opts()).expect_err("named file");
    assert!(
        matches!(
            err,
            IngestError::File {
                source: FileError::NotUtf8 { offset: 3 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("latin1.txt: not UTF-8 (invalid byte at offset 3)"),
        "{err}"
    );
}

#[test]
fn huge_file_is_skipped_without_reading_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = dir.path().join("huge.md");
    // Sparse: costs no disk, and would be all NULs if it were read.
    File::create(&huge)
        .expect("create")
        .set_len(9 << 20)
        .expect("set_len");
    let err = ingest_path(dir.path(), &opts()).expect_err("only file is skipped");
    let msg = err.to_string();
    assert!(msg.contains("1 skipped"), "{msg}");
    assert!(
        msg.contains(&format!(
            "too large ({} bytes, limit {MAX_FILE_BYTES} bytes)",
            9 << 20
        )),
        "{msg}"
    );
    let IngestError::Empty { skipped, .. } = err else {
        panic!("want Empty")
    };
    assert_eq!(skipped[0].path, huge);
    let err = ingest_path(&huge, &opts()).expect_err("named huge file");
    assert!(
        matches!(
            err,
            IngestError::File {
                source: FileError::TooLarge { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn nested_folders_are_walked_in_sorted_order_skipping_hidden_and_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "b.md", b"bee");
    write(dir.path(), "a/z.txt", b"zed");
    write(dir.path(), "a/b/c.markdown", b"sea");
    write(dir.path(), "A.MD", b"upper");
    write(dir.path(), ".git/x.md", b"hidden dir");
    write(dir.path(), ".hidden.md", b"hidden file");
    write(dir.path(), "target/doc.md", b"build output");
    write(dir.path(), "notes.rs", b"// ignored");
    let got = ingest_path(dir.path(), &opts()).expect("ingest");
    let sources: Vec<&str> = got.chunks.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(sources, ["A.MD", "a/b/c.markdown", "a/z.txt", "b.md"]);
    assert_eq!(got.files, 4);
    assert_eq!(got.ignored, 1);
    assert_eq!(got.bytes, 3 + 3 + 3 + 5);
    assert!(got.skipped.is_empty());
    // Deterministic.
    let again = ingest_path(dir.path(), &opts()).expect("ingest");
    assert_eq!(got.chunks, again.chunks);
}

#[cfg(unix)]
#[test]
fn symlinked_folders_are_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "doc.md", b"text");
    // A loop: following it would never end.
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("doc.md"), dir.path().join("link.md"))
        .expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("gone.md"), dir.path().join("broken.md"))
        .expect("symlink");
    let got = ingest_path(dir.path(), &opts()).expect("ingest");
    let sources: Vec<&str> = got.chunks.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(sources, ["doc.md", "link.md"]);
    assert_eq!(got.skipped.len(), 1, "{:?}", got.skipped);
    assert!(
        got.skipped[0].reason.starts_with("unreadable: "),
        "{:?}",
        got.skipped
    );
}

#[test]
fn single_file_path_works_with_any_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "NOTES", b"# Title\nbody");
    let path = dir.path().join("NOTES");
    let got = ingest_path(&path, &opts()).expect("ingest");
    assert_eq!(got.files, 1);
    assert_eq!(got.chunks.len(), 1);
    assert_eq!(got.chunks[0].source, path.to_string_lossy());
    assert_eq!(got.chunks[0].heading, "Title");
    write(dir.path(), "blank.md", b"\n  \n");
    let err = ingest_path(&dir.path().join("blank.md"), &opts()).expect_err("blank");
    assert!(
        matches!(err, IngestError::Empty { files: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn missing_path_is_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = ingest_path(&missing, &opts()).expect_err("missing");
    assert!(matches!(err, IngestError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or directory", missing.display())
    );
}

#[test]
fn bad_options_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = ChunkOptions {
        max_bytes: 32,
        ..ChunkOptions::default()
    };
    let err = ingest_path(dir.path(), &bad).expect_err("bad options");
    assert!(matches!(err, IngestError::BadOptions(_)), "{err:?}");
}

#[test]
fn default_corpus_is_non_empty_and_bounded() {
    for max_bytes in [64, 300, 1000] {
        let o = ChunkOptions {
            max_bytes,
            overlap_bytes: max_bytes / 8,
            min_bytes: max_bytes / 12,
        };
        let corpus = default_corpus(&o);
        assert_eq!(corpus.files, DEFAULT_CORPUS.len());
        assert!(
            corpus.chunks.len() > DEFAULT_CORPUS.len(),
            "{} chunks",
            corpus.chunks.len()
        );
        for (source, _) in DEFAULT_CORPUS {
            assert!(
                corpus.chunks.iter().any(|c| c.source == *source),
                "no chunk from {source}"
            );
        }
        for chunk in &corpus.chunks {
            assert!(
                chunk.text.len() <= max_bytes,
                "{} > {max_bytes}: {}",
                chunk.text.len(),
                chunk.source
            );
            assert!(!chunk.text.trim().is_empty());
        }
    }
}
