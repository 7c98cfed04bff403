//! gRPC services of a veil node (thin: validation in, store and engine calls, status out).

pub mod compute;
pub mod retrieval;
