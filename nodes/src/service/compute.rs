//! `veil.v1.Compute`: the client API of one node.
//!
//! Every call is authenticated by the caller's TLS client certificate (its SHA-256 fingerprint
//! must be listed in the node config) and authorised against the stored values' policies:
//! only the owner or a client in a value's `compute` list may use it as a program input, and a
//! program's outputs may only go to a client that is the owner or in the `receive` list of every
//! input. Results are returned only to their recipient. Outputs must go to a client: programs
//! that reveal values to the nodes (`Reveal` ops, outputs to parties) are refused here.

use crate::pb;
use crate::peer::{OpenError, PeerMux};
use crate::store::{Removal, Store, StoreError, StoredResult, StoredValue};
use crate::value_cache::HeldValue;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use veil_circuits::PartyId;
use veil_circuits::{Op, Owner, Program, Recipient, ValidatedProgram, Visibility};
use veil_runtime::engine::{InputValue, OutputValue, Session};
use veil_runtime::error::EngineError;
use veil_runtime::sharing::{SEED_BYTES, Shares, expand};
use veil_runtime::transport::SessionId;

/// Longest accepted id (value, result).
const MAX_ID_LEN: usize = 128;

/// The Compute service of one node.
pub struct ComputeService {
    me: PartyId,
    store: Arc<Store>,
    mux: Arc<PeerMux>,
    /// Client certificate fingerprint → client name.
    clients: HashMap<String, String>,
    max_elements: usize,
}

impl ComputeService {
    /// Service for party `me`; `clients` maps certificate fingerprints to client names.
    pub fn new(
        me: PartyId,
        store: Arc<Store>,
        mux: Arc<PeerMux>,
        clients: HashMap<String, String>,
        max_message_bytes: usize,
    ) -> Self {
        ComputeService {
            me,
            store,
            mux,
            clients,
            max_elements: max_message_bytes / 16,
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
        let fp = crate::tls::cert_fingerprint(first.as_ref());
        self.clients.get(&fp).cloned().ok_or_else(|| {
            Status::permission_denied("this client certificate is not authorised on this node")
        })
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

fn check_id(kind: &str, id: &str) -> Result<(), Status> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{kind} id must be 1..={MAX_ID_LEN} characters of [A-Za-z0-9._-]"
        )))
    }
}

fn words(field: &str, bytes: &[u8], len: usize) -> Result<Vec<u64>, Status> {
    if bytes.len() != len * 8 {
        return Err(Status::invalid_argument(format!(
            "{field} has {} bytes, expected {} for {len} elements",
            bytes.len(),
            len * 8
        )));
    }
    Ok(veil_runtime::kernels::le_bytes_to_words(bytes))
}

/// One share component of `len` elements: little-endian `words`, or a 32-byte `seed` expanded
/// with ChaCha20 (`veil_runtime::sharing::seeded`), not both.
fn component(field: &str, words_le: &[u8], seed: &[u8], len: usize) -> Result<Vec<u64>, Status> {
    if seed.is_empty() {
        return words(field, words_le, len);
    }
    if !words_le.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field}: give words or a seed, not both"
        )));
    }
    let seed: &[u8; SEED_BYTES] = seed.try_into().map_err(|_| {
        Status::invalid_argument(format!(
            "{field}_seed has {} bytes, expected {SEED_BYTES}",
            seed.len()
        ))
    })?;
    Ok(expand(seed, len))
}

/// A node's two components (own, next) of `len` elements; `field` prefixes error messages.
fn node_shares(
    field: &str,
    s: &pb::NodeShares,
    len: usize,
) -> Result<(Vec<u64>, Vec<u64>), Status> {
    Ok((
        component(&format!("{field}own"), &s.own, &s.own_seed, len)?,
        component(&format!("{field}next"), &s.next, &s.next_seed, len)?,
    ))
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
        other => Status::internal(other.to_string()),
    }
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
        let len = usize::try_from(shares.len)
            .ok()
            .filter(|n| *n <= self.max_elements)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "len {} exceeds this node's limit of {} elements",
                    shares.len, self.max_elements
                ))
            })?;
        let (own, next) = node_shares("", &shares, len)?;
        let value = StoredValue {
            owner: caller.clone(),
            compute: r.compute,
            receive: r.receive,
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
        // Bind every input to a stored value the caller may use and the recipient may receive.
        let mut inputs = HashMap::new();
        for decl in &program.program().inputs {
            // An inline input acts as a value the caller owns with empty compute and receive
            // lists (so only the caller may receive what is derived from it).
            let (value_id, v) = match (r.inputs.get(&decl.name), r.inline_inputs.get(&decl.name)) {
                (Some(_), Some(_)) => {
                    return Err(Status::invalid_argument(format!(
                        "program input '{}' is bound twice (stored and inline)",
                        decl.name
                    )));
                }
                (None, Some(s)) => {
                    let len = decl.ty.shape.len();
                    if s.len != len as u64 {
                        return Err(Status::invalid_argument(format!(
                            "inline input '{}' has {} elements, the program expects {len}",
                            decl.name, s.len
                        )));
                    }
                    let field = format!("inline input '{}' ", decl.name);
                    let (own, next) = node_shares(&field, s, len)?;
                    let v = HeldValue {
                        owner: caller.clone(),
                        compute: Vec::new(),
                        receive: Vec::new(),
                        shares: Arc::new(Shares { own, next }),
                    };
                    (format!("inline:{}", decl.name), Arc::new(v))
                }
                (Some(value_id), None) => {
                    // From the node's value cache when held: a corpus or a model's weights
                    // is neither re-read nor copied per request.
                    let v = stored
                        .remove(&decl.name)
                        .flatten()
                        .ok_or_else(|| Status::not_found(format!("no value '{value_id}'")))?;
                    (value_id.clone(), v)
                }
                (None, None) => {
                    return Err(Status::invalid_argument(format!(
                        "program input '{}' is not bound",
                        decl.name
                    )));
                }
            };
            let value_id = &value_id;
            if v.owner != caller && !v.compute.contains(&caller) {
                return Err(Status::permission_denied(format!(
                    "'{caller}' may not compute on value '{value_id}'"
                )));
            }
            if v.owner != recipient && !v.receive.contains(&recipient) {
                return Err(Status::permission_denied(format!(
                    "'{recipient}' may not receive outputs derived from value '{value_id}'"
                )));
            }
            let expected = decl.ty.shape.len();
            if v.shares.len() != expected {
                return Err(Status::invalid_argument(format!(
                    "value '{value_id}' has {} elements, input '{}' expects {expected}",
                    v.shares.len(),
                    decl.name
                )));
            }
            let input = match (decl.ty.vis, &decl.owner) {
                (Visibility::Secret, Owner::Client(_)) => InputValue::Held(Arc::clone(&v.shares)),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "input '{}' must be a client-owned secret over the Compute API",
                        decl.name
                    )));
                }
            };
            inputs.insert(decl.name.clone(), input);
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
            let mut session = Session::with_keys(transport, &keys);
            drop(keys);
            let (outputs, report) = session.run(&program, inputs).await.map_err(engine_status)?;
            Ok::<_, Status>((outputs, report, start.elapsed()))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()));
        self.mux.close_session(SessionId(r.session));
        let (outputs, report, elapsed) = run??;
        let mut outs = Vec::new();
        for (name, value) in outputs {
            if let OutputValue::Shares(s) = value {
                outs.push((name, s.own, s.next));
            }
        }
        outs.sort_by(|a, b| a.0.cmp(&b.0));
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
        .ok_or_else(|| Status::not_found(format!("no result '{id}'")))?;
        if r.recipient != caller {
            return Err(Status::permission_denied(format!(
                "result '{id}' is not addressed to '{caller}'"
            )));
        }
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
        // that reads only the owner, never the shares.
        on_store(&self.store, move |s| {
            match s.delete_value_of(&id, &caller).map_err(store_status)? {
                Removal::Removed => return Ok(()),
                Removal::Refused => {
                    return Err(Status::permission_denied(format!(
                        "value '{id}' is not owned by '{caller}'"
                    )));
                }
                Removal::Absent => {}
            }
            match s.delete_result_for(&id, &caller).map_err(store_status)? {
                Removal::Removed => Ok(()),
                Removal::Refused => Err(Status::permission_denied(format!(
                    "result '{id}' is not addressed to '{caller}'"
                ))),
                Removal::Absent => Err(Status::not_found(format!("no value or result '{id}'"))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_come_as_words_or_a_seed() {
        let w: Vec<u8> = [1u64, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(component("own", &w, &[], 3).unwrap(), vec![1, 2, 3]);
        let seed = [9u8; SEED_BYTES];
        assert_eq!(component("own", &[], &seed, 5).unwrap(), expand(&seed, 5));
        let bad = |r: Result<Vec<u64>, Status>| {
            let e = r.unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            e.message().to_string()
        };
        assert_eq!(
            bad(component("own", &w, &seed, 3)),
            "own: give words or a seed, not both"
        );
        assert_eq!(
            bad(component("next", &[], &seed[..31], 3)),
            "next_seed has 31 bytes, expected 32"
        );
        assert_eq!(
            bad(component("own", &w, &[], 4)),
            "own has 24 bytes, expected 32 for 4 elements"
        );
    }
}
