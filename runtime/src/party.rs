//! Per-party protocol context: who I am, the session, and the PRFs keyed with the two pairwise
//! keys agreed at session setup.
//!
//! Every protocol invocation takes a fresh [`Domain`] from [`PartyCtx::next_domain`]. All three
//! parties run the same program, so their op counters advance in lockstep and the same
//! invocation uses the same domain everywhere; this is what makes the zero-sharing sum to zero.

use crate::prf::{Domain, Prf};
use crate::setup::PairwiseKeys;
use crate::transport::{RoundId, SessionId};
use veil_circuits::PartyId;

/// State one party needs to run protocols in a session.
pub struct PartyCtx {
    /// This party.
    pub id: PartyId,
    /// The session.
    pub session: SessionId,
    /// F_{k_{i,i+1}}: randomness shared with the next party.
    prf_next: Prf,
    /// F_{k_{i-1,i}}: randomness shared with the previous party.
    prf_prev: Prf,
    op_counter: u64,
    round_counter: u64,
    /// What the malicious mode's verification needs from this session's protocols (`None` in
    /// semi-honest mode).
    pub(crate) tape: Option<crate::verify::tape::Tape>,
}

impl std::fmt::Debug for PartyCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyCtx")
            .field("id", &self.id)
            .field("session", &self.session)
            .field("op_counter", &self.op_counter)
            .finish_non_exhaustive()
    }
}

impl PartyCtx {
    /// Context for party `id` from the session's pairwise keys.
    pub fn new(id: PartyId, session: SessionId, keys: &PairwiseKeys) -> Self {
        PartyCtx {
            id,
            session,
            prf_next: Prf::new(&keys.with_next),
            prf_prev: Prf::new(&keys.with_prev),
            op_counter: 0,
            round_counter: 0,
            tape: None,
        }
    }

    /// A fresh PRF domain for the next protocol invocation (same on all three parties).
    pub fn next_domain(&mut self) -> Domain {
        let d = Domain {
            op: self.op_counter,
            worker: 0,
        };
        self.op_counter += 1;
        d
    }

    /// The next communication round of this session (rounds are numbered from 1; round 0 is
    /// key setup). All parties advance in lockstep.
    pub fn next_round(&mut self) -> RoundId {
        self.round_counter += 1;
        RoundId(self.round_counter)
    }

    /// Start recording what the malicious mode verifies (products, input digests).
    /// Whether this run records its work for the malicious mode's verification (protocols
    /// with a verifiable variant switch to it).
    pub(crate) fn verified(&self) -> bool {
        self.tape.is_some()
    }

    pub(crate) fn start_tape(&mut self) {
        self.tape = Some(crate::verify::tape::Tape::default());
    }

    /// Rounds used so far in this session.
    pub fn rounds_used(&self) -> u64 {
        self.round_counter
    }

    /// `n` words of the stream shared with the next party (P_i and P_{i+1} get the same words).
    pub fn rand_with_next(&self, domain: Domain, n: usize) -> Vec<u64> {
        let mut v = vec![0u64; n];
        self.prf_next.fill(domain, &mut v);
        v
    }

    /// `n` words of the stream shared with the previous party.
    pub fn rand_with_prev(&self, domain: Domain, n: usize) -> Vec<u64> {
        let mut v = vec![0u64; n];
        self.prf_prev.fill(domain, &mut v);
        v
    }

    /// This party's part β_i of a fresh XOR-sharing of zero (boolean AND gates):
    /// β_i = F_{k_{i,i+1}}(d) ⊕ F_{k_{i−1,i}}(d), so β_0 ⊕ β_1 ⊕ β_2 = 0.
    pub fn zero_share_xor(&mut self, n: usize) -> Vec<u64> {
        self.zero_share_xor_in(n).1
    }

    /// [`PartyCtx::zero_share_xor`] with the fresh domain it used (to recompute its streams).
    pub fn zero_share_xor_in(&mut self, n: usize) -> (Domain, Vec<u64>) {
        let d = self.peek_domain();
        let beta = self.pairwise_difference(n, |out, prev| {
            for (x, y) in out.iter_mut().zip(prev) {
                *x ^= y;
            }
        });
        (d, beta)
    }

    /// This party's part α_i of a fresh 3-out-of-3 sharing of zero:
    /// α_i = F_{k_{i,i+1}}(d) − F_{k_{i−1,i}}(d), so α_0 + α_1 + α_2 = 0 and each α_i looks
    /// uniform to any single other party (it misses one of the two keys).
    pub fn zero_share(&mut self, n: usize) -> Vec<u64> {
        self.zero_share_in(n).1
    }

    /// [`PartyCtx::zero_share`] with the fresh domain it used (to recompute its two streams).
    pub fn zero_share_in(&mut self, n: usize) -> (Domain, Vec<u64>) {
        let d = self.peek_domain();
        (
            d,
            self.pairwise_difference(n, crate::kernels::ring_sub_assign),
        )
    }

    /// PRFs for one run's malicious-mode verification, keyed with subkeys of the pairwise keys
    /// (with the next party, with the previous party) under a fresh domain of this session:
    /// independent of every protocol stream and of every other run's verification, so no
    /// challenge or mask is ever reused when a session runs several programs.
    pub(crate) fn verify_prfs(&mut self) -> (Prf, Prf) {
        let run = self.next_domain().op;
        let mut label = b"veil/v1/dzkp/".to_vec();
        label.extend_from_slice(&run.to_le_bytes());
        (
            Prf::new(&self.prf_next.derive(&label)),
            Prf::new(&self.prf_prev.derive(&label)),
        )
    }

    /// The domain [`PartyCtx::next_domain`] hands out next.
    fn peek_domain(&self) -> Domain {
        Domain {
            op: self.op_counter,
            worker: 0,
        }
    }

    /// F_{k_{i,i+1}}(d) combined with F_{k_{i−1,i}}(d) by `minus` (− or ⊕) for a fresh domain d;
    /// the second stream is generated in cache-sized chunks, not as a second big buffer.
    fn pairwise_difference(&mut self, n: usize, minus: impl Fn(&mut [u64], &[u64])) -> Vec<u64> {
        const CHUNK: usize = 4096;
        let d = self.next_domain();
        let mut a = self.rand_with_next(d, n);
        let mut b = [0u64; CHUNK];
        for (k, chunk) in a.chunks_mut(CHUNK).enumerate() {
            let b = &mut b[..chunk.len()];
            self.prf_prev.fill_at(d, (k * CHUNK) as u64, b);
            minus(chunk, b);
        }
        a
    }
}
