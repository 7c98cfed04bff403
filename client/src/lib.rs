//! veil-client: the SDK an application links to use a veil cluster — [`Client`] (secret-share
//! inputs locally, store programs, invoke, fetch and reconstruct results, verify receipts),
//! [`RetrievalClient`] (private retrieval with TFHE), and the client libraries built on them:
//! private RAG over secret-shared corpora ([`rag`]) and private inference of compiled models
//! ([`inference`]).
//!
//! It holds no server code: no database, no certificate authority, no command line.
#![forbid(unsafe_code)]

mod compute;
mod error;
pub mod inference;
pub mod rag;
mod retrieval;

pub use compute::{Client, InvokeSummary, MAX_RESPONSE_BYTES, Receipt, Secret};
pub use error::{ClientError, RetrievalError};
pub use retrieval::{CorpusHandle, RetrievalClient};
pub use veil_proto::Grant;
pub use veil_proto::config::ClusterConfig;

/// The README's Rust snippets, compiled (and the in-process one run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
