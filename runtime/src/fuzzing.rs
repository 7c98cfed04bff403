//! Body of the fuzz target for the TFHE objects' file format (`VEILFHE`: corpus metadata,
//! prepared corpus, passage matrix, hint); `fuzz/fuzz_targets/fhe_format.rs` calls it and
//! `tests/fuzz_corpus.rs` replays the committed corpus through it on stable.

use crate::fhe::{CorpusInfo, Hint, PassageDb, ScoringCorpus};

/// Tries every decoder on `data`; whatever decodes must re-encode to exactly `data` (the
/// format has one encoding per object), and decoding must never panic.
pub fn fhe_format(data: &[u8]) {
    if let Ok(x) = CorpusInfo::from_bytes(data) {
        assert_eq!(x.to_bytes(), data, "corpus info round trip");
    }
    if let Ok(x) = Hint::from_bytes(data) {
        assert_eq!(x.to_bytes(), data, "hint round trip");
    }
    if let Ok(x) = ScoringCorpus::from_bytes(data) {
        assert_eq!(x.to_bytes(), data, "scoring corpus round trip");
    }
    if let Ok(x) = PassageDb::from_bytes(data) {
        assert_eq!(x.to_bytes(), data, "passage db round trip");
    }
}
