//! veil-node: **the node server** — one of the three parties of a veil cluster. Its gRPC
//! services (compute, retrieval, peer links), the access policy and limits it enforces, its
//! durable share store, its configuration and TLS, and a local three-node cluster for
//! development ([`devnet`]). Clients use `veil-client`; the `veil` binary is `veil-cli`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod devnet;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod fuzzing;
pub mod health;
pub mod limits;
pub mod peer;
pub mod pki;
pub mod policy;
pub mod retrieval_files;
pub mod server;
pub mod service;
pub mod store;
