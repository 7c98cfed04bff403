//! End-to-end: three `veil node` processes with mutual TLS on loopback, driven by the client
//! SDK — storage, computation, permissions, bad requests, a node killed mid-session, restarts.

mod common;

use common::{mul_program, ready_client};
use std::time::{Duration, Instant};
use veil_circuits::{Builder, Recipient, Ring};
use veil_client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_computes_and_enforces_permissions() {
    let cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let xs: Vec<u64> = (0..100u64).map(|i| i * 3).collect();
    let ys: Vec<u64> = (0..100u64).map(|i| (i as i64 - 50) as u64).collect();
    alice.store_secret("x", &xs, &[], &[]).await.unwrap();
    alice.store_secret("y", &ys, &[], &[]).await.unwrap();
    let p = mul_program("alice", 100);
    let id = alice.store_program(&p).await.unwrap();
    let summary = alice
        .invoke(&id, &[("x", "x"), ("y", "y")], "r1")
        .await
        .unwrap_or_else(|e| panic!("invoke: {e}\n{}", cluster.logs()));
    assert_eq!(
        summary.rounds,
        veil_circuits::cost::program_cost(&p).rounds as u64
    );
    let out = alice.fetch("r1").await.unwrap();
    let want: Vec<u64> = xs
        .iter()
        .zip(&ys)
        .map(|(a, b)| a.wrapping_mul(*b))
        .collect();
    assert_eq!(out["z"], want);
    assert_eq!(out["neg"], want.iter().map(|v| v >> 63).collect::<Vec<_>>());

    // Bob may not compute on Alice's values, nor read her result; he is told exactly what he
    // would be told for ids that do not exist (no existence oracle).
    let mut bob = ready_client(&cluster.cluster_toml("bob")).await;
    let p_bob = mul_program("bob", 100);
    let id_bob = bob.store_program(&p_bob).await.unwrap();
    let e = bob
        .invoke(&id_bob, &[("x", "x"), ("y", "y")], "r2")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::NotFound), "{e}");
    let e = bob.fetch("r1").await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::NotFound), "{e}");
    assert!(bob.list().await.unwrap().values.is_empty());
    // Nor delete them: every node checks the owner (or recipient) before removing anything.
    for id in ["x", "r1", "nothing-here"] {
        let e = bob.delete(id).await.unwrap_err();
        assert_eq!(e.code(), Some(tonic::Code::NotFound), "{e}");
    }

    // Bad requests are clear errors and the nodes keep serving.
    let e = alice.invoke("nope", &[], "r3").await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::NotFound), "{e}");
    let e = alice.invoke(&id, &[("x", "x")], "r4").await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
    alice
        .store_secret("short", &[1, 2, 3], &[], &[])
        .await
        .unwrap();
    let e = alice
        .invoke(&id, &[("x", "x"), ("y", "short")], "r5")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
    let e = alice.store_secret("x", &[1], &[], &[]).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::AlreadyExists), "{e}");
    let e = alice
        .store_secret("bad id!", &[1], &[], &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
    let out = alice.fetch("r1").await.unwrap();
    assert_eq!(out["z"], want);
    // Alice deletes her own: gone from every node, and a second delete finds nothing.
    alice
        .store_secret("scratch", &[7; 10], &[], &[])
        .await
        .unwrap();
    alice.delete("scratch").await.unwrap();
    let e = alice.delete("scratch").await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::NotFound), "{e}");
    assert!(
        !alice
            .list()
            .await
            .unwrap()
            .values
            .contains(&"scratch".to_string())
    );

    // Inline: y travels with the request, the outputs come back in the responses, and
    // nothing new is stored.
    let before = alice.list().await.unwrap();
    let (summary, out) = alice
        .invoke_inline(&id, &[("x", "x")], &[("y", &ys)])
        .await
        .unwrap();
    assert_eq!(out["z"], want);
    assert_eq!(out["neg"], want.iter().map(|v| v >> 63).collect::<Vec<_>>());
    assert_eq!(
        summary.rounds,
        veil_circuits::cost::program_cost(&p).rounds as u64
    );
    let after = alice.list().await.unwrap();
    assert_eq!(
        (before.values, before.results),
        (after.values, after.results)
    );
    // Both inputs inline works too; binding an input twice, a wrong length, or inline outputs
    // of a program addressed to someone else are refused.
    let (_, out) = alice
        .invoke_inline(&id, &[], &[("x", &xs), ("y", &ys)])
        .await
        .unwrap();
    assert_eq!(out["z"], want);
    let e = alice
        .invoke_inline(&id, &[("x", "x"), ("y", "y")], &[("y", &ys)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
    let e = alice
        .invoke_inline(&id, &[("x", "x")], &[("y", &ys[..7])])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
    let e = alice
        .invoke_inline(&id_bob, &[], &[("x", &xs), ("y", &ys)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::PermissionDenied), "{e}");
    // Bob cannot use Alice's stored x with his own inline y.
    let e = bob
        .invoke_inline(&id_bob, &[("x", "x")], &[("y", &ys)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::NotFound), "{e}");
    // Every run carries the three nodes' receipts, verified against the pinned keys.
    assert_eq!(summary.receipt.nodes.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_and_a_dead_node_aborts_only_its_session() {
    let mut cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let n = 20_000;
    let xs: Vec<u64> = (0..n as u64).collect();
    alice.store_secret("x", &xs, &[], &[]).await.unwrap();
    alice.store_secret("y", &xs, &[], &[]).await.unwrap();
    let id = alice.store_program(&mul_program("alice", n)).await.unwrap();

    // Restart node 1: stored values survive.
    cluster.kill_node(1);
    cluster.start_node(1).expect("restart the node");
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    alice
        .invoke(&id, &[("x", "x"), ("y", "y")], "after-restart")
        .await
        .unwrap_or_else(|e| panic!("invoke after restart: {e}\n{}", cluster.logs()));
    let out = alice.fetch("after-restart").await.unwrap();
    assert_eq!(out["z"], xs.iter().map(|v| v * v).collect::<Vec<_>>());

    // Kill node 2 while a long session runs (2,000 dependent rounds): the call fails within
    // the session timeout instead of hanging.
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let one = b.slice(x, 1, 2);
    let mut acc = one;
    for _ in 0..2000 {
        acc = b.mul(acc, one);
    }
    b.output("acc", acc, Recipient::Client("alice".into()));
    let long = alice.store_program(&b.finish().unwrap()).await.unwrap();
    let toml = cluster.cluster_toml("alice");
    let call = tokio::spawn(async move {
        let mut c = Client::connect(&toml).await.unwrap();
        c.invoke(&long, &[("x", "x")], "doomed").await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    cluster.kill_node(2);
    let res = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the invoke must fail within the session timeout, not hang")
        .unwrap();
    assert!(res.is_err(), "a session missing a node cannot succeed");

    // Back up: a new session succeeds.
    cluster.start_node(2).expect("restart the node");
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = None;
    for attempt in 0.. {
        let rid = format!("again-{attempt}");
        match alice.invoke(&id, &[("x", "x"), ("y", "y")], &rid).await {
            Ok(_) => {
                done = Some(rid);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no recovery after restart: {e}\n{}", cluster.logs()),
        }
    }
    let out = alice.fetch(&done.expect("a run succeeded")).await.unwrap();
    assert_eq!(out["z"], xs.iter().map(|v| v * v).collect::<Vec<_>>());
}
