//! Private RAG on the MPC cluster, client side: a data owner secret-shares a corpus (int8
//! embeddings and packed chunk texts) into the three nodes; an asker secret-shares a query
//! embedding and runs [`veil_circuits::retrieval`], which scores every chunk, selects the best
//! k and fetches their texts on shares; only the asker reconstructs.
//!
//! Security model (semi-honest, honest majority, as the cluster): no single node learns the
//! corpus, the query, any score, or which chunks were chosen. Each node learns the corpus size
//! n, the dimension, the text width, k, the block sizes, who asked, and the timing. The owner
//! decides who may ask and with which k: each asker gets a grant (`veil_node::policy`) for the
//! retrieval program of each approved k — that program and no other, and no right to receive
//! the raw embedding or text blocks. The asker learns the k best chunks, their ids and scores —
//! nothing about the others.

use crate::{Client, ClientError, Grant, InvokeSummary};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use veil_circuits::cost::LinkProfile;
use veil_circuits::retrieval::{
    self, KEYS, QUERY, RetrievalShape, TEXTS, decode_key, emb_input, retrieval_program_for,
    text_input,
};
use veil_runtime::fhe::corpus::{ScoredDoc, best_k};
use veil_runtime::kernels::dot_i8::dot_i8;

/// Bytes of one gRPC store request we aim for (nodes accept 64 MiB by default).
const BLOCK_BYTES: usize = 16 << 20;

/// A RAG call failed.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    /// The corpus or query does not fit the circuit.
    #[error("{0}")]
    Invalid(String),
    /// A cluster call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The retrieval circuit could not be built.
    #[error("retrieval circuit: {0}")]
    Circuit(#[from] veil_circuits::ValidationError),
    /// The cluster returned something that does not decode.
    #[error("cluster answer: {0}")]
    Answer(String),
}

/// What an asker needs to query a stored corpus: its name (value-id prefix), shape and owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpcCorpus {
    /// Corpus name; stored values are `<name>.emb.<b>` and `<name>.text.<b>`.
    pub name: String,
    /// Client that stored it.
    pub owner: String,
    /// Embedding dimension.
    pub dim: usize,
    /// Words per packed chunk.
    pub width: usize,
    /// Rows per stored block.
    pub blocks: Vec<usize>,
    /// Retrieval programs already stored on the cluster, by (asker, k): a query then only
    /// stores its query value (programs are content-addressed and never change).
    #[serde(skip)]
    pub programs: std::collections::HashMap<(String, usize), String>,
}

impl MpcCorpus {
    /// The circuit shape of this corpus.
    pub fn shape(&self) -> RetrievalShape {
        RetrievalShape {
            dim: self.dim,
            width: self.width,
            blocks: self.blocks.clone(),
        }
    }

    /// Number of chunks.
    pub fn documents(&self) -> usize {
        self.blocks.iter().sum()
    }
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
    /// The asker's wall time: query upload, invoke, result fetch and clean-up.
    pub wall: Duration,
}

/// Words per packed text of at most `max_bytes` bytes: one length word, then 8 bytes a word.
pub fn text_width(max_bytes: usize) -> usize {
    1 + max_bytes.div_ceil(8)
}

/// Packs `text` into `width` words (length, then little-endian bytes, zero padded).
pub fn pack_text(text: &[u8], width: usize) -> Result<Vec<u64>, RagError> {
    let cap = 8 * width.saturating_sub(1);
    if text.len() > cap {
        return Err(RagError::Invalid(format!(
            "a chunk of {} bytes exceeds the {cap}-byte text width",
            text.len()
        )));
    }
    let mut words = vec![0u64; width];
    words[0] = text.len() as u64;
    for (i, c) in text.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        words[1 + i] = u64::from_le_bytes(b);
    }
    Ok(words)
}

/// Unpacks a text packed by [`pack_text`].
pub fn unpack_text(words: &[u64]) -> Result<Vec<u8>, RagError> {
    let (&len, body) = words
        .split_first()
        .ok_or_else(|| RagError::Answer("an empty text row".into()))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= 8 * body.len())
        .ok_or_else(|| RagError::Answer(format!("text length {len} exceeds its row")))?;
    let mut out: Vec<u8> = body.iter().flat_map(|w| w.to_le_bytes()).collect();
    out.truncate(len);
    Ok(out)
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

/// Rows per stored block for this dimension and width (each store request ≤ ~16 MiB).
pub fn block_rows(dim: usize, width: usize) -> usize {
    (BLOCK_BYTES / (16 * dim.max(width).max(1))).max(1)
}

fn value_id(name: &str, kind: &str, b: usize) -> String {
    format!("{name}.{kind}.{b}")
}

fn ring(v: &[i8]) -> Vec<u64> {
    v.iter().map(|&x| i64::from(x) as u64).collect()
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

/// A corpus to secret-share into the cluster.
#[derive(Clone, Copy, Debug)]
pub struct CorpusUpload<'a> {
    /// Corpus name (prefix of the stored value ids; `[A-Za-z0-9._-]`).
    pub name: &'a str,
    /// n × dim int8 embeddings, row i = chunk i.
    pub emb: &'a [i8],
    /// Embedding dimension.
    pub dim: usize,
    /// The n chunk texts, each at most `8·(width − 1)` bytes.
    pub texts: &'a [&'a [u8]],
    /// Words per packed text ([`text_width`]).
    pub width: usize,
    /// Clients allowed to query it: each may run the retrieval program for each of `ks` (with
    /// the top-k plan of each built-in link profile) on the corpus values and receive its
    /// outputs, nothing else.
    pub askers: &'a [&'a str],
    /// The result sizes k askers may ask for (one approved program per asker and k).
    pub ks: &'a [usize],
}

/// The programs an upload approves, by content hash: retrieval for each (asker, k) under each
/// built-in link profile's top-k plan (what [`ask_with_link`] runs). Every plan computes the
/// same outputs (the exact best k and their texts), so approving all of them grants nothing
/// more than approving one.
fn approved_programs(
    shape: &RetrievalShape,
    owner: &str,
    askers: &[&str],
    ks: &[usize],
) -> Result<Vec<Grant>, RagError> {
    let mut grants: Vec<Grant> = Vec::new();
    for &asker in askers {
        for &k in ks {
            for link in [LinkProfile::LOOPBACK, LinkProfile::LAN, LinkProfile::WAN] {
                let program = retrieval_program_for(shape, k, owner, asker, &link)?;
                let grant = Grant::new(asker, program.id().to_string());
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
        }
    }
    Ok(grants)
}

/// Secret-shares a corpus into the cluster as `owner` (the connected client); each node
/// receives only its two components of every value. `progress(done, total)` is called after
/// each stored block.
pub async fn upload(
    owner: &mut Client,
    corpus: CorpusUpload<'_>,
    mut progress: impl FnMut(usize, usize),
) -> Result<MpcCorpus, RagError> {
    let CorpusUpload {
        name,
        emb,
        dim,
        texts,
        width,
        askers,
        ks,
    } = corpus;
    let n = texts.len();
    if n == 0 || dim == 0 || emb.len() != n * dim {
        return Err(RagError::Invalid(format!(
            "{} embedding values for {n} chunks of dimension {dim}",
            emb.len()
        )));
    }
    // Scores are at most dim·128², and keys must stay below 2^62 (see the circuit).
    if !retrieval::score_bound_ok((dim as u64) * 128 * 128, n) {
        return Err(RagError::Invalid(format!(
            "{n} chunks of dimension {dim} exceed the key range"
        )));
    }
    let rows = block_rows(dim, width);
    let stored = MpcCorpus {
        name: name.to_string(),
        owner: owner.name().to_string(),
        dim,
        width,
        blocks: (0..n).step_by(rows).map(|s| (n - s).min(rows)).collect(),
        programs: Default::default(),
    };
    for &k in ks {
        check_k(k, n)?;
    }
    let grants = approved_programs(&stored.shape(), &stored.owner, askers, ks)?;
    for (b, start) in (0..n).step_by(rows).enumerate() {
        let end = (start + rows).min(n);
        owner
            .store_secret(
                &value_id(name, "emb", b),
                &ring(&emb[start * dim..end * dim]),
                &grants,
                &[],
            )
            .await?;
        let mut words = Vec::with_capacity((end - start) * width);
        for t in &texts[start..end] {
            words.extend(pack_text(t, width)?);
        }
        owner
            .store_secret(&value_id(name, "text", b), &words, &grants, &[])
            .await?;
        progress(end, n);
    }
    Ok(stored)
}

/// Deletes every stored block of `corpus` from the cluster (as its owner).
pub async fn delete(owner: &mut Client, corpus: &MpcCorpus) -> Result<(), RagError> {
    for b in 0..corpus.blocks.len() {
        for kind in ["emb", "text"] {
            owner.delete(&value_id(&corpus.name, kind, b)).await?;
        }
    }
    Ok(())
}

/// Asks the cluster for the `k` best chunks of `corpus` for the int8 `query`, as the connected
/// client (which must be one of the corpus's askers). Only this client sees the answer. The
/// first query for a given k stores the retrieval program; later ones reuse it.
pub async fn ask(
    asker: &mut Client,
    corpus: &mut MpcCorpus,
    query: &[i8],
    k: usize,
) -> Result<MpcAnswer, RagError> {
    ask_with_link(asker, corpus, query, k, &LinkProfile::default()).await
}

/// [`ask`] with the retrieval program's top-k plan chosen for the nodes' `link`
/// ([`retrieval::retrieval_program_for`]): on a WAN, rank selection in far fewer rounds; on
/// the default (loopback) or a LAN the same program as [`ask`]. The answer is the same. A
/// program not stored yet for this (asker, k) and plan is stored first; a corpus uploaded
/// with grants must grant that program too.
pub async fn ask_with_link(
    asker: &mut Client,
    corpus: &mut MpcCorpus,
    query: &[i8],
    k: usize,
    link: &LinkProfile,
) -> Result<MpcAnswer, RagError> {
    let start = Instant::now();
    let n = corpus.documents();
    if query.len() != corpus.dim {
        return Err(RagError::Invalid(format!(
            "the query has {} dimensions, the corpus {}",
            query.len(),
            corpus.dim
        )));
    }
    check_k(k, n)?;
    let shape = corpus.shape();
    let key = (asker.name().to_string(), k);
    let program = retrieval::retrieval_program_for(&shape, k, &corpus.owner, asker.name(), link)?;
    let want = program.id().to_string();
    let program_id = match corpus.programs.get(&key) {
        Some(id) if *id == want => id.clone(),
        _ => {
            let id = asker.store_program(&program).await?;
            corpus.programs.insert(key, id.clone());
            id
        }
    };
    let mut bindings: Vec<(String, String)> = Vec::new();
    for b in 0..corpus.blocks.len() {
        bindings.push((emb_input(b), value_id(&corpus.name, "emb", b)));
        bindings.push((text_input(b), value_id(&corpus.name, "text", b)));
    }
    let refs: Vec<(&str, &str)> = bindings
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // One request per node: the query travels with it and the answer comes back in the
    // responses, so nothing of this query is stored on the nodes.
    let (invoke, out) = asker
        .invoke_inline(&program_id, &refs, &[(QUERY, &ring(query))])
        .await?;
    let (keys, texts) = match (out.get(KEYS), out.get(TEXTS)) {
        (Some(k), Some(t)) => (k, t),
        _ => return Err(RagError::Answer("the result lacks keys or texts".into())),
    };
    if keys.len() != k || texts.len() != k * corpus.width {
        return Err(RagError::Answer(format!(
            "expected {k} keys and {k}×{} text words, got {} and {}",
            corpus.width,
            keys.len(),
            texts.len()
        )));
    }
    let bits = shape.index_bits();
    let hits = keys
        .iter()
        .zip(texts.chunks_exact(corpus.width))
        .map(|(&key, row)| {
            let (score, doc) = decode_key(key, bits);
            if doc >= n {
                return Err(RagError::Answer(format!("chunk id {doc} out of range")));
            }
            Ok(Hit {
                doc,
                score,
                text: unpack_text(row)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MpcAnswer {
        hits,
        invoke,
        wall: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_approves_each_links_plan_and_nothing_else() {
        // At 10,000 chunks the WAN plan (rank selection) differs from the loopback and LAN one
        // (the comparator network), so each (asker, k) gets two distinct program ids.
        let shape = RetrievalShape {
            dim: 384,
            width: 4,
            blocks: vec![5_000, 5_000],
        };
        let grants = approved_programs(&shape, "alice", &["bob", "carol"], &[4, 8]).unwrap();
        assert_eq!(grants.len(), 2 * 2 * 2);
        for asker in ["bob", "carol"] {
            for k in [4, 8] {
                for link in [LinkProfile::LOOPBACK, LinkProfile::LAN, LinkProfile::WAN] {
                    let id = retrieval_program_for(&shape, k, "alice", asker, &link)
                        .unwrap()
                        .id()
                        .to_string();
                    assert!(grants.contains(&Grant::new(asker, id)), "{asker} k={k}");
                }
            }
        }
        assert!(
            grants
                .iter()
                .all(|g| g.client == "bob" || g.client == "carol")
        );
    }

    #[test]
    fn text_packing_round_trips_and_refuses_overflow() {
        for text in [
            &b""[..],
            b"a",
            b"12345678",
            b"123456789",
            "héllo".as_bytes(),
        ] {
            let w = pack_text(text, text_width(16)).unwrap();
            assert_eq!(w.len(), 3);
            assert_eq!(unpack_text(&w).unwrap(), text);
        }
        assert!(pack_text(&[1; 17], text_width(16)).is_err());
        assert!(unpack_text(&[100, 0]).is_err());
        assert!(unpack_text(&[]).is_err());
    }

    #[test]
    fn plaintext_search_breaks_ties_by_lower_id() {
        let emb = [1i8, 0, 1, 0, 0, 1, 2, 0];
        let got = plaintext_search(&emb, 2, &[1, 0], 3);
        let ids: Vec<u32> = got.iter().map(|d| d.doc).collect();
        assert_eq!(ids, [3, 0, 1]);
    }
}
