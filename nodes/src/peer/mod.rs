//! Node-to-node links: one gRPC `Peer.Link` bidirectional stream per pair of nodes, opened by
//! the lower-numbered node, carrying the frames of every MPC session between the two.
//!
//! A [`PeerMux`] owns a node's links and demultiplexes incoming frames by session; each session
//! gets a [`GrpcTransport`] (the runtime's [`Transport`]) from [`PeerMux::session`]. Messages are
//! split into frames of at most `chunk_bytes` and reassembled on arrival. Complete messages for
//! a session that is not open yet are buffered; late frames of a closed session are dropped if
//! they come on the link it used (a frame for its id on a newer link opens a new session). When
//! a link goes down, every session open on it fails with [`TransportError::Closed`]; the
//! dialing side redials with backoff while the mux lives, so later sessions work once the peer
//! is back.
//!
//! **Authentication.** Links are pinned on both ends: the accepting mux identifies the dialer by
//! its TLS client-certificate fingerprint (`node_fingerprints`), and a node dials through
//! [`PeerMux::connect_pinned`], whose [`PinnedConnector`] completes the handshake only if the
//! server presents the certificate pinned for the party being dialed (a mismatch is logged as a
//! refused link and redialed with backoff).
//!
//! **Link keys.** The first frame in each direction of a new link is a hello carrying an
//! ephemeral X25519 public key; both ends derive the link secret from it
//! (`veil_runtime::setup`), and a link counts as up only once keyed. [`PeerMux::open`]
//! derives a session's pairwise PRF keys from the two link secrets, so a session needs no key
//! round. Keys repeat if a session id repeats, so each link refuses an id it has already keyed
//! (at most [`MAX_SESSIONS_PER_LINK`] per connection by default; then the link is
//! re-established, which re-keys it).
//!
//! **Unopened sessions.** Anything that gets frames onto a link can name session ids that never
//! open, so the buffer for them ([`pending`]) is bounded per link, in bytes
//! ([`MAX_PENDING_BYTES_PER_LINK`]) and in distinct sessions ([`MAX_PENDING_SESSIONS_PER_LINK`]),
//! and a buffered message expires once the mux's timeout has passed since it arrived (checked
//! lazily, when that link delivers a message and when a session opens). A message beyond a
//! link's bounds is refused with a warning (session, round, size and peer; never contents): a
//! flood from one peer fills only its own link's buffer, and only until it expires, after which
//! a session whose first message arrives before it opens works again.

use bytes::Bytes;
use rand::TryRngCore as _;
use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status, Streaming};
use veil_circuits::PartyId;
use veil_proto::pb;

use crate::error::NodeError;
use veil_proto::tls::{PinnedConnector, WrongCertificate, find_wrong_certificate};
use veil_runtime::error::TransportError;
use veil_runtime::setup::{KeyExchange, LinkSecret, PairwiseKeys};
use veil_runtime::transport::{RoundId, SessionId, Transport};

pub mod frames;
pub mod pending;

use frames::{Event, Reassembler};
use pending::{Admit, Pending};
pub use pending::{MAX_PENDING_BYTES_PER_LINK, MAX_PENDING_SESSIONS_PER_LINK, PendingLimits};

/// Largest gRPC message (one frame) a link encodes or decodes.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// Frame payload size a node's links split round messages into (bigger messages are chunked).
pub const CHUNK_BYTES: usize = 16 << 20;
/// Largest reassembled message accepted from a peer (a larger one breaks the link).
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// Most bytes held in partial messages of one link, all sessions together (more breaks it).
pub const MAX_PARTIAL_BYTES: usize = 2 * MAX_MESSAGE_BYTES;
/// HTTP/2 stream and connection flow-control window used on both ends of a link.
pub const WINDOW_BYTES: u32 = 32 << 20;
/// Request metadata naming the calling party (honoured only by insecure test muxes).
pub const PARTY_HEADER: &str = "x-veil-party";

/// Default sessions keyed from one link secret; the next one re-establishes (re-keys) the link
/// (bounds the memory of the ids each link remembers).
pub const MAX_SESSIONS_PER_LINK: usize = 1 << 20;

const MAX_TOMBSTONES: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const KEEPALIVE: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

type Msg = (RoundId, Bytes);

/// HTTP/2 frame size each side accepts (the default 16 KiB splits a round into thousands of
/// frames).
pub const MAX_H2_FRAME_BYTES: u32 = 1 << 20;

/// Apply the link settings (windows, frame size, nodelay, keepalive) to a server.
pub fn tune_server<L>(server: tonic::transport::Server<L>) -> tonic::transport::Server<L> {
    server
        .initial_stream_window_size(WINDOW_BYTES)
        .initial_connection_window_size(WINDOW_BYTES)
        .max_frame_size(MAX_H2_FRAME_BYTES)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// Apply the link tuning (large HTTP/2 windows, TCP_NODELAY, keep-alive) to a client endpoint.
pub fn tune_endpoint(endpoint: Endpoint) -> Endpoint {
    endpoint
        .initial_stream_window_size(WINDOW_BYTES)
        .initial_connection_window_size(WINDOW_BYTES)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .max_frame_size(MAX_H2_FRAME_BYTES)
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
}

struct Link {
    generation: u64,
    tx: mpsc::UnboundedSender<pb::Frame>,
    /// This end's ephemeral key, until the peer's hello arrives.
    kx: Option<KeyExchange>,
    /// The link secret, once the peer's hello arrived (the link is up from then on).
    secret: Option<LinkSecret>,
    /// Session ids keyed from `secret` (each at most once).
    keyed: HashSet<u64>,
}

/// Why [`PeerMux::open`] could not open a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The link to a peer was not up (connected and keyed) within the mux's timeout.
    #[error("no link to {peer} within {timeout:?}")]
    LinkDown {
        /// The unreachable peer.
        peer: PartyId,
        /// How long the mux waited.
        timeout: Duration,
    },
    /// The session id was keyed before on a current link; its keys would repeat.
    #[error("session id {0} was already used on this node's peer links; use a fresh random id")]
    Reused(SessionId),
    /// A link used up its session budget and is being re-established with a new secret.
    #[error("the link to {peer} is re-keying after {sessions} sessions; retry")]
    Rekeying {
        /// The peer whose link re-keys.
        peer: PartyId,
        /// Sessions the link keyed.
        sessions: usize,
    },
}

struct SessionSlot {
    token: u64,
    /// Per peer: where reassembled messages go; `None` once the session's link to it broke.
    inbound: [Option<mpsc::UnboundedSender<Msg>>; 3],
}

struct MuxState {
    links: [Option<Link>; 3],
    sessions: HashMap<SessionId, SessionSlot>,
    /// Complete messages for sessions not open yet, per link.
    pending: Pending,
    /// Closed sessions (tombstones): per peer, the generation of the link the session used
    /// (0: none). A late frame on that same link is dropped; a frame for the same id on a newer
    /// link belongs to a new session (ids may repeat once a link is re-keyed) and is buffered.
    closed: HashMap<SessionId, [u64; 3]>,
    closed_order: VecDeque<SessionId>,
    next_generation: u64,
    next_token: u64,
}

impl MuxState {
    fn new(pending: PendingLimits) -> MuxState {
        MuxState {
            links: Default::default(),
            sessions: HashMap::new(),
            pending: Pending::new(pending),
            closed: HashMap::new(),
            closed_order: VecDeque::new(),
            next_generation: 0,
            next_token: 0,
        }
    }

    /// Fail every open session on `peer`'s link and forget what was buffered from it.
    fn break_sessions(&mut self, peer: usize) {
        for slot in self.sessions.values_mut() {
            slot.inbound[peer] = None;
        }
        self.pending.clear_link(peer);
    }

    fn tombstone(&mut self, session: SessionId) {
        let generations =
            std::array::from_fn(|p| self.links[p].as_ref().map_or(0, |l| l.generation));
        if self.closed.insert(session, generations).is_none() {
            self.closed_order.push_back(session);
            if self.closed_order.len() > MAX_TOMBSTONES
                && let Some(old) = self.closed_order.pop_front()
            {
                self.closed.remove(&old);
            }
        }
    }
}

/// A node's links to the other two nodes, multiplexing all sessions (one per node).
pub struct PeerMux {
    me: PartyId,
    node_fingerprints: [String; 3],
    timeout: Duration,
    chunk_bytes: usize,
    insecure: bool,
    /// Sessions keyed per link connection before it is re-keyed.
    session_budget: AtomicUsize,
    state: Mutex<MuxState>,
    /// Per peer: whether a link is up (for senders waiting on a redial).
    link_up: [watch::Sender<bool>; 3],
    /// Never sent on; dropped with the mux, which stops every link task.
    shutdown: watch::Sender<()>,
}

impl std::fmt::Debug for PeerMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerMux")
            .field("me", &self.me)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl PeerMux {
    /// A mux for node `me` that authenticates inbound links by TLS client-certificate
    /// fingerprint (`node_fingerprints[p]`: lowercase hex SHA-256 of node `p`'s cert DER).
    /// `timeout` bounds every receive (and a send's wait for a link) and how long messages for
    /// unopened sessions are kept; messages are split into frames of at most `chunk_bytes`.
    pub fn new(
        me: PartyId,
        node_fingerprints: [String; 3],
        timeout: Duration,
        chunk_bytes: usize,
    ) -> Arc<PeerMux> {
        Self::build(me, node_fingerprints, timeout, chunk_bytes, false)
    }

    /// TESTS ONLY: a mux whose inbound side, absent TLS, trusts the `x-veil-party` request
    /// header to identify the caller (and whose dialer sends it).
    pub fn new_insecure_for_tests(
        me: PartyId,
        timeout: Duration,
        chunk_bytes: usize,
    ) -> Arc<PeerMux> {
        Self::build(me, Default::default(), timeout, chunk_bytes, true)
    }

    fn build(
        me: PartyId,
        node_fingerprints: [String; 3],
        timeout: Duration,
        chunk_bytes: usize,
        insecure: bool,
    ) -> Arc<PeerMux> {
        Arc::new(PeerMux {
            me,
            node_fingerprints,
            timeout,
            chunk_bytes: chunk_bytes.clamp(1, MAX_FRAME_BYTES - 1024),
            insecure,
            session_budget: AtomicUsize::new(MAX_SESSIONS_PER_LINK),
            state: Mutex::new(MuxState::new(PendingLimits::new(timeout))),
            link_up: std::array::from_fn(|_| watch::Sender::new(false)),
            shutdown: watch::Sender::new(()),
        })
    }

    /// Set how many sessions a link connection keys before it is re-keyed (default
    /// [`MAX_SESSIONS_PER_LINK`], at least 1); lower it to exercise re-keying.
    pub fn set_session_budget(&self, sessions: usize) {
        self.session_budget
            .store(sessions.max(1), Ordering::Relaxed);
    }

    /// This node.
    pub fn me(&self) -> PartyId {
        self.me
    }

    /// Whether the link to `peer` is currently up.
    pub fn is_connected(&self, peer: PartyId) -> bool {
        *self.link_up[peer.index()].borrow()
    }

    /// Wait until the links to both peers are up, at most `timeout`; returns whether they are.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let wait = async {
            for p in [self.me.next(), self.me.prev()] {
                let mut rx = self.link_up[p.index()].subscribe();
                if rx.wait_for(|up| *up).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    fn lock(&self) -> MutexGuard<'_, MuxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gRPC service accepting inbound links (add it to the node's server).
    pub fn service(self: &Arc<Self>) -> pb::peer_server::PeerServer<PeerService> {
        pb::peer_server::PeerServer::new(PeerService {
            mux: Arc::downgrade(self),
        })
        .max_decoding_message_size(MAX_FRAME_BYTES)
        .max_encoding_message_size(MAX_FRAME_BYTES)
    }

    /// Keep a link to `peer` at `endpoint`: spawns a task that dials it and redials with
    /// backoff whenever the link drops, as long as the mux lives. Only the lower party of a
    /// pair dials; for `peer <= me` this does nothing (the peer dials us).
    pub fn connect(self: &Arc<Self>, peer: PartyId, endpoint: Endpoint) {
        self.spawn_dialer(peer, endpoint, None);
    }

    /// [`connect`](Self::connect) through `connector`, which completes a TLS handshake only
    /// with the certificate pinned for `peer`; a wrong certificate is logged (as a warning,
    /// once per distinct error) and redialed with backoff like any failed dial.
    pub fn connect_pinned(self: &Arc<Self>, peer: PartyId, connector: PinnedConnector) {
        match connector.endpoint() {
            Ok(endpoint) => self.spawn_dialer(peer, endpoint, Some(connector)),
            Err(e) => {
                tracing::error!(me = %self.me, %peer, addr = connector.addr(), error = %e, "bad peer address; not dialing")
            }
        }
    }

    fn spawn_dialer(
        self: &Arc<Self>,
        peer: PartyId,
        endpoint: Endpoint,
        connector: Option<PinnedConnector>,
    ) {
        if peer.index() <= self.me.index() {
            tracing::debug!(me = %self.me, %peer, "not dialing: the lower party dials");
            return;
        }
        let endpoint = tune_endpoint(endpoint);
        let weak = Arc::downgrade(self);
        let shutdown = self.shutdown.subscribe();
        tokio::spawn(dial_loop(weak, peer, endpoint, connector, shutdown));
    }

    /// Open `session`: a transport whose messages are multiplexed on this mux's links. Frames
    /// that arrived for it before are delivered first. Dropping the transport closes the session.
    /// Such a transport carries no keys: pair it with `Session::establish` (a key round), or use
    /// [`PeerMux::open`].
    pub fn session(self: &Arc<Self>, session: SessionId) -> GrpcTransport {
        let mut st = self.lock();
        self.session_locked(&mut st, session)
    }

    /// Open `session` with pairwise PRF keys derived from the link secrets (no key round):
    /// waits up to the mux's timeout for both links to be up. Refuses a session id already
    /// keyed on a current link.
    pub async fn open(
        self: &Arc<Self>,
        session: SessionId,
    ) -> Result<(GrpcTransport, PairwiseKeys), OpenError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let (next, prev) = (self.me.next(), self.me.prev());
        loop {
            let down = {
                let mut st = self.lock();
                let keyed = |st: &MuxState, p: PartyId| {
                    st.links[p.index()]
                        .as_ref()
                        .is_some_and(|l| l.secret.is_some())
                };
                match [next, prev].into_iter().find(|&p| !keyed(&st, p)) {
                    Some(p) => p,
                    None => {
                        for p in [next, prev] {
                            let link = st.links[p.index()].as_ref().expect("keyed above");
                            if link.keyed.contains(&session.0) {
                                return Err(OpenError::Reused(session));
                            }
                            let sessions = link.keyed.len();
                            if sessions >= self.session_budget.load(Ordering::Relaxed) {
                                tracing::info!(me = %self.me, peer = %p, sessions, "session budget used; re-keying the link");
                                self.drop_link(&mut st, p);
                                return Err(OpenError::Rekeying { peer: p, sessions });
                            }
                        }
                        for p in [next, prev] {
                            if let Some(link) = st.links[p.index()].as_mut() {
                                link.keyed.insert(session.0);
                            }
                        }
                        let keys = {
                            let secret = |p: PartyId| {
                                st.links[p.index()]
                                    .as_ref()
                                    .and_then(|l| l.secret.as_ref())
                                    .expect("keyed above")
                            };
                            PairwiseKeys::from_links(self.me, session.0, secret(next), secret(prev))
                        };
                        // The slot is made under the same lock, so a link that breaks from
                        // here on fails this session instead of carrying it with stale keys.
                        return Ok((self.session_locked(&mut st, session), keys));
                    }
                }
            };
            let mut up = self.link_up[down.index()].subscribe();
            match tokio::time::timeout_at(deadline, up.wait_for(|u| *u)).await {
                Ok(Ok(_)) => continue,
                _ => {
                    return Err(OpenError::LinkDown {
                        peer: down,
                        timeout: self.timeout,
                    });
                }
            }
        }
    }

    fn session_locked(self: &Arc<Self>, st: &mut MuxState, session: SessionId) -> GrpcTransport {
        st.next_token += 1;
        let token = st.next_token;
        let mut senders: [Option<mpsc::UnboundedSender<Msg>>; 3] = Default::default();
        let mut receivers: [Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<Msg>>>; 3] =
            Default::default();
        for p in 0..3 {
            if p != self.me.index() {
                let (tx, rx) = mpsc::unbounded_channel();
                senders[p] = Some(tx);
                receivers[p] = Some(tokio::sync::Mutex::new(rx));
            }
        }
        for (from, round, payload) in st.pending.take(tokio::time::Instant::now(), session) {
            if let Some(tx) = &senders[from] {
                let _ = tx.send((round, payload));
            }
        }
        if st.closed.remove(&session).is_some() {
            st.closed_order.retain(|s| *s != session);
        }
        st.sessions.insert(
            session,
            SessionSlot {
                token,
                inbound: senders,
            },
        );
        GrpcTransport {
            mux: Arc::clone(self),
            me: self.me,
            session,
            token,
            timeout: self.timeout,
            chunk_bytes: self.chunk_bytes,
            receivers,
            bytes_sent: AtomicU64::new(0),
        }
    }

    /// Close `session`: its transport's pending receives fail, later frames for it are dropped.
    pub fn close_session(&self, session: SessionId) {
        let mut st = self.lock();
        st.sessions.remove(&session);
        st.pending.remove(session);
        st.tombstone(session);
    }

    fn close_session_token(&self, session: SessionId, token: u64) {
        let mut st = self.lock();
        if st.sessions.get(&session).is_some_and(|s| s.token == token) {
            st.sessions.remove(&session);
            st.tombstone(session);
        }
    }

    /// Register a new link to `peer` and send it our hello (the link's first frame); returns
    /// its generation. A link it replaces counts as down. The link is up once keyed
    /// ([`PeerMux::link_hello`]).
    fn link_established(&self, peer: PartyId, tx: mpsc::UnboundedSender<pb::Frame>) -> u64 {
        let kx = KeyExchange::new(&mut rand::rngs::OsRng.unwrap_err());
        let hello = pb::Frame {
            hello: Bytes::copy_from_slice(&kx.public()),
            ..Default::default()
        };
        // Sent before the link is visible to sessions, so it precedes every session frame.
        let _ = tx.send(hello);
        let mut st = self.lock();
        st.next_generation += 1;
        let generation = st.next_generation;
        if st.links[peer.index()].is_some() {
            tracing::warn!(me = %self.me, %peer, "link replaced; failing its sessions");
            st.break_sessions(peer.index());
            self.link_up[peer.index()].send_replace(false);
        }
        st.links[peer.index()] = Some(Link {
            generation,
            tx,
            kx: Some(kx),
            secret: None,
            keyed: HashSet::new(),
        });
        drop(st);
        tracing::debug!(me = %self.me, %peer, "link connected; exchanging keys");
        generation
    }

    /// The peer's hello on link `generation`: derive the link secret; the link is up from now.
    /// An error (a second hello, a malformed or low-order key) means the link must close.
    fn link_hello(&self, peer: PartyId, generation: u64, hello: &[u8]) -> Result<(), String> {
        let public: [u8; 32] = hello
            .try_into()
            .map_err(|_| format!("hello of {} bytes, expected 32", hello.len()))?;
        let mut st = self.lock();
        let Some(link) = st.links[peer.index()]
            .as_mut()
            .filter(|l| l.generation == generation)
        else {
            return Ok(()); // a stale link: its reader stops at its next frame
        };
        let kx = link.kx.take().ok_or("a second hello on one link")?;
        let secret = kx
            .link_secret(self.me, peer, &public)
            .map_err(|e| e.to_string())?;
        link.secret = Some(secret);
        drop(st);
        self.link_up[peer.index()].send_replace(true);
        tracing::info!(me = %self.me, %peer, "link up");
        Ok(())
    }

    /// Close the current link to `peer` (its sessions fail; the dialing side redials, which
    /// re-keys it).
    fn drop_link(&self, st: &mut MuxState, peer: PartyId) {
        st.links[peer.index()] = None;
        st.break_sessions(peer.index());
        self.link_up[peer.index()].send_replace(false);
    }

    fn link_down(&self, peer: PartyId, generation: u64) {
        let mut st = self.lock();
        if st.links[peer.index()]
            .as_ref()
            .is_some_and(|l| l.generation == generation)
        {
            self.drop_link(&mut st, peer);
            drop(st);
            tracing::warn!(me = %self.me, %peer, "link down");
        }
    }

    /// Deliver one reassembled message; `false` if this link is no longer current.
    fn deliver(
        &self,
        peer: PartyId,
        generation: u64,
        session: SessionId,
        round: RoundId,
        payload: Bytes,
    ) -> bool {
        let mut st = self.lock();
        if st.links[peer.index()]
            .as_ref()
            .is_none_or(|l| l.generation != generation)
        {
            return false;
        }
        if let Some(slot) = st.sessions.get(&session) {
            if let Some(tx) = &slot.inbound[peer.index()] {
                let _ = tx.send((round, payload));
            }
        } else if st
            .closed
            .get(&session)
            .is_some_and(|g| g[peer.index()] == generation)
        {
            tracing::debug!(me = %self.me, %peer, %session, "frame for a closed session dropped");
        } else {
            let bytes = payload.len();
            let now = tokio::time::Instant::now();
            if let Admit::Refused { why, first } =
                st.pending.push(now, peer.index(), session, round, payload)
            {
                let (buffered, sessions) = (
                    st.pending.bytes(peer.index()),
                    st.pending.sessions(peer.index()),
                );
                let why = why.as_str();
                // A flood is logged once as a warning when it starts, then per message quietly.
                if first {
                    tracing::warn!(
                        me = %self.me, %peer, %session, %round, bytes, buffered, sessions, why,
                        "buffer for unopened sessions from this peer full; message dropped"
                    );
                } else {
                    tracing::debug!(
                        me = %self.me, %peer, %session, %round, bytes, buffered, sessions, why,
                        "buffer for unopened sessions from this peer full; message dropped"
                    );
                }
            }
        }
        true
    }

    /// Identify the node calling `Link`: by TLS client-cert fingerprint, or (insecure test
    /// muxes without TLS) by the `x-veil-party` header. Only a lower party may dial us.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<PartyId, NodeError> {
        let forbidden = |m: &str| NodeError::Forbidden(m.to_string());
        let party = if let Some(certs) = request.peer_certs() {
            let cert = certs
                .first()
                .ok_or_else(|| forbidden("no client certificate"))?;
            let fp = veil_proto::tls::cert_fingerprint(cert.as_ref());
            self.node_fingerprints
                .iter()
                .position(|n| !n.is_empty() && n.eq_ignore_ascii_case(&fp))
                .ok_or_else(|| forbidden("client certificate is not a node's"))?
        } else if self.insecure {
            request
                .metadata()
                .get(PARTY_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|p| *p < 3)
                .ok_or_else(|| forbidden("missing or bad x-veil-party"))?
        } else {
            // A peer link is refused (not challenged) without a node certificate.
            return Err(forbidden("client certificate required"));
        };
        if party >= self.me.index() {
            return Err(NodeError::Forbidden(format!(
                "P{party} may not open a link to P{}",
                self.me.index()
            )));
        }
        Ok(PartyId::from_index(party))
    }
}

/// Read a link's inbound frames until it ends, errors, turns stale or the mux is dropped; then
/// mark the link down.
async fn read_link(
    mux: Weak<PeerMux>,
    peer: PartyId,
    generation: u64,
    mut inbound: Streaming<pb::Frame>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut frames = Reassembler::new(MAX_MESSAGE_BYTES, MAX_PARTIAL_BYTES);
    loop {
        let next = tokio::select! {
            m = inbound.message() => m,
            _ = shutdown.changed() => return,
        };
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => {
                tracing::debug!(%peer, "link stream ended");
                break;
            }
            Err(status) => {
                tracing::warn!(%peer, code = ?status.code(), msg = status.message(), "link failed");
                break;
            }
        };
        let event = match frames.push(frame) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(why) => {
                tracing::warn!(%peer, %why, "peer broke the framing rules; closing link");
                break;
            }
        };
        let Some(m) = mux.upgrade() else { return };
        match event {
            Event::Hello(public) => {
                if let Err(why) = m.link_hello(peer, generation, &public) {
                    tracing::warn!(%peer, why, "bad link hello; closing link");
                    break;
                }
            }
            Event::Message {
                session,
                round,
                payload,
            } => {
                if !m.deliver(
                    peer,
                    generation,
                    SessionId(session),
                    RoundId(round),
                    payload,
                ) {
                    return;
                }
            }
        }
    }
    if let Some(m) = mux.upgrade() {
        m.link_down(peer, generation);
    }
}

/// Why one dial attempt failed.
enum DialError {
    /// The peer's certificate is not the one pinned for it.
    WrongCertificate(WrongCertificate),
    /// Anything else (not up yet, refused the link, ...), with its cause chain.
    Other(String),
}

/// `err: cause: cause ...` (tonic's transport errors say only "transport error" at the top).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

/// Dial `peer` and keep the link up, redialing with backoff, until the mux is dropped.
async fn dial_loop(
    mux: Weak<PeerMux>,
    peer: PartyId,
    endpoint: Endpoint,
    connector: Option<PinnedConnector>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut last_refusal: Option<WrongCertificate> = None;
    loop {
        let Some(m) = mux.upgrade() else { return };
        let (me, insecure) = (m.me, m.insecure);
        drop(m);
        let attempt = async {
            let connected = match &connector {
                Some(c) => endpoint.connect_with_connector(c.clone()).await,
                None => endpoint.connect().await,
            };
            let channel = connected.map_err(|e| match find_wrong_certificate(&e) {
                Some(wrong) => DialError::WrongCertificate(wrong.clone()),
                None => DialError::Other(error_chain(&e)),
            })?;
            let mut client = pb::peer_client::PeerClient::new(channel)
                .max_decoding_message_size(MAX_FRAME_BYTES)
                .max_encoding_message_size(MAX_FRAME_BYTES);
            let (tx, rx) = mpsc::unbounded_channel::<pb::Frame>();
            let mut request = Request::new(UnboundedReceiverStream::new(rx));
            if insecure {
                let v = me
                    .index()
                    .to_string()
                    .parse()
                    .map_err(|_| DialError::Other("header".to_string()))?;
                request.metadata_mut().insert(PARTY_HEADER, v);
            }
            let response = client.link(request).await.map_err(|s| {
                DialError::Other(format!("Link refused: {:?} {}", s.code(), s.message()))
            })?;
            Ok::<_, DialError>((tx, response.into_inner()))
        };
        let result = tokio::select! {
            r = attempt => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok((tx, inbound)) => {
                backoff = BACKOFF_MIN;
                last_refusal = None;
                let Some(m) = mux.upgrade() else { return };
                let generation = m.link_established(peer, tx);
                drop(m);
                read_link(mux.clone(), peer, generation, inbound, shutdown.clone()).await;
            }
            Err(DialError::WrongCertificate(wrong)) => {
                if last_refusal.as_ref() != Some(&wrong) {
                    tracing::warn!(%me, %peer, error = %wrong, "peer link refused: not the pinned certificate; redialing with backoff");
                } else {
                    tracing::debug!(%me, %peer, error = %wrong, "peer link refused again");
                }
                last_refusal = Some(wrong);
            }
            Err(DialError::Other(e)) => {
                tracing::debug!(%me, %peer, error = %e, "dial failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The `Peer` gRPC service of a [`PeerMux`] (accepts links from lower-numbered nodes).
#[derive(Debug)]
pub struct PeerService {
    mux: Weak<PeerMux>,
}

/// Outbound frame stream of an accepted link.
pub type LinkStream = Pin<Box<dyn Stream<Item = Result<pb::Frame, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    type LinkStream = LinkStream;

    async fn link(
        &self,
        request: Request<Streaming<pb::Frame>>,
    ) -> Result<Response<LinkStream>, Status> {
        let mux = self
            .mux
            .upgrade()
            .ok_or_else(|| NodeError::Unavailable("node is shutting down".into()))?;
        let peer = match mux.authenticate(&request) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(me = %mux.me, "inbound link rejected: {e}");
                return Err(e.into());
            }
        };
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel::<pb::Frame>();
        let generation = mux.link_established(peer, tx);
        tokio::spawn(read_link(
            Arc::downgrade(&mux),
            peer,
            generation,
            inbound,
            mux.shutdown.subscribe(),
        ));
        let out = UnboundedReceiverStream::new(rx).map(Ok::<_, Status>);
        Ok(Response::new(Box::pin(out) as LinkStream))
    }
}

/// One session's [`Transport`] over a [`PeerMux`]'s links. Dropping it closes the session.
pub struct GrpcTransport {
    mux: Arc<PeerMux>,
    me: PartyId,
    session: SessionId,
    token: u64,
    timeout: Duration,
    chunk_bytes: usize,
    receivers: [Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<Msg>>>; 3],
    bytes_sent: AtomicU64,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("me", &self.me)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// Payload bytes this party has sent in this session so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    fn frames(&self, round: RoundId, msg: &Bytes) -> Vec<pb::Frame> {
        let n = msg.len().div_ceil(self.chunk_bytes).max(1);
        (0..n)
            .map(|i| {
                let start = (i * self.chunk_bytes).min(msg.len());
                let end = (start + self.chunk_bytes).min(msg.len());
                pb::Frame {
                    session: self.session.0,
                    round: round.0,
                    payload: msg.slice(start..end),
                    last: i + 1 == n,
                    hello: Bytes::new(),
                }
            })
            .collect()
    }
}

impl Drop for GrpcTransport {
    fn drop(&mut self) {
        self.mux.close_session_token(self.session, self.token);
    }
}

impl Transport for GrpcTransport {
    fn me(&self) -> PartyId {
        self.me
    }

    fn session(&self) -> SessionId {
        self.session
    }

    async fn send(&self, to: PartyId, round: RoundId, msg: Bytes) -> Result<(), TransportError> {
        if to == self.me {
            return Err(TransportError::SelfMessage(self.me));
        }
        let len = msg.len() as u64;
        let mut frames = self.frames(round, &msg);
        drop(msg);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut up = self.mux.link_up[to.index()].subscribe();
        loop {
            {
                let st = self.mux.lock();
                let alive = st
                    .sessions
                    .get(&self.session)
                    .is_some_and(|s| s.token == self.token && s.inbound[to.index()].is_some());
                if !alive {
                    return Err(TransportError::Closed { peer: to });
                }
                if let Some(link) = &st.links[to.index()] {
                    for f in frames.drain(..) {
                        if link.tx.send(f).is_err() {
                            return Err(TransportError::Closed { peer: to });
                        }
                    }
                    self.bytes_sent.fetch_add(len, Ordering::Relaxed);
                    return Ok(());
                }
            }
            match tokio::time::timeout_at(deadline, up.wait_for(|u| *u)).await {
                Ok(Ok(_)) => continue,
                _ => return Err(TransportError::Closed { peer: to }),
            }
        }
    }

    async fn recv(&self, from: PartyId, round: RoundId) -> Result<Bytes, TransportError> {
        let rx = self.receivers[from.index()]
            .as_ref()
            .ok_or(TransportError::SelfMessage(self.me))?;
        let mut rx = rx.lock().await;
        let msg = tokio::time::timeout(self.timeout, rx.recv())
            .await
            .map_err(|_| TransportError::Timeout { peer: from, round })?;
        match msg {
            None => Err(TransportError::Closed { peer: from }),
            Some((got, payload)) if got == round => Ok(payload),
            Some((got, _)) => Err(TransportError::OutOfOrder {
                peer: from,
                expected: round,
                got,
            }),
        }
    }
}
