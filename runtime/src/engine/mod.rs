//! The engine: runs a validated program on one party's shares, round by round.
//!
//! - `schedule`: when each op runs (the cost model's as-soon-as-possible depths) and the round
//!   loop that sends **one message per peer per round** for every interactive op of the round;
//! - `dispatch`: what each op does, one module per family (linear ops, comparisons,
//!   selection, data movement, inputs), as a protocol to start or a local step;
//! - `inputs`, [`value`], [`report`]: checking inputs, values at one party, the report.
//!
//! A program of 1,000 independent multiplications takes one round, and the measured rounds
//! equal the cost model's. Where the cost model and a protocol disagree, the session fails with
//! a typed [`EngineError`] (never a panic).
//!
//! ```
//! use std::collections::HashMap;
//! use veil_circuits::Builder;
//! use veil_runtime::harness::{collect_outputs, run_program3, share_inputs};
//!
//! let mut b = Builder::new();
//! let x = b.secret_vector("x", 3, veil_circuits::Ring);
//! let y = b.secret_vector("y", 3, veil_circuits::Ring);
//! let z = b.mul(x, y);
//! b.output_to_client("z", z);
//! let program = b.finish().unwrap();
//!
//! let plain = HashMap::from([("x".to_string(), vec![1, 2, 3]), ("y".to_string(), vec![4, 5, 6])]);
//! let inputs = share_inputs(&program, &plain, &mut rand::rng());
//! // Three parties on threads over an in-memory transport; each returns its outputs and report.
//! let [p0, p1, p2] = run_program3(&program, inputs).map(Result::unwrap);
//! assert_eq!(p0.1.rounds, 1); // one multiplication round
//! let z = collect_outputs(&program, &[p0.0, p1.0, p2.0]).unwrap();
//! assert_eq!(z["z"], vec![4, 10, 18]); // the client reconstructs
//! ```
//!
//! Security: the engine only moves shares between the protocols of [`crate::protocols`]; what
//! each party learns is what those protocols reveal (nothing, except values explicitly
//! revealed or output to it), plus the program, the shapes and the timing.
//!
//! The engine is the only async code in the runtime. Its local work runs on the calling task's
//! thread, except steps estimated heavy, which leave a multi-thread runtime's worker
//! (`block_in_place`, see `offload`), so a server can drive sessions as ordinary tasks beside
//! its network I/O.

mod dispatch;
mod inputs;
pub(crate) mod offload;
pub mod report;
mod schedule;
pub mod value;

pub use report::{OpTime, Report};
pub use value::{InputValue, OutputValue};

use crate::error::{EngineError, ProtocolError};
use crate::party::PartyCtx;
use crate::setup::{KeyExchange, PairwiseKeys};
use crate::transport::{RoundId, Transport};
use crate::verify::SecurityMode;
use bytes::Bytes;
use rand::TryRngCore;
use std::collections::HashMap;
use veil_circuits::cost::{ProgramCost, program_cost_in};
use veil_circuits::{PartyId, ValidatedProgram};

/// Outputs of one run at one party, by output name (only those this party receives or must
/// hand to a client).
pub type Outputs = HashMap<String, OutputValue>;

/// One party's side of a session: its context (keys, counters) and its links.
pub struct Session<T: Transport> {
    ctx: PartyCtx,
    net: T,
    security: SecurityMode,
}

impl<T: Transport> Session<T> {
    /// A session whose pairwise PRF keys are already agreed (e.g. derived from the secrets
    /// of long-lived peer links, [`crate::setup::PairwiseKeys::from_links`]): no setup round.
    pub fn with_keys(net: T, keys: &PairwiseKeys) -> Self {
        Session {
            ctx: PartyCtx::new(net.me(), net.session(), keys),
            net,
            security: SecurityMode::default(),
        }
    }

    /// Agree pairwise PRF keys with both peers (X25519 over the transport, round 0) using
    /// fresh OS randomness.
    pub async fn establish(net: T) -> Result<Self, EngineError> {
        let mut rng = rand::rngs::OsRng.unwrap_err();
        let kx = KeyExchange::new(&mut rng);
        let me = net.me();
        let round = RoundId(0);
        let public = kx.public();
        let setup = |e: crate::error::TransportError| EngineError::Setup(ProtocolError::from(e));
        let (a, b) = tokio::join!(
            net.send(me.next(), round, Bytes::copy_from_slice(&public)),
            net.send(me.prev(), round, Bytes::copy_from_slice(&public))
        );
        a.map_err(setup)?;
        b.map_err(setup)?;
        let (from_next, from_prev) =
            tokio::join!(net.recv(me.next(), round), net.recv(me.prev(), round));
        let key = |m: Bytes, peer: PartyId| -> Result<[u8; 32], EngineError> {
            <[u8; 32]>::try_from(m.as_ref()).map_err(|_| {
                EngineError::Setup(ProtocolError::PeerMisbehaved {
                    peer,
                    round,
                    what: format!("sent a {}-byte public key, expected 32", m.len()),
                })
            })
        };
        let next_pub = key(from_next.map_err(setup)?, me.next())?;
        let prev_pub = key(from_prev.map_err(setup)?, me.prev())?;
        let keys = kx
            .agree(me, net.session().0, &next_pub, &prev_pub)
            .map_err(|e| EngineError::Setup(e.into()))?;
        Ok(Session {
            ctx: PartyCtx::new(me, net.session(), &keys),
            net,
            security: SecurityMode::default(),
        })
    }

    /// Run this session's programs in `mode` (all three parties must use the same mode; a
    /// party whose peers run another mode fails the session).
    pub fn set_security(&mut self, mode: SecurityMode) {
        self.security = mode;
    }

    /// The session's security mode.
    pub fn security(&self) -> SecurityMode {
        self.security
    }

    /// This party.
    pub fn party(&self) -> PartyId {
        self.ctx.id
    }

    /// The transport, e.g. to run protocols directly.
    pub fn parts(&mut self) -> (&mut PartyCtx, &T) {
        (&mut self.ctx, &self.net)
    }

    /// Run `program` with this party's `inputs`; returns this party's outputs and a report.
    pub async fn run(
        &mut self,
        program: &ValidatedProgram,
        inputs: HashMap<String, InputValue>,
    ) -> Result<(Outputs, Report), EngineError> {
        let cost = program_cost_in(program, self.security.suite());
        self.run_scheduled(program, &cost, inputs).await
    }

    /// [`Session::run`] under a given schedule: the cost model's, or (in tests) a hand-made
    /// one that disagrees with the protocols.
    pub(crate) async fn run_scheduled(
        &mut self,
        program: &ValidatedProgram,
        cost: &ProgramCost,
        inputs: HashMap<String, InputValue>,
    ) -> Result<(Outputs, Report), EngineError> {
        schedule::run(
            &mut self.ctx,
            &self.net,
            program,
            cost,
            inputs,
            self.security,
        )
        .await
    }
}
