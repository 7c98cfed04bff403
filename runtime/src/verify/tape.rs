//! What a malicious-mode session records for its verification.

/// This party's record of a session's verified work.
#[derive(Default)]
pub(crate) struct Tape {}
