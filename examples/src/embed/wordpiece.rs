//! BERT uncased tokenisation: the BasicTokenizer (clean, lowercase, strip accents, split
//! whitespace/punctuation/CJK) followed by greedy longest-match-first WordPiece.
//!
//! It follows the Hugging Face `tokenizers` `BertNormalizer` + `BertPreTokenizer` + `WordPiece`
//! pipeline (the one in all-MiniLM-L6-v2's `tokenizer.json`), without special tokens: text such
//! as `[CLS]` is tokenised as ordinary characters, never as a control token.

use std::collections::HashMap;

use unicode_normalization::char::decompose_canonical;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Words longer than this many chars become `[UNK]` (BERT's `max_input_chars_per_word`).
const MAX_WORD_CHARS: usize = 100;
/// Prefix that marks a continuation piece in the vocabulary.
const CONTINUATION: &str = "##";

/// Which parts of the BasicTokenizer run (from the table's flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Normalization {
    /// Lowercase every char.
    pub lowercase: bool,
    /// NFD-decompose and drop nonspacing marks.
    pub strip_accents: bool,
    /// Put spaces around CJK ideographs so each is its own word.
    pub split_cjk: bool,
}

/// A WordPiece vocabulary split into word-initial pieces and `##` continuation pieces.
#[derive(Debug)]
pub(crate) struct WordPiece {
    initial: HashMap<Box<str>, u32>,
    continuation: HashMap<Box<str>, u32>,
    /// Longest piece in bytes (without `##`): bounds the longest-match search.
    max_piece_bytes: usize,
    unk: u32,
    norm: Normalization,
}

impl WordPiece {
    /// Builds the lookup maps; `tokens[i]` is the string of id `i`. Duplicate strings are
    /// rejected (the caller turns that into a typed error).
    pub(crate) fn new(
        tokens: &[&str],
        unk: u32,
        norm: Normalization,
    ) -> Result<Self, &'static str> {
        let mut initial = HashMap::with_capacity(tokens.len());
        let mut continuation = HashMap::new();
        let mut max_piece_bytes = 0;
        for (id, tok) in tokens.iter().enumerate() {
            let id = u32::try_from(id).map_err(|_| "vocabulary too large")?;
            let (map, piece) = match tok.strip_prefix(CONTINUATION) {
                Some(rest) => (&mut continuation, rest),
                None => (&mut initial, *tok),
            };
            max_piece_bytes = max_piece_bytes.max(piece.len());
            if map.insert(Box::<str>::from(piece), id).is_some() {
                return Err("duplicate vocabulary entry");
            }
        }
        Ok(Self {
            initial,
            continuation,
            max_piece_bytes,
            unk,
            norm,
        })
    }

    /// Appends the token ids of `text` to `out` (`[UNK]` for words that cannot be pieced).
    pub(crate) fn tokenize_into(&self, text: &str, out: &mut Vec<u32>) {
        let normalized = self.normalize(text);
        for word in split_words(&normalized) {
            self.word_pieces(word, out);
        }
    }

    /// The BertNormalizer: drop control chars, whitespace → ' ', pad CJK, strip accents, lowercase.
    fn normalize(&self, text: &str) -> String {
        let mut s = String::with_capacity(text.len() + text.len() / 4);
        for c in text.chars() {
            if c.is_ascii() {
                // Fast path, same result: ASCII has no accents, CJK or non-ASCII case mappings.
                match c {
                    '\t' | '\n' | '\r' | ' ' => s.push(' '),
                    '\0'..='\x1f' | '\x7f' => {}
                    _ if self.norm.lowercase => s.push(c.to_ascii_lowercase()),
                    _ => s.push(c),
                }
                continue;
            }
            if c == '\u{fffd}' || is_control(c) {
                continue;
            }
            if is_whitespace(c) {
                s.push(' ');
                continue;
            }
            let cjk = self.norm.split_cjk && is_cjk(c);
            if cjk {
                s.push(' ');
            }
            if self.norm.strip_accents {
                decompose_canonical(c, |d| {
                    if d.general_category() != GeneralCategory::NonspacingMark {
                        self.push_cased(&mut s, d);
                    }
                });
            } else {
                self.push_cased(&mut s, c);
            }
            if cjk {
                s.push(' ');
            }
        }
        s
    }

    fn push_cased(&self, s: &mut String, c: char) {
        if self.norm.lowercase {
            s.extend(c.to_lowercase());
        } else {
            s.push(c);
        }
    }

    /// Greedy longest-match-first WordPiece of one word.
    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        if word.chars().nth(MAX_WORD_CHARS).is_some() {
            out.push(self.unk);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        while start < word.len() {
            let map = if start == 0 {
                &self.initial
            } else {
                &self.continuation
            };
            let mut end = word.len().min(start + self.max_piece_bytes);
            while !word.is_char_boundary(end) {
                end -= 1;
            }
            let mut found = None;
            while end > start {
                if let Some(&id) = map.get(&word[start..end]) {
                    found = Some(id);
                    break;
                }
                end -= 1;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The BertPreTokenizer: split on whitespace and make every punctuation char its own word.
fn split_words(s: &str) -> impl Iterator<Item = &str> {
    s.split(char::is_whitespace).flat_map(|chunk| {
        let mut rest = chunk;
        std::iter::from_fn(move || {
            let (i, c) = rest
                .char_indices()
                .find(|&(_, c)| is_punctuation(c))
                .map_or((rest.len(), None), |(i, c)| (i, Some(c)));
            let piece = if i > 0 {
                &rest[..i]
            } else {
                let c = c?;
                &rest[..c.len_utf8()]
            };
            rest = &rest[piece.len()..];
            Some(piece)
        })
    })
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Cc, Cf and Co, as in `tokenizers`' BertNormalizer. Unassigned code points (Cn) are kept, as
/// there (Python's slow BertTokenizer drops them): they end up as `[UNK]`.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r')
        && matches!(
            c.general_category(),
            GeneralCategory::Control | GeneralCategory::Format | GeneralCategory::PrivateUse
        )
}

fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else {
        c.general_category_group() == GeneralCategoryGroup::Punctuation
    }
}

/// The CJK Unified Ideograph blocks BERT treats as single-char words.
fn is_cjk(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B820..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> WordPiece {
        let vocab = [
            "[UNK]", "un", "##aff", "##able", "a", "##b", "cafe", ",", "中", "!",
        ];
        let norm = Normalization {
            lowercase: true,
            strip_accents: true,
            split_cjk: true,
        };
        WordPiece::new(&vocab, 0, norm).expect("toy vocab")
    }

    fn ids(wp: &WordPiece, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        wp.tokenize_into(text, &mut out);
        out
    }

    #[test]
    fn splits_words_and_punctuation() {
        let words: Vec<&str> = split_words("ab,c  d!!  é").collect();
        assert_eq!(words, ["ab", ",", "c", "d", "!", "!", "é"]);
        assert_eq!(split_words("").count(), 0);
        assert_eq!(split_words("   ").count(), 0);
    }

    #[test]
    fn greedy_longest_match_with_unk_fallback() {
        let wp = toy();
        assert_eq!(ids(&wp, "Unaffable"), [1, 2, 3]);
        assert_eq!(ids(&wp, "ab abx"), [4, 5, 0]);
        assert_eq!(ids(&wp, "CAFÉ, 中中!"), [6, 7, 8, 8, 9]);
        assert_eq!(ids(&wp, &"a".repeat(101)), [0]);
        assert_eq!(ids(&wp, "\u{0}\u{200b}\u{7}"), Vec::<u32>::new());
    }

    #[test]
    fn duplicate_vocab_rejected() {
        let norm = Normalization {
            lowercase: true,
            strip_accents: true,
            split_cjk: true,
        };
        assert!(WordPiece::new(&["a", "b", "a"], 0, norm).is_err());
    }
}
