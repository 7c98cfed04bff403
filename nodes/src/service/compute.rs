//! `veil.v1.Compute`: the client API of one node.
//!
//! Every call is authenticated by the caller's TLS client certificate (its SHA-256 fingerprint
//! must be listed in the node config) and authorised by [`crate::policy`]: a stored value may
//! be an input of a program only if the caller owns it, may receive it raw, or holds a grant
//! for that program (by content-hash id); the outputs may go only to a client the rules allow.
//! Results are returned only to their recipient. Outputs must go to a client: programs that
//! reveal values to the nodes (`Reveal` ops, outputs to parties) are refused here.
//!
//! Before a session runs, the node checks the program against its [`Limits`] (from the types,
//! before any allocation) and the three nodes compare the session binding
//! ([`veil_proto::binding`]); after it, the node signs a receipt ([`veil_proto::receipt`]). An id that
//! does not exist and one the caller may not use get the same answer (`NotFound`), so ids
//! cannot be probed.

use crate::limits::{LimitError, Limits};
use crate::peer::{GrpcTransport, OpenError, PeerMux};
use crate::policy::{Access, Refusal};
use crate::store::HeldValue;
use crate::store::{Removal, Store, StoreError, StoredResult, StoredValue};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use veil_circuits::PartyId;
use veil_circuits::{Op, Owner, Program, Recipient, ValidatedProgram, Visibility};
use veil_proto::binding::SessionBinding;
use veil_proto::convert::{check_id, grants, node_shares};
use veil_proto::pb;
use veil_proto::receipt::{ReceiptSigner, words_digest};
use veil_runtime::engine::{InputValue, OutputValue, Session};
use veil_runtime::error::{EngineError, TransportError};
use veil_runtime::sharing::Shares;
use veil_runtime::transport::{RoundId, SessionId, Transport};

/// The session round in which the three nodes exchange binding hashes (round 0: the key round
/// of `Session::establish`, which sessions keyed from the peer links never use).
const BINDING_ROUND: RoundId = RoundId(0);

/// The Compute service of one node.
pub struct ComputeService {
    me: PartyId,
    store: Arc<Store>,
    mux: Arc<PeerMux>,
    /// Client certificate fingerprint → client name.
    clients: HashMap<String, String>,
    limits: Limits,
    signer: Arc<ReceiptSigner>,
}

impl ComputeService {
    /// Service for party `me`; `clients` maps certificate fingerprints to client names.
    pub fn new(
        me: PartyId,
        store: Arc<Store>,
        mux: Arc<PeerMux>,
        clients: HashMap<String, String>,
        limits: Limits,
        signer: ReceiptSigner,
    ) -> Self {
        ComputeService {
            me,
            store,
            mux,
            clients,
            limits,
            signer: Arc::new(signer),
        }
    }

    /// The calling client's name, from its TLS certificate.
    fn caller<T>(&self, req: &Request<T>) -> Result<String, Status> {
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let first = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let fp = veil_proto::tls::cert_fingerprint(first.as_ref());
        self.clients.get(&fp).cloned().ok_or_else(|| {
            Status::permission_denied("this client certificate is not authorised on this node")
        })
    }

    /// The element count a request declares, checked against the value limit before anything
    /// of that size is allocated (a seed expands to whatever length is declared).
    fn declared_len(&self, what: &str, len: u64) -> Result<usize, Status> {
        self.limits.check_value(what, len).map_err(limit_status)?;
        usize::try_from(len).map_err(|_| Status::invalid_argument(format!("{what}: len too large")))
    }
}

/// One output's components as sent to the client.
fn output_shares((name, own, next): (String, Vec<u64>, Vec<u64>)) -> pb::OutputShares {
    pb::OutputShares {
        name,
        own: veil_runtime::kernels::words_to_le_bytes(&own).into(),
        next: veil_runtime::kernels::words_to_le_bytes(&next).into(),
    }
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn limit_status(e: LimitError) -> Status {
    Status::resource_exhausted(e.to_string())
}

/// Run `f` on the store from the blocking pool: a database write waits for its fsync and a
/// large read decodes megabytes, and neither may stall the runtime workers, which also carry
/// the peer links of every other session.
async fn on_store<T, F>(store: &Arc<Store>, f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

fn engine_status(e: EngineError) -> Status {
    match &e {
        EngineError::Round { .. } | EngineError::Setup(_) => Status::unavailable(e.to_string()),
        EngineError::Protocol { .. } => Status::aborted(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

fn open_status(e: OpenError) -> Status {
    match &e {
        OpenError::Reused(_) => Status::already_exists(e.to_string()),
        _ => Status::unavailable(e.to_string()),
    }
}

/// The answer for a value that is absent or that the caller may not use: the same for both,
/// so a client cannot probe which ids exist.
fn no_value(id: &str, caller: &str) -> Status {
    Status::not_found(format!(
        "no value '{id}' that '{caller}' may use in this program"
    ))
}

/// The answer for a result that is absent or addressed to someone else (the same for both).
fn no_result(id: &str, caller: &str) -> Status {
    Status::not_found(format!("no result '{id}' addressed to '{caller}'"))
}

/// The single client every output of `p` goes to, refusing programs that reveal to the nodes.
fn client_recipient(p: &ValidatedProgram) -> Result<String, Status> {
    let prog = p.program();
    if prog.ops.iter().any(|op| matches!(op, Op::Reveal(_))) {
        return Err(Status::invalid_argument(
            "programs that reveal values to the nodes (reveal ops) are not accepted over the Compute API",
        ));
    }
    let mut recipient: Option<&str> = None;
    for out in &prog.outputs {
        match &out.recipient {
            Recipient::Client(name) if recipient.is_none_or(|r| r == name.as_str()) => {
                recipient = Some(name)
            }
            Recipient::Client(_) => {
                return Err(Status::invalid_argument(
                    "all outputs of a program must go to the same client",
                ));
            }
            _ => {
                return Err(Status::invalid_argument(format!(
                    "output '{}' goes to a node; over the Compute API outputs must go to a client",
                    out.name
                )));
            }
        }
    }
    recipient
        .map(str::to_string)
        .ok_or_else(|| Status::invalid_argument("the program has no outputs"))
}

/// Sends this node's binding hash to both peers in the binding round and checks theirs: every
/// node runs the program only if all three received the same request (see [`veil_proto::binding`]).
async fn agree_on_binding(net: &GrpcTransport, binding: &[u8; 32]) -> Result<(), Status> {
    let me = net.me();
    let unavailable =
        |e: TransportError| Status::unavailable(format!("session binding round: {e}"));
    let msg = Bytes::copy_from_slice(binding);
    let (a, b) = tokio::join!(
        net.send(me.next(), BINDING_ROUND, msg.clone()),
        net.send(me.prev(), BINDING_ROUND, msg)
    );
    a.map_err(unavailable)?;
    b.map_err(unavailable)?;
    let (from_next, from_prev) = tokio::join!(
        net.recv(me.next(), BINDING_ROUND),
        net.recv(me.prev(), BINDING_ROUND)
    );
    let mut differ = Vec::new();
    for (peer, got) in [(me.next(), from_next), (me.prev(), from_prev)] {
        if got.map_err(unavailable)?.as_ref() != binding {
            differ.push(peer.to_string());
        }
    }
    if differ.is_empty() {
        Ok(())
    } else {
        Err(Status::aborted(format!(
            "session binding mismatch: {} received a different request (program, inputs, \
             caller or delivery) under this session id; no node ran it",
            differ.join(" and ")
        )))
    }
}

/// What an invoke request resolves to before its session runs.
struct Prepared {
    program: ValidatedProgram,
    recipient: String,
    inputs: HashMap<String, InputValue>,
    binding: [u8; 32],
}

impl ComputeService {
    /// Decodes, limits and authorises an invoke request: the program, its limits, each input
    /// bound to a stored value the caller may use (or an inline input), and the binding hash.
    async fn prepare(&self, caller: &str, r: &pb::InvokeRequest) -> Result<Prepared, Status> {
        if !r.inline_outputs {
            check_id("result", &r.result_id)?;
        }
        // One trip to the store: the program, whether the result id is taken, and the stored
        // values bound to the program's declared inputs (held ones come from the cache).
        let lookup = {
            let (program_id, result_id) = (r.program_id.clone(), r.result_id.clone());
            let check_result = !r.inline_outputs;
            let bound = r.inputs.clone();
            on_store(&self.store, move |s| {
                // Programs are public (List shows them all): NotFound is no oracle here.
                let json = s
                    .get_program(&program_id)
                    .map_err(store_status)?
                    .ok_or_else(|| Status::not_found(format!("no program '{program_id}'")))?;
                let program = Program::from_json(&json)
                    .and_then(|p| p.validate())
                    .map_err(|e| Status::internal(format!("stored program is invalid: {e}")))?;
                let taken = check_result && s.has_result(&result_id).map_err(store_status)?;
                let mut values = HashMap::new();
                for decl in &program.program().inputs {
                    if let Some(value_id) = bound.get(&decl.name) {
                        let v = s.get_value_held(value_id).map_err(store_status)?;
                        values.insert(decl.name.clone(), v);
                    }
                }
                Ok((program, taken, values))
            })
        };
        let (program, taken, mut stored) = lookup.await?;
        // Sizes come from the types: refuse before expanding a seed or building anything.
        self.limits.check_program(&program).map_err(limit_status)?;
        let recipient = client_recipient(&program)?;
        if r.inline_outputs {
            if recipient != caller {
                return Err(Status::permission_denied(format!(
                    "inline outputs go to the caller, but the program's recipient is '{recipient}'"
                )));
            }
        } else if taken {
            return Err(Status::already_exists(format!(
                "result '{}' exists",
                r.result_id
            )));
        }
        let program_id = program.id().to_string();
        let mut inputs = HashMap::new();
        for decl in &program.program().inputs {
            if !matches!(
                (decl.ty.vis, &decl.owner),
                (Visibility::Secret, Owner::Client(_))
            ) {
                return Err(Status::invalid_argument(format!(
                    "input '{}' must be a client-owned secret over the Compute API",
                    decl.name
                )));
            }
            let expected = decl.ty.shape.len();
            let shares = match (r.inputs.get(&decl.name), r.inline_inputs.get(&decl.name)) {
                (Some(_), Some(_)) => {
                    return Err(Status::invalid_argument(format!(
                        "program input '{}' is bound twice (stored and inline)",
                        decl.name
                    )));
                }
                (None, Some(s)) => {
                    if s.len != expected as u64 {
                        return Err(Status::invalid_argument(format!(
                            "inline input '{}' has {} elements, the program expects {expected}",
                            decl.name, s.len
                        )));
                    }
                    // An inline input is the caller's own: only it may receive what is
                    // derived from it.
                    if let Err(Refusal::Receive) =
                        Access::inline(caller).check(caller, &program_id, &recipient)
                    {
                        return Err(Status::permission_denied(format!(
                            "'{recipient}' may not receive outputs derived from inline input '{}'",
                            decl.name
                        )));
                    }
                    let field = format!("inline input '{}' ", decl.name);
                    let (own, next) = node_shares(&field, s, expected)?;
                    Arc::new(Shares { own, next })
                }
                (Some(value_id), None) => {
                    // From the node's value cache when held: a corpus or a model's weights
                    // is neither re-read nor copied per request.
                    let v: Arc<HeldValue> = stored
                        .remove(&decl.name)
                        .flatten()
                        .ok_or_else(|| no_value(value_id, caller))?;
                    match v.access.check(caller, &program_id, &recipient) {
                        Ok(()) => {}
                        Err(Refusal::Compute) => return Err(no_value(value_id, caller)),
                        Err(Refusal::Receive) => {
                            return Err(Status::permission_denied(format!(
                                "'{recipient}' may not receive outputs derived from value '{value_id}'"
                            )));
                        }
                    }
                    if v.shares.len() != expected {
                        return Err(Status::invalid_argument(format!(
                            "value '{value_id}' has {} elements, input '{}' expects {expected}",
                            v.shares.len(),
                            decl.name
                        )));
                    }
                    Arc::clone(&v.shares)
                }
                (None, None) => {
                    return Err(Status::invalid_argument(format!(
                        "program input '{}' is not bound",
                        decl.name
                    )));
                }
            };
            inputs.insert(decl.name.clone(), InputValue::Held(shares));
        }
        if let Some(extra) = r
            .inputs
            .keys()
            .chain(r.inline_inputs.keys())
            .find(|k| !inputs.contains_key(*k))
        {
            return Err(Status::invalid_argument(format!(
                "'{extra}' is not an input of the program"
            )));
        }
        let binding = SessionBinding::of_request(r, &program_id, caller).hash();
        Ok(Prepared {
            program,
            recipient,
            inputs,
            binding,
        })
    }
}

#[tonic::async_trait]
impl pb::compute_server::Compute for ComputeService {
    async fn store_value(
        &self,
        req: Request<pb::StoreValueRequest>,
    ) -> Result<Response<pb::StoreValueResponse>, Status> {
        let caller = self.caller(&req)?;
        let r = req.into_inner();
        check_id("value", &r.value_id)?;
        let shares = r.shares.unwrap_or_default();
        let len = self.declared_len("the value", shares.len)?;
        let grants = grants(r.grants)?;
        let (own, next) = node_shares("", &shares, len)?;
        let value = StoredValue {
            access: Access {
                owner: caller.clone(),
                grants,
                receive: r.receive,
            },
            own,
            next,
        };
        let id = r.value_id.clone();
        on_store(&self.store, move |s| {
            s.put_value_held(&id, value).map_err(store_status)
        })
        .await?;
        tracing::info!(party = %self.me, client = %caller, value = %r.value_id, len, "stored value");
        Ok(Response::new(pb::StoreValueResponse {
            value_id: r.value_id,
        }))
    }

    async fn store_program(
        &self,
        req: Request<pb::StoreProgramRequest>,
    ) -> Result<Response<pb::StoreProgramResponse>, Status> {
        let caller = self.caller(&req)?;
        let json = req.into_inner().program_json;
        let program = Program::from_json(&json)
            .map_err(|e| Status::invalid_argument(format!("program: {e}")))?;
        let valid = program
            .validate()
            .map_err(|e| Status::invalid_argument(format!("program: {e}")))?;
        client_recipient(&valid)?;
        self.limits.check_program(&valid).map_err(limit_status)?;
        let id = valid.id().to_string();
        let (key, json) = (id.clone(), valid.program().to_json());
        on_store(&self.store, move |s| {
            s.put_program(&key, &json).map_err(store_status)
        })
        .await?;
        tracing::info!(party = %self.me, client = %caller, program = %id, "stored program");
        Ok(Response::new(pb::StoreProgramResponse { program_id: id }))
    }

    async fn invoke(
        &self,
        req: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        let caller = self.caller(&req)?;
        let r = req.into_inner();
        let Prepared {
            program,
            recipient,
            inputs,
            binding,
        } = self.prepare(&caller, &r).await?;

        // Run this party's side of the session as a task on the node's runtime, beside the
        // peer links: a message's arrival, the session's step and its next send then need no
        // hand-off to another thread (each cross-thread wake costs tens of µs on a loaded VM).
        // The engine moves heavy local steps off the worker itself (`block_in_place`).
        // Keys come from the peer links' secrets: no key round (see `peer`).
        let start = std::time::Instant::now();
        let (transport, keys) = self
            .mux
            .open(SessionId(r.session))
            .await
            .map_err(open_status)?;
        let me = self.me;
        tracing::info!(party = %me, client = %caller, program = %r.program_id, session = r.session, "invoke");
        let run = tokio::spawn(async move {
            agree_on_binding(&transport, &binding).await?;
            let mut session = Session::with_keys(transport, &keys);
            drop(keys);
            let (outputs, report) = session.run(&program, inputs).await.map_err(engine_status)?;
            Ok::<_, Status>((outputs, report, start.elapsed()))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()));
        self.mux.close_session(SessionId(r.session));
        let (outputs, report, elapsed) = run.and_then(|r| r).inspect_err(|e| {
            tracing::warn!(party = %me, session = r.session, code = ?e.code(), "invoke failed: {}", e.message());
        })?;
        let mut outs = Vec::new();
        for (name, value) in outputs {
            if let OutputValue::Shares(s) = value {
                outs.push((name, s.own, s.next));
            }
        }
        outs.sort_by(|a, b| a.0.cmp(&b.0));
        let receipt = self.signer.sign(&binding, &words_digest(&outs));
        let mut inline = Vec::new();
        if r.inline_outputs {
            inline = outs.into_iter().map(output_shares).collect();
        } else {
            let result = StoredResult {
                recipient,
                outputs: outs,
                rounds: report.rounds,
                bytes_sent: report.bytes_sent,
            };
            let id = r.result_id.clone();
            on_store(&self.store, move |s| {
                s.put_result(&id, &result).map_err(store_status)
            })
            .await?;
        }
        tracing::info!(party = %me, session = r.session, rounds = report.rounds, bytes = report.bytes_sent, "invoke done");
        Ok(Response::new(pb::InvokeResponse {
            outputs: inline,
            result_id: r.result_id,
            rounds: report.rounds,
            bytes_sent: report.bytes_sent,
            session_micros: elapsed.as_micros() as u64,
            depth_micros: report
                .depth_done
                .iter()
                .map(|d| d.as_micros() as u64)
                .collect(),
            receipt: Some(receipt),
        }))
    }

    async fn get_result(
        &self,
        req: Request<pb::GetResultRequest>,
    ) -> Result<Response<pb::GetResultResponse>, Status> {
        let caller = self.caller(&req)?;
        let id = req.into_inner().result_id;
        let key = id.clone();
        let r = on_store(&self.store, move |s| {
            s.get_result(&key).map_err(store_status)
        })
        .await?
        .filter(|r| r.recipient == caller)
        .ok_or_else(|| no_result(&id, &caller))?;
        let outputs = r.outputs.into_iter().map(output_shares).collect();
        Ok(Response::new(pb::GetResultResponse { outputs }))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let caller = self.caller(&req)?;
        let id = req.into_inner().id;
        // A value first, then a result; each owner check and removal is one transaction
        // that reads only the owner, never the shares. Someone else's id and an absent one
        // get the same answer.
        on_store(&self.store, move |s| {
            if s.delete_value_of(&id, &caller).map_err(store_status)? == Removal::Removed {
                return Ok(());
            }
            match s.delete_result_for(&id, &caller).map_err(store_status)? {
                Removal::Removed => Ok(()),
                Removal::Refused | Removal::Absent => Err(Status::not_found(format!(
                    "no value or result '{id}' that '{caller}' may delete"
                ))),
            }
        })
        .await?;
        Ok(Response::new(pb::DeleteResponse { deleted: true }))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let caller = self.caller(&req)?;
        let listing = on_store(&self.store, move |s| {
            Ok(pb::ListResponse {
                values: s.list_values(&caller).map_err(store_status)?,
                programs: s.list_programs().map_err(store_status)?,
                results: s.list_results(&caller).map_err(store_status)?,
            })
        });
        Ok(Response::new(listing.await?))
    }
}
