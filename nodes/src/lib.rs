//! veil-node: **where** veil runs — the `veil` binary (`node`, `devnet`, `bench`), the gRPC
//! services and peer links of a node, its persistent share store, and the client SDK.
#![forbid(unsafe_code)]

pub mod bench;
pub mod binding;
pub mod client;
pub mod config;
pub mod convert;
pub mod devnet;
pub mod fuzzing;
pub mod inference;
pub mod limits;
pub mod pb;
pub mod peer;
pub mod policy;
pub mod rag;
pub mod receipt;
pub mod retrieval_files;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod value_cache;
