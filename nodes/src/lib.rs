//! veil-node: **where** veil runs — the `veil` binary and, in later issues, the gRPC nodes,
//! the devnet and the client SDK. Today: `veil bench` over the in-memory transport.
#![forbid(unsafe_code)]

pub mod bench;
