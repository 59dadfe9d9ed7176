//! Compiles `proto/mixsync/v1/*.proto` without `protoc`: `protox` parses the
//! files into a descriptor set, which drives the prost/tonic code generation
//! and is also written out for gRPC server reflection.

use std::path::{Path, PathBuf};
use std::{env, fs, io};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let include_dir = manifest_dir.join("../../proto");
    let proto_dir = include_dir.join("mixsync/v1");
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    let protos = proto_files(&proto_dir)?;
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    // `compile` includes imports (the well-known types too), so reflection
    // clients can resolve every type the service mentions.
    let fds = protox::compile(&protos, [&include_dir])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("mixsync_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Every `.proto` file directly in `dir`, sorted so the output is stable.
fn proto_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
