//! Private RAG at a million chunks: the corpus stored compact (Z_2^32, seed-compressed) in
//! blocks of a power-of-two number of rows, queried exactly (score every chunk, top-k over all
//! of them) or by clusters (score every chunk once, keep the chunks of the p best clusters
//! obliviously, top-k among them); both fetch the k texts with a two-level one-hot
//! ([`veil_circuits::retrieval::blocked`]).
//!
//! Storage: embeddings are int8 and a chunk's text is packed four bytes per word, so each
//! value is shared mod 2^32 and two of its three components are ChaCha20 seeds the nodes keep
//! as seeds ([`Client::store_secret32`]). The rotation (which node gets both seeds) moves from
//! value to value, so each node holds an explicit u32 component for two values in three:
//! 8/3 bytes per element on average, against 16 for the Z_2^64 layout of [`super::upload`].
//!
//! Security model (semi-honest, honest majority, as the cluster): no single node learns the
//! corpus, the query, any score, which clusters or which chunks were chosen. Nodes learn the
//! public sizes: chunks n, dimension, text width, rows per block R, blocks (= clusters) and
//! how many rows of each block are padding, p and k, who asked, and the timing. The clustered
//! mode is approximate: a chunk outside the p clusters whose centroids score best is never
//! returned, even if it scores higher (recall is measured in `docs/benchmarks.md`). The
//! position → chunk table of a clustered corpus (which chunks share a cluster) is known to
//! the owner and to the askers it hands the [`BlockedCorpus`] to, never to the nodes.

use super::{Hit, MpcAnswer, RagError, check_k};
use crate::{Client, Grant, Secret};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;
use veil_circuits::PartyId;
use veil_circuits::cost::LinkProfile;
use veil_circuits::retrieval::blocked::{
    BlockedShape, CENTROIDS, clustered_program, decode_key32, exact_program, is_padding_key32,
};
use veil_circuits::retrieval::{KEYS, QUERY, TEXTS, emb_input, text_input};
use veil_runtime::cluster::{BlockLayout, layout_blocks};
use veil_runtime::kernels::dot_i8::dot_i8;

/// Lloyd iterations of the owner's k-means (as the TFHE path's clustering).
const KMEANS_ITERATIONS: usize = 8;
/// Seed of the k-means initialisation (the layout is reproducible for a corpus).
const KMEANS_SEED: u64 = 0x5eed;

/// How a query selects its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Every chunk is a candidate: the exact top k.
    Exact,
    /// Only the chunks of the `p` clusters whose centroids score best (approximate).
    Clustered {
        /// Clusters searched, `1 ≤ p ≤ clusters`.
        p: usize,
    },
}

/// A corpus to store in blocks.
#[derive(Clone, Copy, Debug)]
pub struct BlockedUpload<'a> {
    /// Corpus name (prefix of the stored value ids; `[A-Za-z0-9._-]`).
    pub name: &'a str,
    /// n × dim int8 embeddings, row i = chunk i.
    pub emb: &'a [i8],
    /// Embedding dimension.
    pub dim: usize,
    /// The n chunk texts, each at most `text_bytes` bytes.
    pub texts: &'a [&'a [u8]],
    /// Longest chunk text in bytes (fixes the packed width).
    pub text_bytes: usize,
    /// `None`: blocks in chunk order (exact mode only). `Some(c)`: cluster the corpus into `c`
    /// clusters (k-means), one block per cluster, and store the centroids (both modes).
    pub clusters: Option<usize>,
    /// Clients allowed to query it (each gets grants for the programs below and nothing else).
    pub askers: &'a [&'a str],
    /// The result sizes k askers may ask for.
    pub ks: &'a [usize],
    /// The cluster counts p askers may search (clustered corpora only).
    pub ps: &'a [usize],
}

/// A stored blocked corpus: what an asker needs to query it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedCorpus {
    /// Corpus name; stored values are `<name>.emb.<b>`, `<name>.text.<b>` and
    /// `<name>.centroids`.
    pub name: String,
    /// Client that stored it.
    pub owner: String,
    /// Sizes of the stored blocks.
    pub shape: BlockedShape,
    /// Whether blocks are clusters with stored centroids.
    pub clustered: bool,
    /// Chunk id at each stored position (block·R + row); `None` when positions are chunk ids.
    pub chunk_at: Option<Vec<u32>>,
    /// The owner's copy of the int8 centroids (clusters × dim), for checking answers
    /// ([`plaintext_blocked`]); the owner clears it before handing the corpus to an asker.
    pub centroids: Option<Vec<i8>>,
    /// Retrieval programs already stored on the cluster, by (asker, k, mode, link plan): a
    /// later query skips building, validating and storing its program (programs are
    /// content-addressed and never change; at a million chunks building one takes seconds).
    pub programs: HashMap<(String, usize, Mode, String), String>,
}

impl BlockedCorpus {
    /// Number of chunks.
    pub fn documents(&self) -> usize {
        self.shape.blocks.iter().sum()
    }
}

/// Words per packed Z_2^32 text of at most `max_bytes` bytes: one length word, then 4 bytes a
/// word.
pub fn text_width32(max_bytes: usize) -> usize {
    1 + max_bytes.div_ceil(4)
}

/// Packs `text` into `width` Z_2^32 words (length, then little-endian bytes, zero padded).
pub fn pack_text32(text: &[u8], width: usize) -> Result<Vec<u32>, RagError> {
    let cap = 4 * width.saturating_sub(1);
    if text.len() > cap {
        return Err(RagError::Invalid(format!(
            "a chunk of {} bytes exceeds the {cap}-byte text width",
            text.len()
        )));
    }
    let mut words = vec![0u32; width];
    words[0] = text.len() as u32;
    for (i, c) in text.chunks(4).enumerate() {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        words[1 + i] = u32::from_le_bytes(b);
    }
    Ok(words)
}

/// Unpacks a text packed by [`pack_text32`] from reconstructed words (reduced mod 2^32 here).
pub fn unpack_text32(words: &[u64]) -> Result<Vec<u8>, RagError> {
    let (&len, body) = words
        .split_first()
        .ok_or_else(|| RagError::Answer("an empty text row".into()))?;
    let len = (len as u32) as usize;
    if len > 4 * body.len() {
        return Err(RagError::Answer(format!(
            "text length {len} exceeds its row"
        )));
    }
    let mut out: Vec<u8> = body
        .iter()
        .flat_map(|&w| (w as u32).to_le_bytes())
        .collect();
    out.truncate(len);
    Ok(out)
}

/// Rows per block of an exact layout: the power of two nearest √n (at least 2), so the
/// two-level fetch's block one-hot and row one-hot have about √n columns each.
pub fn exact_block_rows(n: usize) -> usize {
    let r = (n as f64).sqrt().round().max(2.0) as usize;
    let up = r.next_power_of_two();
    if up - r <= r - up / 2 { up } else { up / 2 }.max(2)
}

fn value_id(name: &str, kind: &str, b: usize) -> String {
    format!("{name}.{kind}.{b}")
}

fn centroids_id(name: &str) -> String {
    format!("{name}.centroids")
}

/// int8 words as Z_2^32 elements (two's complement).
fn ring32(v: &[i8]) -> Vec<u32> {
    v.iter().map(|&x| i32::from(x) as u32).collect()
}

/// The program a query of `mode` runs for `asker` on `corpus`, with the top-k plans chosen for
/// `link` (what [`ask_blocked`] stores; e.g. to check it against a cluster's security mode
/// before asking).
pub fn program_for(
    corpus: &BlockedCorpus,
    k: usize,
    mode: Mode,
    asker: &str,
    link: &LinkProfile,
) -> Result<veil_circuits::ValidatedProgram, RagError> {
    Ok(match mode {
        Mode::Exact => exact_program(&corpus.shape, k, &corpus.owner, asker, link)?,
        Mode::Clustered { p } => {
            if !corpus.clustered {
                return Err(RagError::Invalid(
                    "clustered mode needs a corpus uploaded with clusters".into(),
                ));
            }
            clustered_program(&corpus.shape, p, k, &corpus.owner, asker, link)?
        }
    })
}

/// The programs an upload approves for its askers: each (k, mode) under each built-in link
/// profile's top-k plan. Every plan of one (k, mode) computes the same outputs.
fn approved_programs(
    corpus: &BlockedCorpus,
    askers: &[&str],
    ks: &[usize],
    ps: &[usize],
) -> Result<Vec<Grant>, RagError> {
    let mut modes = vec![Mode::Exact];
    if corpus.clustered {
        modes.extend(ps.iter().map(|&p| Mode::Clustered { p }));
    }
    let mut grants: Vec<Grant> = Vec::new();
    for &asker in askers {
        for &k in ks {
            for &mode in &modes {
                for link in [LinkProfile::LOOPBACK, LinkProfile::LAN, LinkProfile::WAN] {
                    let program = program_for(corpus, k, mode, asker, &link)?;
                    let grant = Grant::new(asker, program.id().to_string());
                    if !grants.contains(&grant) {
                        grants.push(grant);
                    }
                }
            }
        }
    }
    Ok(grants)
}

/// Secret-shares a corpus into the cluster as `owner` (the connected client), compact and in
/// blocks; each node receives only its two components of every value. `progress(done, total)`
/// is called after each stored block (and the centroids).
pub async fn upload_blocked(
    owner: &mut Client,
    up: BlockedUpload<'_>,
    mut progress: impl FnMut(usize, usize),
) -> Result<BlockedCorpus, RagError> {
    let n = up.texts.len();
    if n == 0 || up.dim == 0 || up.emb.len() != n * up.dim {
        return Err(RagError::Invalid(format!(
            "{} embedding values for {n} chunks of dimension {}",
            up.emb.len(),
            up.dim
        )));
    }
    let width = text_width32(up.text_bytes);
    // Positions → chunks: chunk order, or one block per cluster (padded to R rows).
    let (block_rows, members, centroids): (usize, Vec<Vec<u32>>, Option<Vec<i8>>) =
        match up.clusters {
            None => {
                let r = exact_block_rows(n);
                let members = (0..n as u32)
                    .collect::<Vec<_>>()
                    .chunks(r)
                    .map(<[u32]>::to_vec)
                    .collect();
                (r, members, None)
            }
            Some(c) => {
                let BlockLayout {
                    block_rows,
                    members,
                    centroids,
                    ..
                } = layout_blocks(up.emb, up.dim, c, KMEANS_ITERATIONS, KMEANS_SEED)
                    .map_err(|e| RagError::Invalid(e.to_string()))?;
                (block_rows, members, Some(centroids))
            }
        };
    let shape = BlockedShape::new(
        up.dim,
        width,
        block_rows,
        members.iter().map(Vec::len).collect(),
    );
    shape.check()?;
    let chunk_at = up.clusters.map(|_| {
        let mut at = vec![u32::MAX; members.len() * block_rows];
        for (b, m) in members.iter().enumerate() {
            at[b * block_rows..b * block_rows + m.len()].copy_from_slice(m);
        }
        at
    });
    let stored = BlockedCorpus {
        name: up.name.to_string(),
        owner: owner.name().to_string(),
        shape,
        clustered: up.clusters.is_some(),
        chunk_at,
        centroids: centroids.clone(),
        programs: HashMap::new(),
    };
    for &k in up.ks {
        check_k(k, n)?;
    }
    let grants = approved_programs(&stored, up.askers, up.ks, up.ps)?;
    let total = members.len() + usize::from(centroids.is_some());
    let rotation = |i: usize| PartyId::from_index(i);
    if let Some(c) = &centroids {
        owner
            .store_secret32(
                &centroids_id(up.name),
                &ring32(c),
                rotation(0),
                &grants,
                &[],
            )
            .await?;
        progress(1, total);
    }
    let (dim, r) = (up.dim, block_rows);
    for (b, m) in members.iter().enumerate() {
        let mut emb = vec![0u32; r * dim];
        let mut text = vec![0u32; r * width];
        for (row, &doc) in m.iter().enumerate() {
            let doc = doc as usize;
            emb[row * dim..(row + 1) * dim]
                .copy_from_slice(&ring32(&up.emb[doc * dim..(doc + 1) * dim]));
            text[row * width..(row + 1) * width]
                .copy_from_slice(&pack_text32(up.texts[doc], width)?);
        }
        owner
            .store_secret32(
                &value_id(up.name, "emb", b),
                &emb,
                rotation(2 * b + 1),
                &grants,
                &[],
            )
            .await?;
        owner
            .store_secret32(
                &value_id(up.name, "text", b),
                &text,
                rotation(2 * b + 2),
                &grants,
                &[],
            )
            .await?;
        progress(b + 1 + usize::from(centroids.is_some()), total);
    }
    Ok(stored)
}

/// Deletes every stored value of `corpus` from the cluster (as its owner).
pub async fn delete_blocked(owner: &mut Client, corpus: &BlockedCorpus) -> Result<(), RagError> {
    for b in 0..corpus.shape.blocks.len() {
        for kind in ["emb", "text"] {
            owner.delete(&value_id(&corpus.name, kind, b)).await?;
        }
    }
    if corpus.clustered {
        owner.delete(&centroids_id(&corpus.name)).await?;
    }
    Ok(())
}

/// Asks the cluster for the `k` best chunks of `corpus` for the int8 `query` in `mode`, as the
/// connected client (one of the corpus's askers), with the top-k plans chosen for `link`.
/// Only this client sees the answer. The first query of each (k, mode, plan) stores its
/// program; later ones reuse it.
pub async fn ask_blocked(
    asker: &mut Client,
    corpus: &mut BlockedCorpus,
    query: &[i8],
    k: usize,
    mode: Mode,
    link: &LinkProfile,
) -> Result<MpcAnswer, RagError> {
    let start = Instant::now();
    let n = corpus.documents();
    if query.len() != corpus.shape.dim {
        return Err(RagError::Invalid(format!(
            "the query has {} dimensions, the corpus {}",
            query.len(),
            corpus.shape.dim
        )));
    }
    check_k(k, n)?;
    let key = (asker.name().to_string(), k, mode, format!("{link:?}"));
    let program_id = match corpus.programs.get(&key) {
        Some(id) => id.clone(),
        None => {
            let program = program_for(corpus, k, mode, asker.name(), link)?;
            let id = asker.store_program(&program).await?;
            corpus.programs.insert(key, id.clone());
            id
        }
    };
    let mut bindings: Vec<(String, String)> = Vec::new();
    for b in 0..corpus.shape.blocks.len() {
        bindings.push((emb_input(b), value_id(&corpus.name, "emb", b)));
        bindings.push((text_input(b), value_id(&corpus.name, "text", b)));
    }
    if matches!(mode, Mode::Clustered { .. }) {
        bindings.push((CENTROIDS.to_string(), centroids_id(&corpus.name)));
    }
    let refs: Vec<(&str, &str)> = bindings
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let q = ring32(query);
    let (invoke, out) = asker
        .invoke_inline_secrets(
            &program_id,
            &refs,
            &[(QUERY, Secret::Ring32(&q, PartyId::P0))],
        )
        .await?;
    let width = corpus.shape.width;
    let (Some(keys), Some(texts)) = (out.get(KEYS), out.get(TEXTS)) else {
        return Err(RagError::Answer("the result lacks keys or texts".into()));
    };
    if keys.len() != k || texts.len() != k * width {
        return Err(RagError::Answer(format!(
            "expected {k} keys and {k}×{width} text words, got {} and {}",
            keys.len(),
            texts.len()
        )));
    }
    let bits = corpus.shape.index_bits();
    let hits = keys
        .iter()
        .zip(texts.chunks_exact(width))
        .map(|(&key, row)| {
            if is_padding_key32(key) {
                return Err(RagError::Answer(format!(
                    "fewer than {k} chunks were candidates (a padding row ranked)"
                )));
            }
            let (score, pos) = decode_key32(key, bits);
            let doc = match &corpus.chunk_at {
                None => pos,
                Some(at) => at.get(pos).map_or(usize::MAX, |&d| d as usize),
            };
            if doc >= n {
                return Err(RagError::Answer(format!("position {pos} is not a chunk")));
            }
            Ok(Hit {
                doc,
                score,
                text: unpack_text32(row)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MpcAnswer {
        hits,
        invoke,
        wall: start.elapsed(),
    })
}

/// Plaintext reference of [`ask_blocked`]: the (chunk, score) pairs the circuit returns for
/// `query` over the int8 embeddings `emb` (n × dim, chunk order) in `mode` — ties go to the
/// lower stored position, as in the circuit's keys. Needs the owner's centroids for the
/// clustered mode.
pub fn plaintext_blocked(
    corpus: &BlockedCorpus,
    emb: &[i8],
    query: &[i8],
    k: usize,
    mode: Mode,
) -> Result<Vec<(usize, i64)>, RagError> {
    let (dim, r) = (corpus.shape.dim, corpus.shape.block_rows);
    let chunk = |pos: usize| -> Option<usize> {
        match &corpus.chunk_at {
            None => (pos < corpus.documents()).then_some(pos),
            Some(at) => at.get(pos).filter(|&&d| d != u32::MAX).map(|&d| d as usize),
        }
    };
    let score = |row: &[i8]| i64::from(dot_i8(row, query));
    let blocks: Vec<usize> = match mode {
        Mode::Exact => (0..corpus.shape.blocks.len()).collect(),
        Mode::Clustered { p } => {
            let c = corpus.centroids.as_ref().ok_or_else(|| {
                RagError::Invalid("the clustered reference needs the owner's centroids".into())
            })?;
            let mut order: Vec<(i64, usize)> = c
                .chunks_exact(dim)
                .enumerate()
                .map(|(b, row)| (-score(row), b))
                .collect();
            order.sort_unstable();
            order.into_iter().take(p).map(|(_, b)| b).collect()
        }
    };
    let mut cand: Vec<(i64, usize, usize)> = blocks
        .into_iter()
        .flat_map(|b| b * r..(b + 1) * r)
        .filter_map(|pos| {
            let d = chunk(pos)?;
            Some((-score(&emb[d * dim..(d + 1) * dim]), pos, d))
        })
        .collect();
    cand.sort_unstable();
    Ok(cand.into_iter().take(k).map(|(s, _, d)| (d, -s)).collect())
}

/// What the nodes hold for a blocked corpus: stored bytes per node, summed over its values
/// (explicit u32 components; seeds are 64 bytes a value).
pub fn stored_bytes_per_node(corpus: &BlockedCorpus) -> [u64; 3] {
    let s = &corpus.shape;
    let r = s.block_rows as u64;
    let mut per = [0u64; 3];
    let mut add = |rotation: usize, elems: u64| {
        // P_r holds two seeds; P_{r+1} and P_{r+2} one explicit u32 component each.
        for (i, b) in per.iter_mut().enumerate() {
            *b += if i == rotation % 3 {
                64
            } else {
                4 * elems + 32
            };
        }
    };
    if corpus.clustered {
        add(0, (s.blocks.len() * s.dim) as u64);
    }
    for b in 0..s.blocks.len() {
        add(2 * b + 1, r * s.dim as u64);
        add(2 * b + 2, r * s.width as u64);
    }
    per
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z32_text_packing_round_trips_and_refuses_overflow() {
        for text in [&b""[..], b"a", b"1234", b"12345", "héllo".as_bytes()] {
            let w = pack_text32(text, text_width32(8)).unwrap();
            assert_eq!(w.len(), 3);
            // As the asker reconstructs them: words mod 2^64 with garbage above bit 32.
            let wide: Vec<u64> = w.iter().map(|&x| u64::from(x) | 7 << 40).collect();
            assert_eq!(unpack_text32(&wide).unwrap(), text);
        }
        assert!(pack_text32(&[1; 9], text_width32(8)).is_err());
        assert!(unpack_text32(&[100, 0]).is_err());
        assert!(unpack_text32(&[]).is_err());
    }

    #[test]
    fn exact_blocks_are_a_power_of_two_near_the_square_root() {
        for (n, r) in [
            (1, 2),
            (10, 4),
            (10_000, 128),
            (1_000_000, 1024),
            (100_000, 256),
        ] {
            assert_eq!(exact_block_rows(n), r, "n = {n}");
        }
    }

    #[test]
    fn rotation_spreads_the_explicit_components() {
        let corpus = BlockedCorpus {
            name: "c".into(),
            owner: "o".into(),
            shape: BlockedShape::new(384, 65, 1024, vec![1024; 978]),
            clustered: false,
            chunk_at: None,
            centroids: None,
            programs: HashMap::new(),
        };
        let per = stored_bytes_per_node(&corpus);
        let elems = (978 * 1024 * (384 + 65)) as f64;
        for b in per {
            let per_elem = b as f64 / elems;
            assert!((2.6..2.75).contains(&per_elem), "{per_elem}");
        }
    }
}
