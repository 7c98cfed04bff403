//! linkem: a userspace link emulator. A [`Relay`] accepts TCP connections on a listen address,
//! connects each to a target and forwards bytes both ways, holding every chunk for a one-way
//! delay and, optionally, serialising it at a link rate — what `tc netem` would do on a kernel
//! that had it. Put one relay in front of each server address and every connection to it sees
//! a round-trip time of twice the delay.
//!
//! Blocking I/O on plain threads (two per direction per connection) keeps the timing precise
//! below a millisecond: a writer sleeps with `std::thread::sleep` until each chunk is due.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Errors from starting a relay.
#[derive(Debug, thiserror::Error)]
pub enum LinkemError {
    /// The listen address could not be bound.
    #[error("listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A profile name or route is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// The properties of an emulated link, per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkProfile {
    /// Added to every chunk in each direction (round-trip time = 2 × this).
    pub one_way_delay: Duration,
    /// Link rate in bits per second (`None`: unlimited).
    pub rate_bits_per_s: Option<u64>,
}

impl LinkProfile {
    /// No delay, no rate limit (a plain relay).
    pub const LOOPBACK: LinkProfile = LinkProfile {
        one_way_delay: Duration::ZERO,
        rate_bits_per_s: None,
    };
    /// A datacenter LAN: 0.2 ms round trip, 10 Gbit/s.
    pub const LAN: LinkProfile = LinkProfile {
        one_way_delay: Duration::from_micros(100),
        rate_bits_per_s: Some(10_000_000_000),
    };
    /// A WAN between regions: 20 ms round trip, 1 Gbit/s.
    pub const WAN: LinkProfile = LinkProfile {
        one_way_delay: Duration::from_millis(10),
        rate_bits_per_s: Some(1_000_000_000),
    };

    /// `loopback`, `lan` or `wan`.
    pub fn named(name: &str) -> Result<LinkProfile, LinkemError> {
        match name {
            "loopback" => Ok(Self::LOOPBACK),
            "lan" => Ok(Self::LAN),
            "wan" => Ok(Self::WAN),
            other => Err(LinkemError::Invalid(format!(
                "unknown profile `{other}` (loopback, lan, wan)"
            ))),
        }
    }

    /// The round-trip time the profile adds.
    pub fn rtt(&self) -> Duration {
        self.one_way_delay * 2
    }

    /// How long `bytes` take to serialise at the link rate.
    pub fn serialisation(&self, bytes: usize) -> Duration {
        match self.rate_bits_per_s {
            Some(rate) if rate > 0 => Duration::from_secs_f64(bytes as f64 * 8.0 / rate as f64),
            _ => Duration::ZERO,
        }
    }
}

/// `LISTEN=TARGET`, e.g. `10.77.0.1:7100=127.0.0.1:7100`.
pub fn parse_route(route: &str) -> Result<(SocketAddr, String), LinkemError> {
    let (listen, target) = route
        .split_once('=')
        .ok_or_else(|| LinkemError::Invalid(format!("route `{route}`: want LISTEN=TARGET")))?;
    let listen = listen
        .parse()
        .map_err(|e| LinkemError::Invalid(format!("route `{route}`: listen address: {e}")))?;
    if target.rsplit_once(':').is_none() {
        return Err(LinkemError::Invalid(format!(
            "route `{route}`: target is not host:port"
        )));
    }
    Ok((listen, target.to_string()))
}

/// Largest chunk read at once (at 1 Gbit/s it takes 0.5 ms to serialise).
const CHUNK: usize = 64 * 1024;

/// A running relay: stops accepting when dropped (open connections run until either side
/// closes).
pub struct Relay {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Binds `listen` and relays each accepted connection to `target` over `profile`.
    pub fn spawn(
        listen: SocketAddr,
        target: impl Into<String>,
        profile: LinkProfile,
    ) -> Result<Relay, LinkemError> {
        let listener = TcpListener::bind(listen).map_err(|source| LinkemError::Bind {
            addr: listen.to_string(),
            source,
        })?;
        let local = listener.local_addr().map_err(|source| LinkemError::Bind {
            addr: listen.to_string(),
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let target = target.into();
        let flag = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(inbound) = conn else { continue };
                let target = target.clone();
                thread::spawn(move || {
                    if let Err(e) = relay_connection(inbound, &target, profile) {
                        eprintln!("linkem: connection to {target}: {e}");
                    }
                });
            }
        });
        Ok(Relay { local, stop })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_millis(100));
    }
}

fn relay_connection(inbound: TcpStream, target: &str, profile: LinkProfile) -> std::io::Result<()> {
    let addr = target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let outbound = TcpStream::connect(addr)?;
    inbound.set_nodelay(true)?;
    outbound.set_nodelay(true)?;
    pipe(inbound.try_clone()?, outbound.try_clone()?, profile);
    pipe(outbound, inbound, profile);
    Ok(())
}

/// Forwards `from` → `to`: a reader stamps each chunk with the time it is due at the far end
/// (after serialisation behind earlier chunks and the one-way delay), a writer delivers it then.
fn pipe(mut from: TcpStream, mut to: TcpStream, profile: LinkProfile) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut link_free = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let now = Instant::now();
                    let start = link_free.max(now);
                    link_free = start + profile.serialisation(n);
                    if tx
                        .send((link_free + profile.one_way_delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    });
    thread::spawn(move || {
        for (due, chunk) in rx {
            wait_until(due);
            if to.write_all(&chunk).is_err() {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Below this, sleeping overshoots by about as much as it sleeps (timer slack): spin instead.
const SPIN: Duration = Duration::from_micros(80);

/// Sleeps until `due`, spinning (yielding) through the last [`SPIN`] for sub-millisecond
/// precision.
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now + SPIN {
        thread::sleep(due - now - SPIN);
    }
    while Instant::now() < due {
        thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_routes_parse() {
        assert_eq!(
            LinkProfile::named("lan").unwrap().rtt(),
            Duration::from_micros(200)
        );
        assert_eq!(
            LinkProfile::named("wan").unwrap().rtt(),
            Duration::from_millis(20)
        );
        assert!(LinkProfile::named("moon").is_err());
        assert_eq!(
            LinkProfile::WAN.serialisation(125_000_000),
            Duration::from_secs(1)
        );
        let (l, t) = parse_route("127.0.0.1:9000=node0:7100").unwrap();
        assert_eq!(l, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(t, "node0:7100");
        assert!(parse_route("127.0.0.1:9000").is_err());
        assert!(parse_route("x=y").is_err());
    }
}
