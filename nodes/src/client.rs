//! Client SDK: talk to a veil cluster described by a `cluster.toml`.
//!
//! [`Client`] drives MPC on all three nodes; [`RetrievalClient`] does private retrieval (TFHE)
//! against one node's Retrieval service.
//!
//! Inputs are secret-shared **locally** (`share3` with the OS CSPRNG) and each node receives only
//! its two components; outputs are fetched from all three nodes and reconstructed locally with
//! the consistency check, which names a node whose components disagree.
//!
//! ```no_run
//! # async fn demo() -> Result<(), veil_node::client::ClientError> {
//! use veil_circuits::{Builder, Ring};
//! let mut c = veil_node::client::Client::connect("devnet/cluster.toml".as_ref()).await?;
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

use crate::binding::SessionBinding;
use crate::config::{ClusterConfig, ConfigError};
use crate::pb::{
    self, compute_client::ComputeClient, retrieval_client::RetrievalClient as RetrievalGrpc,
};
pub use crate::policy::Grant;
use crate::receipt::{self, ReceiptError};
use crate::tls::{self, PinnedConnector, TlsError, WrongCertificate};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use rand::TryRngCore;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;
use veil_circuits::ValidatedProgram;
use veil_runtime::fhe::corpus::best_k;
use veil_runtime::fhe::{
    CorpusInfo, DbShape, EncryptedQuery, FetchQuery, FheError, Hint, ScoreQuery, ScoredDoc,
};
use veil_runtime::kernels::{le_bytes_to_words, words_to_le_bytes};
use veil_runtime::sharing::{ReconstructError, SEED_BYTES, Shares, reconstruct, share3_seeded};

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
            ..Default::default()
        },
        pb::NodeShares {
            own_seed: seed(&s.seed1),
            next: x2.clone(),
            len,
            ..Default::default()
        },
        pb::NodeShares {
            own: x2,
            next_seed: seed(&s.seed0),
            len,
            ..Default::default()
        },
    ]
}

/// A client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A connection could not be set up.
    #[error("connecting to node {node}: {source}")]
    Connect {
        /// Party index of the node.
        node: usize,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// A node refused or failed a call.
    #[error("node {node}: {}: {}", status.code(), status.message())]
    Status {
        /// Party index of the node.
        node: usize,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The nodes' components of an output do not agree.
    #[error("output '{output}': {source}")]
    Reconstruct {
        /// Output name.
        output: String,
        /// Cause (names the disagreeing node when it can).
        source: ReconstructError,
    },
    /// The nodes answered inconsistently (e.g. different program ids or output lists).
    #[error("nodes disagree: {0}")]
    Inconsistent(String),
    /// The address of node `node` led to a server whose certificate (valid for the cluster CA)
    /// is not the one `cluster.toml` pins for that node: another node or an impostor answered.
    #[error("node {node} is not the node cluster.toml pins: {source}")]
    WrongNodeCertificate {
        /// Party index of the node the client meant to reach.
        node: usize,
        /// Address, presented and pinned fingerprints.
        source: WrongCertificate,
    },
    /// A node's components of an output are not whole 64-bit words or differ in length.
    #[error("node {node} sent a malformed output '{output}': {what}")]
    MalformedOutput {
        /// Party index of the node.
        node: usize,
        /// Output name.
        output: String,
        /// What is wrong with it.
        what: String,
    },
    /// A node's receipt is missing, binds another request, or does not verify.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
}

/// Largest response a [`Client`] decodes: 1 GiB, the largest message a node accepts from a peer
/// ([`crate::peer::MAX_MESSAGE_BYTES`]). A result is fetched in one message holding both of the
/// node's components (16 bytes per output element), so outputs of up to 64 M elements in total
/// per result fit (nodes also cap what they send at their `max_message_bytes`, 64 MiB by
/// default). A larger response fails with `OutOfRange` instead of being buffered.
pub const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// The error for a failed call to node `node`: a refused certificate pin when that is why the
/// (lazy) channel could not connect, the status otherwise.
fn node_error(node: usize, connector: &PinnedConnector, status: tonic::Status) -> ClientError {
    match connector.refused() {
        Some(source) if status.code() == tonic::Code::Unavailable => {
            ClientError::WrongNodeCertificate { node, source }
        }
        _ => ClientError::Status { node, status },
    }
}

/// The three nodes' signed receipts of one run, verified against the keys in `cluster.toml`.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The session binding all three signed (session, program, inputs, caller, delivery).
    pub binding: [u8; 32],
    /// Each node's receipt, by party: its output digest and Ed25519 signature.
    pub nodes: Vec<pb::Receipt>,
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "binding {}", hex::encode(self.binding))?;
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
}

/// A connection to the three nodes of a cluster.
pub struct Client {
    name: String,
    nodes: Vec<NodeConn>,
    /// Each node's pinned receipt key, by party.
    receipt_keys: Vec<VerifyingKey>,
}

/// One node: its gRPC client and the pinned connector its channel dials with.
struct NodeConn {
    grpc: ComputeClient<Channel>,
    connector: PinnedConnector,
}

/// Run the same call on all three nodes concurrently.
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
        let results: Vec<_> = futures_join_all(futures).await;
        results.into_iter().collect::<Result<Vec<_>, ClientError>>()
    }};
}

/// Await futures concurrently, keeping their order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    // Three futures: poll them together with join on pairs.
    let mut iter = handles.into_iter();
    match (iter.next(), iter.next(), iter.next()) {
        (Some(a), Some(b), Some(c)) => {
            let (a, b, c) = tokio::join!(a, b, c);
            out.extend([a, b, c]);
        }
        (a, b, c) => {
            for f in [a, b, c].into_iter().flatten() {
                out.push(f.await);
            }
        }
    }
    out
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
        })
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
    /// outputs); `receive` lists clients the raw value may flow to (see [`crate::policy`]).
    pub async fn store_secret(
        &mut self,
        id: &str,
        values: &[u64],
        grants: &[Grant],
        receive: &[&str],
    ) -> Result<(), ClientError> {
        let parts = node_components(values);
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
        self.invoke_with(program_id, stored, inline, None).await
    }

    async fn invoke_with(
        &mut self,
        program_id: &str,
        stored: &[(&str, &str)],
        inline: &[(&str, &[u64])],
        result_id: Option<&str>,
    ) -> Result<(InvokeSummary, HashMap<String, Vec<u64>>), ClientError> {
        let session: u64 = rand::random();
        let inputs: HashMap<String, String> = stored
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut per_node: [HashMap<String, pb::NodeShares>; 3] = Default::default();
        for (name, values) in inline {
            for (i, part) in node_components(values).into_iter().enumerate() {
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
        // What all three nodes must have signed: the request as this client sent it (the
        // nodes' requests differ only in their share components, which the binding omits).
        let binding = SessionBinding::of_request(&requests[0], program_id, &self.name).hash();
        let requests = &requests;
        let res = on_all!(self, i, c => c.invoke(requests[i].clone()))?;
        for (party, (r, key)) in res.iter().zip(&self.receipt_keys).enumerate() {
            let outputs = result_id.is_none().then_some(r.outputs.as_slice());
            receipt::verify(key, party, &binding, outputs, r.receipt.as_ref())?;
        }
        let receipt = Receipt {
            binding,
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

/// A retrieval call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetrievalError {
    /// The cluster file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The cluster file lists no node with this party index.
    #[error("the cluster has no node {node}")]
    NoSuchNode {
        /// The requested party index.
        node: usize,
    },
    /// A connection could not be set up.
    #[error("connecting to node {node}: {source}")]
    Connect {
        /// Party index of the node.
        node: usize,
        /// Cause.
        source: tonic::transport::Error,
    },
    /// The node refused or failed a call.
    #[error("node {node}: {}: {}", status.code(), status.message())]
    Status {
        /// Party index of the node.
        node: usize,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// Encrypting a query or decoding an answer, hint or corpus object failed.
    #[error(transparent)]
    Fhe(#[from] FheError),
    /// The node's reply broke the protocol (e.g. a corpus stream with gaps, a wrong count).
    #[error("node {node} sent a malformed reply: {what}")]
    Malformed {
        /// Party index of the node.
        node: usize,
        /// What is wrong with it.
        what: String,
    },
    /// `fetch` on a corpus that has no passages.
    #[error("corpus '{corpus}' has no passages")]
    NoPassages {
        /// The corpus name.
        corpus: String,
    },
    /// The node's address led to a server whose certificate is not the one `cluster.toml` pins
    /// for it (see [`ClientError::WrongNodeCertificate`]).
    #[error("node {node} is not the node cluster.toml pins: {source}")]
    WrongNodeCertificate {
        /// Party index of the node the client meant to reach.
        node: usize,
        /// Address, presented and pinned fingerprints.
        source: WrongCertificate,
    },
}

impl ClientError {
    /// The gRPC status code a node answered with, for [`ClientError::Status`].
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

impl RetrievalError {
    /// The gRPC status code, for [`RetrievalError::Status`].
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            RetrievalError::Status { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

/// What a client keeps of one corpus version: the public metadata and the hints it decodes
/// answers with (downloaded once by [`RetrievalClient::fetch_corpus`]).
#[derive(Clone, Debug)]
pub struct CorpusHandle {
    /// The corpus name on the node.
    pub name: String,
    /// Dimension, centroids, cluster members and the scoring shape.
    pub info: CorpusInfo,
    /// The scoring hint.
    pub hint: Hint,
    /// The passage hint (its `shape` is the passage matrix's), when the corpus has passages.
    pub passages: Option<Hint>,
}

impl CorpusHandle {
    /// Shape of the passage matrix, when the corpus has passages.
    pub fn passage_shape(&self) -> Option<&DbShape> {
        self.passages.as_ref().map(|h| &h.shape)
    }
}

/// Largest corpus object (info or hint) a client accepts from a stream: 4 GiB.
const MAX_CORPUS_OBJECT_BYTES: u64 = 4 << 30;

/// Largest message a [`RetrievalClient`] decodes (answers are far smaller; corpus chunks are
/// at most [`crate::service::retrieval::CORPUS_CHUNK_BYTES`]).
const RETRIEVAL_DECODE_LIMIT: usize = 64 << 20;

/// Query bytes per `Fetch` call before [`RetrievalClient::fetch`] starts another call (stays
/// under the node's default 64 MiB message limit).
const FETCH_BATCH_BYTES: usize = 32 << 20;

/// A client of the Retrieval service of ONE node: downloads a corpus's public objects, then
/// scores encrypted queries and fetches passages privately. Queries are encrypted locally
/// under fresh one-time keys; the node never sees an embedding or a passage index.
///
/// ```no_run
/// # async fn demo() -> Result<(), veil_node::client::RetrievalError> {
/// use veil_node::client::RetrievalClient;
/// let mut c = RetrievalClient::connect("devnet/cluster.toml".as_ref(), 0).await?;
/// let corpus = c.fetch_corpus("docs").await?;
/// let question = vec![0.1f32; corpus.info.dim];
/// let best = c.score(&corpus, &question, 4).await?;
/// let ids: Vec<usize> = best.iter().map(|d| d.doc as usize).collect();
/// let passages = c.fetch(&corpus, &ids).await?;
/// # let _ = passages; Ok(()) }
/// ```
pub struct RetrievalClient {
    node: usize,
    inner: RetrievalGrpc<Channel>,
    connector: PinnedConnector,
}

impl RetrievalClient {
    /// Connect to node `party` of `cluster.toml`, presenting the client identity it names and
    /// accepting only the node certificate it pins for that party.
    pub async fn connect(cluster_toml: &Path, party: usize) -> Result<Self, RetrievalError> {
        let cfg = ClusterConfig::load(cluster_toml)?;
        let node = cfg
            .node(party)
            .ok_or(RetrievalError::NoSuchNode { node: party })?;
        let tls = tls::PinnedTls::load(&cfg.ca, &cfg.client.cert, &cfg.client.key)?;
        let connector = tls.connector(party, &node.addr, &node.cert_sha256)?;
        let channel = connector
            .endpoint()
            .map_err(|source| RetrievalError::Connect {
                node: party,
                source,
            })?
            .connect_timeout(Duration::from_secs(10))
            .initial_stream_window_size(8 << 20)
            .initial_connection_window_size(8 << 20)
            .connect_with_connector_lazy(connector.clone());
        Ok(RetrievalClient {
            node: party,
            inner: RetrievalGrpc::new(channel)
                .max_decoding_message_size(RETRIEVAL_DECODE_LIMIT)
                .max_encoding_message_size(usize::MAX),
            connector,
        })
    }

    fn status(&self) -> impl FnOnce(tonic::Status) -> RetrievalError + use<> {
        let (node, connector) = (self.node, self.connector.clone());
        move |status| match connector.refused() {
            Some(source) if status.code() == tonic::Code::Unavailable => {
                RetrievalError::WrongNodeCertificate { node, source }
            }
            _ => RetrievalError::Status { node, status },
        }
    }

    fn malformed(&self, what: impl Into<String>) -> RetrievalError {
        RetrievalError::Malformed {
            node: self.node,
            what: what.into(),
        }
    }

    /// The corpora the node serves, with sizes and database ids.
    pub async fn list_corpora(&mut self) -> Result<Vec<pb::CorpusSummary>, RetrievalError> {
        let status = self.status();
        Ok(self
            .inner
            .list_corpora(pb::ListCorporaRequest {})
            .await
            .map_err(status)?
            .into_inner()
            .corpora)
    }

    /// Downloads (streamed, reassembled) and decodes a corpus's info and hints.
    pub async fn fetch_corpus(&mut self, name: &str) -> Result<CorpusHandle, RetrievalError> {
        let status = self.status();
        let mut stream = self
            .inner
            .get_corpus(pb::GetCorpusRequest {
                corpus: name.to_string(),
            })
            .await
            .map_err(status)?
            .into_inner();
        // parts[p] = (total, bytes so far) of CorpusPart p.
        let mut parts: [Option<(u64, Vec<u8>)>; 4] = Default::default();
        let mut last_part = 0;
        loop {
            let status = self.status();
            let Some(chunk) = stream.message().await.map_err(status)? else {
                break;
            };
            let p = match pb::CorpusPart::try_from(chunk.part) {
                Ok(pb::CorpusPart::Unspecified) | Err(_) => {
                    return Err(self.malformed(format!("unknown corpus part {}", chunk.part)));
                }
                Ok(p) => p as usize,
            };
            if p < last_part {
                return Err(self.malformed("corpus parts out of order"));
            }
            last_part = p;
            if chunk.total > MAX_CORPUS_OBJECT_BYTES {
                return Err(self.malformed(format!("a {} byte corpus object", chunk.total)));
            }
            let (total, buf) = parts[p].get_or_insert_with(|| {
                let cap = chunk.total.min(RETRIEVAL_DECODE_LIMIT as u64) as usize;
                (chunk.total, Vec::with_capacity(cap))
            });
            let end = chunk.offset.checked_add(chunk.data.len() as u64);
            if *total != chunk.total || chunk.offset != buf.len() as u64 || end > Some(*total) {
                return Err(self.malformed(format!(
                    "chunk at offset {} (+{} bytes) of a {} byte object does not follow the {} \
                     bytes received",
                    chunk.offset,
                    chunk.data.len(),
                    chunk.total,
                    buf.len()
                )));
            }
            buf.extend_from_slice(&chunk.data);
        }
        let mut complete = |p: pb::CorpusPart| -> Result<Option<Vec<u8>>, RetrievalError> {
            match parts[p as usize].take() {
                None => Ok(None),
                Some((total, buf)) if buf.len() as u64 == total => Ok(Some(buf)),
                Some((total, buf)) => Err(RetrievalError::Malformed {
                    node: self.node,
                    what: format!(
                        "{} ended after {} of {total} bytes",
                        p.as_str_name(),
                        buf.len()
                    ),
                }),
            }
        };
        let info = complete(pb::CorpusPart::Info)?;
        let hint = complete(pb::CorpusPart::ScoreHint)?;
        let passages = complete(pb::CorpusPart::PassageHint)?;
        let (Some(info), Some(hint)) = (info, hint) else {
            return Err(self.malformed("the corpus stream lacks the info or the scoring hint"));
        };
        let info = CorpusInfo::from_bytes(&info)?;
        let hint = Hint::from_bytes(&hint)?;
        if hint.shape != info.shape {
            return Err(self.malformed(format!(
                "the scoring hint is for database {}, the corpus info for {}",
                hint.shape.id.short(),
                info.shape.id.short()
            )));
        }
        let passages = passages.map(|b| Hint::from_bytes(&b)).transpose()?;
        Ok(CorpusHandle {
            name: name.to_string(),
            info,
            hint,
            passages,
        })
    }

    /// Scores `embedding` privately: encrypts it for its nearest cluster, has the node scan the
    /// corpus, decodes the exact scores of that cluster's documents and returns the best `k`
    /// (highest score first, ties to the lower document id).
    pub async fn score(
        &mut self,
        corpus: &CorpusHandle,
        embedding: &[f32],
        k: usize,
    ) -> Result<Vec<ScoredDoc>, RetrievalError> {
        let (query, encrypted) = ScoreQuery::new(&corpus.info, embedding)?;
        let answer = self.score_encrypted(&corpus.name, &encrypted).await?;
        let scored = query.decode(&corpus.info, &corpus.hint, &answer)?;
        Ok(best_k(scored, k))
    }

    /// Fetches passages `indices` privately (in order). Queries go in as few `Fetch` calls as
    /// the message limits allow, each answered in one pass over the passage matrix.
    pub async fn fetch(
        &mut self,
        corpus: &CorpusHandle,
        indices: &[usize],
    ) -> Result<Vec<Vec<u8>>, RetrievalError> {
        let (Some(hint), Some(shape)) = (corpus.passages.as_ref(), corpus.passage_shape()) else {
            return Err(RetrievalError::NoPassages {
                corpus: corpus.name.clone(),
            });
        };
        let per_call = (FETCH_BATCH_BYTES / (shape.padded_cols() * 8).max(1))
            .clamp(1, crate::service::retrieval::MAX_FETCH_QUERIES);
        let mut out = Vec::with_capacity(indices.len());
        for batch in indices.chunks(per_call) {
            let (pending, queries): (Vec<_>, Vec<_>) = batch
                .iter()
                .map(|&i| FetchQuery::new(shape, i))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            let answers = self.fetch_encrypted(&corpus.name, &queries).await?;
            for (p, a) in pending.into_iter().zip(&answers) {
                out.push(p.decode(hint, a)?);
            }
        }
        Ok(out)
    }

    /// Low level: sends one encrypted scoring query as it is and returns the raw answer words.
    pub async fn score_encrypted(
        &mut self,
        corpus: &str,
        query: &EncryptedQuery,
    ) -> Result<Vec<u64>, RetrievalError> {
        let status = self.status();
        let answer = self
            .inner
            .score(pb::ScoreRequest {
                corpus: corpus.to_string(),
                db_id: Bytes::copy_from_slice(&query.db.0),
                bodies: words_to_le_bytes(&query.bodies).into(),
            })
            .await
            .map_err(status)?
            .into_inner()
            .answer;
        self.words("score answer", &answer)
    }

    /// Low level: sends encrypted passage queries as they are (one `Fetch` call) and returns
    /// the raw answer words, one vector per query.
    pub async fn fetch_encrypted(
        &mut self,
        corpus: &str,
        queries: &[EncryptedQuery],
    ) -> Result<Vec<Vec<u64>>, RetrievalError> {
        let status = self.status();
        let answers = self
            .inner
            .fetch(pb::FetchRequest {
                corpus: corpus.to_string(),
                queries: queries
                    .iter()
                    .map(|q| pb::EncryptedQuery {
                        db_id: Bytes::copy_from_slice(&q.db.0),
                        bodies: words_to_le_bytes(&q.bodies).into(),
                    })
                    .collect(),
            })
            .await
            .map_err(status)?
            .into_inner()
            .answers;
        if answers.len() != queries.len() {
            return Err(self.malformed(format!(
                "{} answers to {} fetch queries",
                answers.len(),
                queries.len()
            )));
        }
        answers
            .iter()
            .map(|a| self.words("fetch answer", a))
            .collect()
    }

    fn words(&self, what: &str, bytes: &[u8]) -> Result<Vec<u64>, RetrievalError> {
        if !bytes.len().is_multiple_of(8) {
            return Err(self.malformed(format!(
                "{what} of {} bytes is not whole u64 words",
                bytes.len()
            )));
        }
        Ok(le_bytes_to_words(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
