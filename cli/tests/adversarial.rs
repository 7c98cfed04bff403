//! The trust boundary, attacked: each test plays one adversary of `docs/security.md`'s table
//! against three `veil node` processes with mutual TLS — through the SDK where it lets the
//! attack through, through raw gRPC (`Client::raw`) where the SDK would refuse.

mod common;

use common::ready_client;
use std::collections::HashMap;
use tonic::Code;
use veil_benches::networks::Network;
use veil_circuits::cost::LinkProfile;
use veil_circuits::onnx::{self, CompileOptions, WeightMode};
use veil_circuits::retrieval::emb_input;
use veil_circuits::{
    Builder, ElemType, FracBits, Owner, Recipient, Ring, Shape, ValidatedProgram, ValueType,
    Visibility, fixed,
};
use veil_client::inference::{self, ModelUpload};
use veil_client::rag;
use veil_client::rag::blocked::{self, BlockedUpload, Mode};
use veil_client::{Client, ClientError, Grant};
use veil_proto::binding::{Delivery, SessionBinding};
use veil_proto::pb;
use veil_proto::receipt;

fn secret_input(
    b: &mut Builder,
    name: &str,
    owner: &str,
    elem: ElemType,
    shape: Shape,
) -> veil_circuits::Value {
    b.input(
        name,
        Owner::Client(owner.into()),
        ValueType {
            vis: Visibility::Secret,
            elem,
            shape,
        },
    )
}

/// A program that hands input `name` (of `elem` and `shape`) to `to` unchanged: the
/// exfiltration attempt.
fn identity_of(name: &str, elem: ElemType, shape: Shape, to: &str) -> ValidatedProgram {
    let mut b = Builder::new();
    let x = secret_input(&mut b, name, "anyone", elem, shape);
    b.output("leak", x, Recipient::Client(to.into()));
    b.finish().unwrap()
}

/// `x·x + c` over `n` elements to `to`: programs with the same communication pattern.
fn square_plus(n: usize, c: i64, to: &str) -> ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let sq = b.mul(x, x);
    let k = b.const_ring(c);
    let y = b.add(sq, k);
    b.output("y", y, Recipient::Client(to.into()));
    b.finish().unwrap()
}

/// An invoke of `program` under `session` with stored `inputs`, outputs inline.
fn invoke_request(program: &str, session: u64, inputs: &[(&str, &str)]) -> pb::InvokeRequest {
    pb::InvokeRequest {
        program_id: program.to_string(),
        session,
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        inline_outputs: true,
        ..Default::default()
    }
}

/// Sends `reqs[i]` to node `i`, all at once (as one session would run).
async fn raw_invoke_all(
    c: &mut Client,
    reqs: [pb::InvokeRequest; 3],
) -> Vec<Result<pb::InvokeResponse, tonic::Status>> {
    let [r0, r1, r2] = reqs;
    let mut n0 = c.raw(0).unwrap().clone();
    let mut n1 = c.raw(1).unwrap().clone();
    let mut n2 = c.raw(2).unwrap().clone();
    let (a, b, d) = tokio::join!(n0.invoke(r0), n1.invoke(r1), n2.invoke(r2));
    [a, b, d]
        .into_iter()
        .map(|r| r.map(|x| x.into_inner()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asker_cannot_exfiltrate_the_corpus_and_still_gets_answers() {
    let cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let mut bob = ready_client(&cluster.cluster_toml("bob")).await;
    let (n, dim) = (24, 8);
    let emb: Vec<i8> = (0..n * dim).map(|i| ((i * 37 + 11) % 255) as i8).collect();
    let texts: Vec<Vec<u8>> = (0..n).map(|i| format!("chunk {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let upload = BlockedUpload {
        name: "corpus",
        emb: &emb,
        dim,
        texts: &refs,
        text_bytes: 16,
        clusters: Some(3),
        askers: &["bob"],
        ks: &[2],
        ps: &[1],
    };
    let mut corpus = blocked::upload_blocked(&mut alice, upload, |_, _| {})
        .await
        .unwrap();

    // The approved queries work and match their plaintext references, in both modes and
    // with the WAN plan too (the upload grants every built-in link profile's plan).
    let query: Vec<i8> = (0..dim as i8).map(|i| i * 3 - 7).collect();
    for mode in [Mode::Exact, Mode::Clustered { p: 1 }] {
        for link in [LinkProfile::LOOPBACK, LinkProfile::WAN] {
            let answer = blocked::ask_blocked(&mut bob, &mut corpus, &query, 2, mode, &link)
                .await
                .unwrap_or_else(|e| panic!("ask {mode:?}: {e}\n{}", cluster.logs()));
            let want = blocked::plaintext_blocked(&corpus, &emb, &query, 2, mode).unwrap();
            let got: Vec<(usize, i64)> = answer.hits.iter().map(|h| (h.doc, h.score)).collect();
            assert_eq!(got, want, "{mode:?}");
            assert!(answer.hits.iter().all(|h| h.text == texts[h.doc]));
            assert_eq!(answer.invoke.receipt.nodes.len(), 3);
        }
    }
    let exact = rag::plaintext_search(&emb, dim, &query, 2);
    let want: Vec<usize> = exact.iter().map(|d| d.doc as usize).collect();
    let got = blocked::ask_blocked(
        &mut bob,
        &mut corpus,
        &query,
        2,
        Mode::Exact,
        &LinkProfile::LAN,
    )
    .await
    .unwrap();
    assert_eq!(got.hits.iter().map(|h| h.doc).collect::<Vec<_>>(), want);

    // The attack: a program that outputs an embedding block (compact, Ring32) to the asker.
    let rows = corpus.shape.block_rows;
    let block = Shape::Matrix(rows, dim);
    let leak = identity_of(&emb_input(0), ElemType::Ring32, block, "bob");
    let leak_id = bob.store_program(&leak).await.unwrap();
    let e = bob
        .invoke_inline(&leak_id, &[(&emb_input(0), "corpus.emb.0")], &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    // A k or a p the owner did not approve is another program: refused too.
    for (k, mode) in [(3, Mode::Exact), (2, Mode::Clustered { p: 2 })] {
        let e = blocked::ask_blocked(
            &mut bob,
            &mut corpus,
            &query,
            k,
            mode,
            &LinkProfile::LOOPBACK,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("NotFound") || e.to_string().contains("no value"),
            "{e}"
        );
    }
    // The owner may still run anything on its corpus: its first block, mod 2^32.
    let mine = identity_of(&emb_input(0), ElemType::Ring32, block, "alice");
    let mine_id = alice.store_program(&mine).await.unwrap();
    let (_, out) = alice
        .invoke_inline(&mine_id, &[(&emb_input(0), "corpus.emb.0")], &[])
        .await
        .unwrap();
    let members = corpus.chunk_at.as_ref().unwrap();
    let first: Vec<u64> = (0..rows)
        .flat_map(|r| match members[r] {
            u32::MAX => vec![0; dim],
            d => emb[d as usize * dim..(d as usize + 1) * dim]
                .iter()
                .map(|&v| u64::from(i32::from(v) as u32))
                .collect(),
        })
        .collect();
    let got: Vec<u64> = out["leak"].iter().map(|w| w & 0xffff_ffff).collect();
    assert_eq!(got, first);

    // Through raw gRPC: a compact (Z_2^32) value bound to a Z_2^64 input is refused by name on
    // every node, before any round.
    let wide = identity_of(
        &emb_input(0),
        ElemType::Ring,
        Shape::Matrix(rows, dim),
        "alice",
    );
    let wide_id = alice.store_program(&wide).await.unwrap();
    let session = rand::random();
    let reqs =
        [0, 1, 2].map(|_| invoke_request(&wide_id, session, &[(&emb_input(0), "corpus.emb.0")]));
    for r in raw_invoke_all(&mut alice, reqs).await {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(
            e.message().contains("takes Z_2^64 shares"),
            "{}",
            e.message()
        );
    }
    // Malformed compact components are refused with the field named, and nothing is stored.
    let bad = |shares: pb::NodeShares| pb::StoreValueRequest {
        value_id: "bad32".into(),
        shares: Some(shares),
        ..Default::default()
    };
    let cases = [
        (
            pb::NodeShares {
                own: vec![0; 12].into(),
                next: vec![0; 12].into(),
                len: 4,
                ring_bits: 32,
                ..Default::default()
            },
            "expected 16",
        ),
        (
            pb::NodeShares {
                own: vec![0; 16].into(),
                next: vec![0; 16].into(),
                len: 4,
                ring_bits: 16,
                ..Default::default()
            },
            "ring_bits = 16",
        ),
        (
            pb::NodeShares {
                own: vec![0; 16].into(),
                own_seed: vec![1; 32].into(),
                next: vec![0; 16].into(),
                len: 4,
                ring_bits: 32,
                ..Default::default()
            },
            "not both",
        ),
    ];
    for (shares, what) in cases {
        let e = alice
            .raw(0)
            .unwrap()
            .clone()
            .store_value(bad(shares))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(what), "{}", e.message());
    }
    blocked::delete_blocked(&mut alice, &corpus).await.unwrap();
}

/// A small secret-weight MLP stored by alice for bob (batch 1 approved).
async fn stored_model(
    alice: &mut Client,
) -> (veil_circuits::onnx::OnnxModel, inference::StoredModel) {
    let model = Network::Dense(&[16, 8, 4]).model(3);
    let upload = ModelUpload {
        name: "mlp",
        model: &model,
        weights: WeightMode::Secret,
        frac_bits: 12,
        input_bound: 1.0,
        users: &["bob"],
        batches: &[1],
    };
    let stored = inference::upload(alice, upload, |_, _| {}).await.unwrap();
    (model, stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_user_cannot_read_the_weights_and_inputs_are_clamped_on_the_nodes() {
    let cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let mut bob = ready_client(&cluster.cluster_toml("bob")).await;
    let (model, mut stored) = stored_model(&mut alice).await;

    // The approved program runs.
    let x: Vec<f64> = (0..16).map(|i| (i as f64 / 16.0) - 0.5).collect();
    let inf = inference::infer(&mut bob, &mut stored, &x, 1)
        .await
        .unwrap_or_else(|e| panic!("infer: {e}\n{}", cluster.logs()));
    let want = onnx::plain::run(&model, &x, 1).unwrap();
    let got = &inf.prediction.outputs[0].1;
    assert!(
        got.iter()
            .zip(&want[0].1)
            .all(|(a, b)| (a - b).abs() < 0.05),
        "{got:?} vs {:?}",
        want[0].1
    );

    // The attack: output the first weight tensor to the user.
    let (input, id) = stored.weight_ids[0].clone();
    let program = onnx::compile(
        &stored.architecture,
        &CompileOptions {
            batch: 1,
            frac_bits: 12,
            weights: WeightMode::Secret,
            owner: "alice".into(),
            user: "bob".into(),
            input_bound: 1.0,
        },
    )
    .unwrap();
    let decl = program
        .program
        .program()
        .inputs
        .iter()
        .find(|d| d.name == input)
        .unwrap()
        .clone();
    let leak = identity_of(&input, decl.ty.elem, decl.ty.shape, "bob");
    let leak_id = bob.store_program(&leak).await.unwrap();
    let e = bob
        .invoke_inline(&leak_id, &[(&input, &id)], &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");

    // Out-of-range input, sent raw past the SDK's range check: the nodes clamp it, so the
    // answer is the model's on the clamped input (not on 40.0, far outside what the owner
    // checked the fixed-point range for).
    let wild: Vec<f64> = (0..16)
        .map(|i| if i % 3 == 0 { 40.0 } else { -40.0 })
        .collect();
    let words: Vec<u64> = wild
        .iter()
        .map(|&v| fixed::encode(v, FracBits(12)).unwrap())
        .collect();
    let program_id = program.program.id().to_string();
    let weights: Vec<(&str, &str)> = stored
        .weight_ids
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (_, raw) = bob
        .invoke_inline(&program_id, &weights, &[(&program.input, &words)])
        .await
        .unwrap();
    let clamped: Vec<f64> = wild.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
    let want = onnx::plain::run(&model, &clamped, 1).unwrap();
    let got = program.decode(&raw).unwrap();
    let got = &got.outputs[0].1;
    assert!(
        got.iter()
            .zip(&want[0].1)
            .all(|(a, b)| (a - b).abs() < 0.05),
        "{got:?} vs clamped plaintext {:?}",
        want[0].1
    );
    // The far ends of the ring (within the bound of ±2^63) become 0, in range too.
    let quarter = fixed::encode(0.25, FracBits(12)).unwrap();
    let pick = |i: usize| match i % 3 {
        0 => (i64::MIN as u64, 0.0),
        1 => (i64::MAX as u64, 0.0),
        _ => (quarter, 0.25),
    };
    let extreme: Vec<u64> = (0..16).map(|i| pick(i).0).collect();
    let (_, raw) = bob
        .invoke_inline(&program_id, &weights, &[(&program.input, &extreme)])
        .await
        .unwrap();
    let ends: Vec<f64> = (0..16).map(|i| pick(i).1).collect();
    let want = onnx::plain::run(&model, &ends, 1).unwrap();
    let got = program.decode(&raw).unwrap();
    assert!(
        got.outputs[0]
            .1
            .iter()
            .zip(&want[0].1)
            .all(|(a, b)| (a - b).abs() < 0.05)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_to_run_different_requests_under_one_session() {
    let cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let mut bob = ready_client(&cluster.cluster_toml("bob")).await;
    let n = 8;
    let (p1, p2) = (square_plus(n, 0, "bob"), square_plus(n, 1, "bob"));
    let (id1, id2) = (p1.id().to_string(), p2.id().to_string());
    // Bob may run each of the two programs on x (and on y), but not receive x itself.
    let grants = [Grant::new("bob", &id1), Grant::new("bob", &id2)];
    let xs: Vec<u64> = (1..=n as u64).collect();
    alice.store_secret("x", &xs, &grants, &[]).await.unwrap();
    alice.store_secret("y", &xs, &grants, &[]).await.unwrap();
    bob.store_program(&p1).await.unwrap();
    bob.store_program(&p2).await.unwrap();

    // Program 1 on two nodes, program 2 on the third; then other inputs on one node.
    let attacks = [
        [(&id1, "x"), (&id1, "x"), (&id2, "x")],
        [(&id1, "x"), (&id1, "y"), (&id1, "x")],
    ];
    for (k, attack) in attacks.iter().enumerate() {
        let session: u64 = rand::random();
        let reqs = attack.map(|(p, v)| invoke_request(p, session, &[("x", v)]));
        let res = raw_invoke_all(&mut bob, reqs).await;
        for (i, r) in res.iter().enumerate() {
            let e = r.as_ref().err().unwrap_or_else(|| {
                panic!("attack {k}: node {i} returned outputs\n{}", cluster.logs())
            });
            assert_eq!(e.code(), Code::Aborted, "attack {k} node {i}: {e:?}");
            assert!(
                e.message().contains("session binding mismatch"),
                "{}",
                e.message()
            );
        }
    }
    // The same request on all three runs, and its receipts verify; tampering is caught.
    let session: u64 = rand::random();
    let req = || invoke_request(&id1, session, &[("x", "x")]);
    let res = raw_invoke_all(&mut bob, [req(), req(), req()]).await;
    let res: Vec<pb::InvokeResponse> = res.into_iter().map(|r| r.unwrap()).collect();
    let binding = SessionBinding {
        session,
        program: &id1,
        caller: "bob",
        stored: vec![("x", "x")],
        inline: vec![],
        delivery: Delivery::Inline,
        security: veil_runtime::SecurityMode::SemiHonest,
    }
    .hash();
    for (i, r) in res.iter().enumerate() {
        let key = bob.receipt_key(i).unwrap();
        receipt::verify(key, i, &binding, Some(&r.outputs), r.receipt.as_ref()).unwrap();
        let mut tampered = r.outputs.clone();
        let mut own = tampered[0].own.to_vec();
        own[0] ^= 1;
        tampered[0].own = own.into();
        assert!(receipt::verify(key, i, &binding, Some(&tampered), r.receipt.as_ref()).is_err());
        let mut forged = r.receipt.clone().unwrap();
        let mut sig = forged.signature.to_vec();
        sig[5] ^= 1;
        forged.signature = sig.into();
        assert!(receipt::verify(key, i, &binding, Some(&r.outputs), Some(&forged)).is_err());
        // Another node's key does not verify this node's receipt.
        let other = bob.receipt_key((i + 1) % 3).unwrap();
        assert!(receipt::verify(other, i, &binding, Some(&r.outputs), r.receipt.as_ref()).is_err());
    }
    // And through the SDK.
    let (summary, out) = bob.invoke_inline(&id1, &[("x", "x")], &[]).await.unwrap();
    assert_eq!(out["y"], xs.iter().map(|v| v * v).collect::<Vec<_>>());
    assert_eq!(summary.receipt.nodes.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_and_forbidden_ids_look_the_same() {
    let cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let mut bob = ready_client(&cluster.cluster_toml("bob")).await;
    alice
        .store_secret("vq1", &[1, 2, 3], &[], &[])
        .await
        .unwrap();
    let p = identity_of("x", ElemType::Ring, Shape::Vector(3), "alice");
    let pid = alice.store_program(&p).await.unwrap();
    alice.invoke(&pid, &[("x", "vq1")], "zq1").await.unwrap();
    let bobs = identity_of("x", ElemType::Ring, Shape::Vector(3), "bob");
    let bid = bob.store_program(&bobs).await.unwrap();

    let strip = |e: ClientError, id: &str| match e {
        ClientError::Status { status, .. } => (status.code(), status.message().replace(id, "<id>")),
        other => panic!("{other}"),
    };
    let forbidden = bob
        .invoke_inline(&bid, &[("x", "vq1")], &[])
        .await
        .unwrap_err();
    let absent = bob
        .invoke_inline(&bid, &[("x", "vq2")], &[])
        .await
        .unwrap_err();
    assert_eq!(strip(forbidden, "vq1"), strip(absent, "vq2"));
    let forbidden = bob.fetch("zq1").await.unwrap_err();
    let absent = bob.fetch("zq2").await.unwrap_err();
    assert_eq!(strip(forbidden, "zq1"), strip(absent, "zq2"));
    for id in ["vq1", "zq1"] {
        let forbidden = bob.delete(id).await.unwrap_err();
        let absent = bob.delete("vq2").await.unwrap_err();
        assert_eq!(strip(forbidden, id), strip(absent, "vq2"));
    }
    assert_eq!(alice.fetch("zq1").await.unwrap()["leak"], vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_declarations_are_refused_and_the_node_keeps_serving() {
    let cluster = common::start();
    let mut alice = ready_client(&cluster.cluster_toml("alice")).await;
    let exhausted = |e: &ClientError, limit: &str| {
        assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
        assert!(e.to_string().contains(limit), "{e}");
    };
    // A 2^30-element input declared by a program.
    let huge = identity_of("x", ElemType::Ring, Shape::Vector(1 << 30), "alice");
    let e = alice.store_program(&huge).await.unwrap_err();
    exhausted(&e, "max_value_elements");
    // A 2^32-element intermediate from a 2^16-element input.
    let mut b = Builder::new();
    let x = secret_input(
        &mut b,
        "x",
        "alice",
        ElemType::Ring,
        Shape::Matrix(1, 1 << 16),
    );
    let ones = b.constant(ElemType::Ring, Shape::Matrix(1 << 16, 1), vec![1; 1 << 16]);
    let outer = b.matmul(ones, x);
    b.output("y", outer, Recipient::Client("alice".into()));
    let e = alice.store_program(&b.finish().unwrap()).await.unwrap_err();
    exhausted(&e, "max_value_elements");
    // A 2^30-element value sent as two 32-byte seeds (raw: the SDK sends what it has).
    let seeds = pb::NodeShares {
        own_seed: vec![7u8; 32].into(),
        next_seed: vec![9u8; 32].into(),
        len: 1 << 30,
        ring_bits: 0,
        ..Default::default()
    };
    for party in 0..3 {
        let e = alice
            .raw(party)
            .unwrap()
            .store_value(pb::StoreValueRequest {
                value_id: "big".into(),
                shares: Some(seeds.clone()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(
            e.message().contains("max_value_elements"),
            "{}",
            e.message()
        );
    }
    // A small program whose inline input claims 2^30 elements in seeds: refused by length.
    let small = square_plus(4, 0, "alice");
    let sid = alice.store_program(&small).await.unwrap();
    let mut req = invoke_request(&sid, rand::random(), &[]);
    req.inline_inputs = HashMap::from([("x".to_string(), seeds.clone())]);
    let e = alice.raw(0).unwrap().invoke(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Still serving.
    let (_, out) = alice
        .invoke_inline(&sid, &[], &[("x", &[1, 2, 3, 4])])
        .await
        .unwrap();
    assert_eq!(out["y"], vec![1, 4, 9, 16]);
}
