//! veil-runtime: **how** to compute a veil program privately.
//!
//! Three parties hold replicated 2-of-3 shares over Z_2^64 (Araki, Furukawa, Lindell, Nof,
//! Ohara, CCS 2016; ABY3, Mohassel & Rindal, CCS 2018). This crate has the ring kernels, the
//! AES-CTR PRF and pairwise key agreement for correlated randomness, the sharing itself, the
//! protocols, and the engine that runs a validated program over any transport.
//! It knows no sockets.

pub mod device;
pub mod engine;
pub mod error;
pub mod fhe;
pub mod fuzzing;
#[cfg(feature = "gpu")]
#[allow(unsafe_code)]
pub mod gpu;
pub mod harness;
pub mod kernels;
pub mod party;
pub mod prf;
pub mod protocols;
pub mod setup;
pub mod sharing;
pub mod testing;
pub mod transport;

pub use veil_circuits::fixed;
pub use veil_circuits::{PartyId, Program, ValidatedProgram};
