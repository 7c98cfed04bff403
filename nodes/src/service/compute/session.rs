//! Step two of an invoke: open the session on the peer links, agree on the session binding
//! and the security mode with both peers, then run this party's side of the program in that
//! mode.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use veil_circuits::{PartyId, ValidatedProgram};
use veil_proto::convert::{security_mode, security_to_wire};
use veil_runtime::SecurityMode;
use veil_runtime::engine::{InputValue, Outputs, Report, Session};
use veil_runtime::error::TransportError;
use veil_runtime::setup::PairwiseKeys;
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

/// The binding-round message: the binding hash, then the security mode as one byte (its wire
/// number). A 32-byte message (a node from before the mode existed) is semi-honest.
fn binding_message(binding: &[u8; 32], security: SecurityMode) -> Bytes {
    let mut m = Vec::with_capacity(33);
    m.extend_from_slice(binding);
    m.push(security_to_wire(security) as u8);
    m.into()
}

/// The security mode a peer's binding-round message states (`None`: not a binding message).
fn stated_mode(msg: &[u8]) -> Option<SecurityMode> {
    match msg.len() {
        32 => Some(SecurityMode::SemiHonest),
        33 => security_mode("", i32::from(msg[32])).ok(),
        _ => None,
    }
}

/// Sends this node's binding hash and security mode to both peers in the binding round and
/// checks theirs: every node runs the program only if all three run the same mode and received
/// the same request (see [`veil_proto::binding`]).
async fn agree_on_binding(
    net: &GrpcTransport,
    binding: &[u8; 32],
    security: SecurityMode,
) -> Result<(), NodeError> {
    let me = net.me();
    let unavailable =
        |e: TransportError| NodeError::Unavailable(format!("session binding round: {e}"));
    let msg = binding_message(binding, security);
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
    let got = [
        (me.next(), from_next.map_err(unavailable)?),
        (me.prev(), from_prev.map_err(unavailable)?),
    ];
    let other_modes: Vec<(PartyId, SecurityMode)> = got
        .iter()
        .filter_map(|(peer, m)| stated_mode(m).map(|mode| (*peer, mode)))
        .filter(|&(_, mode)| mode != security)
        .collect();
    if !other_modes.is_empty() {
        return Err(NodeError::SecurityMismatch {
            me,
            mine: security,
            peers: other_modes,
        });
    }
    let differ: Vec<String> = got
        .iter()
        .filter(|(_, m)| m.get(..32) != Some(&binding[..]) || stated_mode(m).is_none())
        .map(|(peer, _)| peer.to_string())
        .collect();
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

/// This party's side of `program` on a session over `net`, keyed with `keys`, in `security`
/// mode; `start` is when the session was opened.
async fn run_program<T: Transport>(
    net: T,
    keys: PairwiseKeys,
    security: SecurityMode,
    program: &ValidatedProgram,
    inputs: HashMap<String, InputValue>,
    start: Instant,
) -> Result<Ran, NodeError> {
    let mut session = Session::with_keys(net, &keys);
    drop(keys);
    session.set_security(security);
    let (outputs, report) = session.run(program, inputs).await?;
    Ok(Ran {
        outputs,
        report,
        elapsed: start.elapsed(),
    })
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
        let security = self.security;
        #[cfg(feature = "fault-injection")]
        let fault = self.fault.clone();
        let (transport, keys) = self.mux.open(SessionId(session)).await?;
        let run = tokio::spawn(async move {
            agree_on_binding(&transport, &binding, security).await?;
            #[cfg(feature = "fault-injection")]
            if let Some(fault) = fault {
                let net = fault.wrap(transport);
                return run_program(net, keys, security, &program, inputs, start).await;
            }
            run_program(transport, keys, security, &program, inputs, start).await
        })
        .await;
        self.mux.close_session(SessionId(session));
        run?
    }
}
