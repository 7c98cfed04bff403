//! veil-proto: **the wire** both ends of veil share — the `veil.v1` gRPC protocol (generated
//! code), validation of everything that arrives on it ([`convert`]), the session binding nodes
//! agree on before a session runs ([`binding`]), signed receipts ([`receipt`]), pinned mutual TLS
//! ([`tls`]) and the client's `cluster.toml` ([`config`]).
//!
//! The node server (`veil-node`) and the client SDK (`veil-client`) both depend on this crate
//! and on nothing of each other.
#![forbid(unsafe_code)]

pub mod binding;
pub mod config;
pub mod convert;
mod grant;
pub mod pb;
pub mod receipt;
pub mod tls;
pub mod wire;

pub use grant::Grant;
