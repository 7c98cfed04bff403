//! Private RAG end to end on a local three-node cluster (gRPC, mutual TLS): both backends
//! return exactly the plaintext top-k for the sample questions over veil's own docs, and for a
//! synthetic corpus of 10,000 chunks; chunk texts come back byte for byte.

use std::sync::atomic::{AtomicU16, Ordering};
use veil_examples::chunk::{Chunk, ChunkOptions};
use veil_examples::embed::Embedder;
use veil_examples::ingest;
use veil_examples::rag::{Backend, Corpus, DemoCluster, MpcSearch, Rag, quantise};
use veil_runtime::SecurityMode;
use veil_runtime::fhe::corpus::normalise;

/// Distinct ports per test and process, below the ephemeral range and checked free (the
/// inference tests hint from 24,000).
fn base_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let hint = 28_200 + (std::process::id() % 200) as u16 * 20 + k * 3;
    veil_node::devnet::free_base_port(hint).expect("free loopback ports")
}

const QUESTIONS: &[&str] = &[
    "How do I start a local cluster?",
    "What does a node learn about my data?",
    "How does the encrypted retrieval path work?",
    "How are shares multiplied?",
    "Which crates does veil depend on?",
];

/// A local cluster serving `corpus` (both backends), with the corpus uploaded.
async fn serve(corpus: &Corpus) -> (DemoCluster, Rag) {
    serve_in(corpus, SecurityMode::SemiHonest).await
}

/// [`serve`] on a cluster in security mode `security`.
async fn serve_in(corpus: &Corpus, security: SecurityMode) -> (DemoCluster, Rag) {
    let cluster = DemoCluster::start(base_port(), Some(corpus), security)
        .await
        .expect("cluster");
    let rag = Rag::connect(&cluster, corpus, &MpcSearch::default(), |_, _| {})
        .await
        .expect("upload");
    (cluster, rag)
}

/// `n` synthetic chunks of dimension `dim` (embedding and text seeds), as the owner embeds them.
fn synthetic_corpus(n: usize, dim: usize, (emb_seed, text_seed): (u64, u64)) -> Corpus {
    let emb = veil_node::retrieval_files::synthetic_embeddings(n, dim, emb_seed);
    let texts = veil_node::retrieval_files::synthetic_passages(n, text_seed);
    let chunks: Vec<Chunk> = texts
        .into_iter()
        .map(|t| Chunk {
            source: "synthetic".into(),
            heading: String::new(),
            text: String::from_utf8(t).unwrap(),
        })
        .collect();
    Corpus::from_embeddings(chunks, emb, dim, 0, Default::default()).unwrap()
}

/// veil's docs, chunked and embedded with the built-in embedder.
fn default_corpus() -> (&'static Embedder, Corpus) {
    let embedder = Embedder::builtin().expect("embedder");
    let chunks = ingest::default_corpus(&ChunkOptions::default()).chunks;
    let corpus = Corpus::embed(chunks, embedder, |_, _| {}).expect("embed");
    (embedder, corpus)
}

/// The plaintext top-`k` chunk ids for question `q`.
fn plaintext_top(embedder: &Embedder, corpus: &Corpus, q: &str, k: usize) -> Vec<usize> {
    let e = embedder.embed(q).expect("question embeds");
    corpus
        .plaintext_search(&quantise(&e).unwrap(), k)
        .iter()
        .map(|d| d.doc as usize)
        .collect()
}

fn ids(hits: &[veil_examples::rag::Hit]) -> Vec<usize> {
    hits.iter().map(|h| h.doc).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_match_plaintext_on_the_default_corpus() {
    let (embedder, corpus) = default_corpus();
    let (_cluster, mut rag) = serve(&corpus).await;
    for &k in &[1usize, 4, 8] {
        for q in QUESTIONS {
            let want = plaintext_top(embedder, &corpus, q, k);
            for backend in [Backend::Mpc, Backend::Fhe] {
                let a = rag.ask(embedder, q, k, backend).await.expect("ask");
                assert_eq!(ids(&a.hits), want, "{backend:?} k={k} {q:?}");
                for h in &a.hits {
                    assert_eq!(h.text, corpus.chunks[h.doc].text, "text of chunk {}", h.doc);
                }
            }
        }
    }
    // Bad questions and k are clear errors, and the cluster keeps answering.
    assert!(rag.ask(embedder, "", 4, Backend::Mpc).await.is_err());
    assert!(rag.ask(embedder, "?!", 4, Backend::Fhe).await.is_err());
    let e = embedder.embed(QUESTIONS[0]).unwrap();
    assert!(rag.ask_embedding(&e, 0, Backend::Mpc).await.is_err());
    assert!(rag.ask_embedding(&e, 10_000, Backend::Mpc).await.is_err());
    assert!(rag.ask_embedding(&e[..10], 4, Backend::Mpc).await.is_err());
    assert_eq!(
        rag.ask(embedder, QUESTIONS[0], 2, Backend::Mpc)
            .await
            .unwrap()
            .hits
            .len(),
        2
    );
}

/// The MPC backend on a malicious-mode cluster (every session verified before its outputs
/// leave, the clients requiring the mode): the same top-k and texts as the plaintext search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpc_retrieval_runs_in_malicious_mode() {
    let (embedder, corpus) = default_corpus();
    let (_cluster, mut rag) = serve_in(&corpus, SecurityMode::Malicious).await;
    for (k, q) in [(4usize, QUESTIONS[0]), (1, QUESTIONS[2])] {
        let want = plaintext_top(embedder, &corpus, q, k);
        let a = rag.ask(embedder, q, k, Backend::Mpc).await.expect("ask");
        assert_eq!(ids(&a.hits), want, "k={k} {q:?}");
        for h in &a.hits {
            assert_eq!(h.text, corpus.chunks[h.doc].text, "text of chunk {}", h.doc);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_match_plaintext_on_10k_synthetic_chunks() {
    const N: usize = 10_000;
    const DIM: usize = 64;
    let corpus = synthetic_corpus(N, DIM, (5, 6));
    let (scoring, _) = corpus.fhe_corpus().unwrap();
    assert!(scoring.info.clusters() > 1, "10k chunks are clustered");
    let (_cluster, mut rag) = serve(&corpus).await;
    for seed in 0..3 {
        let q = veil_node::retrieval_files::synthetic_embeddings(1, DIM, 100 + seed);
        let qi = quantise(&q).unwrap();
        let global: Vec<usize> = corpus
            .plaintext_search(&qi, 8)
            .iter()
            .map(|d| d.doc as usize)
            .collect();
        let mpc = rag.ask_embedding(&q, 8, Backend::Mpc).await.expect("mpc");
        assert_eq!(ids(&mpc.hits), global, "mpc, query {seed}");
        // The FHE client searches its nearest cluster (Tiptoe): exact within it.
        let unit = normalise(&q, "query").unwrap();
        let nearest: Vec<usize> = Corpus::fhe_plaintext_search(&scoring, &unit, &qi, 8)
            .iter()
            .map(|d| d.doc as usize)
            .collect();
        let fhe = rag.ask_embedding(&q, 8, Backend::Fhe).await.expect("fhe");
        assert_eq!(ids(&fhe.hits), nearest, "fhe, query {seed}");
        for h in mpc.hits.iter().chain(&fhe.hits) {
            assert_eq!(h.text, corpus.chunks[h.doc].text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpc_clustered_mode_matches_its_plaintext_twin_on_10k_synthetic_chunks() {
    const N: usize = 10_000;
    const DIM: usize = 64;
    let corpus = synthetic_corpus(N, DIM, (7, 8));
    let cluster = DemoCluster::start(base_port(), None, SecurityMode::SemiHonest)
        .await
        .expect("cluster");
    let search = MpcSearch {
        mode: veil_client::rag::blocked::Mode::Clustered { p: 4 },
        clusters: Some(100),
        ks: vec![8],
    };
    let mut rag = Rag::connect(&cluster, &corpus, &search, |_, _| {})
        .await
        .expect("upload");
    let layout = &rag.mpc_corpus().shape;
    assert_eq!(layout.blocks.len(), 100);
    assert_eq!(layout.blocks.iter().sum::<usize>(), N);
    for seed in 0..3 {
        let q = veil_node::retrieval_files::synthetic_embeddings(1, DIM, 200 + seed);
        let qi = quantise(&q).unwrap();
        let want = rag.mpc_plaintext(&corpus, &qi, 8).unwrap();
        let got = rag.ask_embedding(&q, 8, Backend::Mpc).await.expect("mpc");
        let got: Vec<(usize, i64)> = got.hits.iter().map(|h| (h.doc, h.score)).collect();
        assert_eq!(got, want, "clustered, query {seed}");
    }
    // k = 4 was not approved by the owner: refused, and the cluster keeps answering.
    let q = veil_node::retrieval_files::synthetic_embeddings(1, DIM, 300);
    assert!(rag.ask_embedding(&q, 4, Backend::Mpc).await.is_err());
    assert_eq!(
        rag.ask_embedding(&q, 8, Backend::Mpc)
            .await
            .unwrap()
            .hits
            .len(),
        8
    );
}
