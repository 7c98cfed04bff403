//! Where the engine's local work runs: heavy steps leave the async worker.
//!
//! On a multi-thread tokio runtime a session shares its worker with the node's peer links and
//! its other sessions, so a local step that takes milliseconds (a large matrix product, a wide
//! comparison layer) would stall them. A step whose estimated work exceeds [`HEAVY_WORK`] runs
//! under [`tokio::task::block_in_place`], which hands the worker's other tasks to another
//! thread for the step's duration. Light steps, the common case at small sizes where latency
//! is everything, run inline: a round then costs no thread hand-off. On a current-thread
//! runtime (tests, the in-process harness) every step runs inline.

use veil_circuits::cost::ProgramCost;
use veil_circuits::{Op, ValidatedProgram};

/// Estimated word operations above which a step leaves the worker (≈ 0.1 ms of work; the
/// hand-off costs tens of µs).
pub(super) const HEAVY_WORK: u64 = 1 << 17;

/// Estimated word operations of each op: m·k·n for matrix products, the operand length for
/// dot products, otherwise the operands' and result's lengths together.
fn op_work(program: &ValidatedProgram, i: usize) -> u64 {
    let types = program.types();
    let len = |v: veil_circuits::ValueId| types[v.index()].shape.len() as u64;
    let op = &program.program().ops[i];
    match op {
        Op::MatMul(a, b) | Op::MatMulRescale { a, b, .. } => {
            let n = match types[b.index()].shape {
                veil_circuits::Shape::Matrix(_, n) => n as u64,
                _ => 1,
            };
            len(*a).saturating_mul(n)
        }
        Op::Dot(a, _) => len(*a),
        _ => op
            .operands()
            .into_iter()
            .map(len)
            .fold(types[i].shape.len() as u64, u64::saturating_add),
    }
}

/// Estimated local work of each depth of the schedule: an interactive op of r rounds finishing
/// at depth d works in each of its rounds d − r + 1 ..= d, a local op at its depth.
pub(super) fn depth_work(program: &ValidatedProgram, cost: &ProgramCost) -> Vec<u64> {
    let mut work = vec![0u64; cost.rounds as usize + 1];
    for (i, &d) in cost.depth.iter().enumerate() {
        let w = op_work(program, i);
        let r = cost.per_op[i].rounds;
        for depth in (d + 1 - r.max(1))..=d {
            work[depth as usize] = work[depth as usize].saturating_add(w);
        }
    }
    work
}

/// Run `f` here, or under `block_in_place` when it is `heavy` and this is a multi-thread
/// runtime's worker.
pub(crate) fn run<R>(heavy: bool, f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let on_worker = heavy
        && Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if on_worker {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}
