//! Generated protobuf and gRPC code for `veil.v1` (do not edit; see `build.rs`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("veil.v1");

/// Encoded file descriptor set of the `veil.v1` protos, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("veil_descriptor");
