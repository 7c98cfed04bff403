//! Shared by the end-to-end tests: three `veil node` processes with mutual TLS on loopback
//! ([`LocalCluster`], clients `alice` and `bob`).
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use veil_circuits::{Builder, Recipient, Ring};
use veil_client::Client;
use veil_node::devnet::{DevnetLayout, LocalCluster, Runner, free_base_port};

/// Distinct port ranges per test in this process (and per process, by pid), below the
/// ephemeral range and checked free ([`free_base_port`]).
pub fn base_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let hint = 20_000 + (std::process::id() % 100) as u16 * 120 + k * 5;
    free_base_port(hint).expect("free loopback ports")
}

/// Three `veil node` processes (this crate's binary) with mutual TLS on a fresh loopback port
/// range, laid out in a temporary directory for clients `alice` and `bob`; killed on drop.
pub fn start() -> LocalCluster {
    start_with(base_port(), |_| {})
}

/// A cluster on `base_port..base_port+3`, letting `edit` change the devnet's files before the
/// nodes start.
pub fn start_with(base_port: u16, edit: impl FnOnce(&DevnetLayout)) -> LocalCluster {
    let runner = Runner::Process(env!("CARGO_BIN_EXE_veil").into());
    let mut c = LocalCluster::temp(base_port, &["alice", "bob"], runner).expect("devnet files");
    edit(c.layout());
    c.start().expect("start the nodes");
    c
}

/// Connect and wait until all three nodes answer.
pub async fn ready_client(path: &Path) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = Client::connect(path).await.expect("client config");
        match c.list().await {
            Ok(_) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cluster did not come up: {e}"),
        }
    }
}

/// `z = x ⊙ y` and `neg = (z < 0)` over `n` ring elements, to `client`.
pub fn mul_program(client: &str, n: usize) -> veil_circuits::ValidatedProgram {
    let mut b = Builder::new();
    let x = b.secret_vector("x", n, Ring);
    let y = b.secret_vector("y", n, Ring);
    let z = b.mul(x, y);
    let l = b.ltz(z);
    b.output("z", z, Recipient::Client(client.into()));
    b.output("neg", l, Recipient::Client(client.into()));
    b.finish().expect("valid program")
}
