//! Generates the ledger.v1 gRPC code from `proto/ledger/v1/ledger.proto`.
//!
//! protoc comes from the `protoc-bin-vendored` crate, so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build_config();
    config.protoc_executable(protoc);
    tonic_build::configure()
        .file_descriptor_set_path(out.join("ledger_v1_descriptor.bin"))
        .compile_protos_with_config(config, &["../proto/ledger/v1/ledger.proto"], &["../proto"])?;
    println!("cargo:rerun-if-changed=../proto/ledger/v1/ledger.proto");
    Ok(())
}

fn prost_build_config() -> tonic_build::Config {
    tonic_build::Config::new()
}
