#![no_main]
//! `cargo +nightly fuzz run program_ops` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_circuits::fuzzing::program_ops(data));
