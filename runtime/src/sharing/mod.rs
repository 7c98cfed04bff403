//! Secret sharing schemes.

pub mod replicated;
pub mod seeded;

pub use replicated::{ReconstructError, Shares, reconstruct, share3};
pub use seeded::{SEED_BYTES, SeededShares, expand, share3_seeded};
