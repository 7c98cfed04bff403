//! Quality of clustered retrieval, in the clear: how many of the exact top-k chunks the
//! clustered algorithm of the MPC path finds when it scores only the p best clusters.
//!
//! The clustered algorithm ([`clustered_search`]) is the plaintext twin of the oblivious
//! circuit: score the query against the C int8 centroids, take the p best clusters (best score
//! first, ties → lower cluster), score every chunk of those clusters exactly, and keep the k
//! best (best score first, ties → lower position block·R + row, the order of the circuit's
//! keys). [`recall_at_k`] compares it with the exact top-k over all chunks.
//! `examples/rag_recall.rs` runs the sweep over p on a real corpus.

use veil_runtime::cluster::BlockLayout;
use veil_runtime::fhe::ScoredDoc;
use veil_runtime::kernels::dot_i8;

/// The clustered algorithm's answer to one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusteredHits {
    /// The k best chunks of the probed clusters, best first.
    pub hits: Vec<ScoredDoc>,
    /// Real chunks scored (the probed clusters' sizes, padding rows excluded).
    pub scored: usize,
}

/// Blocks in the order a query probes them: centroid score `centroid · query` descending,
/// ties → lower block (the order of the circuit's centroid keys −score·2^32 + block).
pub fn rank_blocks(layout: &BlockLayout, query: &[i8]) -> Vec<u32> {
    let dim = layout.dim;
    let mut scored: Vec<(i32, u32)> = layout
        .centroids
        .chunks_exact(dim)
        .zip(0u32..)
        .map(|(c, b)| (dot_i8(c, query), b))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, b)| b).collect()
}

/// The plaintext clustered search: the `k` best chunks of the `probes` best clusters of
/// `layout` for an int8 `query`, given every chunk's exact score (`scores[doc]`, e.g. from
/// [`all_scores`]) and the probe order from [`rank_blocks`]. Ties → lower position.
pub fn clustered_search(
    layout: &BlockLayout,
    order: &[u32],
    scores: &[i32],
    probes: usize,
    k: usize,
) -> ClusteredHits {
    let r = layout.block_rows as u64;
    // (score, position, doc): best = highest score, then lowest position.
    let mut candidates: Vec<(i32, u64, u32)> = Vec::new();
    for &b in order.iter().take(probes) {
        for (row, &doc) in layout.members[b as usize].iter().enumerate() {
            candidates.push((scores[doc as usize], u64::from(b) * r + row as u64, doc));
        }
    }
    let scored = candidates.len();
    let better = |x: &(i32, u64, u32), y: &(i32, u64, u32)| y.0.cmp(&x.0).then(x.1.cmp(&y.1));
    if k == 0 {
        candidates.clear();
    } else if k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, better);
        candidates.truncate(k);
    }
    candidates.sort_by(better);
    ClusteredHits {
        hits: candidates
            .into_iter()
            .map(|(score, _, doc)| ScoredDoc {
                doc,
                score: i64::from(score),
            })
            .collect(),
        scored,
    }
}

/// Exact int8 score of `query` against every chunk (rows of `quant`).
pub fn all_scores(quant: &[i8], dim: usize, query: &[i8]) -> Vec<i32> {
    quant
        .chunks_exact(dim.max(1))
        .map(|row| dot_i8(row, query))
        .collect()
}

/// Tie-aware recall@k of `approx` against `exact` (both best first, `exact` of length k): the
/// fraction of the k exact slots filled by an approximate hit that scores at least as high
/// as the k-th exact hit — so a chunk that ties the k-th best counts even when the exact
/// search broke the tie the other way. Equals |approx ∩ exact| / k when there are no ties.
/// 1.0 for an empty `exact`.
pub fn recall_at_k(exact: &[ScoredDoc], approx: &[ScoredDoc]) -> f64 {
    let Some(kth) = exact.last().map(|d| d.score) else {
        return 1.0;
    };
    let found = approx
        .iter()
        .take(exact.len())
        .filter(|d| d.score >= kth)
        .count();
    found as f64 / exact.len() as f64
}

/// Probe counts of a sweep: 1, 2, 4, … below `clusters`, then `clusters` itself.
pub fn probe_counts(clusters: usize) -> Vec<usize> {
    let mut out: Vec<usize> = std::iter::successors(Some(1usize), |p| p.checked_mul(2))
        .take_while(|&p| p < clusters)
        .collect();
    if clusters > 0 {
        out.push(clusters);
    }
    out
}

/// A held-out query drawn from a chunk's text: the first sentence of at least `min_words`
/// words that starts at or after byte `skip` of the body (the text after the heading-trail
/// line; a chunk's first `overlap` bytes repeat the previous chunk, so callers pass it as
/// `skip`), at most `max_bytes` long (cut at a word boundary; a longer first word is kept
/// whole). Falls back to a sentence
/// before `skip`, then `None` when no sentence has enough words.
pub fn query_sentence(
    text: &str,
    has_trail: bool,
    skip: usize,
    min_words: usize,
    max_bytes: usize,
) -> Option<String> {
    let body = if has_trail {
        text.split_once('\n').map_or("", |(_, b)| b)
    } else {
        text
    };
    let mut sentences: Vec<(usize, &str)> = Vec::new();
    let mut start = 0;
    let bytes = body.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        let end_of_sentence = matches!(c, b'.' | b'?' | b'!')
            && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        let paragraph = c == b'\n' && bytes.get(i + 1) == Some(&b'\n');
        if end_of_sentence || paragraph || i + 1 == bytes.len() {
            sentences.push((start, &body[start..=i]));
            start = i + 1;
        }
    }
    let words = |s: &str| {
        s.split_whitespace()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count()
    };
    let pick = sentences
        .iter()
        .find(|(at, s)| *at >= skip && words(s) >= min_words)
        .or_else(|| sentences.iter().find(|(_, s)| words(s) >= min_words))?;
    let mut out = String::new();
    for w in pick.1.split_whitespace() {
        if !out.is_empty() && out.len() + 1 + w.len() > max_bytes {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_runtime::cluster::layout_blocks;

    fn doc(doc: u32, score: i64) -> ScoredDoc {
        ScoredDoc { doc, score }
    }

    #[test]
    fn recall_counts_ties_at_the_boundary() {
        let exact = [doc(1, 10), doc(2, 9), doc(3, 7), doc(4, 7)];
        assert_eq!(recall_at_k(&exact, &exact), 1.0);
        // 5 ties 4 at the 4th place: as good.
        assert_eq!(
            recall_at_k(&exact, &[doc(1, 10), doc(2, 9), doc(3, 7), doc(5, 7)]),
            1.0
        );
        assert_eq!(
            recall_at_k(&exact, &[doc(1, 10), doc(3, 7), doc(6, 5), doc(7, 1)]),
            0.5
        );
        assert_eq!(recall_at_k(&exact, &[]), 0.0);
        assert_eq!(recall_at_k(&[], &[doc(1, 1)]), 1.0);
    }

    #[test]
    fn probe_counts_are_powers_of_two_then_all() {
        assert_eq!(probe_counts(1), [1]);
        assert_eq!(probe_counts(8), [1, 2, 4, 8]);
        assert_eq!(probe_counts(10), [1, 2, 4, 8, 10]);
        assert!(probe_counts(0).is_empty());
    }

    #[test]
    fn clustered_search_with_every_cluster_is_exact() {
        let dim = 6;
        let quant: Vec<i8> = (0..300 * dim)
            .map(|i| ((i * 37 + i / 5) % 255) as i8)
            .collect();
        let layout = layout_blocks(&quant, dim, 12, 3, 1).unwrap();
        let query: Vec<i8> = vec![3, -7, 100, 0, -127, 9];
        let scores = all_scores(&quant, dim, &query);
        let order = rank_blocks(&layout, &query);
        let exact = veil_runtime::fhe::corpus::best_k(
            scores
                .iter()
                .zip(0u32..)
                .map(|(&s, d)| doc(d, i64::from(s)))
                .collect(),
            8,
        );
        let all = clustered_search(&layout, &order, &scores, 12, 8);
        assert_eq!(all.scored, 300);
        assert_eq!(recall_at_k(&exact, &all.hits), 1.0);
        let scores_of = |h: &[ScoredDoc]| h.iter().map(|d| d.score).collect::<Vec<_>>();
        assert_eq!(scores_of(&all.hits), scores_of(&exact));
        // One probe: only the best cluster's chunks, best first.
        let one = clustered_search(&layout, &order, &scores, 1, 8);
        assert_eq!(one.scored, layout.members[order[0] as usize].len());
        assert!(
            one.hits
                .iter()
                .all(|d| layout.position[d.doc as usize].0 == order[0])
        );
        assert!(one.hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(
            clustered_search(&layout, &order, &scores, 3, 0)
                .hits
                .is_empty()
        );
    }

    #[test]
    fn rank_blocks_orders_by_centroid_score_then_block() {
        let quant: Vec<i8> = vec![100, 0, 0, 100, 100, 1, 1, 100];
        let layout = layout_blocks(&quant, 2, 2, 2, 0).unwrap();
        let order = rank_blocks(&layout, &[0, 0]);
        assert_eq!(order, [0, 1], "all scores tie: lower block first");
        let x: Vec<i8> = layout.centroids.chunks_exact(2).map(|c| c[0]).collect();
        let want = if x[1] > x[0] { [1, 0] } else { [0, 1] };
        assert_eq!(rank_blocks(&layout, &[127, 0]), want);
    }

    #[test]
    fn query_sentence_skips_the_trail_and_the_overlap() {
        let text = "Guide › Setup\nshort one. The first real sentence has enough words here. \
                    Then a second sentence follows with more words in it.";
        assert_eq!(
            query_sentence(text, true, 0, 4, 200).as_deref(),
            Some("The first real sentence has enough words here.")
        );
        assert_eq!(
            query_sentence(text, true, 20, 4, 200).as_deref(),
            Some("Then a second sentence follows with more words in it.")
        );
        assert_eq!(
            query_sentence(text, true, 1000, 4, 200).as_deref(),
            Some("The first real sentence has enough words here."),
            "falls back to an earlier sentence"
        );
        assert_eq!(
            query_sentence(text, true, 0, 4, 20).as_deref(),
            Some("The first real")
        );
        assert_eq!(query_sentence("a b. c", false, 0, 4, 200), None);
        assert_eq!(query_sentence("", false, 0, 1, 200), None);
        assert_eq!(
            query_sentence("para one line\n\npara two words here", false, 0, 3, 200).as_deref(),
            Some("para one line")
        );
    }
}
