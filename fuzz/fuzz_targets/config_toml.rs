#![no_main]
//! `cargo +nightly fuzz run config_toml` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_node::fuzzing::config_toml(data));
