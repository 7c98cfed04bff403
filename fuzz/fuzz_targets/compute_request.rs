#![no_main]
//! `cargo +nightly fuzz run compute_request` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_node::fuzzing::compute_request(data));
