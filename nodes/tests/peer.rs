//! gRPC peer links: the runtime engine over three `PeerMux`es on loopback (insecure test mode),
//! chunking of large messages, concurrent sessions, and a node going away and coming back.
//! Sessions take their keys from the links' secrets (`PeerMux::open`, no key round) unless a
//! test says otherwise.

use bytes::Bytes;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::StreamExt as _;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use veil_circuits::cost::program_cost;
use veil_circuits::eval::evaluate;
use veil_circuits::{Builder, PartyId, Ring, ValidatedProgram};
use veil_node::peer::pending::ENTRY_OVERHEAD_BYTES;
use veil_node::peer::{GrpcTransport, MAX_PENDING_BYTES_PER_LINK, OpenError, PeerMux, tune_server};
use veil_proto::pb;
use veil_runtime::engine::{InputValue, Session};
use veil_runtime::error::{EngineError, ProtocolError, TransportError};
use veil_runtime::harness::{PartyResult, collect_outputs, share_inputs};
use veil_runtime::setup::PairwiseKeys;
use veil_runtime::testing::test_rng;
use veil_runtime::transport::{RoundId, SessionId, Transport};

const CHUNK: usize = 1 << 20;

struct Node {
    mux: Arc<PeerMux>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Stop the server and drop the mux (as if the node process went away).
    async fn kill(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        drop(self.mux);
        self.server.abort();
        let _ = self.server.await;
    }
}

fn p(i: usize) -> PartyId {
    PartyId::from_index(i)
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .tcp_nodelay(true)
}

fn serve(party: usize, listener: TcpListener, timeout: Duration) -> Node {
    let mux = PeerMux::new_insecure_for_tests(p(party), timeout, CHUNK);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop, stopped) = oneshot::channel::<()>();
    let svc = mux.service();
    let server = tokio::spawn(async move {
        let _ = tune_server(Server::builder())
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    Node {
        mux,
        stop: Some(stop),
        server,
    }
}

/// Three nodes on ephemeral loopback ports, each lower node dialing the higher ones.
async fn cluster(timeout: Duration) -> (Vec<Node>, [SocketAddr; 3]) {
    cluster_on([0; 3], timeout).await
}

/// Three nodes on the given loopback ports (0: ephemeral), each lower node dialing the higher.
async fn cluster_on(ports: [u16; 3], timeout: Duration) -> (Vec<Node>, [SocketAddr; 3]) {
    let mut listeners = Vec::new();
    for port in ports {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        listeners.push(TcpListener::bind(addr).await.expect("bind"));
    }
    let addrs: [SocketAddr; 3] = std::array::from_fn(|i| listeners[i].local_addr().unwrap());
    let nodes: Vec<Node> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| serve(i, l, timeout))
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        for (j, addr) in addrs.iter().enumerate().skip(i + 1) {
            node.mux.connect(p(j), endpoint(*addr));
        }
    }
    for n in &nodes {
        assert!(n.mux.wait_connected(Duration::from_secs(10)).await);
    }
    (nodes, addrs)
}

/// Run `program` at one party as a task: with the given keys, or after a key round.
fn spawn_party(
    (net, keys): (GrpcTransport, Option<PairwiseKeys>),
    program: Arc<ValidatedProgram>,
    inputs: HashMap<String, InputValue>,
) -> tokio::task::JoinHandle<PartyResult> {
    tokio::spawn(async move {
        let mut session = match keys {
            Some(k) => Session::with_keys(net, &k),
            None => Session::establish(net).await?,
        };
        session.run(&program, inputs).await
    })
}

/// `mux`'s side of session `sid`, keyed from its links.
async fn open(mux: &Arc<PeerMux>, sid: SessionId) -> (GrpcTransport, Option<PairwiseKeys>) {
    let (net, keys) = mux.open(sid).await.expect("open");
    (net, Some(keys))
}

/// Run `program` once among the three muxes as session `sid`; check against the evaluator.
async fn run_and_check(
    muxes: [Arc<PeerMux>; 3],
    sid: SessionId,
    program: Arc<ValidatedProgram>,
    plain: HashMap<String, Vec<u64>>,
) {
    let mut rng = test_rng();
    let inputs = share_inputs(&program, &plain, &mut rng);
    let mut handles = Vec::new();
    for (i, inp) in inputs.into_iter().enumerate() {
        handles.push(spawn_party(
            open(&muxes[i], sid).await,
            program.clone(),
            inp,
        ));
    }
    let mut outs = Vec::new();
    for h in handles {
        let (o, report) = h.await.expect("join").expect("party run");
        assert_eq!(
            report.rounds,
            program_cost(&program).rounds as u64,
            "no key round"
        );
        outs.push(o);
    }
    let outs: [_; 3] = outs.try_into().unwrap_or_else(|_| unreachable!());
    let got = collect_outputs(&program, &outs).expect("reconstruct");
    let want = evaluate(&program, &plain).expect("evaluate");
    for (name, w) in &want {
        assert_eq!(&got[name], w, "output {name}");
    }
}

fn program(n: usize) -> (Arc<ValidatedProgram>, HashMap<String, Vec<u64>>) {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let xy = b.mul(x, y);
    b.output_to_client("xy", xy);
    let neg = b.ltz(x);
    b.output_to_client("neg", neg);
    let prog = b.finish().expect("program");
    let mut rng = test_rng();
    let xs: Vec<u64> = (0..n)
        .map(|_| rng.random_range(-(1i64 << 40)..(1i64 << 40)) as u64)
        .collect();
    let ys: Vec<u64> = (0..n).map(|_| rng.random()).collect();
    let plain = HashMap::from([("x".to_string(), xs), ("y".to_string(), ys)]);
    (Arc::new(prog), plain)
}

fn muxes(nodes: &[Node]) -> [Arc<PeerMux>; 3] {
    std::array::from_fn(|i| nodes[i].mux.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engine_runs_over_grpc_links() {
    let (nodes, _) = cluster(Duration::from_secs(10)).await;
    let (prog, plain) = program(1000);
    run_and_check(muxes(&nodes), SessionId(1), prog, plain).await;
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_share_links() {
    let (nodes, _) = cluster(Duration::from_secs(10)).await;
    let (prog, plain) = program(500);
    let a = run_and_check(muxes(&nodes), SessionId(10), prog.clone(), plain.clone());
    let b = run_and_check(muxes(&nodes), SessionId(11), prog, plain);
    tokio::join!(a, b);
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_message_is_chunked_and_reassembled() {
    let (nodes, _) = cluster(Duration::from_secs(10)).await;
    let mut rng = test_rng();
    let big: Vec<u8> = (0..20_000_000).map(|_| rng.random()).collect();
    let big = Bytes::from(big);
    let s: Vec<GrpcTransport> = (0..3).map(|i| nodes[i].mux.session(SessionId(7))).collect();
    // Dialer → acceptor and acceptor → dialer, plus an empty message.
    s[0].send(p(1), RoundId(3), big.clone()).await.unwrap();
    s[2].send(p(0), RoundId(3), big.clone()).await.unwrap();
    s[1].send(p(2), RoundId(4), Bytes::new()).await.unwrap();
    assert_eq!(s[1].recv(p(0), RoundId(3)).await.unwrap(), big);
    assert_eq!(s[0].recv(p(2), RoundId(3)).await.unwrap(), big);
    assert!(s[2].recv(p(1), RoundId(4)).await.unwrap().is_empty());
    assert_eq!(s[0].bytes_sent(), big.len() as u64);
    // Wrong round.
    s[0].send(p(1), RoundId(5), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(matches!(
        s[1].recv(p(0), RoundId(6)).await,
        Err(TransportError::OutOfOrder { .. })
    ));
    drop(s);
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frames_before_session_open_are_buffered_and_timeouts_fire() {
    let (nodes, _) = cluster(Duration::from_millis(500)).await;
    let s0 = nodes[0].mux.session(SessionId(5));
    s0.send(p(1), RoundId(0), Bytes::from_static(b"early"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s1 = nodes[1].mux.session(SessionId(5));
    assert_eq!(&s1.recv(p(0), RoundId(0)).await.unwrap()[..], b"early");
    let t = Instant::now();
    assert!(matches!(
        s1.recv(p(2), RoundId(0)).await,
        Err(TransportError::Timeout { .. })
    ));
    assert!(t.elapsed() < Duration::from_secs(2));
    drop((s0, s1));
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_reject_unauthorised_callers() {
    let (nodes, addrs) = cluster(Duration::from_secs(5)).await;
    // P2 may not dial P1 (only the lower party dials); no header at all is refused too.
    for header in [Some("2"), Some("7"), None] {
        let mut client = pb::peer_client::PeerClient::connect(format!("http://{}", addrs[1]))
            .await
            .unwrap();
        let mut req = tonic::Request::new(tokio_stream::empty::<pb::Frame>());
        if let Some(h) = header {
            req.metadata_mut()
                .insert("x-veil-party", h.parse().unwrap());
        }
        let err = client.link(req).await.expect_err("refused");
        assert_eq!(
            err.code(),
            tonic::Code::PermissionDenied,
            "header {header:?}"
        );
    }
    // A TLS mux never trusts the header.
    let secure = PeerMux::new(p(1), Default::default(), Duration::from_secs(1), CHUNK);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = secure.service();
    let server = tokio::spawn(
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let mut client = pb::peer_client::PeerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut req = tonic::Request::new(tokio_stream::empty::<pb::Frame>());
    req.metadata_mut()
        .insert("x-veil-party", "0".parse().unwrap());
    let err = client.link(req).await.expect_err("refused");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    server.abort();
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_peer_fails_sessions_and_comes_back() {
    let timeout = Duration::from_secs(5);
    let (mut nodes, addrs) = cluster(timeout).await;
    let (prog, plain) = program(100);
    let mut rng = test_rng();
    let inputs = share_inputs(&prog, &plain, &mut rng);
    // P0 and P1 start a session that P2 never joins; then P2 goes away.
    let [i0, i1, _] = inputs;
    // (With a key round, so the failure shows in setup.)
    let h0 = spawn_party(
        (nodes[0].mux.session(SessionId(20)), None),
        prog.clone(),
        i0,
    );
    let h1 = spawn_party(
        (nodes[1].mux.session(SessionId(20)), None),
        prog.clone(),
        i1,
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let n2 = nodes.pop().unwrap();
    n2.kill().await;
    for h in [h0, h1] {
        let Err(err) = h.await.expect("join") else {
            panic!("session must fail");
        };
        eprintln!("after drop: {err} in {:?}", start.elapsed());
        let EngineError::Setup(ProtocolError::Transport(e)) = &err else {
            panic!("unexpected error: {err}");
        };
        assert!(
            matches!(
                e,
                TransportError::Closed { .. } | TransportError::Timeout { .. }
            ),
            "{e}"
        );
    }
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
    // Without its link to P2, P0 cannot open a keyed session: a clear error after the timeout.
    let t = Instant::now();
    let err = nodes[0]
        .mux
        .open(SessionId(22))
        .await
        .expect_err("P2 is down");
    assert!(
        matches!(
            err,
            OpenError::LinkDown {
                peer: PartyId::P2,
                ..
            }
        ),
        "{err}"
    );
    assert!(t.elapsed() < timeout + Duration::from_secs(1));
    // P2 comes back on the same port; P0 and P1 redial it.
    let listener = TcpListener::bind(addrs[2]).await.expect("rebind");
    nodes.push(serve(2, listener, timeout));
    for n in &nodes {
        assert!(n.mux.wait_connected(Duration::from_secs(10)).await);
    }
    run_and_check(muxes(&nodes), SessionId(21), prog, plain).await;
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_id_is_keyed_once_per_link() {
    let (nodes, _) = cluster(Duration::from_secs(10)).await;
    let (prog, plain) = program(10);
    run_and_check(muxes(&nodes), SessionId(30), prog.clone(), plain.clone()).await;
    // Reusing the id would repeat the session's correlated randomness: every node refuses.
    for n in &nodes {
        let err = n.mux.open(SessionId(30)).await.expect_err("reused id");
        assert!(matches!(err, OpenError::Reused(SessionId(30))), "{err}");
        assert!(err.to_string().contains("fresh random id"), "{err}");
    }
    run_and_check(muxes(&nodes), SessionId(31), prog, plain).await;
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_without_a_hello_is_closed_and_the_real_link_comes_back() {
    let (nodes, addrs) = cluster(Duration::from_secs(10)).await;
    // Pose as P0 towards P1 (insecure test mux) and send a session frame instead of a hello.
    let mut client = pb::peer_client::PeerClient::connect(format!("http://{}", addrs[1]))
        .await
        .unwrap();
    let frame = pb::Frame {
        session: 1,
        round: 1,
        payload: Bytes::from_static(b"no hello"),
        last: true,
        hello: Bytes::new(),
    };
    let mut req =
        tonic::Request::new(tokio_stream::iter(vec![frame]).chain(tokio_stream::pending()));
    req.metadata_mut()
        .insert("x-veil-party", "0".parse().unwrap());
    let mut inbound = client.link(req).await.expect("accepted").into_inner();
    // P1 greets with its hello, then closes the link.
    let hello = inbound.message().await.expect("hello").expect("a frame");
    assert_eq!(hello.hello.len(), 32);
    let end = tokio::time::timeout(Duration::from_secs(5), inbound.message()).await;
    assert!(
        matches!(end, Ok(Ok(None)) | Ok(Err(_))),
        "link must close: {end:?}"
    );
    // The real P0 redials P1 (its link was replaced) and sessions work again.
    for n in &nodes {
        assert!(n.mux.wait_connected(Duration::from_secs(10)).await);
    }
    let (prog, plain) = program(10);
    run_and_check(muxes(&nodes), SessionId(40), prog, plain).await;
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_re_keys_after_its_session_budget() {
    let (nodes, _) = cluster(Duration::from_secs(10)).await;
    for n in &nodes {
        n.mux.set_session_budget(1);
    }
    let (prog, plain) = program(10);
    run_and_check(muxes(&nodes), SessionId(60), prog.clone(), plain.clone()).await;
    // Every link has keyed one session: the next open on each link drops it for a redial.
    let rekey = |r: Result<_, OpenError>, want: PartyId| match r {
        Err(OpenError::Rekeying { peer, sessions: 1 }) if peer == want => {}
        Err(e) => panic!("expected a re-key of the link to {want}: {e}"),
        Ok(_) => panic!("expected a re-key of the link to {want}"),
    };
    rekey(nodes[0].mux.open(SessionId(61)).await, p(1));
    // P0 waits for the redialled P0–P1 link (fresh secret, nothing keyed), then re-keys P0–P2.
    rekey(nodes[0].mux.open(SessionId(62)).await, p(2));
    rekey(nodes[1].mux.open(SessionId(63)).await, p(2));
    for n in &nodes {
        assert!(n.mux.wait_connected(Duration::from_secs(10)).await);
        n.mux
            .set_session_budget(veil_node::peer::MAX_SESSIONS_PER_LINK);
    }
    // Fresh secrets: the first session's id may be keyed again. Its old tombstone belongs to
    // the old links, so a frame for it that arrives before the receiver opens it is buffered
    // for the new session, not dropped as a late frame of the closed one (CI once timed out
    // here when P0's first frame beat P1's open).
    let (early, _) = nodes[0].mux.open(SessionId(60)).await.expect("open at P0");
    early
        .send(p(1), RoundId(0), Bytes::from_static(b"early"))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (late, _) = nodes[1].mux.open(SessionId(60)).await.expect("open at P1");
    assert_eq!(
        late.recv(p(0), RoundId(0)).await.expect("the early frame"),
        Bytes::from_static(b"early")
    );
    drop((early, late));
    // And a whole session on the re-keyed links gives the right result.
    run_and_check(muxes(&nodes), SessionId(66), prog.clone(), plain.clone()).await;
    for n in nodes {
        n.kill().await;
    }
}

/// Fill P1's buffer for unopened sessions from P0 to exactly its default byte bound (sessions
/// never opened at P1: 1 MiB messages until one no longer fits, then one that fills the rest),
/// then wait until P1 has taken in the whole flood: a message on an open session sent after it
/// on the same link has arrived.
async fn flood_p1_from_p0(nodes: &[Node], first_id: u64) -> Vec<GrpcTransport> {
    let (bound, overhead) = (MAX_PENDING_BYTES_PER_LINK, ENTRY_OVERHEAD_BYTES);
    let fit = bound / ((1 << 20) + overhead);
    let rest = bound - fit * ((1 << 20) + overhead) - overhead;
    let sizes = std::iter::repeat_n(1 << 20, fit + 1).chain([rest]);
    let mut flood = Vec::new();
    for (id, size) in (first_id..).zip(sizes) {
        let s = nodes[0].mux.session(SessionId(id));
        s.send(p(1), RoundId(0), Bytes::from(vec![0xAB; size]))
            .await
            .expect("flood");
        flood.push(s);
    }
    let sync = SessionId(first_id + flood.len() as u64);
    let (s0, s1) = (nodes[0].mux.session(sync), nodes[1].mux.session(sync));
    s0.send(p(1), RoundId(0), Bytes::from_static(b"sync"))
        .await
        .expect("send");
    // The flood may take longer than one receive timeout to cross the link.
    let mut tries = 0;
    loop {
        match s1.recv(p(0), RoundId(0)).await {
            Ok(b) => break assert_eq!(&b[..], b"sync"),
            Err(TransportError::Timeout { .. }) if tries < 30 => tries += 1,
            Err(e) => panic!("sync message: {e}"),
        }
    }
    flood
}

/// `from` sends an early message on `sid`, which `at` has not opened; it has arrived at `at`
/// (buffered or refused) once a message sent after it on the same link has.
async fn send_early(nodes: &[Node], from: usize, at: usize, sid: SessionId, sync: SessionId) {
    let early = nodes[from].mux.session(sid);
    early
        .send(p(at), RoundId(0), Bytes::from_static(b"early"))
        .await
        .expect("send");
    let (s0, s1) = (nodes[from].mux.session(sync), nodes[at].mux.session(sync));
    s0.send(p(at), RoundId(0), Bytes::from_static(b"sync"))
        .await
        .expect("send");
    assert_eq!(
        &s1.recv(p(from), RoundId(0)).await.expect("sync")[..],
        b"sync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_never_opened_sessions_expires_after_the_session_timeout() {
    let timeout = Duration::from_secs(2);
    let (nodes, _) = cluster_on([9210, 9211, 9212], timeout).await;
    let flood = flood_p1_from_p0(&nodes, 1000).await;
    // Once the session timeout has passed since the flood arrived, a session whose first
    // message arrives before the receiver opens it works again.
    tokio::time::sleep(timeout + Duration::from_millis(300)).await;
    send_early(&nodes, 0, 1, SessionId(7), SessionId(8)).await;
    let s1 = nodes[1].mux.session(SessionId(7));
    assert_eq!(
        &s1.recv(p(0), RoundId(0)).await.expect("the early message")[..],
        b"early"
    );
    drop((flood, s1));
    // And a whole keyed session runs.
    let (prog, plain) = program(10);
    run_and_check(muxes(&nodes), SessionId(9), prog, plain).await;
    for n in nodes {
        n.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_one_peer_does_not_block_the_other_peers_early_messages() {
    // Long enough that the flood cannot expire before P0's early message arrives.
    let timeout = Duration::from_secs(5);
    let (nodes, _) = cluster_on([9213, 9214, 9215], timeout).await;
    let flood = flood_p1_from_p0(&nodes, 2000).await;
    // P0's buffer at P1 is full: its early message is refused. P2's link has its own.
    send_early(&nodes, 0, 1, SessionId(7), SessionId(8)).await;
    send_early(&nodes, 2, 1, SessionId(7), SessionId(9)).await;
    let s1 = nodes[1].mux.session(SessionId(7));
    assert_eq!(
        &s1.recv(p(2), RoundId(0)).await.expect("P2's early message")[..],
        b"early"
    );
    assert!(matches!(
        s1.recv(p(0), RoundId(0)).await,
        Err(TransportError::Timeout { .. })
    ));
    drop((flood, s1));
    for n in nodes {
        n.kill().await;
    }
}
