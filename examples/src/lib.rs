//! veil examples: the text side of private RAG (chunking, an offline embedder, document
//! ingest) shared by `examples/private_rag.rs` and its tests, the clustered-retrieval recall
//! measurement of `examples/rag_recall.rs`, and the bundled digits data set and model of
//! `examples/private_inference.rs`.

pub mod chunk;
pub mod digits;
pub mod embed;
pub mod ingest;
pub mod llm;
pub mod rag;
pub mod recall;
