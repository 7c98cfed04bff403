//! Compiles the vendored `proto/onnx/onnx.proto` (the ONNX IR schema, Apache-2.0) with protox
//! and prost-build: pure Rust, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "proto/onnx/onnx.proto";
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([file], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
