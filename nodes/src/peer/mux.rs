//! [`PeerMux`]: a node's two links, the sessions multiplexed on them, their keys and the
//! buffer of unopened sessions; [`PeerService`], the accepting side of a link.

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
use veil_proto::tls::PinnedConnector;
use veil_runtime::setup::{KeyExchange, LinkSecret, PairwiseKeys};
use veil_runtime::transport::{RoundId, SessionId};

use super::link::{dial_loop, read_link};
use super::pending::{Admit, Pending};
use super::transport::GrpcTransport;
use super::*;

pub(super) struct Link {
    pub(super) generation: u64,
    pub(super) tx: mpsc::UnboundedSender<pb::Frame>,
    /// This end's ephemeral key, until the peer's hello arrives.
    pub(super) kx: Option<KeyExchange>,
    /// The link secret, once the peer's hello arrived (the link is up from then on).
    pub(super) secret: Option<LinkSecret>,
    /// Session ids keyed from `secret` (each at most once).
    pub(super) keyed: HashSet<u64>,
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

pub(super) struct SessionSlot {
    pub(super) token: u64,
    /// Per peer: where reassembled messages go; `None` once the session's link to it broke.
    pub(super) inbound: [Option<mpsc::UnboundedSender<Msg>>; 3],
}

pub(super) struct MuxState {
    pub(super) links: [Option<Link>; 3],
    pub(super) sessions: HashMap<SessionId, SessionSlot>,
    /// Complete messages for sessions not open yet, per link.
    pub(super) pending: Pending,
    /// Closed sessions (tombstones): per peer, the generation of the link the session used
    /// (0: none). A late frame on that same link is dropped; a frame for the same id on a newer
    /// link belongs to a new session (ids may repeat once a link is re-keyed) and is buffered.
    pub(super) closed: HashMap<SessionId, [u64; 3]>,
    pub(super) closed_order: VecDeque<SessionId>,
    pub(super) next_generation: u64,
    pub(super) next_token: u64,
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
    pub(super) me: PartyId,
    pub(super) node_fingerprints: [String; 3],
    pub(super) timeout: Duration,
    pub(super) chunk_bytes: usize,
    pub(super) insecure: bool,
    /// Sessions keyed per link connection before it is re-keyed.
    pub(super) session_budget: AtomicUsize,
    pub(super) state: Mutex<MuxState>,
    /// Per peer: whether a link is up (for senders waiting on a redial).
    pub(super) link_up: [watch::Sender<bool>; 3],
    /// Never sent on; dropped with the mux, which stops every link task.
    pub(super) shutdown: watch::Sender<()>,
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

    pub(super) fn lock(&self) -> MutexGuard<'_, MuxState> {
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

    pub(super) fn close_session_token(&self, session: SessionId, token: u64) {
        let mut st = self.lock();
        if st.sessions.get(&session).is_some_and(|s| s.token == token) {
            st.sessions.remove(&session);
            st.tombstone(session);
        }
    }

    /// Register a new link to `peer` and send it our hello (the link's first frame); returns
    /// its generation. A link it replaces counts as down. The link is up once keyed
    /// ([`PeerMux::link_hello`]).
    pub(super) fn link_established(
        &self,
        peer: PartyId,
        tx: mpsc::UnboundedSender<pb::Frame>,
    ) -> u64 {
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
    pub(super) fn link_hello(
        &self,
        peer: PartyId,
        generation: u64,
        hello: &[u8],
    ) -> Result<(), String> {
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

    pub(super) fn link_down(&self, peer: PartyId, generation: u64) {
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
    pub(super) fn deliver(
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
