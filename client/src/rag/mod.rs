//! Private RAG on the MPC cluster, client side: a data owner secret-shares a corpus (int8
//! embeddings and packed chunk texts) into the three nodes, compact and in blocks
//! ([`blocked`]); an asker secret-shares a query embedding and runs
//! [`veil_circuits::retrieval::blocked`], which scores every chunk, selects the best k (of all
//! chunks, or of the chunks of the p clusters whose centroids score best) and fetches their
//! texts on shares; only the asker reconstructs.
//!
//! Security model (semi-honest, honest majority, as the cluster): no single node learns the
//! corpus, the query, any score, which clusters or which chunks were chosen. Each node learns
//! the public sizes (chunks, dimension, text width, rows per block, blocks and their padding,
//! p, k), who asked, and the timing. The owner decides who may ask and with which k and p:
//! each asker gets a grant (`veil_node::policy`) for the retrieval program of each approved
//! (k, mode) — that program and no other, and no right to receive the raw embedding or text
//! blocks. The asker learns the k best chunks, their ids and scores — nothing about the others.

pub mod blocked;

use crate::{ClientError, InvokeSummary};
use std::time::Duration;
use veil_runtime::fhe::corpus::{ScoredDoc, best_k};
use veil_runtime::kernels::dot_i8::dot_i8;

/// A RAG call failed.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    /// The corpus or query does not fit the circuit.
    #[error("{0}")]
    Invalid(String),
    /// A cluster call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The blocked retrieval circuit refused the corpus sizes or the request.
    #[error("retrieval circuit: {0}")]
    Blocked(#[from] veil_circuits::retrieval::blocked::BlockedError),
    /// The cluster returned something that does not decode.
    #[error("cluster answer: {0}")]
    Answer(String),
}

/// One retrieved chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Chunk id (its position in the uploaded corpus).
    pub doc: usize,
    /// Exact int8 dot product with the query.
    pub score: i64,
    /// The chunk's bytes.
    pub text: Vec<u8>,
}

/// The answer to one private query, with what it cost.
#[derive(Clone, Debug)]
pub struct MpcAnswer {
    /// Best first.
    pub hits: Vec<Hit>,
    /// Rounds, bytes sent per node and session time, as the nodes report them.
    pub invoke: InvokeSummary,
    /// The asker's wall time: storing the program (a no-op when stored), the invoke with the
    /// query's shares inline, and decoding.
    pub wall: Duration,
}

/// Plaintext reference: exact int8 scores of `query` against every row of `emb` (n × dim),
/// best k first, ties to the lower id — what the circuit computes on shares.
pub fn plaintext_search(emb: &[i8], dim: usize, query: &[i8], k: usize) -> Vec<ScoredDoc> {
    let scored = emb
        .chunks_exact(dim)
        .enumerate()
        .map(|(doc, row)| ScoredDoc {
            doc: doc as u32,
            score: i64::from(dot_i8(row, query)),
        })
        .collect();
    best_k(scored, k)
}

/// `1 ≤ k ≤ n`: a result size the circuit can return from `n` chunks.
fn check_k(k: usize, n: usize) -> Result<(), RagError> {
    if k == 0 || k > n {
        return Err(RagError::Invalid(format!(
            "k = {k}: needs 1 ≤ k ≤ {n} (the corpus size)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_search_breaks_ties_by_lower_id() {
        let emb = [1i8, 0, 1, 0, 0, 1, 2, 0];
        let got = plaintext_search(&emb, 2, &[1, 0], 3);
        let ids: Vec<u32> = got.iter().map(|d| d.doc).collect();
        assert_eq!(ids, [3, 0, 1]);
    }
}
