//! `linkem`: relay TCP routes over an emulated link until killed.
//!
//! ```text
//! linkem --profile wan --route 10.77.0.1:7100=127.0.0.1:7100 --route …
//! linkem --delay-ms 5 --rate-mbit 100 --route 127.0.0.1:9000=127.0.0.1:7100
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use linkem::{LinkProfile, Relay, parse_route};

/// Relay TCP connections, adding a one-way delay (and a rate limit) in each direction.
#[derive(Parser)]
#[command(name = "linkem", version)]
struct Args {
    /// A named link: loopback (none), lan (0.2 ms RTT, 10 Gbit/s), wan (20 ms RTT, 1 Gbit/s).
    #[arg(long, default_value = "loopback")]
    profile: String,
    /// Override the profile's one-way delay, in milliseconds (fractions allowed).
    #[arg(long)]
    delay_ms: Option<f64>,
    /// Override the profile's rate, in Mbit/s (0: unlimited).
    #[arg(long)]
    rate_mbit: Option<f64>,
    /// LISTEN=TARGET; repeat for several routes.
    #[arg(long, required = true)]
    route: Vec<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut profile = LinkProfile::named(&args.profile)?;
    if let Some(ms) = args.delay_ms {
        profile.one_way_delay = Duration::from_secs_f64(ms / 1000.0);
    }
    if let Some(mbit) = args.rate_mbit {
        profile.rate_bits_per_s = (mbit > 0.0).then_some((mbit * 1e6) as u64);
    }
    let mut relays = Vec::new();
    for route in &args.route {
        let (listen, target) = parse_route(route)?;
        let relay = Relay::spawn(listen, target.clone(), profile)
            .with_context(|| format!("route {route}"))?;
        eprintln!(
            "linkem: {} -> {target} (one-way {:?}, rate {})",
            relay.local_addr(),
            profile.one_way_delay,
            profile
                .rate_bits_per_s
                .map(|r| format!("{} Mbit/s", r / 1_000_000))
                .unwrap_or_else(|| "unlimited".into())
        );
        relays.push(relay);
    }
    loop {
        std::thread::park();
    }
}
