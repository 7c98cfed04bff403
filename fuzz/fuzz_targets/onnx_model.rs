#![no_main]
//! `cargo +nightly fuzz run onnx_model` — see docs/security.md, "Fuzzing".
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_circuits::fuzzing::onnx_model(data));
