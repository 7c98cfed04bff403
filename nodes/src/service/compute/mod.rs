//! `veil.v1.Compute`: the client API of one node.
//!
//! Every call is authenticated by the caller's TLS client certificate ([`crate::auth`]) and
//! authorised by [`crate::policy`]: a stored value may be an input of a program only if the
//! caller owns it, may receive it raw, or holds a grant for that program (by content-hash id);
//! the outputs may go only to a client the rules allow. Results are returned only to their
//! recipient. Outputs must go to a client: programs that reveal values to the nodes (`Reveal`
//! ops, outputs to parties) are refused here.
//!
//! An invoke is three steps: [`prepare`] (decode, limits, policy, binding hash), [`session`]
//! (open the session, compare the binding with both peers, run the program) and delivery here
//! (sign the receipt, store or return the outputs). Before a session runs, the node checks the
//! program against its [`Limits`] (from the types, before any allocation) and the three nodes
//! compare the session binding ([`veil_proto::binding`]); after it, the node signs a receipt
//! ([`veil_proto::receipt`]). An id that does not exist and one the caller may not use get the
//! same answer (`NotFound`), so ids cannot be probed.
//!
//! Every session runs in the node's configured security mode, which the binding covers (nodes
//! configured differently refuse each other's sessions) and each receipt and stored result
//! records. In malicious mode a program the mode cannot verify (an op with no maliciously secure
//! protocol, or a proof over the session's bound) is refused at `StoreProgram` and `Invoke`,
//! before any round; a session whose verification fails ends with `Aborted` on every honest
//! node and stores nothing.

mod prepare;
mod session;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use veil_circuits::cost::program_cost_in;
use veil_circuits::{PartyId, Program, ValidatedProgram};
use veil_proto::convert::{check_id, grants, node_shares, security_to_wire};
use veil_proto::pb;
use veil_proto::receipt::{ReceiptSigner, words_digest};
use veil_runtime::SecurityMode;
use veil_runtime::engine::OutputValue;

use crate::auth::Callers;
use crate::error::NodeError;
use crate::limits::Limits;
use crate::peer::PeerMux;
use crate::policy::Access;
use crate::store::{Removal, Store, StoredResult, StoredValue};
use prepare::client_recipient;
use session::Ran;

/// The Compute service of one node.
pub struct ComputeService {
    me: PartyId,
    store: Arc<Store>,
    mux: Arc<PeerMux>,
    callers: Callers,
    limits: Limits,
    signer: Arc<ReceiptSigner>,
    security: SecurityMode,
    /// Test builds only: the fault this node injects into its sessions' messages.
    #[cfg(feature = "fault-injection")]
    fault: Option<Arc<crate::fault::Fault>>,
}

/// One output's components as sent to the client.
fn output_shares((name, own, next): (String, Vec<u64>, Vec<u64>)) -> pb::OutputShares {
    pb::OutputShares {
        name,
        own: veil_runtime::kernels::words_to_le_bytes(&own).into(),
        next: veil_runtime::kernels::words_to_le_bytes(&next).into(),
    }
}

/// Run `f` on the store from the blocking pool: a database write waits for its fsync and a
/// large read decodes megabytes, and neither may stall the runtime workers, which also carry
/// the peer links of every other session.
async fn on_store<T, F>(store: &Arc<Store>, f: F) -> Result<T, NodeError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, NodeError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store)).await?
}

impl ComputeService {
    /// Service for party `me`, accepting the clients in `callers`, running every session in
    /// `security` mode.
    pub fn new(
        me: PartyId,
        store: Arc<Store>,
        mux: Arc<PeerMux>,
        callers: Callers,
        limits: Limits,
        signer: ReceiptSigner,
        security: SecurityMode,
    ) -> Self {
        ComputeService {
            me,
            store,
            mux,
            callers,
            limits,
            signer: Arc::new(signer),
            security,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }

    /// Test builds only: alter one word of one outgoing peer message of this node's sessions as
    /// `fault` says ([`crate::fault`]).
    #[cfg(feature = "fault-injection")]
    pub fn with_fault(mut self, fault: Arc<crate::fault::Fault>) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Whether this node may run `program` at all: within its limits and, in malicious mode,
    /// made only of ops with a maliciously secure protocol (refused naming the first other op)
    /// and within the proof's bound — checked before any session round.
    fn admit(&self, program: &ValidatedProgram) -> Result<(), NodeError> {
        let cost = program_cost_in(program, self.security.suite());
        self.limits.check_program(program, &cost)?;
        if self.security == SecurityMode::Malicious {
            veil_runtime::verify::check_program(program, &cost)?;
        }
        Ok(())
    }

    /// The element count a request declares, checked against the value limit before anything
    /// of that size is allocated (a seed expands to whatever length is declared).
    fn declared_len(&self, what: &str, len: u64) -> Result<usize, NodeError> {
        self.limits.check_value(what, len)?;
        usize::try_from(len).map_err(|_| NodeError::Invalid(format!("{what}: len too large")))
    }

    async fn store_value(
        &self,
        caller: String,
        r: pb::StoreValueRequest,
    ) -> Result<pb::StoreValueResponse, NodeError> {
        check_id("value", &r.value_id)?;
        let shares = r.shares.unwrap_or_default();
        let len = self.declared_len("the value", shares.len)?;
        let grants = grants(r.grants)?;
        let shares = node_shares("", &shares, len)?;
        let value = StoredValue {
            access: Access {
                owner: caller.clone(),
                grants,
                receive: r.receive,
            },
            shares,
        };
        let id = r.value_id.clone();
        on_store(&self.store, move |s| Ok(s.put_value_held(&id, value)?)).await?;
        tracing::info!(party = %self.me, client = %caller, value = %r.value_id, len, "stored value");
        Ok(pb::StoreValueResponse {
            value_id: r.value_id,
        })
    }

    async fn store_program(
        &self,
        caller: String,
        json: String,
    ) -> Result<pb::StoreProgramResponse, NodeError> {
        let valid = Program::from_json(&json)
            .and_then(|p| p.validate())
            .map_err(|e| NodeError::Invalid(format!("program: {e}")))?;
        client_recipient(&valid)?;
        self.admit(&valid)?;
        let id = valid.id().to_string();
        let (key, json) = (id.clone(), valid.program().to_json());
        on_store(&self.store, move |s| Ok(s.put_program(&key, &json)?)).await?;
        tracing::info!(party = %self.me, client = %caller, program = %id, "stored program");
        Ok(pb::StoreProgramResponse { program_id: id })
    }

    async fn invoke(
        &self,
        caller: String,
        r: pb::InvokeRequest,
    ) -> Result<pb::InvokeResponse, NodeError> {
        let me = self.me;
        let prepared = self.prepare(&caller, &r).await?;
        let (recipient, binding) = (prepared.recipient.clone(), prepared.binding);
        tracing::info!(party = %me, client = %caller, program = %r.program_id, session = r.session, "invoke");
        let Ran {
            outputs,
            report,
            elapsed,
        } = self
            .run_session(r.session, prepared)
            .await
            .inspect_err(|e| {
                tracing::warn!(party = %me, session = r.session, code = ?e.code(), "invoke failed: {e}");
            })?;
        let mut outs: Vec<_> = outputs
            .into_iter()
            .filter_map(|(name, value)| match value {
                OutputValue::Shares(s) => Some((name, s.own, s.next)),
                _ => None,
            })
            .collect();
        outs.sort_by(|a, b| a.0.cmp(&b.0));
        let receipt = self
            .signer
            .sign(&binding, &words_digest(&outs), report.security);
        let mut inline = Vec::new();
        if r.inline_outputs {
            inline = outs.into_iter().map(output_shares).collect();
        } else {
            let result = StoredResult {
                recipient,
                outputs: outs,
                rounds: report.rounds,
                bytes_sent: report.bytes_sent,
                security: report.security,
            };
            let id = r.result_id.clone();
            on_store(&self.store, move |s| Ok(s.put_result(&id, &result)?)).await?;
        }
        tracing::info!(party = %me, session = r.session, security = %report.security, rounds = report.rounds, bytes = report.bytes_sent, "invoke done");
        Ok(pb::InvokeResponse {
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
            verify_rounds: report.verify_rounds,
            verify_bytes: report.verify_bytes,
        })
    }

    async fn get_result(
        &self,
        caller: String,
        id: String,
    ) -> Result<pb::GetResultResponse, NodeError> {
        let key = id.clone();
        let r = on_store(&self.store, move |s| Ok(s.get_result(&key)?))
            .await?
            .filter(|r| r.recipient == caller)
            // Absent and addressed to someone else get the same answer.
            .ok_or_else(|| {
                NodeError::NotFound(format!("no result '{id}' addressed to '{caller}'"))
            })?;
        let security = security_to_wire(r.security) as i32;
        let outputs = r.outputs.into_iter().map(output_shares).collect();
        Ok(pb::GetResultResponse { outputs, security })
    }

    async fn delete(&self, caller: String, id: String) -> Result<pb::DeleteResponse, NodeError> {
        // A value first, then a result; each owner check and removal is one transaction that
        // reads only the owner, never the shares. Someone else's id and an absent one get the
        // same answer.
        on_store(&self.store, move |s| {
            if s.delete_value_of(&id, &caller)? == Removal::Removed {
                return Ok(());
            }
            match s.delete_result_for(&id, &caller)? {
                Removal::Removed => Ok(()),
                Removal::Refused | Removal::Absent => Err(NodeError::NotFound(format!(
                    "no value or result '{id}' that '{caller}' may delete"
                ))),
            }
        })
        .await?;
        Ok(pb::DeleteResponse { deleted: true })
    }

    async fn list(&self, caller: String) -> Result<pb::ListResponse, NodeError> {
        on_store(&self.store, move |s| {
            Ok(pb::ListResponse {
                values: s.list_values(&caller)?,
                programs: s.list_programs()?,
                results: s.list_results(&caller)?,
            })
        })
        .await
    }
}

/// The gRPC surface: authenticate, then hand the decoded request to the method above; every
/// error becomes a status through the one map in [`crate::error`].
#[tonic::async_trait]
impl pb::compute_server::Compute for ComputeService {
    async fn store_value(
        &self,
        req: Request<pb::StoreValueRequest>,
    ) -> Result<Response<pb::StoreValueResponse>, Status> {
        let caller = self.callers.name(&req)?;
        Ok(Response::new(
            self.store_value(caller, req.into_inner()).await?,
        ))
    }

    async fn store_program(
        &self,
        req: Request<pb::StoreProgramRequest>,
    ) -> Result<Response<pb::StoreProgramResponse>, Status> {
        let caller = self.callers.name(&req)?;
        let json = req.into_inner().program_json;
        Ok(Response::new(self.store_program(caller, json).await?))
    }

    async fn invoke(
        &self,
        req: Request<pb::InvokeRequest>,
    ) -> Result<Response<pb::InvokeResponse>, Status> {
        let caller = self.callers.name(&req)?;
        Ok(Response::new(self.invoke(caller, req.into_inner()).await?))
    }

    async fn get_result(
        &self,
        req: Request<pb::GetResultRequest>,
    ) -> Result<Response<pb::GetResultResponse>, Status> {
        let caller = self.callers.name(&req)?;
        let id = req.into_inner().result_id;
        Ok(Response::new(self.get_result(caller, id).await?))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let caller = self.callers.name(&req)?;
        Ok(Response::new(
            self.delete(caller, req.into_inner().id).await?,
        ))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let caller = self.callers.name(&req)?;
        Ok(Response::new(self.list(caller).await?))
    }
}
