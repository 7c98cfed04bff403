#![no_main]
//! `cargo +nightly fuzz run fhe_format` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_runtime::fuzzing::fhe_format(data));
