//! Retrieval quality of the default offline embedder on veil's own docs: hit@k of a small
//! labelled question set (a hit = one of the k best chunks lies in the labelled section).
//! Both private backends return exactly this plaintext top-k (tests/rag.rs), so these are
//! their figures too. Printed with `--nocapture`; recorded in docs/benchmarks.md.

use veil_examples::chunk::ChunkOptions;
use veil_examples::embed::Embedder;
use veil_examples::ingest;
use veil_examples::rag::{Corpus, quantise};

/// (question, a heading that answers it).
const LABELLED: &[(&str, &str)] = &[
    (
        "How do I start a local three-node cluster?",
        "A local cluster",
    ),
    (
        "How does multiplication of secret shares work?",
        "Multiplication",
    ),
    (
        "What is the threat model and who is trusted?",
        "Threat model",
    ),
    ("How is the sign bit of a shared value computed?", "LTZ"),
    ("How does encrypted retrieval with TFHE work?", "TFHE"),
    (
        "How are pairwise keys agreed when a session starts?",
        "Session key setup",
    ),
    (
        "Where does the randomness for shares come from?",
        "Randomness",
    ),
    (
        "How does probabilistic truncation of fixed-point values work?",
        "Probabilistic truncation",
    ),
    ("What are the known limitations?", "Known limitations"),
    ("Which crates make up the project?", "Crates"),
    (
        "What are the benchmark figures for multiplication?",
        "Performance",
    ),
    (
        "How are boolean bits converted to arithmetic shares?",
        "Bit injection",
    ),
    (
        "How do I score a query with the TFHE client from Rust?",
        "Private retrieval with TFHE",
    ),
    ("How is the argmax of a secret vector computed?", "argmax"),
    (
        "What does each party learn during a computation?",
        "What is protected",
    ),
    ("How is a secret input shared by a client?", "Input"),
];

#[test]
fn hit_at_k_of_the_default_embedder_on_veil_docs() {
    let embedder = Embedder::builtin().expect("embedder");
    let chunks = ingest::default_corpus(&ChunkOptions::default()).chunks;
    let corpus = Corpus::embed(chunks, embedder, |_, _| {}).expect("embed");
    let ks = [1usize, 3, 5, 8];
    let mut hits = [0usize; 4];
    for (q, label) in LABELLED {
        let e = quantise(&embedder.embed(q).expect("embeds")).unwrap();
        let top = corpus.plaintext_search(&e, 8);
        let first = top
            .iter()
            .position(|d| corpus.chunks[d.doc as usize].heading.contains(label));
        println!("{first:?}\t{q}");
        for (i, &k) in ks.iter().enumerate() {
            hits[i] += usize::from(first.is_some_and(|p| p < k));
        }
    }
    let n = LABELLED.len() as f64;
    for (k, h) in ks.iter().zip(hits) {
        println!("hit@{k}: {h}/{} = {:.2}", LABELLED.len(), h as f64 / n);
    }
    // A floor well below what the distilled table reaches, so a broken embedder fails.
    assert!(hits[3] as f64 / n >= 0.5, "hit@8 = {}", hits[3]);
}
