//! Run the three parties of a session in one process (threads + in-memory transport), and the
//! client-side helpers around it: share a program's inputs, reconstruct its outputs.
//! Used by tests, benches and `veil bench --transport memory`.

use crate::engine::{InputValue, OutputValue, Outputs, Report, Session};
use crate::error::EngineError;
use crate::sharing::{ReconstructError, Shares, reconstruct, share3, share3_compact};
use crate::transport::{MemoryNetwork, MemoryTransport, SessionId};
use crate::verify::SecurityMode;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use veil_circuits::{
    ElemType, Owner, PartyId, RING32_MASK, Recipient, ValidatedProgram, Visibility,
};

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
    run_program3_in(program, inputs, SecurityMode::SemiHonest)
}

/// [`run_program3`] in a given security mode.
pub fn run_program3_in(
    program: &ValidatedProgram,
    inputs: [HashMap<String, InputValue>; 3],
    mode: SecurityMode,
) -> [PartyResult; 3] {
    let inputs = &inputs;
    run3(|net| async move {
        let me = crate::transport::Transport::me(&net);
        let mut session = Session::establish(net).await?;
        session.set_security(mode);
        session.run(program, inputs[me.index()].clone()).await
    })
}

/// Client side: turn plaintext inputs into each party's [`InputValue`]s — public inputs go to
/// everyone, client-owned secrets are shared with `share3` (Ring32 ones with `share3_compact`,
/// rotated by the input's position so each party gets both seeds of some), party-owned secrets
/// go to their owner. Ring32 words are taken mod 2^32.
pub fn share_inputs<R: rand::CryptoRng + rand::RngCore>(
    program: &ValidatedProgram,
    plain: &HashMap<String, Vec<u64>>,
    rng: &mut R,
) -> [HashMap<String, InputValue>; 3] {
    let mut out: [HashMap<String, InputValue>; 3] = Default::default();
    for (i, decl) in program.program().inputs.iter().enumerate() {
        let Some(v) = plain.get(&decl.name) else {
            continue;
        };
        if decl.ty.elem == ElemType::Ring32
            && decl.ty.vis == Visibility::Secret
            && matches!(decl.owner, Owner::Client(_))
        {
            let words: Vec<u32> = v.iter().map(|&w| w as u32).collect();
            let shared = share3_compact(&words, PartyId::from_index(i), rng);
            for (m, p) in out.iter_mut().zip(PartyId::ALL) {
                m.insert(
                    decl.name.clone(),
                    InputValue::Compact(Arc::new(shared.party(p))),
                );
            }
            continue;
        }
        let v = &if decl.ty.elem == ElemType::Ring32 {
            v.iter().map(|&w| w & RING32_MASK).collect()
        } else {
            v.clone()
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
/// consistency check (mod 2^32 for a Ring32 output).
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
                let mut words = reconstruct(&shares)?;
                if program.types()[decl.value.index()].elem == ElemType::Ring32 {
                    words.iter_mut().for_each(|w| *w &= RING32_MASK);
                }
                result.insert(decl.name.clone(), words);
            }
            None => {}
        }
    }
    Ok(result)
}
