#![no_main]
//! `cargo +nightly fuzz run peer_frames` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_node::fuzzing::peer_frames(data));
