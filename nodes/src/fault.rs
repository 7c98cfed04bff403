//! Fault injection for tests: a node that deviates on purpose (feature `fault-injection`, off by
//! default, so release and default builds have no such code and refuse a config that asks for
//! it).
//!
//! A `[fault]` table in `node-<i>.toml` makes the node add a non-zero error to one 64-bit word of
//! one outgoing peer message in its sessions — the additive attack the malicious mode must
//! catch:
//!
//! ```toml
//! [fault]
//! round = 1      # session round of the message (1 = the first round of the program; the
//!                # session-binding round 0 is never altered)
//! to = 0         # the peer (party index) the message goes to; not this node
//! word = 0       # which u64 word of it (taken modulo the message's word count); default 0
//! add = 1        # the error, added with wrapping (an i64: -9223372036854775808 adds 2^63)
//! sessions = 1   # how many sessions are altered, the first ones to send that message;
//!                # 0 (the default) alters every session
//! ```
//!
//! A session whose message to `to` in `round` is empty (or that has no such round) is not
//! altered and does not count. The node logs a warning each time it alters a message.
//! `cargo test` builds of the `veil` binary have the feature (veil-cli's dev-dependencies turn
//! it on); `cargo build --release -p veil-cli` does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use veil_circuits::PartyId;
use veil_proto::config::{ConfigError, check_party};
use veil_runtime::error::TransportError;
use veil_runtime::transport::{RoundId, SessionId, Transport, tamper};

/// The `[fault]` table of a node config (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Session round of the altered message (≥ 1).
    pub round: u64,
    /// Party index of the peer the altered message goes to.
    pub to: usize,
    /// Index of the altered u64 word, modulo the message's word count.
    #[serde(default)]
    pub word: usize,
    /// The error added (wrapping, as a two's-complement u64); non-zero.
    pub add: i64,
    /// Sessions to alter, the first ones that send the message; 0 = every session.
    #[serde(default)]
    pub sessions: u64,
}

impl FaultSpec {
    /// Checks the table for the node of party `me`, naming the field at fault.
    pub fn validate(&self, me: usize) -> Result<(), ConfigError> {
        if self.round == 0 {
            return Err(ConfigError::invalid(
                "fault.round",
                "must be ≥ 1 (round 0 is the session binding)",
            ));
        }
        check_party("fault.to", self.to)?;
        if self.to == me {
            return Err(ConfigError::invalid(
                "fault.to",
                "must be a peer, not this node",
            ));
        }
        if self.add == 0 {
            return Err(ConfigError::invalid("fault.add", "must be non-zero"));
        }
        Ok(())
    }
}

/// A node's armed fault: the spec and how many sessions it may still alter.
#[derive(Debug)]
pub struct Fault {
    spec: FaultSpec,
    /// Sessions left to alter (`None`: every session).
    left: Option<AtomicU64>,
}

impl Fault {
    /// Arms `spec` (validated with the node's config).
    pub fn new(spec: FaultSpec) -> Arc<Self> {
        let left = (spec.sessions > 0).then(|| AtomicU64::new(spec.sessions));
        Arc::new(Fault { spec, left })
    }

    /// Takes one session from the budget; false once it is spent.
    fn take(&self) -> bool {
        self.left.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
        })
    }

    /// `net` with this fault applied to what it sends (at most once per session).
    pub fn wrap<T: Transport>(self: &Arc<Self>, net: T) -> Faulty<T> {
        Faulty {
            inner: net,
            fault: Arc::clone(self),
            fired: AtomicBool::new(false),
        }
    }
}

/// A session's transport that alters one outgoing message as its [`Fault`] says.
#[derive(Debug)]
pub struct Faulty<T> {
    inner: T,
    fault: Arc<Fault>,
    fired: AtomicBool,
}

impl<T: Transport> Faulty<T> {
    /// `msg` with the error added to its chosen word, if this is the message to alter and the
    /// budget allows.
    fn maybe_alter(&self, to: PartyId, round: RoundId, msg: Bytes) -> Bytes {
        let spec = &self.fault.spec;
        let words = msg.len() / 8;
        if round.0 != spec.round
            || to.index() != spec.to
            || words == 0
            || self.fired.load(Ordering::Acquire)
            || !self.fault.take()
        {
            return msg;
        }
        self.fired.store(true, Ordering::Release);
        tracing::warn!(
            party = %self.inner.me(),
            session = self.inner.session().0,
            round = round.0,
            %to,
            word = spec.word % words,
            "fault injection: altered one word of an outgoing message"
        );
        tamper::add_error(&msg, spec.word, spec.add as u64)
    }
}

impl<T: Transport> Transport for Faulty<T> {
    fn me(&self) -> PartyId {
        self.inner.me()
    }

    fn session(&self) -> SessionId {
        self.inner.session()
    }

    async fn send(&self, to: PartyId, round: RoundId, msg: Bytes) -> Result<(), TransportError> {
        let msg = self.maybe_alter(to, round, msg);
        self.inner.send(to, round, msg).await
    }

    async fn recv(&self, from: PartyId, round: RoundId) -> Result<Bytes, TransportError> {
        self.inner.recv(from, round).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use veil_circuits::ValidatedProgram;
    use veil_circuits::{Builder, Recipient, Ring};
    use veil_runtime::SecurityMode;
    use veil_runtime::engine::{InputValue, OutputValue, Session};
    use veil_runtime::harness::{run3, share_inputs};
    use veil_runtime::sharing::Shares;

    fn spec(sessions: u64) -> FaultSpec {
        FaultSpec {
            round: 1,
            to: 0,
            word: 3,
            add: 1,
            sessions,
        }
    }

    #[test]
    fn the_spec_is_validated_by_field() {
        spec(0).validate(1).unwrap();
        let field = |s: FaultSpec, me| s.validate(me).unwrap_err().field().map(str::to_string);
        assert_eq!(
            field(
                FaultSpec {
                    round: 0,
                    ..spec(0)
                },
                1
            )
            .as_deref(),
            Some("fault.round")
        );
        assert_eq!(field(spec(0), 0).as_deref(), Some("fault.to"));
        assert_eq!(
            field(FaultSpec { to: 3, ..spec(0) }, 1).as_deref(),
            Some("fault.to")
        );
        assert_eq!(
            field(FaultSpec { add: 0, ..spec(0) }, 1).as_deref(),
            Some("fault.add")
        );
    }

    #[test]
    fn the_budget_counts_sessions() {
        let f = Fault::new(spec(2));
        assert!(f.take() && f.take() && !f.take());
        let every = Fault::new(spec(0));
        assert!((0..10).all(|_| every.take()));
    }

    /// `x ⊙ y` over 8 ring elements on three in-memory parties in `mode`, P1 running through
    /// `fault` (if any) and the program twice on one session: per run, each party's components
    /// of `z` (or its error); and the plaintext.
    fn mul_twice(mode: SecurityMode, fault: Option<Arc<Fault>>) -> (Vec<[Runs; 3]>, Vec<u64>) {
        let mut b = Builder::new();
        let x = b.secret_vector("x", 8, Ring);
        let y = b.secret_vector("y", 8, Ring);
        let z = b.mul(x, y);
        b.output("z", z, Recipient::Client("alice".into()));
        let program = b.finish().unwrap();
        let xs: Vec<u64> = (1..=8).collect();
        let ys: Vec<u64> = (10..18).collect();
        let want: Vec<u64> = xs.iter().zip(&ys).map(|(a, b)| a * b).collect();
        let plain = [("x".to_string(), xs), ("y".to_string(), ys)].into();
        let shared = share_inputs(&program, &plain, &mut rand::rng());
        let (program, shared, fault) = (&program, &shared, &fault);
        let per_party = run3(|net| async move {
            let inputs = &shared[net.me().index()];
            match fault {
                Some(f) if net.me() == PartyId::P1 => {
                    let s = Session::establish(f.wrap(net)).await.unwrap();
                    two_runs(s, mode, program, inputs).await
                }
                _ => {
                    let s = Session::establish(net).await.unwrap();
                    two_runs(s, mode, program, inputs).await
                }
            }
        });
        let by_run = (0..2)
            .map(|k| std::array::from_fn(|p| per_party[p][k].clone()))
            .collect();
        (by_run, want)
    }

    type Runs = Result<Shares, String>;

    /// `program` twice on session `s` in `mode`: this party's components of `z` per run.
    async fn two_runs<T: Transport>(
        mut s: Session<T>,
        mode: SecurityMode,
        program: &ValidatedProgram,
        inputs: &HashMap<String, InputValue>,
    ) -> Vec<Runs> {
        s.set_security(mode);
        let mut out = Vec::new();
        for _ in 0..2 {
            out.push(match s.run(program, inputs.clone()).await {
                Ok((mut o, _)) => match o.remove("z") {
                    Some(OutputValue::Shares(z)) => Ok(z),
                    _ => Err("no shares of z".to_string()),
                },
                Err(e) => Err(e.to_string()),
            });
        }
        out
    }

    /// `z` of one run, z_0 + z_1 + z_2 from each party's `own`, after checking that both copies
    /// of every component agree (the client's consistency check).
    fn reconstructed(run: &[Runs; 3]) -> Result<Vec<u64>, String> {
        let z: Vec<&Shares> = run
            .iter()
            .map(|r| r.as_ref().map_err(Clone::clone))
            .collect::<Result<_, _>>()?;
        for p in 0..3 {
            // P_p's `next` is P_{p+1}'s `own`.
            let q = (p + 1) % 3;
            if let Some(i) = (0..z[p].next.len()).find(|&i| z[p].next[i] != z[q].own[i]) {
                return Err(format!("P{p} and P{q} disagree on word {i} of z_{q}"));
            }
        }
        Ok((0..z[0].own.len())
            .map(|i| {
                z[0].own[i]
                    .wrapping_add(z[1].own[i])
                    .wrapping_add(z[2].own[i])
            })
            .collect())
    }

    #[test]
    fn an_altered_product_word_reaches_the_peer_once() {
        let (honest, want) = mul_twice(SecurityMode::SemiHonest, None);
        for run in &honest {
            assert_eq!(reconstructed(run).unwrap(), want);
        }
        let (faulty, want) = mul_twice(SecurityMode::SemiHonest, Some(Fault::new(spec(0))));
        // P1 sent z_1 to P0 with word 3 off by one: P0's copy of z_1 disagrees with P1's.
        assert_eq!(
            reconstructed(&faulty[0]).unwrap_err(),
            "P0 and P1 disagree on word 3 of z_1"
        );
        let (p0, p1) = (
            faulty[0][0].as_ref().unwrap(),
            faulty[0][1].as_ref().unwrap(),
        );
        assert_eq!(p0.next[3], p1.own[3].wrapping_add(1));
        // Only round 1 is altered: the second run of the session (later rounds) is not.
        assert_eq!(reconstructed(&faulty[1]).unwrap(), want);
    }

    #[test]
    fn an_altered_product_word_aborts_a_malicious_run_at_every_party() {
        let (honest, want) = mul_twice(SecurityMode::Malicious, None);
        for run in &honest {
            assert_eq!(reconstructed(run).unwrap(), want);
        }
        for word in [0, 3, 7] {
            for add in [1, -1, i64::MIN] {
                let fault = Fault::new(FaultSpec {
                    word,
                    add,
                    ..spec(0)
                });
                let (faulty, _) = mul_twice(SecurityMode::Malicious, Some(fault));
                for (p, r) in faulty[0].iter().enumerate() {
                    let e = r.as_ref().expect_err("no party returns outputs");
                    assert!(
                        e.starts_with("session aborted for inconsistency"),
                        "word {word} add {add} P{p}: {e}"
                    );
                }
            }
        }
    }
}
