//! Mutual certificate pinning: a dialer (a node dialing a peer, or the client SDK) completes a
//! link only with the certificate pinned for the party it meant to reach, so a redirected
//! address cannot make one node pose as another. Ports 9110-9122.

mod common;

use common::{mul_program, ready_client};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use veil_client::{Client, ClientError, RetrievalClient, RetrievalError};
use veil_node::config::NodeConfig;
use veil_proto::config::ClusterConfig;

fn write_cluster(path: &Path, cfg: &ClusterConfig) -> PathBuf {
    std::fs::write(path, toml::to_string(cfg).unwrap()).unwrap();
    path.to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_peer_presenting_another_nodes_certificate() {
    // P0's config sends its link to P1 to P2's address (P2 is a valid node of the same CA).
    let cluster = common::start_with(9110, |layout| {
        for (i, path) in layout.node_configs.iter().enumerate() {
            let mut text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains("session_timeout_ms = 10000"), "{text}");
            text = text.replace("session_timeout_ms = 10000", "session_timeout_ms = 2000");
            if i == 0 {
                assert_eq!(text.matches("\"127.0.0.1:9111\"").count(), 1, "{text}");
                text = text.replace("\"127.0.0.1:9111\"", "\"127.0.0.1:9112\"");
            }
            std::fs::write(path, text).unwrap();
        }
    });
    let fps = NodeConfig::load(&cluster.layout().node_configs[1])
        .unwrap()
        .node_fingerprints();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;

    // P0 logs that the link was refused, naming the address and both fingerprints ...
    let expected = format!(
        "certificate of 127.0.0.1:9112 has fingerprint {}, expected P1's {}",
        fps[2], fps[1]
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.log(0).contains(&expected) {
        assert!(
            Instant::now() < deadline,
            "P0 did not log the refusal `{expected}`:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cluster.log(0).contains("peer link refused"),
        "{}",
        cluster.logs()
    );

    // ... and a computation, which needs the P0-P1 link, fails instead of running with P2 in
    // P1's place.
    alice.store_secret("x", &[1, 2, 3], &[], &[]).await.unwrap();
    alice.store_secret("y", &[4, 5, 6], &[], &[]).await.unwrap();
    let program = alice.store_program(&mul_program("alice", 3)).await.unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        alice.invoke(&program, &[("x", "x"), ("y", "y")], "r"),
    )
    .await
    .expect("the invocation neither failed nor finished");
    match result {
        Err(ClientError::Status { .. }) => {}
        other => panic!("expected a failed invocation, got {other:?}"),
    }
    // P2 never saw P0's dial for "P1" as a second link from P0 (the handshake failed first).
    assert!(
        !cluster.log(2).contains("link replaced"),
        "{}",
        cluster.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refuses_a_node_whose_certificate_is_not_pinned() {
    let cluster = common::start_with(9120, |_| {});
    let good = cluster.cluster_toml("alice");
    ready_client(&good).await;
    let cfg = ClusterConfig::load(&good).unwrap();
    let fp = |i: usize| cfg.node(i).unwrap().cert_sha256.clone();
    let k1 = cfg.nodes.iter().position(|n| n.party == 1).unwrap();

    // cluster.toml pins a wrong certificate (P2's) for node 1.
    let mut wrong_pin = cfg.clone();
    wrong_pin.nodes[k1].cert_sha256 = fp(2);
    let wrong_pin = write_cluster(&cluster.layout().dir.join("wrong-pin.toml"), &wrong_pin);
    let mut c = Client::connect(&wrong_pin).await.unwrap();
    match c.list().await {
        Err(e @ ClientError::WrongNodeCertificate { node: 1, .. }) => {
            let ClientError::WrongNodeCertificate { source, .. } = &e else {
                unreachable!()
            };
            assert_eq!((source.party, source.got.clone()), (1, fp(1)));
            assert_eq!(source.expected, fp(2));
            assert_eq!(source.addr, cfg.addr(1).unwrap());
            let text = e.to_string();
            assert!(text.starts_with("node 1 "), "{text}");
            assert!(text.contains(&fp(1)) && text.contains(&fp(2)), "{text}");
        }
        other => panic!("expected WrongNodeCertificate for node 1, got {other:?}"),
    }

    // cluster.toml's address for node 1 leads to node 2.
    let mut redirected = cfg.clone();
    redirected.nodes[k1].addr = cfg.addr(2).unwrap().to_string();
    let redirected = write_cluster(&cluster.layout().dir.join("redirected.toml"), &redirected);
    let mut c = Client::connect(&redirected).await.unwrap();
    match c.list().await {
        Err(ClientError::WrongNodeCertificate { node: 1, source }) => {
            assert_eq!((source.got, source.expected), (fp(2), fp(1)));
        }
        other => panic!("expected WrongNodeCertificate for node 1, got {other:?}"),
    }
    let mut r = RetrievalClient::connect(&redirected, 1).await.unwrap();
    match r.list_corpora().await {
        Err(RetrievalError::WrongNodeCertificate { node: 1, source }) => {
            assert_eq!((source.got, source.expected), (fp(2), fp(1)));
        }
        other => panic!("expected WrongNodeCertificate for node 1, got {other:?}"),
    }

    // The correctly pinned cluster still works, for both clients.
    let mut c = Client::connect(&good).await.unwrap();
    c.list().await.unwrap();
    let mut r = RetrievalClient::connect(&good, 1).await.unwrap();
    r.list_corpora().await.unwrap();
}
