//! End-to-end: one `veil node` process serving a prepared corpus over mutual TLS, driven by
//! the retrieval SDK — scores equal the plaintext reference, fetched passages equal the
//! originals, bad requests are clear errors, unauthorised certificates are refused, and the
//! node keeps serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use veil_client::{RetrievalClient, RetrievalError};
use veil_node::config::NodeConfig;
use veil_node::devnet::{LocalCluster, Runner};
use veil_node::retrieval_files::{self as files, CORPUS_HINT_FILE, PASSAGES_HINT_FILE};
use veil_proto::config::ClusterConfig;
use veil_runtime::fhe::corpus::{best_k, normalise, quantise_query};
use veil_runtime::fhe::{Clustering, FetchQuery, PassageDb, ScoreQuery, ScoringCorpus};

/// The node this test runs (party 2 dials no peer, so a lone node stays quiet).
const PARTY: usize = 2;
const DOCS: usize = 2_000;
const DIM: usize = 64;
const PASSAGES: usize = 300;

/// Distinct ports per test in this process (and per process, by pid); clear of cluster.rs.
fn base_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let hint = 20_000 + (std::process::id() % 100) as u16 * 120 + 60 + k * 5;
    veil_node::devnet::free_base_port(hint).expect("free loopback ports")
}

/// A node serving corpus `docs`, the data it was prepared from, and client configs.
struct Served {
    cluster: LocalCluster,
    corpus: ScoringCorpus,
    passages: Vec<Vec<u8>>,
    corpus_dir: PathBuf,
}

impl Served {
    fn start() -> Served {
        let runner = Runner::Process(env!("CARGO_BIN_EXE_veil").into());
        let mut cluster =
            LocalCluster::temp(base_port(), &["alice", "bob"], runner).expect("devnet files");
        let dir = cluster.layout().dir.clone();
        let emb = files::synthetic_embeddings(DOCS, DIM, 7);
        let clusters = Clustering::default_clusters(DOCS, DIM);
        let corpus =
            ScoringCorpus::prepare(&emb, DIM, Clustering::RandomBalanced { clusters, seed: 3 })
                .expect("corpus");
        let passages = files::synthetic_passages(PASSAGES, 11);
        let passage_db = PassageDb::new(&passages).expect("passages");
        let corpus_dir = dir.join("corpus-docs");
        files::write_corpus_dir(&corpus_dir, &corpus, Some(&passage_db)).expect("corpus dir");

        // Serve it from node 2 alone, and take bob off that node's client list.
        cluster
            .serve_corpus(PARTY, "docs", &corpus_dir)
            .expect("serve the corpus");
        let path = &cluster.layout().node_configs[PARTY];
        let mut cfg = NodeConfig::load(path).expect("node config");
        cfg.clients.retain(|c| c.name != "bob");
        std::fs::write(path, toml::to_string(&cfg).expect("toml")).expect("write config");
        NodeConfig::load(path).expect("the edited config loads");
        cluster.start_node(PARTY).expect("start the node");
        Served {
            cluster,
            corpus,
            passages,
            corpus_dir,
        }
    }

    fn cluster_toml(&self, client: &str) -> PathBuf {
        self.cluster.cluster_toml(client)
    }

    fn log(&self) -> String {
        self.cluster.log(PARTY)
    }

    /// Connect as `cluster_toml`'s client and wait until the node answers.
    async fn ready_client(&self, cluster_toml: &Path) -> RetrievalClient {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut c = RetrievalClient::connect(cluster_toml, PARTY)
                .await
                .expect("client config");
            match c.list_corpora().await {
                Ok(_) => return c,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("node did not come up: {e}\n{}", self.log()),
            }
        }
    }

    /// Plaintext reference: the top k of the query's nearest cluster.
    fn expected(&self, q: &[f32], k: usize) -> Vec<veil_runtime::fhe::ScoredDoc> {
        let cluster = self
            .corpus
            .info
            .nearest_cluster(&normalise(q, "query").unwrap());
        best_k(
            self.corpus
                .plaintext_scores(cluster, &quantise_query(q).unwrap()),
            k,
        )
    }
}

fn code(e: &RetrievalError) -> Option<tonic::Code> {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_and_passages_match_plaintext() {
    let s = Served::start();
    let mut alice = s.ready_client(&s.cluster_toml("alice")).await;

    let listed = alice.list_corpora().await.unwrap();
    assert_eq!(listed.len(), 1);
    let l = &listed[0];
    assert_eq!(
        (l.name.as_str(), l.documents, l.dim),
        ("docs", DOCS as u64, DIM as u64)
    );
    assert_eq!(l.passages, PASSAGES as u64);
    assert_eq!(&l.score_db_id[..], &s.corpus.db.shape().id.0);

    // The streamed objects reassemble to the prepared files (the passage hint spans chunks).
    let handle = alice.fetch_corpus("docs").await.unwrap();
    let passage_hint = std::fs::read(s.corpus_dir.join(PASSAGES_HINT_FILE)).unwrap();
    assert!(
        passage_hint.len() > 2 << 20,
        "exercise several 1 MiB chunks"
    );
    assert_eq!(handle.info.to_bytes(), s.corpus.info.to_bytes());
    assert_eq!(
        handle.hint.to_bytes(),
        std::fs::read(s.corpus_dir.join(CORPUS_HINT_FILE)).unwrap()
    );
    assert_eq!(handle.passages.as_ref().unwrap().to_bytes(), passage_hint);
    assert_eq!(l.passage_hint_bytes, passage_hint.len() as u64);

    let queries = files::synthetic_embeddings(5, DIM, 99);
    for q in queries.chunks_exact(DIM) {
        let got = alice.score(&handle, q, 10).await.unwrap();
        assert_eq!(got, s.expected(q, 10));
    }
    // A document's own embedding as the question scores it exactly when its cluster is chosen.
    let own = &files::synthetic_embeddings(DOCS, DIM, 7)[..DIM];
    assert_eq!(
        alice.score(&handle, own, 3).await.unwrap(),
        s.expected(own, 3)
    );

    let want = [0, PASSAGES - 1, 17, 17, 150];
    let got = alice.fetch(&handle, &want).await.unwrap();
    let expected: Vec<Vec<u8>> = want.iter().map(|&i| s.passages[i].clone()).collect();
    assert_eq!(got, expected);
    assert!(alice.fetch(&handle, &[]).await.unwrap().is_empty());

    // A node's certificate is also accepted.
    let mut as_node = ClusterConfig::load(&s.cluster_toml("alice")).unwrap();
    as_node.client.cert = s.cluster.layout().dir.join("node-0.pem");
    as_node.client.key = s.cluster.layout().dir.join("node-0.key.pem");
    let node_toml = s.cluster.layout().dir.join("cluster-as-node.toml");
    std::fs::write(&node_toml, toml::to_string(&as_node).unwrap()).unwrap();
    let mut node0 = s.ready_client(&node_toml).await;
    let q = &queries[..DIM];
    assert_eq!(node0.score(&handle, q, 5).await.unwrap(), s.expected(q, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_the_node_keeps_serving() {
    let s = Served::start();
    let mut alice = s.ready_client(&s.cluster_toml("alice")).await;
    let handle = alice.fetch_corpus("docs").await.unwrap();
    let q = files::synthetic_embeddings(1, DIM, 5);

    // Unknown or malformed corpus names.
    let e = alice.fetch_corpus("nope").await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::NotFound), "{e}");
    assert!(e.to_string().contains("no corpus 'nope'"), "{e}");
    let (_, ct) = ScoreQuery::new(&handle.info, &q).unwrap();
    let e = alice.score_encrypted("nope", &ct).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::NotFound), "{e}");
    let e = alice.fetch_corpus("bad name!").await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::InvalidArgument), "{e}");

    // Truncated bodies.
    let mut short = ct.clone();
    short.bodies.pop();
    let e = alice.score_encrypted("docs", &short).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::InvalidArgument), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("query ciphertext bodies") && msg.contains("expected"),
        "{msg}"
    );

    // An oversized message (past the node's 64 MiB `max_message_bytes`) is refused by the
    // gRPC layer with a status naming the limit, and the node keeps serving.
    let mut huge = ct.clone();
    huge.bodies = vec![0u64; veil_node::config::DEFAULT_MAX_MESSAGE_BYTES / 8 + 1];
    let e = alice.score_encrypted("docs", &huge).await.unwrap_err();
    assert!(
        matches!(
            code(&e),
            Some(tonic::Code::OutOfRange | tonic::Code::ResourceExhausted)
        ),
        "{e}"
    );
    assert!(e.to_string().contains("too large"), "{e}");

    // Queries for another database (here: the other matrix of the same corpus).
    let shape = handle.passage_shape().unwrap().clone();
    let (_, fetch_ct) = FetchQuery::new(&shape, 3).unwrap();
    let e = alice.score_encrypted("docs", &fetch_ct).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::FailedPrecondition), "{e}");
    assert!(e.to_string().contains("database"), "{e}");
    let e = alice
        .fetch_encrypted("docs", std::slice::from_ref(&ct))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::FailedPrecondition), "{e}");

    // Fetch batch sizes.
    let e = alice.fetch_encrypted("docs", &[]).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::InvalidArgument), "{e}");
    let many = vec![fetch_ct.clone(); veil_node::service::retrieval::MAX_FETCH_QUERIES + 1];
    let e = alice.fetch_encrypted("docs", &many).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::InvalidArgument), "{e}");
    // Client-side checks need no round trip.
    let e = alice.fetch(&handle, &[PASSAGES]).await.unwrap_err();
    assert!(matches!(e, RetrievalError::Fhe(_)), "{e}");

    // Bob is not on this node's client list.
    let mut bob = RetrievalClient::connect(&s.cluster_toml("bob"), PARTY)
        .await
        .unwrap();
    let e = bob.list_corpora().await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::PermissionDenied), "{e}");
    let e = bob.score_encrypted("docs", &ct).await.unwrap_err();
    assert_eq!(code(&e), Some(tonic::Code::PermissionDenied), "{e}");

    // Still serving; the log names corpora (sizes and timings, no query material).
    assert_eq!(
        alice.score(&handle, &q, 10).await.unwrap(),
        s.expected(&q, 10)
    );
    assert_eq!(
        alice.fetch(&handle, &[42]).await.unwrap(),
        vec![s.passages[42].clone()]
    );
    let log = s.log();
    assert!(log.contains("retrieval corpus loaded"), "{log}");
    assert!(log.contains("corpus=docs"), "{log}");
}
