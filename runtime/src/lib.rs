//! veil-runtime: **how** to compute a veil program privately.
//!
//! Three parties hold replicated 2-of-3 shares over Z_2^64 (Araki, Furukawa, Lindell, Nof,
//! Ohara, CCS 2016; ABY3, Mohassel & Rindal, CCS 2018). This crate has the ring kernels, the
//! AES-CTR PRF and pairwise key agreement for correlated randomness, the sharing itself, the
//! protocols, and the engine that runs a validated program over any transport.
//! It knows no sockets.
//!
//! ```
//! use veil_runtime::sharing::{reconstruct, share3};
//!
//! // Secret-share two vectors; each party adds its shares locally; any party's view alone is
//! // uniformly random, all three together reconstruct (and check) the sum.
//! let mut rng = rand::rng();
//! let (x, y) = (share3(&[1, 2, 3], &mut rng), share3(&[10, 20, u64::MAX], &mut rng));
//! let sum = [x[0].add(&y[0]), x[1].add(&y[1]), x[2].add(&y[2])];
//! assert_eq!(reconstruct(&sum).unwrap(), vec![11, 22, 2]);
//! ```
//!
//! Running a whole program at three parties in one process: see [`engine`].
#![deny(unsafe_code)]

pub mod cluster;
pub mod device;
pub mod engine;
pub mod error;
pub mod fhe;
pub mod fuzzing;
#[cfg(feature = "gpu")]
#[allow(unsafe_code)]
pub mod gpu;
pub mod harness;
#[allow(unsafe_code)] // SIMD intrinsics and AES-NI; every block has a `// SAFETY:` comment
pub mod kernels;
pub mod party;
pub mod prf;
pub mod protocols;
pub mod setup;
pub mod sharing;
pub mod testing;
pub mod transport;
pub mod verify;

pub use veil_circuits::fixed;
pub use veil_circuits::{PartyId, Program, ValidatedProgram};
pub use verify::SecurityMode;
