//! Typed errors of the TFHE retrieval path. Messages carry sizes, versions and bounds — never
//! query values, keys, scores or noise.

/// Why an FHE retrieval operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FheError {
    /// A vector, matrix or ciphertext has the wrong number of elements.
    #[error("{what}: expected {expected} elements, got {got}")]
    Shape {
        /// What was being checked.
        what: &'static str,
        /// Elements required.
        expected: usize,
        /// Elements received.
        got: usize,
    },
    /// The ciphertext, answer or hint belongs to another database (another corpus version).
    #[error("{what} was made for database {got}, this is database {expected}")]
    WrongDatabase {
        /// What was being checked.
        what: &'static str,
        /// Short id of this database.
        expected: String,
        /// Short id found on the input.
        got: String,
    },
    /// The database or query would exceed the noise or message budget of the parameters.
    #[error("noise budget exceeded: {0}")]
    Budget(String),
    /// A query entry is outside the range the database was prepared for.
    #[error("query entry {index} is outside [-{bound}, {bound}]")]
    QueryRange {
        /// Position of the first offending entry.
        index: usize,
        /// The database's bound on |query entries|.
        bound: u32,
    },
    /// An argument is invalid (empty corpus, zero clusters, non-finite embedding, ...).
    #[error("{0}")]
    Invalid(String),
    /// Serialised bytes are truncated, corrupted or of another format version.
    #[error("malformed {what}: {reason}")]
    Format {
        /// Which object was being read.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result alias of the FHE path.
pub type Result<T> = std::result::Result<T, FheError>;
