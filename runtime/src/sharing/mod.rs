//! Secret sharing schemes.

pub mod compact;
pub mod party;
pub mod replicated;
pub mod seeded;

pub use compact::{
    Comp32, CompactError, CompactShares, Shares32, expand32, reconstruct32, share3_compact,
};
pub use party::PartyShares;
pub use replicated::{ReconstructError, Shares, reconstruct, share3};
pub use seeded::{SEED_BYTES, SeededShares, expand, share3_seeded};
