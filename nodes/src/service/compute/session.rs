//! Step two of an invoke: open the session on the peer links, agree on the session binding
//! with both peers, then run this party's side of the program.

use std::time::{Duration, Instant};

use bytes::Bytes;
use veil_runtime::engine::{Outputs, Report, Session};
use veil_runtime::error::TransportError;
use veil_runtime::transport::{RoundId, SessionId, Transport};

use super::ComputeService;
use super::prepare::Prepared;
use crate::error::NodeError;
use crate::peer::GrpcTransport;

/// The session round in which the three nodes exchange binding hashes (round 0: the key round
/// of `Session::establish`, which sessions keyed from the peer links never use).
const BINDING_ROUND: RoundId = RoundId(0);

/// What a session produced on this node.
pub(super) struct Ran {
    /// This party's output shares, by output name.
    pub outputs: Outputs,
    /// Rounds, bytes and per-depth timings.
    pub report: Report,
    /// From opening the session to the program's end.
    pub elapsed: Duration,
}

/// Sends this node's binding hash to both peers in the binding round and checks theirs: every
/// node runs the program only if all three received the same request (see
/// [`veil_proto::binding`]).
async fn agree_on_binding(net: &GrpcTransport, binding: &[u8; 32]) -> Result<(), NodeError> {
    let me = net.me();
    let unavailable =
        |e: TransportError| NodeError::Unavailable(format!("session binding round: {e}"));
    let msg = Bytes::copy_from_slice(binding);
    let (a, b) = tokio::join!(
        net.send(me.next(), BINDING_ROUND, msg.clone()),
        net.send(me.prev(), BINDING_ROUND, msg)
    );
    a.map_err(unavailable)?;
    b.map_err(unavailable)?;
    let (from_next, from_prev) = tokio::join!(
        net.recv(me.next(), BINDING_ROUND),
        net.recv(me.prev(), BINDING_ROUND)
    );
    let mut differ = Vec::new();
    for (peer, got) in [(me.next(), from_next), (me.prev(), from_prev)] {
        if got.map_err(unavailable)?.as_ref() != binding {
            differ.push(peer.to_string());
        }
    }
    if differ.is_empty() {
        Ok(())
    } else {
        Err(NodeError::Aborted(format!(
            "session binding mismatch: {} received a different request (program, inputs, \
             caller or delivery) under this session id; no node ran it",
            differ.join(" and ")
        )))
    }
}

impl ComputeService {
    /// Runs session `session` of a prepared request. The session is closed on the mux whatever
    /// the outcome.
    pub(super) async fn run_session(
        &self,
        session: u64,
        prepared: Prepared,
    ) -> Result<Ran, NodeError> {
        let Prepared {
            program,
            inputs,
            binding,
            ..
        } = prepared;
        // Run this party's side as a task on the node's runtime, beside the peer links: a
        // message's arrival, the session's step and its next send then need no hand-off to
        // another thread (each cross-thread wake costs tens of µs on a loaded VM). The engine
        // moves heavy local steps off the worker itself (`block_in_place`). Keys come from the
        // peer links' secrets: no key round (see `peer`).
        let start = Instant::now();
        let (transport, keys) = self.mux.open(SessionId(session)).await?;
        let run = tokio::spawn(async move {
            agree_on_binding(&transport, &binding).await?;
            let mut session = Session::with_keys(transport, &keys);
            drop(keys);
            let (outputs, report) = session.run(&program, inputs).await?;
            Ok::<_, NodeError>(Ran {
                outputs,
                report,
                elapsed: start.elapsed(),
            })
        })
        .await;
        self.mux.close_session(SessionId(session));
        run?
    }
}
