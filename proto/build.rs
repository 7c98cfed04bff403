//! Compiles `veil/v1/*.proto` with protox (pure Rust: no system `protoc` needed) and
//! writes the file descriptor set used by gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "veil/v1/peer.proto",
        "veil/v1/compute.proto",
        "veil/v1/retrieval.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("veil_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // `bytes` fields as `bytes::Bytes`: round payloads are sliced, not copied, on decode.
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
