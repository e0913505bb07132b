//! Generates the gRPC code from `proto/` at build time with the `protoc`
//! shipped by the `protoc-bin-vendored` crate (unless `PROTOC` is set), so a
//! fresh machine needs nothing installed, and the messages' proto3 JSON
//! mapping (pbjson) from the same descriptor set, for Connect callers.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(protoc) => config.protoc_executable(protoc),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("ticketauthz_descriptor.bin"))
        .compile_with_config(
            config,
            &["proto/ticketauthz/v1/ticketauthz.proto"],
            &["proto"],
        )?;
    let descriptors = std::fs::read(out.join("ticketauthz_descriptor.bin"))?;
    // Every field written, defaults too: JSON callers (PHP's arrays) index
    // `allowed` and `revision` directly instead of testing for absence.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .ignore_unknown_fields()
        .emit_fields()
        .build(&[".ticketauthz.v1"])?;
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds these at compile time; a new file must rebuild.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
