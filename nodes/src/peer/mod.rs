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
use std::time::Duration;
use veil_runtime::transport::RoundId;

pub mod frames;
mod link;
mod mux;
pub mod pending;
mod transport;

pub use link::{tune_endpoint, tune_server};
pub use mux::{LinkStream, OpenError, PeerMux, PeerService};
pub use pending::{MAX_PENDING_BYTES_PER_LINK, MAX_PENDING_SESSIONS_PER_LINK, PendingLimits};
pub use transport::GrpcTransport;

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
