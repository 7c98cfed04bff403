//! [`Client`]: MPC on all three nodes — store secrets and programs, invoke, fetch and
//! reconstruct results, check receipts.
//!
//! Inputs are secret-shared **locally** (`share3` with the OS CSPRNG) and each node receives only
//! its two components; outputs are fetched from all three nodes and reconstructed locally with
//! the consistency check, which names a node whose components disagree.
//!
//! ```no_run
//! # async fn demo() -> Result<(), veil_client::ClientError> {
//! use veil_circuits::{Builder, Ring};
//! let mut c = veil_client::Client::connect("devnet/cluster.toml".as_ref()).await?;
//! c.store_secret("x", &[1, 2, 3], &[], &[]).await?;
//! c.store_secret("y", &[4, 5, 6], &[], &[]).await?;
//! // Every run comes back with the three nodes' verified receipts.
//! let mut b = Builder::new();
//! let x = b.secret_vector("x", 3, Ring);
//! let y = b.secret_vector("y", 3, Ring);
//! let z = b.mul(x, y);
//! b.output("z", z, veil_circuits::Recipient::Client(c.name().to_string()));
//! let program = b.finish().expect("valid program");
//! let id = c.store_program(&program).await?;
//! c.invoke(&id, &[("x", "x"), ("y", "y")], "run-1").await?;
//! let out = c.fetch("run-1").await?;
//! assert_eq!(out["z"], vec![4, 10, 18]);
//! # Ok(()) }
//! ```

use crate::error::{ClientError, node_error};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use rand::TryRngCore;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;
use veil_circuits::PartyId;
use veil_circuits::ValidatedProgram;
pub use veil_proto::Grant;
use veil_proto::binding::SessionBinding;
use veil_proto::config::ClusterConfig;
use veil_proto::pb::{self, compute_client::ComputeClient};
use veil_proto::receipt::{self};
use veil_proto::tls::{self, PinnedConnector};
use veil_runtime::SecurityMode;
use veil_runtime::kernels::{le_bytes_to_words, words_to_le_bytes};
use veil_runtime::sharing::{
    Comp32, SEED_BYTES, Shares, reconstruct, share3_compact, share3_seeded,
};

/// A client's secret input in the ring its program input declares: `Ring` words of Z_2^64, or
/// compact `Ring32` words of Z_2^32 (shared with [`node_components32`]).
#[derive(Clone, Copy, Debug)]
pub enum Secret<'a> {
    /// Z_2^64 words (a `Ring` or `Fixed` input).
    Ring(&'a [u64]),
    /// Z_2^32 words (a `Ring32` input), shared with the given rotation.
    Ring32(&'a [u32], PartyId),
}

impl Secret<'_> {
    /// Each node's two components of a fresh sharing.
    fn components(&self) -> [pb::NodeShares; 3] {
        match *self {
            Secret::Ring(v) => node_components(v),
            Secret::Ring32(v, rotation) => node_components32(v, rotation),
        }
    }
}

/// Each node's two components of a fresh compact sharing of `values` mod 2^32
/// (`veil_runtime::sharing::compact`): P_r gets two seeds, P_{r+1} a seed and the explicit
/// words, P_{r+2} the explicit words and a seed, for r = `rotation`. The nodes keep the seeds as
/// seeds, so a stored value costs its nodes 8/3 bytes per element on average when the owner
/// rotates r from block to block, against 16 for [`node_components`].
fn node_components32(values: &[u32], rotation: PartyId) -> [pb::NodeShares; 3] {
    let s = share3_compact(values, rotation, &mut rand::rngs::OsRng.unwrap_err());
    let len = values.len() as u64;
    let part = |c: &Comp32| -> (Bytes, Bytes) {
        match c {
            Comp32::Words(w) => (
                w.iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
                Bytes::new(),
            ),
            Comp32::Seed { seed, .. } => (Bytes::new(), Bytes::copy_from_slice(seed)),
        }
    };
    PartyId::ALL.map(|p| {
        let mine = s.party(p);
        let ((own, own_seed), (next, next_seed)) = (part(&mine.own), part(&mine.next));
        pb::NodeShares {
            own,
            next,
            own_seed,
            next_seed,
            len,
            ring_bits: 32,
        }
    })
}

/// Each node's two components of a fresh sharing of `values`, seed-compressed
/// (`veil_runtime::sharing::seeded`): P0 gets the seeds of x_0 and x_1, P1 the seed of x_1 and
/// the words of x_2, P2 the words of x_2 and the seed of x_0, so the client uploads 2n words
/// instead of 6n. The seeds come from the OS RNG; the words are computed, not drawn (drawing
/// every share word from `getrandom` cost about 5 ms per MB of input on this VM).
fn node_components(values: &[u64]) -> [pb::NodeShares; 3] {
    let s = share3_seeded(values, &mut rand::rngs::OsRng.unwrap_err());
    let x2: Bytes = words_to_le_bytes(&s.x2).into();
    let seed = |b: &[u8; SEED_BYTES]| Bytes::copy_from_slice(b);
    let len = values.len() as u64;
    [
        pb::NodeShares {
            own_seed: seed(&s.seed0),
            next_seed: seed(&s.seed1),
            len,
            ring_bits: 0,
            ..Default::default()
        },
        pb::NodeShares {
            own_seed: seed(&s.seed1),
            next: x2.clone(),
            len,
            ring_bits: 0,
            ..Default::default()
        },
        pb::NodeShares {
            own: x2,
            next_seed: seed(&s.seed0),
            len,
            ring_bits: 0,
            ..Default::default()
        },
    ]
}

/// Largest response a [`Client`] decodes: 1 GiB, the largest message a node accepts from a peer
/// (the node's `peer::MAX_MESSAGE_BYTES`). A result is fetched in one message holding both of the
/// node's components (16 bytes per output element), so outputs of up to 64 M elements in total
/// per result fit (nodes also cap what they send at their `max_message_bytes`, 64 MiB by
/// default). A larger response fails with `OutOfRange` instead of being buffered.
pub const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// The three nodes' signed receipts of one run, verified against the keys in `cluster.toml`.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The session binding all three signed (session, program, inputs, caller, delivery and
    /// security mode).
    pub binding: [u8; 32],
    /// The security mode the session ran in, as all three nodes stated and signed it.
    pub security: SecurityMode,
    /// Each node's receipt, by party: its output digest and Ed25519 signature.
    pub nodes: Vec<pb::Receipt>,
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "binding {} ({} session)",
            hex::encode(self.binding),
            self.security
        )?;
        for r in &self.nodes {
            writeln!(
                f,
                "  P{}: outputs {} signature {}",
                r.party,
                hex::encode(&r.outputs_sha256),
                hex::encode(&r.signature)
            )?;
        }
        Ok(())
    }
}

/// Rounds and bytes one invocation took, as reported by each node.
#[derive(Clone, Debug)]
pub struct InvokeSummary {
    /// Rounds (the same at every node).
    pub rounds: u64,
    /// Payload bytes sent by P0, P1, P2.
    pub bytes_sent: [u64; 3],
    /// Wall time of the session (opening it with keys from the peer links + the program) at
    /// the slowest node.
    pub session_time: Duration,
    /// The nodes' verified receipts: which program ran on which inputs, signed by each node.
    pub receipt: Receipt,
    /// When each depth (round) of the program's schedule was complete, from the start of the
    /// program, at the slowest node: time a layer as the difference at its last depth.
    pub depth_done: Vec<Duration>,
    /// Of `rounds`, those of the malicious mode's verification (0 in semi-honest mode).
    pub verify_rounds: u64,
    /// Of `bytes_sent`, the verification's, by party.
    pub verify_bytes: [u64; 3],
}

/// A connection to the three nodes of a cluster.
pub struct Client {
    name: String,
    nodes: Vec<NodeConn>,
    /// Each node's pinned receipt key, by party.
    receipt_keys: Vec<VerifyingKey>,
    /// The weakest security mode whose outputs this client accepts.
    required: SecurityMode,
}

/// One node: its gRPC client and the pinned connector its channel dials with.
struct NodeConn {
    grpc: ComputeClient<Channel>,
    connector: PinnedConnector,
}

/// Run the same call on all three nodes concurrently; fails fast (see [`join_fail_fast`]).
macro_rules! on_all {
    ($self:ident, $i:ident, $c:ident => $call:expr) => {{
        let futures = $self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|($i, node)| async move {
                let NodeConn {
                    grpc: $c,
                    connector,
                } = node;
                $call
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|status| node_error($i, connector, status))
            });
        join_fail_fast(futures, FAIL_FAST_GRACE).await
    }};
}

/// How long the other nodes' answers are awaited once one node has failed: long enough that
/// nodes failing together report the lowest party's error, short enough that a node cut off
/// from the network (whose call would hang until TCP gives up) does not hold the caller.
const FAIL_FAST_GRACE: Duration = Duration::from_secs(1);

/// Awaits the calls concurrently and returns their results in order; once one fails, the
/// others get `grace` to finish, then the first failure in order among the finished ones is
/// returned (the unfinished calls are dropped).
async fn join_fail_fast<T, E, F: std::future::Future<Output = Result<T, E>>>(
    futures: impl Iterator<Item = F>,
    grace: Duration,
) -> Result<Vec<T>, E> {
    let mut futs: Vec<_> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<Result<T, E>>> = futs.iter().map(|_| None).collect();
    let mut deadline: Option<tokio::time::Instant> = None;
    while done.iter().any(Option::is_none) {
        let next = std::future::poll_fn(|cx| {
            for (i, f) in futs.iter_mut().enumerate() {
                if done[i].is_none()
                    && let std::task::Poll::Ready(r) = f.as_mut().poll(cx)
                {
                    return std::task::Poll::Ready((i, r));
                }
            }
            std::task::Poll::Pending
        });
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            (i, r) = next => {
                if r.is_err() && deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + grace);
                }
                done[i] = Some(r);
            }
            () = timer => break,
        }
    }
    let mut out = Vec::with_capacity(done.len());
    let mut first_err = None;
    for r in done {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

impl Client {
    /// Connect with the identity and nodes of `cluster.toml`. Each node must present the
    /// certificate `cluster.toml` pins for it (`nodes[].cert_sha256`); a node that does not
    /// fails every call with [`ClientError::WrongNodeCertificate`]. Connections are made on
    /// first use.
    pub async fn connect(cluster_toml: &Path) -> Result<Client, ClientError> {
        let cfg = ClusterConfig::load(cluster_toml)?;
        let tls = tls::PinnedTls::load(&cfg.ca, &cfg.client.cert, &cfg.client.key)?;
        let mut nodes = Vec::with_capacity(3);
        let mut sorted = cfg.nodes.clone();
        sorted.sort_by_key(|n| n.party);
        let receipt_keys = sorted
            .iter()
            .map(|n| receipt::parse_public(n.party, &n.receipt_key))
            .collect::<Result<Vec<_>, _>>()?;
        for n in &sorted {
            let connector = tls.connector(n.party, &n.addr, &n.cert_sha256)?;
            let channel = connector
                .endpoint()
                .map_err(|source| ClientError::Connect {
                    node: n.party,
                    source,
                })?
                .connect_timeout(Duration::from_secs(10))
                .connect_with_connector_lazy(connector.clone());
            nodes.push(NodeConn {
                grpc: ComputeClient::new(channel)
                    .max_decoding_message_size(MAX_RESPONSE_BYTES)
                    .max_encoding_message_size(usize::MAX),
                connector,
            });
        }
        Ok(Client {
            name: cfg.client.name,
            nodes,
            receipt_keys,
            required: cfg.require_security,
        })
    }

    /// Refuse outputs of sessions run in a weaker mode than `mode` (from then on; initially
    /// `require_security` of `cluster.toml`, semi-honest when absent): [`Client::invoke`] and
    /// [`Client::fetch`] fail with [`ClientError::SecurityTooWeak`] instead.
    pub fn require_security(&mut self, mode: SecurityMode) {
        self.required = mode;
    }

    /// The weakest security mode whose outputs this client accepts.
    pub fn required_security(&self) -> SecurityMode {
        self.required
    }

    /// [`ClientError::SecurityTooWeak`] unless `stated` gives the required protection.
    fn check_security(&self, stated: SecurityMode) -> Result<(), ClientError> {
        if stated.satisfies(self.required) {
            Ok(())
        } else {
            Err(ClientError::SecurityTooWeak {
                required: self.required,
                stated,
            })
        }
    }

    /// [`Client::connect`], then wait until all three nodes answer (`List`), retrying every
    /// 100 ms for up to `wait` — for clusters that are still starting. Returns the last error
    /// when they do not answer in time.
    pub async fn connect_ready(cluster_toml: &Path, wait: Duration) -> Result<Client, ClientError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let mut c = Client::connect(cluster_toml).await?;
            match c.list().await {
                Ok(_) => return Ok(c),
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// This client's name (as the nodes know it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw gRPC client of node `party` (0..=2), bypassing every check of this SDK (sharing,
    /// binding, receipts): for tests that play an adversarial client, and for tools.
    pub fn raw(&mut self, party: usize) -> Option<&mut ComputeClient<Channel>> {
        self.nodes.get_mut(party).map(|n| &mut n.grpc)
    }

    /// Node `party`'s pinned receipt key (from `cluster.toml`).
    pub fn receipt_key(&self, party: usize) -> Option<&VerifyingKey> {
        self.receipt_keys.get(party)
    }

    /// Secret-share `values` locally and store each node's components under `id`. `grants`
    /// let other clients run one named program each on it (and receive that program's
    /// outputs); `receive` lists clients the raw value may flow to (see `veil_node::policy`).
    pub async fn store_secret(
        &mut self,
        id: &str,
        values: &[u64],
        grants: &[Grant],
        receive: &[&str],
    ) -> Result<(), ClientError> {
        self.store_value_parts(id, node_components(values), grants, receive)
            .await
    }

    /// [`Client::store_secret`] for compact Z_2^32 words (a program's `Ring32` input): the
    /// nodes keep their seeded components as seeds ([`node_components32`]). Rotate `rotation`
    /// from value to value to spread the explicit components over the nodes.
    pub async fn store_secret32(
        &mut self,
        id: &str,
        values: &[u32],
        rotation: PartyId,
        grants: &[Grant],
        receive: &[&str],
    ) -> Result<(), ClientError> {
        self.store_value_parts(id, node_components32(values, rotation), grants, receive)
            .await
    }

    async fn store_value_parts(
        &mut self,
        id: &str,
        parts: [pb::NodeShares; 3],
        grants: &[Grant],
        receive: &[&str],
    ) -> Result<(), ClientError> {
        let grants: Vec<pb::Grant> = grants
            .iter()
            .map(|g| pb::Grant {
                client: g.client.clone(),
                program_id: g.program.clone(),
            })
            .collect();
        let receive: Vec<String> = receive.iter().map(|s| s.to_string()).collect();
        let parts = &parts;
        let (grants, receive) = (&grants, &receive);
        on_all!(self, i, c => c.store_value(pb::StoreValueRequest {
            value_id: id.to_string(),
            shares: Some(parts[i].clone()),
            grants: grants.clone(),
            receive: receive.clone(),
        }))?;
        Ok(())
    }

    /// Store a program on every node; returns its id (the same content hash everywhere).
    pub async fn store_program(&mut self, p: &ValidatedProgram) -> Result<String, ClientError> {
        let json = p.program().to_json();
        let json = &json;
        let ids = on_all!(self, _i, c => c.store_program(pb::StoreProgramRequest {
            program_json: json.clone(),
        }))?;
        let id = ids[0].program_id.clone();
        if ids.iter().any(|r| r.program_id != id) {
            return Err(ClientError::Inconsistent("program ids differ".into()));
        }
        Ok(id)
    }

    /// Run a stored program on stored values (`inputs`: program input name → value id) on all
    /// three nodes with a fresh random session id; outputs are kept under `result_id`.
    pub async fn invoke(
        &mut self,
        program_id: &str,
        inputs: &[(&str, &str)],
        result_id: &str,
    ) -> Result<InvokeSummary, ClientError> {
        let (summary, _) = self
            .invoke_with(program_id, inputs, &[], Some(result_id))
            .await?;
        Ok(summary)
    }

    /// Run a stored program in one request per node: `stored` inputs are bound to stored
    /// values, `inline` inputs are secret-shared here and sent with the request (never stored),
    /// and the outputs (this client must be their recipient) come back in the responses and are
    /// reconstructed — nothing of the request stays on the nodes.
    pub async fn invoke_inline(
        &mut self,
        program_id: &str,
        stored: &[(&str, &str)],
        inline: &[(&str, &[u64])],
    ) -> Result<(InvokeSummary, HashMap<String, Vec<u64>>), ClientError> {
        let inline: Vec<(&str, Secret<'_>)> =
            inline.iter().map(|&(n, v)| (n, Secret::Ring(v))).collect();
        self.invoke_with(program_id, stored, &inline, None).await
    }

    /// [`Client::invoke_inline`] with inline inputs in either ring (a `Ring32` input is sent
    /// compact). Output words of a `Ring32` output are below 2^32 (reconstructed mod 2^32).
    pub async fn invoke_inline_secrets(
        &mut self,
        program_id: &str,
        stored: &[(&str, &str)],
        inline: &[(&str, Secret<'_>)],
    ) -> Result<(InvokeSummary, HashMap<String, Vec<u64>>), ClientError> {
        self.invoke_with(program_id, stored, inline, None).await
    }

    async fn invoke_with(
        &mut self,
        program_id: &str,
        stored: &[(&str, &str)],
        inline: &[(&str, Secret<'_>)],
        result_id: Option<&str>,
    ) -> Result<(InvokeSummary, HashMap<String, Vec<u64>>), ClientError> {
        let session: u64 = rand::random();
        let inputs: HashMap<String, String> = stored
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut per_node: [HashMap<String, pb::NodeShares>; 3] = Default::default();
        for (name, values) in inline {
            for (i, part) in values.components().into_iter().enumerate() {
                per_node[i].insert(name.to_string(), part);
            }
        }
        let requests: Vec<pb::InvokeRequest> = per_node
            .into_iter()
            .map(|inline_inputs| pb::InvokeRequest {
                program_id: program_id.to_string(),
                session,
                inputs: inputs.clone(),
                result_id: result_id.unwrap_or_default().to_string(),
                inline_inputs,
                inline_outputs: result_id.is_none(),
            })
            .collect();
        let reqs = &requests;
        let res = on_all!(self, i, c => c.invoke(reqs[i].clone()))?;
        // What all three nodes must have signed: the request as this client sent it (the
        // nodes' requests differ only in their share components, which the binding omits), in
        // the security mode all three state.
        let security = receipt::stated_security(std::array::from_fn(|i| {
            res.get(i).and_then(|r| r.receipt.as_ref())
        }))?;
        let binding =
            SessionBinding::of_request(&requests[0], program_id, &self.name, security).hash();
        for (party, (r, key)) in res.iter().zip(&self.receipt_keys).enumerate() {
            let outputs = result_id.is_none().then_some(r.outputs.as_slice());
            receipt::verify(key, party, &binding, outputs, r.receipt.as_ref())?;
        }
        // The mode is signed (the binding covers it), so only now is it known to be true.
        self.check_security(security)?;
        let receipt = Receipt {
            binding,
            security,
            nodes: res.iter().filter_map(|r| r.receipt.clone()).collect(),
        };
        let summary = InvokeSummary {
            receipt,
            rounds: res[0].rounds,
            bytes_sent: [res[0].bytes_sent, res[1].bytes_sent, res[2].bytes_sent],
            session_time: Duration::from_micros(
                res.iter().map(|r| r.session_micros).max().unwrap_or(0),
            ),
            depth_done: (0..res[0].depth_micros.len())
                .map(|d| {
                    let us = res
                        .iter()
                        .filter_map(|r| r.depth_micros.get(d))
                        .max()
                        .copied();
                    Duration::from_micros(us.unwrap_or(0))
                })
                .collect(),
            verify_rounds: res[0].verify_rounds,
            verify_bytes: [
                res[0].verify_bytes,
                res[1].verify_bytes,
                res[2].verify_bytes,
            ],
        };
        let outputs = match result_id {
            Some(_) => HashMap::new(),
            None => reconstruct_outputs(res.into_iter().map(|r| r.outputs).collect())?,
        };
        Ok((summary, outputs))
    }

    /// Fetch every node's components of a result and reconstruct each output.
    pub async fn fetch(
        &mut self,
        result_id: &str,
    ) -> Result<HashMap<String, Vec<u64>>, ClientError> {
        self.fetch_checked(result_id, None).await
    }

    /// [`Client::fetch`], checking first that each node's components are the ones it signed in
    /// `receipt` (from the [`InvokeSummary`] of the run that stored the result).
    pub async fn fetch_verified(
        &mut self,
        result_id: &str,
        receipt: &Receipt,
    ) -> Result<HashMap<String, Vec<u64>>, ClientError> {
        self.fetch_checked(result_id, Some(receipt)).await
    }

    async fn fetch_checked(
        &mut self,
        result_id: &str,
        receipt: Option<&Receipt>,
    ) -> Result<HashMap<String, Vec<u64>>, ClientError> {
        let res = on_all!(self, _i, c => c.get_result(pb::GetResultRequest {
            result_id: result_id.to_string(),
        }))?;
        if let Some(receipt) = receipt {
            for (party, (r, key)) in res.iter().zip(&self.receipt_keys).enumerate() {
                let signed = receipt.nodes.iter().find(|n| n.party as usize == party);
                receipt::verify(key, party, &receipt.binding, Some(&r.outputs), signed)?;
            }
            self.check_security(receipt.security)?;
        }
        // Each node's record of the session's mode; the weakest counts (an honest node states
        // its own truthfully). Without a requirement any mode, even one this SDK does not
        // know, is accepted.
        if self.required != SecurityMode::default() {
            let modes = res
                .iter()
                .enumerate()
                .map(|(node, r)| {
                    veil_proto::convert::security_mode("result", r.security)
                        .map_err(|e| ClientError::Inconsistent(format!("node {node}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.check_security(modes.into_iter().min().unwrap_or_default())?;
        }
        reconstruct_outputs(res.into_iter().map(|r| r.outputs).collect())
    }

    /// Ids of the caller's values and results, and all programs, as node 0 lists them.
    pub async fn list(&mut self) -> Result<pb::ListResponse, ClientError> {
        let mut r = on_all!(self, _i, c => c.list(pb::ListRequest {}))?;
        Ok(r.swap_remove(0))
    }

    /// Delete a value or result the caller owns on every node.
    pub async fn delete(&mut self, id: &str) -> Result<(), ClientError> {
        on_all!(self, _i, c => c.delete(pb::DeleteRequest { id: id.to_string() }))?;
        Ok(())
    }
}

/// Reconstructs each output from the three nodes' components (in node order), checking that
/// the nodes agree on the output list and that both copies of every component match.
fn reconstruct_outputs(
    res: Vec<Vec<pb::OutputShares>>,
) -> Result<HashMap<String, Vec<u64>>, ClientError> {
    let mut out = HashMap::new();
    let Some(first) = res.first() else {
        return Err(ClientError::Inconsistent("expected three nodes".into()));
    };
    for (k, o) in first.iter().enumerate() {
        let shares: Vec<Shares> = res
            .iter()
            .enumerate()
            .map(|(node, r)| {
                let x = r.get(k).filter(|x| x.name == o.name).ok_or_else(|| {
                    ClientError::Inconsistent(format!("output '{}' missing", o.name))
                })?;
                output_words(node, x)
            })
            .collect::<Result<_, _>>()?;
        let shares: [Shares; 3] = shares
            .try_into()
            .map_err(|_| ClientError::Inconsistent("expected three nodes".into()))?;
        let v = reconstruct(&shares).map_err(|source| ClientError::Reconstruct {
            output: o.name.clone(),
            source,
        })?;
        out.insert(o.name.clone(), v);
    }
    Ok(out)
}

/// One node's two components of an output as words: both must be whole little-endian u64
/// words and of equal length (trailing bytes are refused, not dropped).
fn output_words(node: usize, x: &pb::OutputShares) -> Result<Shares, ClientError> {
    let malformed = |what: String| ClientError::MalformedOutput {
        node,
        output: x.name.clone(),
        what,
    };
    for (part, bytes) in [("own", &x.own), ("next", &x.next)] {
        if !bytes.len().is_multiple_of(8) {
            return Err(malformed(format!(
                "its {part} component has {} bytes, not whole 8-byte words",
                bytes.len()
            )));
        }
    }
    if x.own.len() != x.next.len() {
        return Err(malformed(format!(
            "its components have {} and {} bytes",
            x.own.len(),
            x.next.len()
        )));
    }
    Ok(Shares {
        own: le_bytes_to_words(&x.own),
        next: le_bytes_to_words(&x.next),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_fail_fast_returns_early_and_in_order() {
        use std::future::Future;
        use std::pin::Pin;
        type Call = Pin<Box<dyn Future<Output = Result<u32, String>>>>;
        let after = |ms: u64, r: Result<u32, String>| -> Call {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                r
            })
        };
        let grace = Duration::from_millis(200);
        let ok = vec![after(30, Ok(0)), after(10, Ok(1)), after(20, Ok(2))];
        assert_eq!(
            join_fail_fast(ok.into_iter(), grace).await,
            Ok(vec![0, 1, 2])
        );
        // Node 1 hangs; node 2 fails: the caller hears of it after the grace, not never.
        let t = std::time::Instant::now();
        let hang = vec![
            after(10, Ok(0)),
            Box::pin(std::future::pending()) as Call,
            after(20, Err("P2".to_string())),
        ];
        assert_eq!(
            join_fail_fast(hang.into_iter(), grace).await,
            Err("P2".into())
        );
        assert!(t.elapsed() < Duration::from_secs(2));
        // Failures close together: the lowest party's error wins.
        let both = vec![
            after(10, Ok(0)),
            after(50, Err("P1".into())),
            after(5, Err("P2".into())),
        ];
        assert_eq!(
            join_fail_fast(both.into_iter(), grace).await,
            Err("P1".into())
        );
    }

    fn shares(name: &str, own: &[u8], next: &[u8]) -> pb::OutputShares {
        pb::OutputShares {
            name: name.to_string(),
            own: Bytes::copy_from_slice(own),
            next: Bytes::copy_from_slice(next),
        }
    }

    #[test]
    fn output_words_decode_whole_words() {
        let own: Vec<u8> = words_to_le_bytes(&[1, u64::MAX]);
        let next: Vec<u8> = words_to_le_bytes(&[2, 3]);
        let s = output_words(2, &shares("z", &own, &next)).unwrap();
        assert_eq!((s.own, s.next), (vec![1, u64::MAX], vec![2, 3]));
        let empty = output_words(0, &shares("z", &[], &[])).unwrap();
        assert!(empty.own.is_empty() && empty.next.is_empty());
    }

    #[test]
    fn output_words_reject_trailing_bytes_and_length_mismatch() {
        let eight = [0u8; 8];
        for (own, next, what) in [
            (&[0u8; 9][..], &eight[..], "own component has 9 bytes"),
            (&eight[..], &[0u8; 15][..], "next component has 15 bytes"),
            (&eight[..], &[0u8; 16][..], "components have 8 and 16 bytes"),
        ] {
            match output_words(1, &shares("z", own, next)) {
                Err(e @ ClientError::MalformedOutput { node: 1, .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(what) && text.contains("'z'"), "{text}");
                }
                other => panic!("expected MalformedOutput, got {other:?}"),
            }
        }
    }
}
