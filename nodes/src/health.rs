//! gRPC health checks of running nodes over the cluster's mutual TLS: what `veil health` and
//! container health checks run (no `grpc_health_probe` needed; the `veil` binary is enough).
//!
//! A node checks itself with its own certificate (node certificates are valid for client
//! authentication), pinned to its own fingerprint; a client checks each node with its
//! `cluster.toml` identity.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use veil_proto::tls::{PinnedTls, TlsError};

use crate::config::NodeConfig;

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The TLS files could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// No connection to the node.
    #[error("P{party} at {addr}: connect: {source}")]
    Connect {
        /// The node's party.
        party: usize,
        /// The dialed address.
        addr: String,
        /// The underlying error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The Check call failed.
    #[error("P{party} at {addr}: health check: {}", status.message())]
    Rpc {
        /// The node's party.
        party: usize,
        /// The dialed address.
        addr: String,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The node answered but is not serving.
    #[error("P{party} at {addr}: {status}")]
    NotServing {
        /// The node's party.
        party: usize,
        /// The dialed address.
        addr: String,
        /// The reported status name (e.g. `NOT_SERVING`).
        status: String,
    },
    /// No answer within the timeout.
    #[error("P{party} at {addr}: no answer within {timeout:?}")]
    Timeout {
        /// The node's party.
        party: usize,
        /// The dialed address.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
}

/// Checks the overall health (`service = ""`) of node `party` at `addr`, presenting `cert` /
/// `key` (signed by `ca`) and requiring the node's certificate to have fingerprint `pin`.
pub async fn check(
    tls: &PinnedTls,
    party: usize,
    addr: &str,
    pin: &str,
    timeout: Duration,
) -> Result<(), HealthError> {
    let connector = tls.connector(party, addr, pin)?;
    let call = async {
        let endpoint = connector
            .endpoint()
            .map_err(|source| HealthError::Connect {
                party,
                addr: addr.to_string(),
                source,
            })?
            .connect_timeout(timeout);
        let channel = endpoint
            .connect_with_connector(connector.clone())
            .await
            .map_err(|source| HealthError::Connect {
                party,
                addr: addr.to_string(),
                source,
            })?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| HealthError::Rpc {
                party,
                addr: addr.to_string(),
                status,
            })?
            .into_inner();
        match ServingStatus::try_from(reply.status) {
            Ok(ServingStatus::Serving) => Ok(()),
            other => Err(HealthError::NotServing {
                party,
                addr: addr.to_string(),
                status: other
                    .map(|s| s.as_str_name().to_string())
                    .unwrap_or_else(|_| format!("status {}", reply.status)),
            }),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(HealthError::Timeout {
                party,
                addr: addr.to_string(),
                timeout,
            })
        })
}

/// The address a node reaches itself at: its listen address, with an unspecified IP
/// (`0.0.0.0`, `::`) replaced by loopback.
pub fn self_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Checks the node of `cfg` from its own host: dials [`self_addr`] with the node's own
/// certificate, pinned to its own fingerprint (the container health check).
pub async fn check_self(cfg: &NodeConfig, timeout: Duration) -> Result<(), HealthError> {
    let tls = PinnedTls::load(&cfg.tls.ca, &cfg.tls.cert, &cfg.tls.key)?;
    let pin = veil_proto::tls::file_fingerprint(&cfg.tls.cert)?;
    check(
        &tls,
        cfg.party,
        &self_addr(cfg.listen).to_string(),
        &pin,
        timeout,
    )
    .await
}

/// Loads the dialer of a client identity (`ca`, `cert`, `key` PEM files).
pub fn client_tls(ca: &Path, cert: &Path, key: &Path) -> Result<PinnedTls, HealthError> {
    Ok(PinnedTls::load(ca, cert, key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_addr_replaces_unspecified_with_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(self_addr(a("0.0.0.0:7100")), a("127.0.0.1:7100"));
        assert_eq!(self_addr(a("[::]:7100")), a("[::1]:7100"));
        assert_eq!(self_addr(a("10.1.2.3:7100")), a("10.1.2.3:7100"));
    }

    #[tokio::test]
    async fn a_running_node_is_healthy_and_a_stopped_one_is_not() {
        use crate::devnet::{LocalCluster, Runner};
        let mut cluster = LocalCluster::temp(7640, &["alice"], Runner::InProcess).unwrap();
        cluster.start_node(0).unwrap();
        let cfg = NodeConfig::load(&cluster.layout().node_configs[0]).unwrap();
        let mut ok = Err(None);
        for _ in 0..50 {
            match check_self(&cfg, Duration::from_secs(2)).await {
                Ok(()) => {
                    ok = Ok(());
                    break;
                }
                Err(e) => ok = Err(Some(e)),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ok.unwrap_or_else(|e| panic!("node 0 not healthy: {e:?}"));
        cluster.kill_node(0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let err = check_self(&cfg, Duration::from_secs(2)).await.unwrap_err();
        assert!(
            matches!(err, HealthError::Connect { party: 0, .. }),
            "{err:?}"
        );
    }
}
