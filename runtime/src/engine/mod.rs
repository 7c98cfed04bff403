//! The engine: runs a validated program on one party's shares, round by round.
//!
//! Schedule (as soon as possible): op `v` runs in round `depth(v)` = max depth of its operands
//! plus its own rounds (the cost model in `veil_circuits::cost`). In round r the engine first
//! starts **every** interactive op of depth r (their operands are ready), sends one message to
//! each peer holding all of their words, receives one message from each peer, finishes them,
//! then runs every local op of depth r in program order. A program of 1,000 independent
//! multiplications therefore takes one round, and the measured rounds equal the cost model.
//!
//! Security: the engine only moves shares between the protocols of [`crate::protocols`]; what
//! each party learns is what those protocols reveal (nothing, except values explicitly
//! revealed or output to it), plus the program, the shapes and the timing.
//!
//! The engine is the only async code in the runtime; its local work runs on the calling task's
//! thread, so a server should drive sessions from a blocking-friendly thread (not a tokio worker).

mod local;
pub mod report;
pub mod value;

pub use report::{OpTime, Report};
pub use value::{InputValue, OutputValue};

use crate::error::{EngineError, ProtocolError};
use crate::party::PartyCtx;
use crate::protocols::{
    Expect, InputRound, MulRound, RevealRound, RoundProtocol, TruncRound, exchange,
};
use crate::setup::KeyExchange;
use crate::sharing::Shares;
use crate::transport::{RoundId, Transport};
use bytes::Bytes;
use rand::TryRngCore;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use value::Val;
use veil_circuits::cost::program_cost;
use veil_circuits::{Op, Owner, PartyId, Recipient, Shape, ValidatedProgram, Visibility};

/// Outputs of one run at one party, by output name (only those this party receives or must
/// hand to a client).
pub type Outputs = HashMap<String, OutputValue>;

/// One party's side of a session: its context (keys, counters) and its links.
pub struct Session<T: Transport> {
    ctx: PartyCtx,
    net: T,
}

impl<T: Transport> Session<T> {
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
        })
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
        mut inputs: HashMap<String, InputValue>,
    ) -> Result<(Outputs, Report), EngineError> {
        let start = Instant::now();
        let me = self.ctx.id;
        let prog = program.program();
        let cost = program_cost(program);
        let op_inputs = take_inputs(me, program, &mut inputs)?;

        // Group ops and outputs by the round they finish in.
        let max_depth = cost.rounds as usize;
        let mut by_depth: Vec<Vec<usize>> = vec![Vec::new(); max_depth + 1];
        for (i, d) in cost.depth.iter().enumerate() {
            by_depth[*d as usize].push(i);
        }
        let mut outputs_by_depth: Vec<Vec<usize>> = vec![Vec::new(); max_depth + 1];
        for (o, out) in prog.outputs.iter().enumerate() {
            let d = cost.depth[out.value.index()] + cost.per_output[o].rounds;
            outputs_by_depth[d as usize].push(o);
        }
        // Release each value after the last round that reads it (outputs keep theirs).
        let mut last_depth: Vec<Option<usize>> = vec![None; prog.ops.len()];
        for (i, op) in prog.ops.iter().enumerate() {
            for v in op.operands() {
                let d = cost.depth[i] as usize;
                last_depth[v.index()] = Some(last_depth[v.index()].map_or(d, |x| x.max(d)));
            }
        }
        let mut release_at: Vec<Vec<usize>> = vec![Vec::new(); max_depth + 1];
        let kept: std::collections::HashSet<usize> =
            prog.outputs.iter().map(|o| o.value.index()).collect();
        for (v, d) in last_depth.iter().enumerate() {
            if let (Some(d), false) = (d, kept.contains(&v)) {
                release_at[*d].push(v);
            }
        }

        let mut vals: Vec<Option<Val>> = vec![None; prog.ops.len()];
        let mut op_inputs: Vec<Option<InputValue>> = op_inputs;
        let mut outputs = Outputs::new();
        let mut report = Report {
            party: me,
            rounds: 0,
            bytes_sent: 0,
            ops: Vec::new(),
            comm_time: Duration::ZERO,
            total: Duration::ZERO,
        };
        let mut op_time = vec![Duration::ZERO; prog.ops.len()];

        for depth in 0..=max_depth {
            // 1. Interactive ops and output reveals finishing in this round.
            let mut pending: Vec<(Slot, Pending)> = Vec::new();
            for &i in &by_depth[depth] {
                if cost.per_op[i].rounds == 0 {
                    continue;
                }
                let t = Instant::now();
                let p = self
                    .start_interactive(program, i, &vals, &mut op_inputs)
                    .map_err(|source| EngineError::Protocol {
                        op: i,
                        name: prog.ops[i].name(),
                        source,
                    })?;
                op_time[i] += t.elapsed();
                pending.push((Slot::Op(i), p));
            }
            for &o in &outputs_by_depth[depth] {
                let out = &prog.outputs[o];
                let Some(Val::Secret(s)) = &vals[out.value.index()] else {
                    continue;
                };
                let to = match out.recipient {
                    Recipient::Party(p) => Some(p),
                    _ => None,
                };
                pending.push((
                    Slot::Output(o),
                    Pending::Reveal(RevealRound::start(&self.ctx, s.clone(), to)),
                ));
            }
            if !pending.is_empty() {
                let round = self.ctx.next_round();
                report.rounds += 1;
                let to_next: Vec<&[u64]> = pending.iter().map(|(_, p)| p.to_next()).collect();
                let to_prev: Vec<&[u64]> = pending.iter().map(|(_, p)| p.to_prev()).collect();
                let expect: Vec<Expect> = pending.iter().map(|(_, p)| p.expect()).collect();
                report.bytes_sent += 8 * to_next
                    .iter()
                    .chain(&to_prev)
                    .map(|w| w.len() as u64)
                    .sum::<u64>();
                let t = Instant::now();
                let received = exchange(&self.net, round, &to_next, &to_prev, &expect)
                    .await
                    .map_err(|source| EngineError::Round { round, source })?;
                report.comm_time += t.elapsed();
                for ((slot, p), (fnx, fpv)) in pending.into_iter().zip(received) {
                    let t = Instant::now();
                    match slot {
                        Slot::Op(i) => {
                            let v = p.finish(fnx, fpv, round).map_err(|source| {
                                EngineError::Protocol {
                                    op: i,
                                    name: prog.ops[i].name(),
                                    source,
                                }
                            })?;
                            vals[i] = Some(v);
                            op_time[i] += t.elapsed();
                        }
                        Slot::Output(o) => {
                            let Pending::Reveal(r) = p else {
                                unreachable!("outputs are only revealed")
                            };
                            let words = r.finish(fnx, fpv, round).map_err(|source| {
                                EngineError::Protocol {
                                    op: prog.outputs[o].value.index(),
                                    name: "output",
                                    source,
                                }
                            })?;
                            if let Some(words) = words {
                                outputs.insert(
                                    prog.outputs[o].name.clone(),
                                    OutputValue::Plain(words),
                                );
                            }
                        }
                    }
                }
            }
            // 2. Local ops of this depth, in program order.
            for &i in &by_depth[depth] {
                if cost.per_op[i].rounds != 0 {
                    continue;
                }
                let t = Instant::now();
                let v = self.local_op(program, i, &vals, &mut op_inputs);
                vals[i] = Some(v);
                op_time[i] += t.elapsed();
            }
            // 3. Release values no later round reads.
            for &v in &release_at[depth] {
                vals[v] = None;
            }
        }

        // Outputs that need no round: public values and client-bound shares. A value's last
        // output takes it instead of copying it.
        let mut remaining_refs = vec![0usize; prog.ops.len()];
        for out in &prog.outputs {
            remaining_refs[out.value.index()] += 1;
        }
        for out in &prog.outputs {
            let v = out.value.index();
            remaining_refs[v] -= 1;
            let wanted = match &out.recipient {
                Recipient::Party(p) => *p == me,
                Recipient::AllParties | Recipient::Client(_) => true,
            };
            if !wanted || outputs.contains_key(&out.name) {
                continue;
            }
            let val = if remaining_refs[v] == 0 {
                vals[v].take()
            } else {
                vals[v].clone()
            };
            match val {
                Some(Val::Public(w)) => {
                    outputs.insert(out.name.clone(), OutputValue::Plain(w));
                }
                Some(Val::Secret(s)) if matches!(out.recipient, Recipient::Client(_)) => {
                    outputs.insert(out.name.clone(), OutputValue::Shares(s));
                }
                _ => {}
            }
        }
        report.ops = op_time
            .into_iter()
            .enumerate()
            .map(|(i, time)| OpTime {
                op: i,
                name: prog.ops[i].name(),
                time,
            })
            .collect();
        report.total = start.elapsed();
        Ok((outputs, report))
    }

    fn start_interactive(
        &mut self,
        program: &ValidatedProgram,
        i: usize,
        vals: &[Option<Val>],
        op_inputs: &mut [Option<InputValue>],
    ) -> Result<Pending, ProtocolError> {
        let prog = program.program();
        let types = program.types();
        let ctx = &mut self.ctx;
        let secret = |v: veil_circuits::ValueId| -> &Shares {
            match vals[v.index()].as_ref() {
                Some(Val::Secret(s)) => s,
                _ => unreachable!(
                    "the cost model marks this op interactive only for secret operands"
                ),
            }
        };
        Ok(match &prog.ops[i] {
            Op::Input { input } => {
                let decl = &prog.inputs[*input];
                let Owner::Party(owner) = decl.owner else {
                    unreachable!("only party-owned secret inputs are interactive")
                };
                let plain = match op_inputs[i].take() {
                    Some(InputValue::Plain(v)) => Some(v),
                    _ => None,
                };
                Pending::Input(InputRound::start(
                    ctx,
                    owner,
                    decl.ty.shape.len(),
                    plain.as_deref(),
                )?)
            }
            Op::Mul(a, b) => {
                let n = types[i].shape.len();
                let (x, y) = (bcast(secret(*a), n), bcast(secret(*b), n));
                Pending::Mul(MulRound::mul(ctx, &x, &y)?)
            }
            Op::Dot(a, b) => {
                let (rows, cols) = match types[a.index()].shape {
                    Shape::Matrix(r, c) => (r, c),
                    s => (1, s.len()),
                };
                Pending::Mul(MulRound::dot(ctx, secret(*a), secret(*b), rows, cols)?)
            }
            Op::MatMul(a, b) => {
                let (Shape::Matrix(m, k), Shape::Matrix(_, n)) =
                    (types[a.index()].shape, types[b.index()].shape)
                else {
                    unreachable!("validation checks matmul shapes")
                };
                Pending::Mul(MulRound::matmul(ctx, secret(*a), secret(*b), m, k, n)?)
            }
            Op::Rescale { a, bits } => Pending::Trunc(TruncRound::start(ctx, secret(*a), *bits)?),
            Op::Reveal(a) => Pending::Reveal(RevealRound::start(ctx, secret(*a).clone(), None)),
            other => unreachable!("{} is local", other.name()),
        })
    }

    fn local_op(
        &self,
        program: &ValidatedProgram,
        i: usize,
        vals: &[Option<Val>],
        op_inputs: &mut [Option<InputValue>],
    ) -> Val {
        let me = self.ctx.id;
        let prog = program.program();
        let types = program.types();
        let n = types[i].shape.len();
        let get = |v: veil_circuits::ValueId| -> &Val {
            vals[v.index()]
                .as_ref()
                .expect("operands are computed in an earlier round or earlier in this one")
        };
        let shape_of = |v: veil_circuits::ValueId| types[v.index()].shape;
        match &prog.ops[i] {
            Op::Input { .. } => match op_inputs[i].take() {
                Some(InputValue::Plain(v)) => Val::Public(v),
                Some(InputValue::Shares(s)) => Val::Secret(s),
                None => unreachable!("take_inputs checked every input"),
            },
            Op::Constant { values, .. } => Val::Public(values.clone()),
            Op::Add(a, b) => local::add(me, get(*a), get(*b), n, false),
            Op::Sub(a, b) => local::add(me, get(*a), get(*b), n, true),
            Op::Neg(a) => local::neg(get(*a)),
            Op::Mul(a, b) => local::mul_public(get(*a), get(*b), n).expect("public operand"),
            Op::Dot(a, b) => {
                let (rows, cols) = match shape_of(*a) {
                    Shape::Matrix(r, c) => (r, c),
                    s => (1, s.len()),
                };
                local::dot_public(get(*a), get(*b), rows, cols).expect("public operand")
            }
            Op::MatMul(a, b) => {
                let (Shape::Matrix(m, k), Shape::Matrix(_, nn)) = (shape_of(*a), shape_of(*b))
                else {
                    unreachable!("validation checks matmul shapes")
                };
                local::matmul_public(get(*a), get(*b), (m, k, nn)).expect("public operand")
            }
            Op::Sum { a, axis } => {
                let shape = shape_of(*a);
                local::map(get(*a), |w| local::sum(w, *axis, shape))
            }
            Op::Rescale { a, bits } => local::map(get(*a), |w| {
                let mut out = w.to_vec();
                crate::kernels::ring_shr_arith_assign(&mut out, *bits);
                out
            }),
            Op::Reshape { a, .. } => get(*a).clone(),
            Op::Slice { a, start, end } => {
                let shape = shape_of(*a);
                local::map(get(*a), |w| local::slice(w, shape, *start, *end))
            }
            Op::Concat(parts) => {
                let parts: Vec<&Val> = parts.iter().map(|p| get(*p)).collect();
                local::concat(me, &parts)
            }
            Op::Transpose(a) => {
                let Shape::Matrix(r, c) = shape_of(*a) else {
                    unreachable!("validation checks transpose shapes")
                };
                local::map(get(*a), |w| local::transpose(w, r, c))
            }
            Op::Reveal(_) => unreachable!("reveal is interactive"),
        }
    }
}

/// A scalar operand repeated to `n` elements; other operands are borrowed as they are.
fn bcast(s: &Shares, n: usize) -> std::borrow::Cow<'_, Shares> {
    if s.len() == 1 && n != 1 {
        std::borrow::Cow::Owned(Shares {
            own: vec![s.own[0]; n],
            next: vec![s.next[0]; n],
        })
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Where a finished protocol's result goes.
enum Slot {
    Op(usize),
    Output(usize),
}

/// A started one-round protocol of the current round.
enum Pending {
    Mul(MulRound),
    Trunc(TruncRound),
    Input(InputRound),
    Reveal(RevealRound),
}

/// Forward a call to whichever protocol a [`Pending`] holds.
macro_rules! dispatch {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            Pending::Mul($p) => $e,
            Pending::Trunc($p) => $e,
            Pending::Input($p) => $e,
            Pending::Reveal($p) => $e,
        }
    };
}

impl Pending {
    fn to_next(&self) -> &[u64] {
        dispatch!(self, p => p.to_next())
    }
    fn to_prev(&self) -> &[u64] {
        dispatch!(self, p => p.to_prev())
    }
    fn expect(&self) -> Expect {
        dispatch!(self, p => p.expect())
    }
    fn finish(
        self,
        from_next: Vec<u64>,
        from_prev: Vec<u64>,
        round: RoundId,
    ) -> Result<Val, ProtocolError> {
        Ok(match self {
            Pending::Mul(p) => Val::Secret(p.finish(from_next, from_prev, round)?),
            Pending::Trunc(p) => Val::Secret(p.finish(from_next, from_prev, round)?),
            Pending::Input(p) => Val::Secret(p.finish(from_next, from_prev, round)?),
            Pending::Reveal(p) => {
                Val::Public(p.finish(from_next, from_prev, round)?.unwrap_or_default())
            }
        })
    }
}

/// Check this party's inputs against the program and place them at their `Input` ops.
fn take_inputs(
    me: PartyId,
    program: &ValidatedProgram,
    inputs: &mut HashMap<String, InputValue>,
) -> Result<Vec<Option<InputValue>>, EngineError> {
    let prog = program.program();
    let declared: std::collections::HashSet<&str> =
        prog.inputs.iter().map(|d| d.name.as_str()).collect();
    if let Some(name) = inputs.keys().find(|k| !declared.contains(k.as_str())) {
        return Err(EngineError::UnknownInput {
            party: me,
            name: name.clone(),
        });
    }
    let mut placed: Vec<Option<InputValue>> = vec![None; prog.ops.len()];
    for (i, op) in prog.ops.iter().enumerate() {
        let Op::Input { input } = op else { continue };
        let decl = &prog.inputs[*input];
        let n = decl.ty.shape.len();
        let name = decl.name.clone();
        let given = inputs.remove(&decl.name);
        let kind_err = |expected| EngineError::InputKind {
            party: me,
            name: name.clone(),
            expected,
        };
        let check_len = |actual: usize| {
            if actual == n {
                Ok(())
            } else {
                Err(EngineError::InputLength {
                    party: me,
                    name: name.clone(),
                    expected: n,
                    actual,
                })
            }
        };
        placed[i] = match (decl.ty.vis, &decl.owner, given) {
            (Visibility::Public, _, Some(InputValue::Plain(v))) => {
                check_len(v.len())?;
                Some(InputValue::Plain(v))
            }
            (Visibility::Public, _, Some(_)) => return Err(kind_err("plaintext (it is public)")),
            (Visibility::Secret, Owner::Party(p), Some(InputValue::Plain(v))) if *p == me => {
                check_len(v.len())?;
                Some(InputValue::Plain(v))
            }
            (Visibility::Secret, Owner::Party(p), None) if *p != me => None,
            (Visibility::Secret, Owner::Party(p), Some(_)) if *p != me => {
                return Err(kind_err("nothing (another party owns it)"));
            }
            (Visibility::Secret, Owner::Party(_), Some(_)) => {
                return Err(kind_err("plaintext (this party owns it)"));
            }
            (Visibility::Secret, Owner::Client(_), Some(InputValue::Shares(s))) => {
                check_len(s.own.len())?;
                check_len(s.next.len())?;
                Some(InputValue::Shares(s))
            }
            (Visibility::Secret, Owner::Client(_), Some(_)) => {
                return Err(kind_err("shares (a client owns it)"));
            }
            (_, _, None) => {
                return Err(EngineError::MissingInput { party: me, name });
            }
        };
    }
    Ok(placed)
}
