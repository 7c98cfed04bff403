//! One link's life: the tuning both ends apply, the dial loop (redial with backoff while the
//! mux lives) and the reader that feeds a link's frames to the mux.

use std::sync::Weak;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Endpoint;
use tonic::{Request, Streaming};
use veil_circuits::PartyId;
use veil_proto::pb;

use veil_proto::tls::{PinnedConnector, WrongCertificate, find_wrong_certificate};
use veil_runtime::transport::{RoundId, SessionId};

use super::frames::{Event, Reassembler};
use super::mux::*;
use super::*;

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

/// Read a link's inbound frames until it ends, errors, turns stale or the mux is dropped; then
/// mark the link down.
pub(super) async fn read_link(
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
pub(super) async fn dial_loop(
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
