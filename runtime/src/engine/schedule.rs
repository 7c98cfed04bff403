//! Scheduling: which op runs in which round, and the round loop that batches every interactive
//! op of a round into one message per peer.
//!
//! The schedule is the cost model's ([`veil_circuits::cost::program_cost`]): op `v` completes
//! in round `depth(v)` = max depth of its operands plus its own rounds. An interactive op of
//! `r` rounds completing at depth `d` starts at depth `d − r + 1` (its operands are ready by the
//! end of depth `d − r`). At each depth the loop
//!
//! 1. starts every interactive op (and output reveal) whose first round this is
//!    ([`dispatch::start`]);
//! 2. sends one message to each peer with the words of every protocol in flight, receives one
//!    from each, and steps every protocol;
//! 3. runs every local op of this depth in program order ([`dispatch::local`]), then drops the
//!    values no later depth reads.
//!
//! A program of 1,000 independent multiplications therefore takes one round, and the measured
//! rounds equal the cost model. The loop checks the cost model against the protocols as it
//! goes: a protocol that finishes in another round than its scheduled depth, a protocol still
//! in flight after the last round, or a schedule that does not fit the program fails the
//! session with a typed [`EngineError`].

use super::dispatch::{self, Operands, Pending};
use super::report::{OpTime, Report};
use super::value::{InputValue, OutputValue, Val};
use super::{Outputs, inputs, offload};
use crate::error::EngineError;
use crate::party::PartyCtx;
use crate::protocols::{Expect, RevealRound, RoundProtocol, Step, exchange};
use crate::sharing::{Shares, Shares32};
use crate::transport::Transport;
use crate::verify::{self, SecurityMode};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use veil_circuits::cost::ProgramCost;
use veil_circuits::{ElemType, Op, RING32_MASK, Recipient, ValidatedProgram};

/// Which ops and outputs start, run locally, finish and are released at each depth.
struct Plan {
    /// Last depth (the program's rounds).
    rounds: usize,
    /// Local ops, by depth.
    local_at: Vec<Vec<usize>>,
    /// Interactive ops, by the depth of their first round.
    start_at: Vec<Vec<usize>>,
    /// Depth at which each op completes.
    finish: Vec<usize>,
    /// Outputs revealed to a party (one round), by the depth of that round.
    reveal_at: Vec<Vec<usize>>,
    /// Values no later depth reads, by the depth after which they are dropped.
    release_at: Vec<Vec<usize>>,
}

impl Plan {
    /// The plan of `cost` for `program`, checked to fit it: every table as long as the program,
    /// every depth within the rounds, every op's rounds within its depth, a reveal one round.
    fn new(program: &ValidatedProgram, cost: &ProgramCost) -> Result<Plan, EngineError> {
        let prog = program.program();
        let bad = |what: String| Err(EngineError::Plan { what });
        let (ops, outs) = (prog.ops.len(), prog.outputs.len());
        if cost.depth.len() != ops || cost.per_op.len() != ops || cost.per_output.len() != outs {
            return bad(format!(
                "{} depths and {} op costs for {ops} ops, {} output costs for {outs} outputs",
                cost.depth.len(),
                cost.per_op.len(),
                cost.per_output.len()
            ));
        }
        // Every round is some op's or output's: this bounds what the tables below allocate.
        let total = cost
            .per_op
            .iter()
            .chain(&cost.per_output)
            .fold(0u64, |s, c| s.saturating_add(u64::from(c.rounds)));
        if u64::from(cost.rounds) > total {
            return bad(format!(
                "{} rounds, but the ops and outputs take {total} in all",
                cost.rounds
            ));
        }
        let rounds = cost.rounds as usize;
        let mut plan = Plan {
            rounds,
            local_at: vec![Vec::new(); rounds + 1],
            start_at: vec![Vec::new(); rounds + 1],
            finish: Vec::with_capacity(ops),
            reveal_at: vec![Vec::new(); rounds + 1],
            release_at: vec![Vec::new(); rounds + 1],
        };
        for (i, (&d, c)) in cost.depth.iter().zip(&cost.per_op).enumerate() {
            let (d, r) = (d as usize, c.rounds as usize);
            if d > rounds || r > d + 1 {
                return bad(format!(
                    "op {i} ({}) takes {r} rounds and completes at depth {d} of {rounds}",
                    prog.ops[i].name()
                ));
            }
            match r {
                0 => plan.local_at[d].push(i),
                r => plan.start_at[d + 1 - r].push(i),
            }
            plan.finish.push(d);
        }
        for (o, out) in prog.outputs.iter().enumerate() {
            let r = cost.per_output[o].rounds as usize;
            let d = cost.depth[out.value.index()] as usize + r;
            match r {
                0 => {}
                1 if d <= rounds => plan.reveal_at[d].push(o),
                _ => {
                    return bad(format!(
                        "output `{}` takes {r} rounds and completes at depth {d} of {rounds}",
                        out.name
                    ));
                }
            }
        }
        // Release each value after the last depth that reads it (outputs keep theirs).
        let mut last_read: Vec<Option<usize>> = vec![None; ops];
        for (i, op) in prog.ops.iter().enumerate() {
            for v in op.operands() {
                let d = plan.finish[i];
                let last = &mut last_read[v.index()];
                *last = Some(last.map_or(d, |x| x.max(d)));
            }
        }
        let kept: HashSet<usize> = prog.outputs.iter().map(|o| o.value.index()).collect();
        for (v, d) in last_read.iter().enumerate() {
            if let (Some(d), false) = (d, kept.contains(&v)) {
                plan.release_at[*d].push(v);
            }
        }
        Ok(plan)
    }
}

/// A protocol in flight: an op's, or the reveal of an output to a party.
enum Flight {
    Op { op: usize, proto: Pending },
    Output { output: usize, reveal: RevealRound },
}

impl Flight {
    fn to_next(&self) -> &[u64] {
        match self {
            Flight::Op { proto, .. } => proto.to_next(),
            Flight::Output { reveal, .. } => reveal.to_next(),
        }
    }

    fn to_prev(&self) -> &[u64] {
        match self {
            Flight::Op { proto, .. } => proto.to_prev(),
            Flight::Output { reveal, .. } => reveal.to_prev(),
        }
    }

    fn expect(&self) -> Expect {
        match self {
            Flight::Op { proto, .. } => proto.expect(),
            Flight::Output { reveal, .. } => reveal.expect(),
        }
    }
}

/// Run `program` at this party under the schedule of `cost`.
pub(super) async fn run<T: Transport>(
    ctx: &mut PartyCtx,
    net: &T,
    program: &ValidatedProgram,
    cost: &ProgramCost,
    mut inputs: HashMap<String, InputValue>,
    security: SecurityMode,
) -> Result<(Outputs, Report), EngineError> {
    let start = Instant::now();
    if security == SecurityMode::Malicious {
        verify::check_program(program, cost)?;
        ctx.start_tape();
    }
    let me = ctx.id;
    let prog = program.program();
    let plan = Plan::new(program, cost)?;
    let mut op_inputs = inputs::take_inputs(me, program, &mut inputs)?;

    let mut vals: Vec<Option<Val>> = vec![None; prog.ops.len()];
    let mut outputs = Outputs::new();
    let mut report = Report {
        party: me,
        rounds: 0,
        bytes_sent: 0,
        ops: Vec::new(),
        comm_time: Duration::ZERO,
        depth_done: Vec::with_capacity(plan.rounds + 1),
        total: Duration::ZERO,
        security,
        verify_rounds: 0,
        verify_bytes: 0,
    };
    let mut op_time = vec![Duration::ZERO; prog.ops.len()];
    // Ring32 values: a protocol's result words (below 2^32) become compact shares, a reveal's
    // sum is reduced mod 2^32.
    let ring32: Vec<bool> = program
        .types()
        .iter()
        .map(|t| t.elem == ElemType::Ring32)
        .collect();
    let schedule_error = |op: usize, what: String| EngineError::Schedule {
        op,
        name: prog.ops[op].name(),
        what,
    };

    // Protocols in flight: each sends and receives once per round until it is done.
    let mut active: Vec<Flight> = Vec::new();
    let work = offload::depth_work(program, cost);
    // One entry per depth 0..=rounds.
    for (depth, &depth_work) in work.iter().enumerate() {
        let heavy = depth_work >= offload::HEAVY_WORK;
        // 1. Start the interactive ops and output reveals whose first round is this one.
        offload::run(heavy, || -> Result<(), EngineError> {
            for &i in &plan.start_at[depth] {
                let t = Instant::now();
                let x = Operands {
                    program,
                    vals: &vals,
                    op: i,
                    me,
                };
                let proto = dispatch::start(ctx, &x, &mut op_inputs)?;
                op_time[i] += t.elapsed();
                active.push(Flight::Op { op: i, proto });
            }
            for &o in &plan.reveal_at[depth] {
                let out = &prog.outputs[o];
                let v = out.value.index();
                let s = match &vals[v] {
                    Some(Val::Secret(s)) => Shares::clone(s),
                    Some(Val::Secret32(s)) => s.to_u64(),
                    Some(Val::Public(_)) => {
                        return Err(schedule_error(
                            v,
                            format!("the cost model reveals public output `{}`", out.name),
                        ));
                    }
                    None => {
                        return Err(EngineError::MissingValue {
                            op: v,
                            name: "output",
                            operand: out.value,
                        });
                    }
                };
                let to = match out.recipient {
                    Recipient::Party(p) => Some(p),
                    _ => None,
                };
                let reveal = RevealRound::start(ctx, s, to);
                active.push(Flight::Output { output: o, reveal });
            }
            Ok(())
        })?;
        // 2. One exchange for every protocol in flight.
        if !active.is_empty() {
            let round = ctx.next_round();
            report.rounds += 1;
            let to_next: Vec<&[u64]> = active.iter().map(Flight::to_next).collect();
            let to_prev: Vec<&[u64]> = active.iter().map(Flight::to_prev).collect();
            let expect: Vec<Expect> = active.iter().map(Flight::expect).collect();
            report.bytes_sent += 8 * to_next
                .iter()
                .chain(&to_prev)
                .map(|w| w.len() as u64)
                .sum::<u64>();
            let t = Instant::now();
            let received = exchange(net, round, &to_next, &to_prev, &expect)
                .await
                .map_err(|source| EngineError::Round { round, source })?;
            report.comm_time += t.elapsed();
            let in_flight = std::mem::take(&mut active);
            offload::run(heavy, || -> Result<(), EngineError> {
                for (flight, (fnx, fpv)) in in_flight.into_iter().zip(received) {
                    let t = Instant::now();
                    match flight {
                        Flight::Op { op: i, proto } => {
                            let protocol_error = |source| EngineError::Protocol {
                                op: i,
                                name: prog.ops[i].name(),
                                source,
                            };
                            let done = match proto {
                                Pending::Multi(m) => {
                                    match m.step(ctx, fnx, fpv, round).map_err(protocol_error)? {
                                        Step::More(m) => {
                                            active.push(Flight::Op {
                                                op: i,
                                                proto: Pending::Multi(m),
                                            });
                                            None
                                        }
                                        Step::Done(v) if ring32[i] => {
                                            Some(Val::secret32(Shares32::narrow(&v)))
                                        }
                                        Step::Done(v) => Some(Val::secret(v)),
                                    }
                                }
                                Pending::Reveal(r) => {
                                    let words =
                                        r.finish(fnx, fpv, round).map_err(protocol_error)?;
                                    Some(Val::Public(words.unwrap_or_default()))
                                }
                            };
                            let finish = plan.finish[i];
                            match (done, depth == finish) {
                                (Some(v), true) => {
                                    record_input(ctx, program, i, &v);
                                    vals[i] = Some(v);
                                }
                                (Some(_), false) => {
                                    return Err(schedule_error(
                                        i,
                                        format!(
                                            "its protocol finished at depth {depth}, the cost \
                                             model says {finish}"
                                        ),
                                    ));
                                }
                                (None, true) => {
                                    return Err(schedule_error(
                                        i,
                                        format!(
                                            "its protocol needs more rounds than the cost \
                                             model's, which end at depth {finish}"
                                        ),
                                    ));
                                }
                                (None, false) => {}
                            }
                            op_time[i] += t.elapsed();
                        }
                        Flight::Output { output: o, reveal } => {
                            let out = &prog.outputs[o];
                            let words = reveal.finish(fnx, fpv, round).map_err(|source| {
                                EngineError::Protocol {
                                    op: out.value.index(),
                                    name: "output",
                                    source,
                                }
                            })?;
                            if let Some(mut words) = words {
                                if ring32[out.value.index()] {
                                    words.iter_mut().for_each(|w| *w &= RING32_MASK);
                                }
                                outputs.insert(out.name.clone(), OutputValue::Plain(words));
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }
        // 3. Local ops of this depth, in program order; then release values no later round
        //    reads.
        offload::run(heavy, || -> Result<(), EngineError> {
            for &i in &plan.local_at[depth] {
                let t = Instant::now();
                let x = Operands {
                    program,
                    vals: &vals,
                    op: i,
                    me,
                };
                let v = dispatch::local(&x, &mut op_inputs)?;
                record_input(ctx, program, i, &v);
                vals[i] = Some(v);
                op_time[i] += t.elapsed();
            }
            for &v in &plan.release_at[depth] {
                vals[v] = None;
            }
            Ok(())
        })?;
        report.depth_done.push(start.elapsed());
    }
    if let Some(first) = active.first() {
        let op = match first {
            Flight::Op { op, .. } => *op,
            Flight::Output { output, .. } => prog.outputs[*output].value.index(),
        };
        return Err(EngineError::InFlight {
            op,
            name: prog.ops[op].name(),
            count: active.len(),
        });
    }

    // Malicious mode: nothing leaves the engine before the session's checks pass.
    if security == SecurityMode::Malicious {
        verify::run(ctx, net, &mut report).await?;
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
            // Compact shares go out as words below 2^32; the client reconstructs mod 2^32.
            Some(Val::Secret32(s)) if matches!(out.recipient, Recipient::Client(_)) => {
                outputs.insert(out.name.clone(), OutputValue::Shares(s.to_u64()));
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

/// Malicious mode: record the digests of an input's components when its value is bound, for
/// the verification's input-consistency check.
fn record_input(ctx: &mut PartyCtx, program: &ValidatedProgram, op: usize, v: &Val) {
    let prog = program.program();
    let (Some(tape), Op::Input { input }) = (ctx.tape.as_mut(), &prog.ops[op]) else {
        return;
    };
    let name = &prog.inputs[*input].name;
    match v {
        Val::Secret(s) => tape.input(name, s),
        Val::Secret32(s) => tape.input(name, &s.to_u64()),
        Val::Public(_) => {}
    }
}

#[cfg(test)]
mod tests {
    //! A schedule that disagrees with the protocols fails the session at every party with a
    //! typed error; no party panics or waits for a round that never comes.

    use super::super::Session;
    use crate::error::EngineError;
    use crate::harness::{run3, share_inputs};
    use crate::testing::test_rng;
    use std::collections::HashMap;
    use veil_circuits::cost::{ProgramCost, program_cost};
    use veil_circuits::{Builder, Ring, ValidatedProgram};

    /// `z = op(x, y)` on two client-owned secret vectors, output to the client.
    fn program(
        op: impl Fn(&mut Builder, veil_circuits::Value, veil_circuits::Value) -> veil_circuits::Value,
    ) -> ValidatedProgram {
        let mut b = Builder::new();
        let x = b.secret_vector("x", 4, Ring);
        let y = b.secret_vector("y", 4, Ring);
        let z = op(&mut b, x, y);
        b.output_to_client("z", z);
        b.finish().expect("valid")
    }

    /// Run `program` at all three parties under `cost`.
    fn run_with(program: &ValidatedProgram, cost: &ProgramCost) -> [Result<(), EngineError>; 3] {
        let plain = HashMap::from([
            ("x".to_string(), vec![1, 2, 3, 4]),
            ("y".to_string(), vec![5, 6, 7, u64::MAX]),
        ]);
        let inputs = share_inputs(program, &plain, &mut test_rng());
        let inputs = &inputs;
        run3(|net| async move {
            let me = crate::transport::Transport::me(&net);
            let mut s = Session::establish(net).await?;
            s.run_scheduled(program, cost, inputs[me.index()].clone())
                .await
                .map(|_| ())
        })
    }

    /// The op `z = op(x, y)` of [`program`] and a schedule that says it takes `rounds`
    /// rounds (its operands are inputs, ready at depth 0).
    fn claim_rounds(p: &ValidatedProgram, rounds: u32) -> (usize, ProgramCost) {
        let mut cost = program_cost(p);
        let z = p.program().ops.len() - 1;
        (cost.per_op[z].rounds, cost.depth[z], cost.rounds) = (rounds, rounds, rounds);
        (z, cost)
    }

    /// Every party fails with an error `check` accepts.
    fn all_fail(p: &ValidatedProgram, cost: &ProgramCost, check: impl Fn(&EngineError) -> bool) {
        for r in run_with(p, cost) {
            let err = r.expect_err("an inconsistent schedule");
            assert!(check(&err), "{err}");
        }
    }

    #[test]
    fn the_real_schedule_runs() {
        let p = program(|b, x, y| b.mul(x, y));
        for r in run_with(&p, &program_cost(&p)) {
            r.expect("the cost model's schedule");
        }
    }

    #[test]
    fn a_secret_product_scheduled_local_fails_the_session() {
        let p = program(|b, x, y| b.mul(x, y));
        let (z, cost) = claim_rounds(&p, 0);
        all_fail(
            &p,
            &cost,
            |e| matches!(e, EngineError::Schedule { op, name: "mul", .. } if *op == z),
        );
    }

    #[test]
    fn a_protocol_longer_than_its_cost_fails_the_session() {
        // Lt takes 8 rounds; the schedule gives it 1.
        let p = program(|b, x, y| b.lt(x, y));
        let (z, cost) = claim_rounds(&p, 1);
        all_fail(
            &p,
            &cost,
            |e| matches!(e, EngineError::Schedule { op, name: "lt", what } if *op == z && what.contains("more rounds")),
        );
    }

    #[test]
    fn a_protocol_shorter_than_its_cost_fails_the_session() {
        // Mul takes 1 round; the schedule gives it 2.
        let p = program(|b, x, y| b.mul(x, y));
        let (z, cost) = claim_rounds(&p, 2);
        all_fail(
            &p,
            &cost,
            |e| matches!(e, EngineError::Schedule { op, what, .. } if *op == z && what.contains("finished at depth 1")),
        );
    }

    #[test]
    fn a_secret_operand_of_a_local_comparison_is_a_typed_error() {
        // A comparison is local only on public words; the schedule makes a secret one local.
        let p = program(|b, x, y| b.lt(x, y));
        let (_, cost) = claim_rounds(&p, 0);
        all_fail(&p, &cost, |e| {
            matches!(
                e,
                EngineError::OperandKind {
                    expected: "public",
                    found: "secret",
                    ..
                }
            )
        });
    }

    #[test]
    fn a_schedule_that_does_not_fit_the_program_is_rejected() {
        let p = program(|b, x, y| b.add(x, y));
        let mut bad_depth = program_cost(&p);
        bad_depth.depth[0] = 7; // beyond the program's 0 rounds
        let mut short = program_cost(&p);
        short.per_op.pop();
        let mut huge = program_cost(&p);
        huge.rounds = u32::MAX; // no op takes a round
        for cost in [bad_depth, short, huge] {
            all_fail(&p, &cost, |e| matches!(e, EngineError::Plan { .. }));
        }
    }
}
