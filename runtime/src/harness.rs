//! Run the three parties of a session in one process (threads + in-memory transport), and the
//! client-side helpers around it: share a program's inputs, reconstruct its outputs.
//! Used by tests, benches and `veil bench --transport memory`.

use crate::engine::{InputValue, OutputValue, Outputs, Report, Session};
use crate::error::EngineError;
use crate::sharing::{ReconstructError, Shares, reconstruct, share3};
use crate::transport::{MemoryNetwork, MemoryTransport, SessionId};
use std::collections::HashMap;
use std::future::Future;
use veil_circuits::{Owner, Recipient, ValidatedProgram, Visibility};

/// Run `f` once per party, each on its own thread with a single-threaded tokio runtime, over a
/// fresh in-memory network. Returns the three results in party order.
pub fn run3<T, F, Fut>(f: F) -> [T; 3]
where
    T: Send,
    F: Fn(MemoryTransport) -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let session = SessionId(rand::random());
    let nets = MemoryNetwork::connect(session);
    std::thread::scope(|s| {
        let f = &f;
        let handles = nets.map(|net| {
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("a current-thread tokio runtime builds");
                rt.block_on(f(net))
            })
        });
        handles.map(|h| match h.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    })
}

/// One party's result of a program run.
pub type PartyResult = Result<(Outputs, Report), EngineError>;

/// Establish a session and run `program` once at all three parties over an in-memory network.
pub fn run_program3(
    program: &ValidatedProgram,
    inputs: [HashMap<String, InputValue>; 3],
) -> [PartyResult; 3] {
    let inputs = &inputs;
    run3(|net| async move {
        let me = crate::transport::Transport::me(&net);
        let mut session = Session::establish(net).await?;
        session.run(program, inputs[me.index()].clone()).await
    })
}

/// Client side: turn plaintext inputs into each party's [`InputValue`]s — public inputs go to
/// everyone, client-owned secrets are shared with `share3`, party-owned secrets go to their owner.
pub fn share_inputs<R: rand::CryptoRng + rand::RngCore>(
    program: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    rng: &mut R,
) -> [HashMap<String, InputValue>; 3] {
    let mut out: [HashMap<String, InputValue>; 3] = Default::default();
    for decl in &program.program().inputs {
        let Some(v) = plain.get(&decl.name) else {
            continue;
        };
        match (decl.ty.vis, &decl.owner) {
            (Visibility::Public, _) => {
                for m in out.iter_mut() {
                    m.insert(decl.name.clone(), InputValue::Plain(v.clone()));
                }
            }
            (Visibility::Secret, Owner::Party(p)) => {
                out[p.index()].insert(decl.name.clone(), InputValue::Plain(v.clone()));
            }
            (Visibility::Secret, Owner::Client(_)) => {
                for (m, s) in out.iter_mut().zip(share3(v, rng)) {
                    m.insert(decl.name.clone(), InputValue::Shares(s));
                }
            }
        }
    }
    out
}

/// Client side: collect every output from the parties' results — plaintext from its recipient
/// (P0's copy for all-party and public outputs), client-bound shares reconstructed with the
/// consistency check.
pub fn collect_outputs(
    program: &ValidatedProgram,
    outputs: &[Outputs; 3],
) -> Result<HashMap<String, Vec<u64>>, ReconstructError> {
    let mut result = HashMap::new();
    for decl in &program.program().outputs {
        let from = match &decl.recipient {
            Recipient::Party(p) => p.index(),
            _ => 0,
        };
        match outputs[from].get(&decl.name) {
            Some(OutputValue::Plain(v)) => {
                result.insert(decl.name.clone(), v.clone());
            }
            Some(OutputValue::Shares(_)) => {
                let shares: [Shares; 3] =
                    std::array::from_fn(|i| match outputs[i].get(&decl.name) {
                        Some(OutputValue::Shares(s)) => s.clone(),
                        _ => Shares::default(),
                    });
                result.insert(decl.name.clone(), reconstruct(&shares)?);
            }
            None => {}
        }
    }
    Ok(result)
}
