//! The malicious mode over gRPC: three `veil node` processes with mutual TLS configured
//! `security = "malicious"`, one of them deviating on purpose (a `[fault]` table, which the
//! `veil` binary of `cargo test` honours: veil-cli's dev-dependencies turn on veil-node's
//! `fault-injection` feature). Each test plays one case of the mode: a deviation aborts the
//! session on every node and the next honest session works; a program the mode cannot verify
//! is refused by name before any round; nodes configured with different modes refuse to run
//! together.

mod common;

use common::ready_client;
use tonic::Code;
use veil_circuits::{Builder, Recipient, Ring, ValidatedProgram};
use veil_client::Client;
use veil_node::fault::FaultSpec;
use veil_proto::pb;
use veil_runtime::SecurityMode;

/// `x ⊙ y` over `n` ring elements to `to`: products only, so the malicious mode runs it.
fn mul_only(n: usize, to: &str) -> ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let z = b.mul(x, y);
    b.output("z", z, Recipient::Client(to.into()));
    b.finish().unwrap()
}

/// `x ⊙ y` and the one-hot of each product's top set bit to `to`.
fn onehot_program(n: usize, to: &str) -> ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let z = b.mul(x, y);
    let top = b.msb_onehot(z, 16);
    b.output("top", top, Recipient::Client(to.into()));
    b.finish().unwrap()
}

/// An invoke of `program` under `session` on the stored values `x` and `y`, outputs stored as
/// `result_id`.
fn invoke_request(program: &str, session: u64, result_id: &str) -> pb::InvokeRequest {
    pb::InvokeRequest {
        program_id: program.to_string(),
        session,
        inputs: [("x", "x"), ("y", "y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        result_id: result_id.to_string(),
        ..Default::default()
    }
}

/// Sends the same request to all three nodes at once (as one session would run).
async fn raw_invoke_all(
    c: &mut Client,
    req: pb::InvokeRequest,
) -> Vec<Result<pb::InvokeResponse, tonic::Status>> {
    let mut n0 = c.raw(0).unwrap().clone();
    let mut n1 = c.raw(1).unwrap().clone();
    let mut n2 = c.raw(2).unwrap().clone();
    let (a, b, d) = tokio::join!(
        n0.invoke(req.clone()),
        n1.invoke(req.clone()),
        n2.invoke(req)
    );
    [a, b, d]
        .into_iter()
        .map(|r| r.map(|x| x.into_inner()))
        .collect()
}

/// Stores `x` and `y` (8 elements each) for alice: (x, y, x ⊙ y in the clear).
async fn store_inputs(alice: &mut Client) -> Vec<u64> {
    let xs: Vec<u64> = (1..=8).map(|i| i * 1_000_003).collect();
    let ys: Vec<u64> = (1..=8).map(|i| u64::MAX - i).collect();
    alice.store_secret("x", &xs, &[], &[]).await.unwrap();
    alice.store_secret("y", &ys, &[], &[]).await.unwrap();
    xs.iter()
        .zip(&ys)
        .map(|(a, b)| a.wrapping_mul(*b))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deviating_node_aborts_the_session_on_every_node_and_the_next_session_succeeds() {
    // Node 1 adds 1 to word 2 of its round-1 message to node 0 (z_1 of the product's reshare),
    // in its first session only.
    let fault = FaultSpec {
        round: 1,
        to: 0,
        word: 2,
        add: 1,
        sessions: 1,
    };
    let cluster = common::start_with(common::base_port(), |layout| {
        layout.set_security(SecurityMode::Malicious).unwrap();
        layout.edit_node(1, |c| c.fault = Some(fault)).unwrap();
    });
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let want = store_inputs(&mut alice).await;
    let program = alice.store_program(&mul_only(8, "alice")).await.unwrap();
    // The test binary has fault injection (a release build would refuse the `[fault]` table).
    assert!(
        cluster.log(1).contains("fault injection armed"),
        "{}",
        cluster.log(1)
    );

    let res = raw_invoke_all(&mut alice, invoke_request(&program, rand::random(), "r1")).await;
    for (i, r) in res.iter().enumerate() {
        let e = r.as_ref().err().unwrap_or_else(|| {
            panic!(
                "node {i} returned outputs of a session with a deviating node\n{}",
                cluster.logs()
            )
        });
        assert_eq!(
            e.code(),
            Code::Aborted,
            "node {i}: {e:?}\n{}",
            cluster.logs()
        );
        assert!(
            e.message()
                .starts_with("session aborted for inconsistency: "),
            "node {i}: {}",
            e.message()
        );
    }
    assert!(
        cluster.log(1).contains("fault injection: altered"),
        "the fault fired\n{}",
        cluster.log(1)
    );
    // Nothing of the aborted session was stored: the result id is free on every node.
    let e = alice.fetch("r1").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    for party in 0..3 {
        let e = alice
            .raw(party)
            .unwrap()
            .get_result(pb::GetResultRequest {
                result_id: "r1".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "node {party}: {e:?}");
    }

    // The next session is honest (the fault's budget was one session): it runs in malicious
    // mode, equals plaintext, and the receipts and the stored result say so.
    let summary = alice
        .invoke(&program, &[("x", "x"), ("y", "y")], "r1")
        .await
        .unwrap_or_else(|e| panic!("honest session: {e}\n{}", cluster.logs()));
    assert_eq!(summary.receipt.security, SecurityMode::Malicious);
    assert_eq!(
        alice.fetch_verified("r1", &summary.receipt).await.unwrap()["z"],
        want
    );
    for party in 0..3 {
        let r = alice
            .raw(party)
            .unwrap()
            .get_result(pb::GetResultRequest {
                result_id: "r1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.security,
            pb::SecurityMode::Malicious as i32,
            "node {party}"
        );
    }
    let (summary, out) = alice
        .invoke_inline(&program, &[("x", "x"), ("y", "y")], &[])
        .await
        .unwrap();
    assert_eq!(out["z"], want);
    assert_eq!(summary.receipt.security, SecurityMode::Malicious);
}

/// A program stored on a semi-honest cluster runs verified once the same nodes (same store)
/// restart in malicious mode, with the same outputs; comparisons run too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_programs_run_verified_after_a_restart_in_malicious_mode() {
    let mut cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    store_inputs(&mut alice).await;
    // `z = x ⊙ y` and the one-hot of z's top set bit (bit decomposition and suffix OR).
    let id = alice
        .store_program(&onehot_program(8, "alice"))
        .await
        .unwrap();
    let (semi, want) = alice
        .invoke_inline(&id, &[("x", "x"), ("y", "y")], &[])
        .await
        .unwrap();
    assert_eq!(semi.receipt.security, SecurityMode::SemiHonest);

    for party in 0..3 {
        cluster.kill_node(party);
        cluster
            .layout()
            .edit_node(party, |c| c.security = SecurityMode::Malicious)
            .unwrap();
        cluster.start_node(party).unwrap();
    }
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let (summary, out) = alice
        .invoke_inline(&id, &[("x", "x"), ("y", "y")], &[])
        .await
        .unwrap();
    assert_eq!(summary.receipt.security, SecurityMode::Malicious);
    assert!(summary.verify_rounds > 0);
    assert_eq!(out["top"], want["top"]);
    // Products and comparisons: z and (z < 0).
    let compare = alice
        .store_program(&common::mul_program("alice", 8))
        .await
        .unwrap();
    let (summary, out) = alice
        .invoke_inline(&compare, &[("x", "x"), ("y", "y")], &[])
        .await
        .unwrap();
    assert_eq!(summary.receipt.security, SecurityMode::Malicious);
    let neg: Vec<u64> = out["z"].iter().map(|z| z >> 63).collect();
    assert_eq!(out["neg"], neg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_different_security_modes_refuse_to_run_together() {
    let cluster = common::start_with(common::base_port(), |layout| {
        for party in [0, 1] {
            layout
                .edit_node(party, |c| c.security = SecurityMode::Malicious)
                .unwrap();
        }
    });
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    store_inputs(&mut alice).await;
    let id = alice.store_program(&mul_only(8, "alice")).await.unwrap();
    let res = raw_invoke_all(&mut alice, invoke_request(&id, rand::random(), "r3")).await;
    let messages = [
        "this node (P0) runs malicious sessions, but P2 runs semi-honest",
        "this node (P1) runs malicious sessions, but P2 runs semi-honest",
        "this node (P2) runs semi-honest sessions, but P0 runs malicious and P1 runs malicious",
    ];
    for (i, (r, want)) in res.iter().zip(messages).enumerate() {
        let e = r.as_ref().err().unwrap_or_else(|| {
            panic!(
                "node {i} ran a session with a peer in another mode\n{}",
                cluster.logs()
            )
        });
        assert_eq!(e.code(), Code::FailedPrecondition, "node {i}: {e:?}");
        assert!(
            e.message().starts_with("security mode mismatch: ") && e.message().contains(want),
            "node {i}: {}",
            e.message()
        );
        assert!(e.message().contains("`security`"), "{}", e.message());
    }
    // Through the SDK: the same refusal, and nothing stored.
    let e = alice
        .invoke(&id, &[("x", "x"), ("y", "y")], "r3")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert_eq!(
        alice.fetch("r3").await.unwrap_err().code(),
        Some(Code::NotFound)
    );
}

/// A client that requires malicious security refuses what a semi-honest cluster computed —
/// inline outputs and stored results alike — because all three nodes state and sign the mode;
/// a devnet switched to malicious writes the requirement into its clients' `cluster.toml`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_requires_malicious_security_refuses_semi_honest_results() {
    let mut cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    assert_eq!(alice.required_security(), SecurityMode::SemiHonest);
    store_inputs(&mut alice).await;
    let id = alice.store_program(&mul_only(8, "alice")).await.unwrap();
    let stored = alice
        .invoke(&id, &[("x", "x"), ("y", "y")], "semi")
        .await
        .unwrap();
    assert_eq!(stored.receipt.security, SecurityMode::SemiHonest);

    alice.require_security(SecurityMode::Malicious);
    let too_weak = |e: veil_client::ClientError| match e {
        veil_client::ClientError::SecurityTooWeak { required, stated } => {
            assert_eq!(
                (required, stated),
                (SecurityMode::Malicious, SecurityMode::SemiHonest)
            );
        }
        other => panic!("expected SecurityTooWeak, got {other}"),
    };
    too_weak(
        alice
            .invoke_inline(&id, &[("x", "x"), ("y", "y")], &[])
            .await
            .unwrap_err(),
    );
    too_weak(alice.fetch("semi").await.unwrap_err());
    too_weak(
        alice
            .fetch_verified("semi", &stored.receipt)
            .await
            .unwrap_err(),
    );

    // The devnet in malicious mode: its cluster files now require it.
    for party in 0..3 {
        cluster.kill_node(party);
    }
    cluster
        .layout()
        .set_security(SecurityMode::Malicious)
        .unwrap();
    (0..3).for_each(|party| cluster.start_node(party).unwrap());
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    assert_eq!(alice.required_security(), SecurityMode::Malicious);
    let (summary, out) = alice
        .invoke_inline(&id, &[("x", "x"), ("y", "y")], &[])
        .await
        .unwrap();
    assert_eq!(summary.receipt.security, SecurityMode::Malicious);
    assert_eq!(out["z"].len(), 8);
    // The result computed semi-honest before the switch is still refused.
    too_weak(alice.fetch("semi").await.unwrap_err());
}
