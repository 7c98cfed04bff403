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
//! The engine is the only async code in the runtime. Its local work runs on the calling task's
//! thread, except steps estimated heavy, which leave a multi-thread runtime's worker
//! (`block_in_place`, see `offload`), so a server can drive sessions as ordinary tasks beside
//! its network I/O.

mod local;
mod offload;
pub mod report;
pub mod value;

pub use report::{OpTime, Report};
pub use value::{InputValue, OutputValue};

use crate::error::{EngineError, ProtocolError};
use crate::party::PartyCtx;
use crate::protocols::compare::Target;
use crate::protocols::compose::{OneRound, Then};
use crate::protocols::mul_trunc::MulTruncRound;
use crate::protocols::{
    Expect, InputRound, MulRound, MultiRound, RevealRound, RoundProtocol, Step, TruncRound,
    compare, exchange, select,
};
use crate::setup::{KeyExchange, PairwiseKeys};
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
    /// A session whose pairwise PRF keys are already agreed (e.g. derived from the secrets
    /// of long-lived peer links, [`crate::setup::PairwiseKeys::from_links`]): no setup round.
    pub fn with_keys(net: T, keys: &PairwiseKeys) -> Self {
        Session {
            ctx: PartyCtx::new(net.me(), net.session(), keys),
            net,
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

        // Local ops run at their depth; an interactive op of r rounds finishing in round d
        // starts in round d − r + 1 (its operands are ready by the end of round d − r).
        let max_depth = cost.rounds as usize;
        let mut local_at: Vec<Vec<usize>> = vec![Vec::new(); max_depth + 1];
        let mut start_at: Vec<Vec<usize>> = vec![Vec::new(); max_depth + 1];
        for (i, d) in cost.depth.iter().enumerate() {
            match cost.per_op[i].rounds {
                0 => local_at[*d as usize].push(i),
                r => start_at[(*d - r + 1) as usize].push(i),
            }
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
            depth_done: Vec::with_capacity(max_depth + 1),
            total: Duration::ZERO,
        };
        let mut op_time = vec![Duration::ZERO; prog.ops.len()];

        // Protocols in flight: each sends and receives once per round until it is done.
        let mut active: Vec<(Slot, Pending)> = Vec::new();
        let work = offload::depth_work(program, &cost);
        for depth in 0..=max_depth {
            let heavy = work[depth] >= offload::HEAVY_WORK;
            // 1. Start the interactive ops and output reveals whose first round is this one.
            offload::run(heavy, || -> Result<(), EngineError> {
                for &i in &start_at[depth] {
                    let t = Instant::now();
                    let p = self
                        .start_interactive(program, i, &vals, &mut op_inputs)
                        .map_err(|source| EngineError::Protocol {
                            op: i,
                            name: prog.ops[i].name(),
                            source,
                        })?;
                    op_time[i] += t.elapsed();
                    active.push((Slot::Op(i), p));
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
                    active.push((
                        Slot::Output(o),
                        Pending::Reveal(RevealRound::start(&self.ctx, Shares::clone(s), to)),
                    ));
                }
                Ok(())
            })?;
            // 2. One exchange for every protocol in flight.
            if !active.is_empty() {
                let round = self.ctx.next_round();
                report.rounds += 1;
                let to_next: Vec<&[u64]> = active.iter().map(|(_, p)| p.to_next()).collect();
                let to_prev: Vec<&[u64]> = active.iter().map(|(_, p)| p.to_prev()).collect();
                let expect: Vec<Expect> = active.iter().map(|(_, p)| p.expect()).collect();
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
                let in_flight = std::mem::take(&mut active);
                offload::run(heavy, || -> Result<(), EngineError> {
                    for ((slot, p), (fnx, fpv)) in in_flight.into_iter().zip(received) {
                        let t = Instant::now();
                        match (slot, p) {
                            (Slot::Op(i), Pending::Multi(m)) => {
                                let step =
                                    m.step(&mut self.ctx, fnx, fpv, round).map_err(|source| {
                                        EngineError::Protocol {
                                            op: i,
                                            name: prog.ops[i].name(),
                                            source,
                                        }
                                    })?;
                                match step {
                                    Step::More(m) => active.push((Slot::Op(i), Pending::Multi(m))),
                                    Step::Done(v) => vals[i] = Some(Val::secret(v)),
                                }
                                op_time[i] += t.elapsed();
                            }
                            (Slot::Op(i), Pending::Reveal(r)) => {
                                let words = r.finish(fnx, fpv, round).map_err(|source| {
                                    EngineError::Protocol {
                                        op: i,
                                        name: prog.ops[i].name(),
                                        source,
                                    }
                                })?;
                                vals[i] = Some(Val::Public(words.unwrap_or_default()));
                                op_time[i] += t.elapsed();
                            }
                            (Slot::Output(o), Pending::Reveal(r)) => {
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
                            (Slot::Output(_), Pending::Multi(_)) => {
                                unreachable!("outputs are only revealed")
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            // 3. Local ops of this depth, in program order; then release values no later
            //    round reads.
            offload::run(heavy, || {
                for &i in &local_at[depth] {
                    let t = Instant::now();
                    let v = self.local_op(program, i, &vals, &mut op_inputs);
                    vals[i] = Some(v);
                    op_time[i] += t.elapsed();
                }
                for &v in &release_at[depth] {
                    vals[v] = None;
                }
            });
            report.depth_done.push(start.elapsed());
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
                    let s = std::sync::Arc::unwrap_or_clone(s);
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
        let me = ctx.id;
        let n = types[i].shape.len();
        let val = |v: veil_circuits::ValueId| -> &Val {
            vals[v.index()]
                .as_ref()
                .expect("operands are computed before the op starts")
        };
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
                one(InputRound::start(
                    ctx,
                    owner,
                    decl.ty.shape.len(),
                    plain.as_deref(),
                )?)
            }
            Op::Mul(a, b) => {
                let (x, y) = (bcast(secret(*a), n), bcast(secret(*b), n));
                one(MulRound::mul(ctx, &x, &y)?)
            }
            Op::Dot(a, b) => {
                let (rows, cols) = match types[a.index()].shape {
                    Shape::Matrix(r, c) => (r, c),
                    s => (1, s.len()),
                };
                one(MulRound::dot(ctx, secret(*a), secret(*b), rows, cols)?)
            }
            Op::MatMul(a, b) => {
                let (Shape::Matrix(m, k), Shape::Matrix(_, n)) =
                    (types[a.index()].shape, types[b.index()].shape)
                else {
                    unreachable!("validation checks matmul shapes")
                };
                one(MulRound::matmul(ctx, secret(*a), secret(*b), m, k, n)?)
            }
            Op::Rescale { a, bits } => one(TruncRound::start(ctx, secret(*a), *bits)?),
            Op::MatMulRescale { a, b, bits } => {
                let (Shape::Matrix(m, k), Shape::Matrix(_, nn)) =
                    (types[a.index()].shape, types[b.index()].shape)
                else {
                    unreachable!("validation checks matmul shapes")
                };
                match (val(*a), val(*b)) {
                    (Val::Secret(x), Val::Secret(y)) => {
                        one(MulTruncRound::matmul(ctx, x, y, (m, k, nn), *bits)?)
                    }
                    // One public operand: the product is local, then one truncation round.
                    (x, y) => match local::matmul_public(x, y, (m, k, nn)) {
                        Some(Val::Secret(p)) => one(TruncRound::start(ctx, &p, *bits)?),
                        _ => unreachable!(
                            "the cost model marks this op interactive only for a secret operand"
                        ),
                    },
                }
            }
            Op::Reveal(a) => Pending::Reveal(RevealRound::start(ctx, secret(*a).clone(), None)),
            Op::Ltz(a) => {
                let x = shares_of(me, val(*a), n);
                Pending::Multi(compare::ltz(ctx, &x)?)
            }
            Op::Lt(a, b) | Op::Ge(a, b) | Op::Gt(b, a) | Op::Le(b, a) => {
                // lt(a, b) = LTZ(a − b); ge = 1 − lt; gt(x, y) = lt(y, x); le = 1 − gt.
                let d = shares_of(me, val(*a), n).sub(&shares_of(me, val(*b), n));
                let m = compare::ltz(ctx, &d)?;
                match &prog.ops[i] {
                    Op::Ge(..) | Op::Le(..) => Pending::Multi(Then::boxed(m, move |_, l| {
                        Ok(Step::Done(one_minus(me, &l)))
                    })),
                    _ => Pending::Multi(m),
                }
            }
            Op::Eq(a, b) => {
                // eq = 1 − lt(a, b) − lt(b, a), both comparisons in one batch.
                let d = shares_of(me, val(*a), n).sub(&shares_of(me, val(*b), n));
                let both = d.concat(&d.neg());
                let m = compare::ltz(ctx, &both)?;
                Pending::Multi(Then::boxed(m, move |_, l| {
                    let (lt, gt) = (l.slice(0, n), l.slice(n, 2 * n));
                    Ok(Step::Done(one_minus(me, &lt).sub(&gt)))
                }))
            }
            Op::Relu(a) => {
                let x = shares_of(me, val(*a), n);
                let neg = x.neg();
                Pending::Multi(compare::ltz_blend(ctx, &x, x.clone().into_owned(), neg)?)
            }
            Op::Max(a, b) | Op::Min(a, b) => {
                let (sa, sb) = (shares_of(me, val(*a), n), shares_of(me, val(*b), n));
                let d = sa.sub(&sb);
                let (base, diff) = match &prog.ops[i] {
                    Op::Max(..) => (sa.into_owned(), d.neg()), // max = a + lt·(b − a)
                    _ => (sb.into_owned(), d.clone()),         // min = b + lt·(a − b)
                };
                Pending::Multi(compare::ltz_blend(ctx, &d, base, diff)?)
            }
            Op::Select { cond, a, b } => {
                let c = shares_of(me, val(*cond), n);
                let (sa, sb) = (shares_of(me, val(*a), n), shares_of(me, val(*b), n));
                let mul = MulRound::mul(ctx, &c, &sa.sub(&sb))?;
                let sb = sb.into_owned();
                Pending::Multi(Then::boxed(Box::new(OneRound(mul)), move |_, prod| {
                    Ok(Step::Done(prod.add(&sb)))
                }))
            }
            Op::MaxAll(a) => Pending::Multi(compare::tournament(ctx, secret(*a).clone(), None)?),
            Op::Bits(a) => Pending::Multi(compare::decompose(ctx, secret(*a), Target::Bits)?),
            Op::MsbOneHot { a, lanes } => Pending::Multi(compare::decompose(
                ctx,
                secret(*a),
                Target::MsbOneHot { lanes: *lanes },
            )?),
            Op::ArgMax(a) => {
                let x = secret(*a).clone();
                let idx = compare::index_shares(me, x.len());
                Pending::Multi(compare::tournament(ctx, x, Some(idx))?)
            }
            Op::BestK { a, k, largest } => {
                Pending::Multi(select::best_k(ctx, secret(*a).clone(), *k, *largest)?)
            }
            Op::OneHotLow { a, bits, n } => {
                Pending::Multi(select::onehot_low(ctx, secret(*a), *bits, *n)?)
            }
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
                Some(InputValue::Shares(s)) => Val::secret(s),
                Some(InputValue::Held(s)) => Val::Secret(s),
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
            Op::MatMulRescale { a, b, bits } => {
                let (Shape::Matrix(m, k), Shape::Matrix(_, nn)) = (shape_of(*a), shape_of(*b))
                else {
                    unreachable!("validation checks matmul shapes")
                };
                let p =
                    local::matmul_public(get(*a), get(*b), (m, k, nn)).expect("public operands");
                local::shr_arith(&p, *bits)
            }
            Op::Rescale { a, bits } => local::shr_arith(get(*a), *bits),
            Op::Reshape { a, .. } => get(*a).clone(),
            Op::Slice { a, start, end } => {
                let shape = shape_of(*a);
                local::map(get(*a), |w| local::slice(w, shape, *start, *end))
            }
            Op::Im2Col { a, geometry } => {
                let Shape::Matrix(batch, _) = shape_of(*a) else {
                    unreachable!("validation checks im2col shapes")
                };
                // Each component is patched alike: zero padding is a sharing of 0.
                local::map(get(*a), |w| veil_circuits::conv::im2col(w, batch, geometry))
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
            // Comparisons with only public operands, selections whose product has a public
            // factor, and one-element tournaments need no communication.
            Op::Ltz(a) => local::map(get(*a), |w| w.iter().map(|x| x >> 63).collect()),
            Op::Lt(a, b) | Op::Ge(a, b) | Op::Gt(b, a) | Op::Le(b, a) => {
                let d = local::add(me, get(*a), get(*b), n, true);
                let lt = local::map(&d, |w| w.iter().map(|x| x >> 63).collect());
                match &prog.ops[i] {
                    Op::Ge(..) | Op::Le(..) => {
                        local::map(&lt, |w| w.iter().map(|x| 1 - x).collect())
                    }
                    _ => lt,
                }
            }
            Op::Eq(a, b) => local::map(&local::add(me, get(*a), get(*b), n, true), |w| {
                w.iter()
                    .map(|d| {
                        1u64.wrapping_sub(d >> 63)
                            .wrapping_sub(d.wrapping_neg() >> 63)
                    })
                    .collect()
            }),
            Op::Relu(a) => local::map(get(*a), |w| {
                w.iter()
                    .map(|x| if x >> 63 == 1 { 0 } else { *x })
                    .collect()
            }),
            Op::Max(a, b) | Op::Min(a, b) => {
                let is_max = matches!(prog.ops[i], Op::Max(..));
                local::zip_public(get(*a), get(*b), n, |x, y| {
                    let lt = x.wrapping_sub(y) >> 63;
                    if is_max {
                        x.wrapping_add(lt.wrapping_mul(y.wrapping_sub(x)))
                    } else {
                        y.wrapping_add(lt.wrapping_mul(x.wrapping_sub(y)))
                    }
                })
            }
            Op::Select { cond, a, b } => {
                let diff = local::add(me, get(*a), get(*b), n, true);
                let prod = local::mul_public(get(*cond), &diff, n)
                    .expect("a local select has a public factor");
                local::add(me, &prod, get(*b), n, false)
            }
            Op::MaxAll(a) => match get(*a) {
                Val::Public(w) => Val::Public(vec![local::tournament_public(w).0]),
                secret => secret.clone(), // one element: it is the maximum
            },
            Op::Bits(a) => local::map(get(*a), |w| {
                w.iter()
                    .flat_map(|x| (0..64).map(move |i| (x >> i) & 1))
                    .collect()
            }),
            Op::MsbOneHot { a, lanes } => local::map(get(*a), |w| {
                w.iter()
                    .flat_map(|&x| {
                        let top = (x != 0).then(|| 63 - x.leading_zeros());
                        (0..*lanes).map(move |i| u64::from(top == Some(i)))
                    })
                    .collect()
            }),
            Op::ArgMax(a) => match get(*a) {
                Val::Public(w) => Val::Public(vec![local::tournament_public(w).1]),
                Val::Secret(_) => Val::secret(Shares::from_public(me, &[0])),
            },
            Op::BestK { a, k, largest } => match get(*a) {
                Val::Public(w) => {
                    Val::Public(veil_circuits::selection::topk_plain(w, *k, *largest))
                }
                Val::Secret(_) => unreachable!("a secret best_k is interactive"),
            },
            Op::OneHotLow { a, bits, n } => match get(*a) {
                Val::Public(w) => {
                    Val::Public(veil_circuits::selection::onehot_low_plain(w, *bits, *n))
                }
                Val::Secret(_) => unreachable!("a secret onehot_low is interactive"),
            },
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

/// A value as this party's shares (public words become the trivial sharing x_0 = v), a scalar
/// repeated to `n` elements; a secret of the right length is borrowed, not copied.
fn shares_of(me: PartyId, v: &Val, n: usize) -> std::borrow::Cow<'_, Shares> {
    match v {
        Val::Secret(s) => bcast(s, n),
        Val::Public(p) => {
            std::borrow::Cow::Owned(bcast(&Shares::from_public(me, p), n).into_owned())
        }
    }
}

/// 1 − l for shares of 0/1 values (local).
fn one_minus(me: PartyId, l: &Shares) -> Shares {
    l.neg().add_public(me, &vec![1u64; l.len()])
}

/// Where a finished protocol's result goes.
enum Slot {
    Op(usize),
    Output(usize),
}

/// A protocol in flight: arithmetic-share protocols of any number of rounds, or a reveal.
enum Pending {
    Multi(Box<dyn MultiRound>),
    Reveal(RevealRound),
}

impl Pending {
    fn to_next(&self) -> &[u64] {
        match self {
            Pending::Multi(p) => p.to_next(),
            Pending::Reveal(p) => p.to_next(),
        }
    }
    fn to_prev(&self) -> &[u64] {
        match self {
            Pending::Multi(p) => p.to_prev(),
            Pending::Reveal(p) => p.to_prev(),
        }
    }
    fn expect(&self) -> Expect {
        match self {
            Pending::Multi(p) => p.expect(),
            Pending::Reveal(p) => p.expect(),
        }
    }
}

/// A one-round protocol as a boxed [`MultiRound`].
fn one<P: RoundProtocol<Output = Shares> + 'static>(p: P) -> Pending {
    Pending::Multi(Box::new(OneRound(p)))
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
            (Visibility::Secret, Owner::Client(_), Some(InputValue::Held(s))) => {
                check_len(s.own.len())?;
                check_len(s.next.len())?;
                Some(InputValue::Held(s))
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
