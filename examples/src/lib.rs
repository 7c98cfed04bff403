//! veil examples: the text side of private RAG (chunking, an offline embedder, document
//! ingest) shared by `examples/private_rag.rs` and its tests.

pub mod chunk;
pub mod embed;
pub mod ingest;
pub mod llm;
pub mod rag;
