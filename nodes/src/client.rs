//! Client SDK: talk to a veil cluster described by a `cluster.toml`.
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

use crate::config::{ClusterConfig, ConfigError};
use crate::pb::{self, compute_client::ComputeClient};
use crate::tls::{self, TlsError};
use rand::TryRngCore;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use veil_circuits::ValidatedProgram;
use veil_runtime::kernels::{le_bytes_to_words, words_to_le_bytes};
use veil_runtime::sharing::{ReconstructError, Shares, reconstruct, share3};

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
}

/// Rounds and bytes one invocation took, as reported by each node.
#[derive(Clone, Debug)]
pub struct InvokeSummary {
    /// Rounds (the same at every node).
    pub rounds: u64,
    /// Payload bytes sent by P0, P1, P2.
    pub bytes_sent: [u64; 3],
    /// Wall time of the session (key setup + program) at the slowest node.
    pub session_time: Duration,
}

/// A connection to the three nodes of a cluster.
pub struct Client {
    name: String,
    nodes: Vec<ComputeClient<Channel>>,
}

/// Run the same call on all three nodes concurrently.
macro_rules! on_all {
    ($self:ident, $i:ident, $c:ident => $call:expr) => {{
        let futures = $self
            .nodes
            .iter_mut()
            .enumerate()
            .map(|($i, $c)| async move {
                $call
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|status| ClientError::Status { node: $i, status })
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
    /// Connect with the identity and nodes of `cluster.toml`.
    pub async fn connect(cluster_toml: &Path) -> Result<Client, ClientError> {
        let cfg = ClusterConfig::load(cluster_toml)?;
        let tls = tls::client_tls(&cfg.ca, &cfg.client.cert, &cfg.client.key)?;
        let mut nodes = Vec::with_capacity(3);
        let mut sorted = cfg.nodes.clone();
        sorted.sort_by_key(|n| n.party);
        for n in &sorted {
            let connect = |source| ClientError::Connect {
                node: n.party,
                source,
            };
            let channel = Endpoint::from_shared(format!("https://{}", n.addr))
                .map_err(connect)?
                .tls_config(tls.clone())
                .map_err(connect)?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(10))
                .connect_lazy();
            nodes.push(
                ComputeClient::new(channel)
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX),
            );
        }
        Ok(Client {
            name: cfg.client.name,
            nodes,
        })
    }

    /// This client's name (as the nodes know it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Secret-share `values` locally and store each node's components under `id`. `compute`
    /// and `receive` list other clients allowed to compute on it / receive derived outputs.
    pub async fn store_secret(
        &mut self,
        id: &str,
        values: &[u64],
        compute: &[&str],
        receive: &[&str],
    ) -> Result<(), ClientError> {
        let mut rng = rand::rngs::OsRng.unwrap_err();
        let shares = share3(values, &mut rng);
        let compute: Vec<String> = compute.iter().map(|s| s.to_string()).collect();
        let receive: Vec<String> = receive.iter().map(|s| s.to_string()).collect();
        let shares = &shares;
        let (compute, receive) = (&compute, &receive);
        on_all!(self, i, c => c.store_value(pb::StoreValueRequest {
            value_id: id.to_string(),
            len: values.len() as u64,
            own: words_to_le_bytes(&shares[i].own).into(),
            next: words_to_le_bytes(&shares[i].next).into(),
            compute: compute.clone(),
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
        let session: u64 = rand::random();
        let inputs: HashMap<String, String> = inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let inputs = &inputs;
        let res = on_all!(self, _i, c => c.invoke(pb::InvokeRequest {
            program_id: program_id.to_string(),
            session,
            inputs: inputs.clone(),
            result_id: result_id.to_string(),
        }))?;
        Ok(InvokeSummary {
            rounds: res[0].rounds,
            bytes_sent: [res[0].bytes_sent, res[1].bytes_sent, res[2].bytes_sent],
            session_time: Duration::from_micros(
                res.iter().map(|r| r.session_micros).max().unwrap_or(0),
            ),
        })
    }

    /// Fetch every node's components of a result and reconstruct each output.
    pub async fn fetch(
        &mut self,
        result_id: &str,
    ) -> Result<HashMap<String, Vec<u64>>, ClientError> {
        let res = on_all!(self, _i, c => c.get_result(pb::GetResultRequest {
            result_id: result_id.to_string(),
        }))?;
        let mut out = HashMap::new();
        for (k, o) in res[0].outputs.iter().enumerate() {
            let shares: Vec<Shares> = res
                .iter()
                .map(|r| {
                    r.outputs
                        .get(k)
                        .filter(|x| x.name == o.name)
                        .map(|x| Shares {
                            own: le_bytes_to_words(&x.own[..x.own.len() / 8 * 8]),
                            next: le_bytes_to_words(&x.next[..x.next.len() / 8 * 8]),
                        })
                        .ok_or_else(|| {
                            ClientError::Inconsistent(format!("output '{}' missing", o.name))
                        })
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
