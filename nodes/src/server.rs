//! Running one node: TLS, the Peer links, the Compute and Retrieval services, gRPC health and
//! reflection, graceful shutdown on Ctrl-C.

use crate::auth::Callers;
use crate::config::{ConfigError, NodeConfig, RetrievalEntry};
use crate::peer::{self, PeerMux};
use crate::pki;
use crate::retrieval_files::{CorpusDirError, LoadedCorpus, load_corpus_dir};
use crate::service::compute::ComputeService;
use crate::service::retrieval::RetrievalService;
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use veil_circuits::PartyId;
use veil_proto::pb;
use veil_proto::receipt::ReceiptSigner;
use veil_proto::tls::{self, TlsError};

/// A node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates or keys could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The share store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Filesystem or socket error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The receipt signing key could not be loaded.
    #[error(transparent)]
    Receipt(#[from] veil_proto::receipt::ReceiptError),
    /// Server reflection could not be set up.
    #[error("reflection: {0}")]
    Reflection(String),
    /// A configured retrieval corpus could not be loaded.
    #[error("retrieval corpus '{name}': {source}")]
    Retrieval {
        /// The corpus name (`[[retrieval]] name`).
        name: String,
        /// Cause (names the file).
        source: CorpusDirError,
    },
}

/// Loads the configured retrieval corpora off the async workers (decoding re-hashes every
/// matrix and checks every hint), logging names, sizes and load times.
pub async fn load_corpora(
    entries: &[RetrievalEntry],
) -> Result<BTreeMap<String, Arc<LoadedCorpus>>, ServeError> {
    let mut corpora = BTreeMap::new();
    for e in entries {
        let (name, dir) = (e.name.clone(), e.dir.clone());
        let start = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || load_corpus_dir(&dir))
            .await
            .map_err(|j| ServeError::Io {
                what: format!("loading retrieval corpus '{name}'"),
                source: std::io::Error::other(j),
            })
            .and_then(|r| {
                r.map_err(|source| ServeError::Retrieval {
                    name: name.clone(),
                    source,
                })
            })?;
        tracing::info!(
            corpus = %name,
            documents = loaded.corpus.info.documents(),
            dim = loaded.corpus.info.dim,
            scan_bytes = loaded.corpus.db.scan_bytes(),
            hint_bytes = loaded.hint_bytes.len(),
            passages = loaded.passages.as_ref().map_or(0, |p| p.db.len()),
            load_ms = start.elapsed().as_millis() as u64,
            "retrieval corpus loaded"
        );
        corpora.insert(name, Arc::new(loaded));
    }
    Ok(corpora)
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM — so a supervisor's `kill` stops a node or
/// a devnet cleanly.
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Run one node until Ctrl-C or SIGTERM.
pub async fn run_node(cfg: NodeConfig) -> Result<(), ServeError> {
    cfg.validate()?;
    let me = PartyId::from_index(cfg.party);
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| ServeError::Io {
        what: format!("creating {}", cfg.data_dir.display()),
        source,
    })?;
    let store = Arc::new(
        Store::open(&cfg.data_dir.join("store.redb"))?
            .with_value_cache(cfg.value_cache_mib.saturating_mul(1 << 20)),
    );

    let mut fingerprints: [String; 3] = Default::default();
    for p in &cfg.peers {
        fingerprints[p.party] = p.cert_sha256.clone();
    }
    let timeout = Duration::from_millis(cfg.session_timeout_ms);
    let mux = PeerMux::new(me, fingerprints, timeout, peer::CHUNK_BYTES);
    // Dial the higher peers, accepting each only with the certificate its `peers[]` entry pins
    // (the accepting side checks ours the same way, in `PeerMux`).
    let dialer = tls::PinnedTls::load(&cfg.tls.ca, &cfg.tls.cert, &cfg.tls.key)?;
    for p in cfg.peers.iter().filter(|p| p.party > cfg.party) {
        let connector = dialer.connector(p.party, &p.addr, &p.cert_sha256)?;
        mux.connect_pinned(PartyId::from_index(p.party), connector);
    }

    let clients: HashMap<String, String> = cfg
        .clients
        .iter()
        .map(|c| (c.cert_sha256.clone(), c.name.clone()))
        .collect();
    // Retrieval callers: the clients by name and the nodes as `node-<i>`.
    let mut callers = clients.clone();
    for p in &cfg.peers {
        callers
            .entry(p.cert_sha256.clone())
            .or_insert_with(|| format!("node-{}", p.party));
    }
    let retrieval =
        RetrievalService::new(load_corpora(&cfg.retrieval).await?, Callers::new(callers));
    let signer = ReceiptSigner::load(cfg.party, &cfg.signing_key)?;
    let compute = ComputeService::new(
        me,
        store,
        mux.clone(),
        Callers::new(clients),
        cfg.limits,
        signer,
        cfg.security,
    );
    #[cfg(feature = "fault-injection")]
    let compute = match cfg.fault.clone() {
        Some(spec) => {
            tracing::warn!(party = %me, ?spec, "fault injection armed (a test build)");
            compute.with_fault(crate::fault::Fault::new(spec))
        }
        None => compute,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::compute_server::ComputeServer<ComputeService>>()
        .await;
    health
        .set_serving::<pb::retrieval_server::RetrievalServer<RetrievalService>>()
        .await;
    // Reflection in both versions: `v1` (grpcurl, current tools) and `v1alpha` (Python's
    // `grpcio-reflection` descriptor database, older grpcurl and Postman).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let incoming = TcpIncoming::bind(cfg.listen)
        .map_err(|source| ServeError::Io {
            what: format!("binding {}", cfg.listen),
            source,
        })?
        .with_nodelay(Some(true));
    tracing::info!(party = %me, listen = %cfg.listen, security = %cfg.security, "veil node serving");
    // The link settings (windows, frame size, keep-alive) the peer tests exercise.
    peer::tune_server(Server::builder().tls_config(pki::server_tls(&cfg.tls)?)?)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(mux.service())
        .add_service(
            pb::compute_server::ComputeServer::new(compute)
                .max_decoding_message_size(cfg.max_message_bytes)
                .max_encoding_message_size(cfg.max_message_bytes),
        )
        .add_service(
            // Queries and fetch batches are megabytes; hints are streamed in 1 MiB chunks.
            pb::retrieval_server::RetrievalServer::new(retrieval)
                .max_decoding_message_size(cfg.max_message_bytes)
                .max_encoding_message_size(cfg.max_message_bytes),
        )
        .serve_with_incoming_shutdown(incoming, async {
            let _ = shutdown_signal().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}
