//! Markdown / plain-text chunking for private RAG.
//!
//! A document is cut into sections at ATX headings (`#` … `######`, ignoring `#` lines inside
//! fenced code blocks), each section into paragraphs at blank lines, and consecutive paragraphs
//! of a section are packed into chunks. Every chunk's text starts with its heading trail
//! ("Title › Section › Sub") so it is self-describing once embedded on its own, and the whole
//! text, prefix and overlap included, is at most `max_bytes` bytes: the MPC path packs chunk
//! texts into 64-bit ring words and the TFHE path into ≤ 8 KiB passages, so the bound is hard.

use crate::ingest::IngestError;

/// Smallest `max_bytes` accepted: below this the heading prefix leaves no room for text.
pub const MIN_MAX_BYTES: usize = 64;

/// Separator between the parts of a heading trail.
pub const TRAIL_SEPARATOR: &str = " › ";

/// Chunking limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Hard upper bound on a chunk's text, in bytes (heading prefix and overlap included).
    pub max_bytes: usize,
    /// Up to this many bytes of the previous chunk of the same section start the next one.
    pub overlap_bytes: usize,
    /// Tiny trailing pieces are avoided: a too-long paragraph whose last piece would be
    /// shorter than this is cut into two balanced pieces at the end instead.
    pub min_bytes: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            max_bytes: 1000,
            overlap_bytes: 120,
            min_bytes: 80,
        }
    }
}

/// Why chunk options were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `max_bytes` is too small to hold a heading prefix and some text.
    #[error("max_bytes is {0}, must be at least {MIN_MAX_BYTES}")]
    MaxBytesTooSmall(usize),
    /// `overlap_bytes` would leave too little new text per chunk.
    #[error("overlap_bytes is {overlap}, must be below half of max_bytes ({max_bytes})")]
    OverlapTooLarge {
        /// The requested overlap.
        overlap: usize,
        /// The requested chunk bound.
        max_bytes: usize,
    },
    /// `min_bytes` is not below `max_bytes`.
    #[error("min_bytes is {min}, must be below max_bytes ({max_bytes})")]
    MinTooLarge {
        /// The requested minimum.
        min: usize,
        /// The requested chunk bound.
        max_bytes: usize,
    },
}

impl ChunkOptions {
    /// Checks `max_bytes ≥ 64`, `overlap_bytes < max_bytes / 2` and `min_bytes < max_bytes`.
    pub fn validate(&self) -> Result<(), IngestError> {
        if self.max_bytes < MIN_MAX_BYTES {
            return Err(OptionsError::MaxBytesTooSmall(self.max_bytes).into());
        }
        if self.overlap_bytes >= self.max_bytes / 2 {
            let (overlap, max_bytes) = (self.overlap_bytes, self.max_bytes);
            return Err(OptionsError::OverlapTooLarge { overlap, max_bytes }.into());
        }
        if self.min_bytes >= self.max_bytes {
            let (min, max_bytes) = (self.min_bytes, self.max_bytes);
            return Err(OptionsError::MinTooLarge { min, max_bytes }.into());
        }
        Ok(())
    }
}

/// One chunk: where it came from and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The source file's path as given (relative), e.g. `docs/security.md`.
    pub source: String,
    /// Heading trail "Title › Section › Sub" ("" if none); the full trail, never truncated.
    pub heading: String,
    /// The chunk text: the (possibly truncated) heading trail on its own line, then the body.
    pub text: String,
}

/// Split one document into chunks.
///
/// Sources ending in `.txt` are plain text (paragraphs only, `#` means nothing); everything
/// else is read as Markdown. CRLF and lone CR line ends are normalised to LF. Options are
/// clamped rather than rejected here (`max_bytes` up to 64, the overlap down to under half of
/// the body room): call [`ChunkOptions::validate`] first to reject them instead. Every
/// returned `text` is non-blank and at most `max(opts.max_bytes, 64)` bytes.
pub fn chunk_document(source: &str, text: &str, opts: &ChunkOptions) -> Vec<Chunk> {
    let text = normalise_newlines(text);
    let markdown = !has_extension(source, "txt");
    let max_bytes = opts.max_bytes.max(MIN_MAX_BYTES);
    let mut chunks = Vec::new();
    for section in split_sections(&text, markdown) {
        // The prefix takes at most a quarter of the budget so a deep or silly-long heading
        // trail can never crowd out the text.
        let prefix = floor_boundary(&section.trail, max_bytes / 4);
        let prefix = prefix.trim_end();
        let room = if prefix.is_empty() {
            max_bytes
        } else {
            max_bytes - prefix.len() - 1
        };
        let packer = Packer::new(room, opts.overlap_bytes, opts.min_bytes);
        for body in packer.pack(&section.paragraphs) {
            let body = body.trim();
            if body.is_empty() {
                continue;
            }
            let text = if prefix.is_empty() {
                body.to_owned()
            } else {
                format!("{prefix}\n{body}")
            };
            debug_assert!(text.len() <= max_bytes);
            chunks.push(Chunk {
                source: source.to_owned(),
                heading: section.trail.clone(),
                text,
            });
        }
    }
    chunks
}

/// True when `source` ends in `.ext` (ASCII case-insensitive).
fn has_extension(source: &str, ext: &str) -> bool {
    std::path::Path::new(source)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// CRLF and lone CR become LF, so offsets and blank-line detection see one convention.
fn normalise_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Largest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn floor_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Smallest char boundary of `s` at or after `at`.
fn ceil_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// A run of text under one heading trail, already cut into paragraphs.
struct Section {
    trail: String,
    paragraphs: Vec<String>,
}

/// An open fenced code block: its fence character and length (a closing fence must match).
#[derive(Clone, Copy)]
struct Fence {
    ch: char,
    len: usize,
}

/// Cuts a document into sections at headings and paragraphs at blank lines (outside fences).
fn split_sections(text: &str, markdown: bool) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut trail: Vec<(usize, String)> = Vec::new();
    let mut current = Section {
        trail: String::new(),
        paragraphs: Vec::new(),
    };
    let mut paragraph = String::new();
    let mut fence: Option<Fence> = None;
    for line in text.split('\n') {
        if markdown {
            if let Some(open) = fence {
                if is_closing_fence(line, open) {
                    fence = None;
                }
                push_line(&mut paragraph, line);
                continue;
            }
            if let Some(open) = opening_fence(line) {
                fence = Some(open);
                push_line(&mut paragraph, line);
                continue;
            }
            if let Some((level, title)) = atx_heading(line) {
                end_paragraph(&mut current, &mut paragraph);
                sections.push(current);
                trail.retain(|(l, _)| *l < level);
                trail.push((level, title));
                current = Section {
                    trail: join_trail(&trail),
                    paragraphs: Vec::new(),
                };
                continue;
            }
        }
        if line.trim().is_empty() {
            end_paragraph(&mut current, &mut paragraph);
        } else {
            push_line(&mut paragraph, line);
        }
    }
    end_paragraph(&mut current, &mut paragraph);
    sections.push(current);
    sections.retain(|s| !s.paragraphs.is_empty());
    sections
}

/// Appends a line to the paragraph being built.
fn push_line(paragraph: &mut String, line: &str) {
    if !paragraph.is_empty() {
        paragraph.push('\n');
    }
    paragraph.push_str(line);
}

/// Closes the paragraph being built, dropping it if it is blank.
fn end_paragraph(section: &mut Section, paragraph: &mut String) {
    let done = std::mem::take(paragraph);
    if !done.trim().is_empty() {
        section.paragraphs.push(done);
    }
}

/// Joins the non-empty titles of a heading stack.
fn join_trail(trail: &[(usize, String)]) -> String {
    let titles: Vec<&str> = trail
        .iter()
        .map(|(_, t)| t.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    titles.join(TRAIL_SEPARATOR)
}

/// Strips the up-to-three spaces of indentation Markdown allows before block markers.
fn strip_indent(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    (indent <= 3).then(|| &line[indent..])
}

/// An ATX heading: its level and its title without the optional closing `#`s.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let rest = strip_indent(line)?;
    let level = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    // `#hashtag` is not a heading: the marker must be followed by whitespace or the line end.
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let mut title = after.trim();
    let unclosed = title.trim_end_matches('#');
    // A closing sequence only counts when separated from the title by whitespace.
    if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        title = unclosed.trim_end();
    }
    Some((level, title.to_owned()))
}

/// A line opening a fenced code block (three or more backticks or tildes).
fn opening_fence(line: &str) -> Option<Fence> {
    let rest = strip_indent(line)?;
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.len() - rest.trim_start_matches(ch).len();
    (len >= 3).then_some(Fence { ch, len })
}

/// A line closing `open`: same character, at least as long, nothing after it.
fn is_closing_fence(line: &str, open: Fence) -> bool {
    let Some(rest) = strip_indent(line) else {
        return false;
    };
    let len = rest.len() - rest.trim_start_matches(open.ch).len();
    len >= open.len && rest[len..].trim().is_empty()
}

/// A paragraph or a piece of one, with what goes between it and the text before it.
struct Unit<'a> {
    /// "\n\n" before a new paragraph, "" before the continuation of a split paragraph (the
    /// previous piece kept its trailing whitespace, so the pieces concatenate back exactly).
    sep: &'static str,
    text: &'a str,
}

/// Packs the paragraphs of one section into chunk bodies of at most `room` bytes.
struct Packer {
    room: usize,
    overlap: usize,
    min: usize,
}

impl Packer {
    /// Clamps the overlap below half the room so every piece of a split paragraph still gets
    /// at least half a chunk of new text.
    fn new(room: usize, overlap: usize, min: usize) -> Self {
        Self {
            room,
            overlap: overlap.min(room / 2 - 1),
            min,
        }
    }

    /// Longest piece a too-long paragraph is cut into: it leaves room for a full overlap.
    fn piece_max(&self) -> usize {
        self.room - self.overlap - 2
    }

    /// Packs the paragraphs, returning the chunk bodies (each ≤ `room` bytes).
    fn pack(&self, paragraphs: &[String]) -> Vec<String> {
        let mut bodies: Vec<String> = Vec::new();
        for paragraph in paragraphs {
            let paragraph = paragraph.trim_end();
            if paragraph.len() <= self.room {
                self.add(
                    &mut bodies,
                    Unit {
                        sep: "\n\n",
                        text: paragraph,
                    },
                );
                continue;
            }
            let pieces = split_long(paragraph, self.piece_max(), self.min);
            for (i, text) in pieces.into_iter().enumerate() {
                self.add(
                    &mut bodies,
                    Unit {
                        sep: if i == 0 { "\n\n" } else { "" },
                        text,
                    },
                );
            }
        }
        bodies
    }

    /// Appends a unit to the last body if it fits, else starts a new body with an overlap.
    fn add(&self, bodies: &mut Vec<String>, unit: Unit<'_>) {
        if let Some(last) = bodies.last_mut()
            && last.len() + unit.sep.len() + unit.text.len() <= self.room
        {
            last.push_str(unit.sep);
            last.push_str(unit.text);
            return;
        }
        let mut body = String::new();
        if let Some(last) = bodies.last() {
            // Whole paragraphs up to `room` are kept intact, so the overlap shrinks to fit.
            let free = self.room.saturating_sub(unit.sep.len() + unit.text.len());
            body.push_str(overlap_tail(last, self.overlap.min(free)));
        }
        if !body.is_empty() {
            body.push_str(unit.sep);
        }
        body.push_str(unit.text);
        debug_assert!(body.len() <= self.room);
        bodies.push(body);
    }
}

/// The end of `text`, at most `limit` bytes, starting at a word boundary: at the first line
/// or sentence start in the window if there is one (a cleaner read), else at the first word
/// start; empty if the window holds no word start (e.g. one long word).
fn overlap_tail(text: &str, limit: usize) -> &str {
    if limit == 0 {
        return "";
    }
    let start = ceil_boundary(text, text.len().saturating_sub(limit));
    let tail = &text[start..];
    if start == 0 {
        return tail.trim_start();
    }
    let mut prev = text[..start].chars().next_back();
    let mut word_start = None;
    for (i, c) in tail.char_indices() {
        if let Some(p) = prev.filter(|p| p.is_whitespace() && !c.is_whitespace()) {
            let before = text[..start + i].trim_end().chars().next_back();
            if p == '\n' || matches!(before, Some('.' | '!' | '?' | ';' | ':')) {
                return &tail[i..];
            }
            word_start.get_or_insert(i);
        }
        prev = Some(c);
    }
    word_start.map_or("", |i| &tail[i..])
}

/// Cuts a paragraph into pieces of at most `max` bytes: after a sentence end in the second
/// half of the window, else after the last whitespace, else at the last char boundary. Pieces
/// keep their trailing whitespace so they concatenate back to the paragraph. When a full cut
/// would leave a last piece under `min` bytes, the last two pieces are balanced instead.
fn split_long(text: &str, max: usize, min: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        // Aim at the middle when the remainder would otherwise be a tiny trailing piece; the
        // loop condition still enforces `max` whatever the cut turns out to be.
        let target = if rest.len() - max < min {
            max.min(rest.len().div_ceil(2))
        } else {
            max
        };
        let window = floor_boundary(rest, target);
        let cut = sentence_cut(window, target / 2)
            .or_else(|| whitespace_cut(window))
            .unwrap_or(window.len());
        // `max` ≥ 4 by construction, so a window holds at least one whole char; this only
        // guards progress.
        let cut = if cut == 0 {
            ceil_boundary(rest, 1)
        } else {
            cut
        };
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.trim().is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Offset just after the last sentence end (`.`, `!`, `?`, `;` then whitespace) or line break
/// before a list item in `window`, if it is ≥ `min_cut`.
fn sentence_cut(window: &str, min_cut: usize) -> Option<usize> {
    let mut best = None;
    let mut prev: Option<char> = None;
    for (i, c) in window.char_indices() {
        let after = i + c.len_utf8();
        let sentence_end = c.is_whitespace() && matches!(prev, Some('.' | '!' | '?' | ';'));
        if sentence_end || (c == '\n' && starts_list_item(&window[after..])) {
            best = Some(after);
        }
        prev = Some(c);
    }
    best.filter(|&cut| cut >= min_cut)
}

/// True when `line` starts a Markdown list item (`- `, `* `, `+ `, `1. `), maybe indented.
fn starts_list_item(line: &str) -> bool {
    let line = line.trim_start_matches(' ');
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let marker = if digits > 0 { &line[digits..] } else { line };
    let bullet = if digits > 0 {
        &[". ", ") "][..]
    } else {
        &["- ", "* ", "+ "][..]
    };
    bullet.iter().any(|b| marker.starts_with(b))
}

/// Offset just after the last whitespace char in `window` (not at its very start).
fn whitespace_cut(window: &str) -> Option<usize> {
    window
        .char_indices()
        .filter(|(i, c)| *i > 0 && c.is_whitespace())
        .map(|(i, c)| i + c.len_utf8())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn opts(max_bytes: usize, overlap_bytes: usize) -> ChunkOptions {
        ChunkOptions {
            max_bytes,
            overlap_bytes,
            min_bytes: 20,
        }
    }

    /// Words of every awkward kind: ASCII, 2/3/4-byte chars, long runs, sentence ends.
    fn random_word(rng: &mut StdRng) -> String {
        const ALPHABETS: &[&[&str]] = &[
            &["a", "b", "c", "x", "y", "z"],
            &["é", "ß", "ñ", "ø"],
            &["日", "本", "語", "€"],
            &["🦀", "𝄞", "😀"],
        ];
        let alphabet = ALPHABETS[rng.random_range(0..ALPHABETS.len())];
        // Now and then a word longer than any chunk, to force char-boundary cuts.
        let len = if rng.random_bool(0.02) {
            rng.random_range(50..1200)
        } else {
            rng.random_range(1..12)
        };
        let mut word: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        if rng.random_bool(0.1) {
            word.push('.');
        }
        word
    }

    /// A random Markdown-ish document: headings, paragraphs, fences, CRLF, blank runs.
    fn random_document(rng: &mut StdRng) -> String {
        let mut doc = String::new();
        for _ in 0..rng.random_range(0..60) {
            match rng.random_range(0..10) {
                0 => {
                    let level = rng.random_range(1..8);
                    doc.push_str(&"#".repeat(level));
                    doc.push(' ');
                    doc.push_str(&random_word(rng));
                }
                1 => doc.push_str(if rng.random_bool(0.5) {
                    "```rust"
                } else {
                    "~~~"
                }),
                2 => doc.push_str(if rng.random_bool(0.5) {
                    "\r\n"
                } else {
                    "\n\n\n"
                }),
                _ => {
                    for _ in 0..rng.random_range(1..80) {
                        doc.push_str(&random_word(rng));
                        doc.push(if rng.random_bool(0.9) { ' ' } else { '\n' });
                    }
                }
            }
            doc.push('\n');
        }
        doc
    }

    #[test]
    fn random_documents_respect_the_byte_bound() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for case in 0..200 {
            let max = rng.random_range(64..1500);
            let overlap = rng.random_range(0..max / 2);
            let o = ChunkOptions {
                max_bytes: max,
                overlap_bytes: overlap,
                min_bytes: rng.random_range(0..max),
            };
            assert!(o.validate().is_ok());
            let source = if case % 5 == 0 { "notes.txt" } else { "doc.md" };
            let doc = random_document(&mut rng);
            let chunks = chunk_document(source, &doc, &o);
            for chunk in &chunks {
                assert!(
                    chunk.text.len() <= max,
                    "case {case}: {} > {max}",
                    chunk.text.len()
                );
                assert!(!chunk.text.trim().is_empty(), "case {case}: blank chunk");
                assert!(!chunk.text.contains('\r'), "case {case}: CR survived");
            }
            // Every short body word of the input survives whole somewhere: nothing is dropped.
            let tokens: std::collections::HashSet<&str> = chunks
                .iter()
                .flat_map(|c| c.text.split_whitespace())
                .collect();
            let body_lines = doc
                .lines()
                .filter(|l| !l.trim_start().starts_with(['#', '`', '~']));
            for word in body_lines
                .flat_map(str::split_whitespace)
                .filter(|w| w.len() < max / 8)
            {
                assert!(tokens.contains(word), "case {case}: lost word {word:?}");
            }
            assert_eq!(
                chunks,
                chunk_document(source, &doc, &o),
                "case {case}: not deterministic"
            );
        }
    }

    #[test]
    fn clamps_bad_options_but_validate_rejects_them() {
        let bad = ChunkOptions {
            max_bytes: 10,
            overlap_bytes: 100,
            min_bytes: 5,
        };
        assert!(matches!(
            bad.validate(),
            Err(IngestError::BadOptions(OptionsError::MaxBytesTooSmall(10)))
        ));
        let overlap = ChunkOptions {
            max_bytes: 200,
            overlap_bytes: 100,
            min_bytes: 5,
        };
        assert!(matches!(
            overlap.validate(),
            Err(IngestError::BadOptions(
                OptionsError::OverlapTooLarge { .. }
            ))
        ));
        let min = ChunkOptions {
            max_bytes: 200,
            overlap_bytes: 10,
            min_bytes: 200,
        };
        assert!(matches!(
            min.validate(),
            Err(IngestError::BadOptions(OptionsError::MinTooLarge { .. }))
        ));
        assert!(ChunkOptions::default().validate().is_ok());
        let doc = "# T\n".to_owned() + &"word ".repeat(500);
        for chunk in chunk_document("d.md", &doc, &bad) {
            assert!(chunk.text.len() <= MIN_MAX_BYTES);
        }
    }

    #[test]
    fn heading_trail_follows_levels() {
        let doc = "# Title\nintro\n## Setup\nsetup text\n### Linux\nlinux text\n## Usage\nusage text\n#### Deep\ndeep text\n";
        let chunks = chunk_document("d.md", doc, &ChunkOptions::default());
        let trails: Vec<&str> = chunks.iter().map(|c| c.heading.as_str()).collect();
        assert_eq!(
            trails,
            [
                "Title",
                "Title › Setup",
                "Title › Setup › Linux",
                "Title › Usage",
                "Title › Usage › Deep"
            ]
        );
        assert_eq!(chunks[2].text, "Title › Setup › Linux\nlinux text");
    }

    #[test]
    fn text_before_first_heading_has_no_prefix_and_closing_hashes_are_dropped() {
        let doc = "preamble\n\n## Quick start ##\nrun it\n#hashtag is text\n";
        let chunks = chunk_document("d.md", doc, &ChunkOptions::default());
        assert_eq!(chunks[0].heading, "");
        assert_eq!(chunks[0].text, "preamble");
        assert_eq!(chunks[1].heading, "Quick start");
        assert_eq!(chunks[1].text, "Quick start\nrun it\n#hashtag is text");
    }

    #[test]
    fn hashes_in_code_fences_are_not_headings() {
        let doc = "# Build\n```sh\n# install\ncargo build\n\n# test\n```\nafter\n~~~~\n## not either\n```\n~~~~\n";
        let chunks = chunk_document("d.md", doc, &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].heading, "Build");
        assert!(chunks[0].text.contains("# install\ncargo build\n\n# test"));
        assert!(chunks[0].text.contains("## not either"));
    }

    #[test]
    fn txt_files_have_no_headings() {
        let chunks = chunk_document(
            "notes.TXT",
            "# not a heading\n\nsecond paragraph",
            &ChunkOptions::default(),
        );
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].heading, "");
        assert_eq!(chunks[0].text, "# not a heading\n\nsecond paragraph");
    }

    #[test]
    fn consecutive_chunks_overlap_within_the_limit() {
        let doc: String = (0..200).map(|i| format!("w{i} ")).collect();
        let o = opts(200, 40);
        let chunks = chunk_document("d.txt", &doc, &o);
        assert!(chunks.len() > 3);
        for pair in chunks.windows(2) {
            let next_words: Vec<&str> = pair[1].text.split_whitespace().collect();
            let prev_words: Vec<&str> = pair[0].text.split_whitespace().collect();
            // The next chunk starts with a whole-word suffix of the previous one.
            let shared = (1..=next_words.len().min(prev_words.len()))
                .rev()
                .find(|&k| prev_words[prev_words.len() - k..] == next_words[..k])
                .unwrap_or(0);
            assert!(
                shared > 0,
                "no overlap between {:?} and {:?}",
                pair[0].text,
                pair[1].text
            );
            let overlap_len = next_words[..shared].join(" ").len();
            assert!(
                overlap_len <= o.overlap_bytes,
                "overlap {overlap_len} > {}",
                o.overlap_bytes
            );
        }
    }

    #[test]
    fn no_overlap_across_sections() {
        let doc = format!(
            "# A\n{}\n# B\n{}\n",
            "alpha ".repeat(10),
            "beta ".repeat(10)
        );
        let chunks = chunk_document("d.md", &doc, &ChunkOptions::default());
        assert_eq!(chunks.len(), 2);
        assert!(!chunks[1].text.contains("alpha"));
    }

    #[test]
    fn long_words_split_on_char_boundaries() {
        for s in ["é", "日", "🦀"] {
            let doc = s.repeat(1000);
            let chunks = chunk_document("d.txt", &doc, &opts(64, 10));
            let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
            assert_eq!(
                joined, doc,
                "{s}: pieces do not reassemble (no overlap inside a word)"
            );
            for chunk in &chunks {
                assert!(chunk.text.len() <= 64);
            }
        }
    }

    #[test]
    fn long_paragraphs_split_at_sentence_ends_first() {
        let sentence = "This is one sentence of moderate length. ";
        let doc = sentence.repeat(40);
        let chunks = chunk_document("d.txt", &doc, &opts(300, 0));
        for chunk in &chunks {
            assert!(chunk.text.ends_with('.'), "{:?}", chunk.text);
        }
    }

    #[test]
    fn long_lists_split_between_items() {
        let doc: String = (0..30)
            .map(|i| format!("- item {i} has a few words with no full stop\n"))
            .collect();
        let chunks = chunk_document("d.md", &doc, &opts(300, 0));
        assert!(chunks.len() > 2);
        for chunk in &chunks {
            assert!(chunk.text.starts_with("- item"), "{:?}", chunk.text);
        }
    }

    #[test]
    fn crlf_is_normalised() {
        let unix = chunk_document(
            "d.md",
            "# T\n\npara one\n\npara two\n",
            &ChunkOptions::default(),
        );
        let dos = chunk_document(
            "d.md",
            "# T\r\n\r\npara one\r\n\r\npara two\r\n",
            &ChunkOptions::default(),
        );
        assert_eq!(unix, dos);
        assert_eq!(unix[0].text, "T\npara one\n\npara two");
    }

    #[test]
    fn blank_documents_give_no_chunks() {
        assert!(chunk_document("d.md", "", &ChunkOptions::default()).is_empty());
        assert!(chunk_document("d.md", " \n\r\n\t\n", &ChunkOptions::default()).is_empty());
        assert!(
            chunk_document("d.md", "# Only\n## Headings\n", &ChunkOptions::default()).is_empty()
        );
    }

    #[test]
    fn no_tiny_trailing_piece_when_splitting() {
        // 41 × 5 = 205 bytes, just over the 200-byte room: a greedy cut would leave ~7 bytes.
        let doc = "abcd ".repeat(41);
        let o = ChunkOptions {
            max_bytes: 200,
            overlap_bytes: 0,
            min_bytes: 80,
        };
        let chunks = chunk_document("d.txt", &doc, &o);
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        for chunk in &chunks {
            assert!(chunk.text.len() >= 80, "{:?}", chunk.text);
        }
    }

    #[test]
    fn long_heading_trail_is_truncated_in_the_text_only() {
        let title = "🦀".repeat(100);
        let doc = format!("# {title}\nbody text\n");
        let chunks = chunk_document("d.md", &doc, &opts(64, 0));
        assert_eq!(chunks[0].heading, title);
        assert!(chunks[0].text.len() <= 64);
        assert!(chunks[0].text.ends_with("\nbody text"));
    }
}
