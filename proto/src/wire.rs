//! Sizes both ends of the wire agree on (the node enforces them, the client SDK stays within them).

/// Largest `data` of one [`crate::pb::CorpusChunk`]: 1 MiB.
pub const CORPUS_CHUNK_BYTES: usize = 1 << 20;

/// Most queries in one `Fetch` call.
pub const MAX_FETCH_QUERIES: usize = 32;
