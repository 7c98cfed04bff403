//! The TFHE private-retrieval path: score an encrypted query against a clear corpus with one
//! linearly homomorphic scan, and fetch passages by linear PIR on the same machinery.
//!
//! Why not tfhe's `FheInt`: a dot product there needs bootstrapped multiplications — seconds per
//! 384-dimension document. A GLWE-encrypted query scanned by a clear int8 matrix costs one
//! multiply-add per corpus byte (Tiptoe, Henzinger et al., SOSP 2023; SimplePIR, USENIX
//! Security 2023), close to memory bandwidth.
//!
//! * [`params`]: k = 1, N = 2048, q = 2^64, binary secret, TUniform(2^17), Δ = 2^37, and the
//!   noise budget every database is checked against.
//! * [`db`]: the scan database D ∈ i8^{rows×cols}, its hint, and the server's answer (GEMV).
//! * [`query`]: the client's one-time-key encryption and exact decoding.
//! * [`corpus`]: embeddings → int8 → clusters → the Tiptoe layout; client top-k.
//! * [`passages`]: passage texts as a PIR matrix; one-hot queries fetch them.
//! * [`format`]: the versioned on-disk / on-wire encoding.
//!
//! Security model: one server, one client. The server holds the corpus in the clear and
//! learns nothing about the query or which passages are fetched (RLWE, fresh key per query);
//! the client learns the scores of every document in its nearest cluster, the hint, the
//! public corpus metadata (centroids, cluster membership, passage lengths) and the passages it
//! fetches. No integrity against a lying server.

pub mod corpus;
pub mod db;
pub mod error;
pub mod format;
pub mod masks;
pub mod params;
pub mod passages;
pub mod query;

pub use corpus::{Clustering, CorpusInfo, ScoreQuery, ScoredDoc, ScoringCorpus};
pub use db::{DbId, DbShape, EncryptedQuery, Hint, LinearDb};
pub use error::{FheError, Result};
pub use passages::{FetchQuery, PassageDb};
pub use query::{PendingQuery, encrypt};
