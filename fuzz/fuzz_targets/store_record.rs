#![no_main]
//! `cargo +nightly fuzz run store_record` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_node::fuzzing::store_record(data));
