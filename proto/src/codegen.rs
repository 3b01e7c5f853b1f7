//! Regenerating checked-in protobuf code and checking it for drift: the one
//! implementation behind the codegen tests of `l5d-proto` and `l5d-demo`,
//! which check their generated code in rather than run a build script.
//!
//! Test tooling only, behind the `codegen` feature (protox and
//! tonic-prost-build); the generated code itself needs none of it. It
//! panics on failure, as a test does.

use std::fs;
use std::path::Path;

use prost::Message as _;

/// What one package's `.proto` files generate.
#[derive(Debug)]
pub struct Generated {
    /// The Rust code prost and tonic write for the package.
    pub code: String,
    /// The encoded `FileDescriptorSet`, with source info, for reflection.
    pub descriptor: Vec<u8>,
}

/// Compiles `protos` (relative to `include`) with protox, no system
/// `protoc`, and generates clients and servers with tonic-prost-build into
/// `scratch` (emptied first, removed after). The files must form one
/// package, whose code prost writes to `generated` (e.g. `l5d.demo.rs`).
pub fn generate(include: &Path, protos: &[&str], generated: &str, scratch: &Path) -> Generated {
    generate_with_codec(
        include,
        protos,
        generated,
        scratch,
        "tonic_prost::ProstCodec",
    )
}

/// [`generate`], with the generated clients and servers using the codec at
/// `codec_path` (a type with `Default` implementing `tonic::codec::Codec`)
/// instead of `tonic_prost::ProstCodec`.
pub fn generate_with_codec(
    include: &Path,
    protos: &[&str],
    generated: &str,
    scratch: &Path,
    codec_path: &str,
) -> Generated {
    let fds = protox::compile(protos, [include]).unwrap_or_else(|e| panic!("protox: {e:?}"));
    // protox records file names relative to the include root, so the
    // encoding does not depend on where the checkout is.
    let descriptor = fds.encode_to_vec();
    if scratch.exists() {
        fs::remove_dir_all(scratch).expect("remove a stale codegen directory");
    }
    fs::create_dir_all(scratch).expect("create the codegen directory");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .codec_path(codec_path)
        .out_dir(scratch)
        .compile_fds(fds)
        .expect("tonic-prost-build code generation");
    let code = fs::read_to_string(scratch.join(generated)).expect("read the generated code");
    let files = fs::read_dir(scratch)
        .expect("list the codegen directory")
        .count();
    assert_eq!(
        files, 1,
        "expected one generated file (one package) in {scratch:?}"
    );
    fs::remove_dir_all(scratch).expect("remove the codegen directory");
    Generated { code, descriptor }
}

/// Fails unless `checked_in_path` holds exactly `generated`, naming the
/// first difference and `update` (the command that rewrites it). With
/// `UPDATE_PROTO=1` in the environment it rewrites the file instead.
pub fn check_or_update(checked_in_path: &Path, generated: &[u8], update: &str) {
    if std::env::var_os("UPDATE_PROTO").is_some_and(|v| !v.is_empty() && v != "0") {
        fs::write(checked_in_path, generated).expect("write the checked-in generated file");
        eprintln!("rewrote {}", checked_in_path.display());
        return;
    }
    let checked_in = fs::read(checked_in_path).unwrap_or_default();
    if checked_in != generated {
        let first_diff = checked_in
            .iter()
            .zip(generated)
            .position(|(a, b)| a != b)
            .map_or_else(
                || "lengths differ".to_owned(),
                |i| {
                    let line = checked_in[..i].iter().filter(|&&b| b == b'\n').count() + 1;
                    format!("first difference at byte {i} (line {line})")
                },
            );
        panic!(
            "generated file is out of date ({}: {first_diff}); run `{update}`",
            checked_in_path.display()
        );
    }
}
