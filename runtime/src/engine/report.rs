//! What one run of a program cost at one party.

use crate::verify::SecurityMode;
use std::time::Duration;
use veil_circuits::PartyId;

/// Compute time spent on one op at this party (local work only; waiting for peers is in
/// [`Report::comm_time`]).
#[derive(Clone, Debug)]
pub struct OpTime {
    /// Op index in the program.
    pub op: usize,
    /// Op name.
    pub name: &'static str,
    /// Time spent.
    pub time: Duration,
}

/// Rounds, bytes and time of one program run at one party.
#[derive(Clone, Debug)]
pub struct Report {
    /// This party.
    pub party: PartyId,
    /// Communication rounds (one message to each peer per round).
    pub rounds: u64,
    /// Payload bytes this party sent to its two peers.
    pub bytes_sent: u64,
    /// Per-op compute time, in op order (output reveals are counted in `comm_time` only).
    pub ops: Vec<OpTime>,
    /// Time spent sending and waiting for peers.
    pub comm_time: Duration,
    /// Time since the start of the run at which each depth (round) of the schedule was
    /// complete: entry `d` covers every op of depth ≤ `d` (see `cost::ProgramCost::depth`).
    pub depth_done: Vec<Duration>,
    /// Wall time of the whole run.
    pub total: Duration,
    /// The session's security mode.
    pub security: SecurityMode,
    /// Of [`Report::rounds`] and [`Report::bytes_sent`], what the malicious mode's verification
    /// took (0 in semi-honest mode).
    pub verify_rounds: u64,
    /// Bytes of the verification (see [`Report::verify_rounds`]).
    pub verify_bytes: u64,
}
