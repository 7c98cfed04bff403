//! Secret sharing schemes.

pub mod replicated;

pub use replicated::{ReconstructError, Shares, reconstruct, share3};
