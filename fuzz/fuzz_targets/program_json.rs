#![no_main]
//! `cargo +nightly fuzz run program_json` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_circuits::fuzzing::program_json(data));
