//! Checks that the checked-in generated code matches the `.proto` files.
//!
//! Regenerates `src/gen/io.linkerd.mesh.rs` with protox (no system `protoc`)
//! and tonic-prost-build into a temporary directory, and the encoded
//! `FileDescriptorSet` `src/gen/descriptor.bin` (served by gRPC reflection),
//! and compares both byte for byte with the checked-in files. With
//! `UPDATE_PROTO=1` in the environment it rewrites the checked-in files
//! instead.

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message as _;

/// The `.proto` files, relative to the include root `proto/`.
const PROTOS: &[&str] = &[
    "io/linkerd/mesh/dtab.proto",
    "io/linkerd/mesh/interpreter.proto",
    "io/linkerd/mesh/resolver.proto",
    "io/linkerd/mesh/delegator.proto",
    "io/linkerd/mesh/codec.proto",
];

/// The file prost-build writes for package `io.linkerd.mesh`.
const GENERATED: &str = "io.linkerd.mesh.rs";

/// The encoded `FileDescriptorSet` of the `.proto` files (for reflection).
const DESCRIPTOR: &str = "descriptor.bin";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Generates the Rust code into a fresh temporary directory and returns it
/// with the encoded descriptor set.
fn generate() -> (String, Vec<u8>) {
    let include = manifest_dir().join("proto");
    let fds = protox::compile(PROTOS, [&include]).unwrap_or_else(|e| panic!("protox: {e:?}"));
    // With source info, so that reflection clients (grpcurl describe) show
    // the comments of the `.proto` files. protox records file names
    // relative to the include root, so the encoding does not depend on
    // where the checkout is.
    let descriptor = fds.encode_to_vec();

    let out_dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("l5d-proto-codegen-{}", std::process::id()));
    if out_dir.exists() {
        fs::remove_dir_all(&out_dir).expect("remove stale codegen out_dir");
    }
    fs::create_dir_all(&out_dir).expect("create codegen out_dir");

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(&out_dir)
        .compile_fds(fds)
        .expect("tonic-prost-build code generation");

    let code = fs::read_to_string(out_dir.join(GENERATED)).expect("read generated code");
    // Only one file is expected: one proto package.
    let files = fs::read_dir(&out_dir).expect("list out_dir").count();
    assert_eq!(
        files, 1,
        "expected exactly one generated file in {out_dir:?}"
    );
    fs::remove_dir_all(&out_dir).expect("remove codegen out_dir");
    (code, descriptor)
}

#[test]
fn generated_code_is_up_to_date() {
    let (code, descriptor) = generate();
    let gen_dir = manifest_dir().join("src").join("gen");
    check_or_update(&gen_dir.join(GENERATED), code.as_bytes());
    check_or_update(&gen_dir.join(DESCRIPTOR), &descriptor);
}

/// The checked-in descriptor set decodes and names the five files.
#[test]
fn descriptor_set_lists_the_mesh_files() {
    let fds = prost_types::FileDescriptorSet::decode(l5d_proto::FILE_DESCRIPTOR_SET)
        .expect("the checked-in descriptor set decodes");
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    assert_eq!(names, PROTOS);
}

fn check_or_update(checked_in_path: &Path, generated: &[u8]) {
    if std::env::var_os("UPDATE_PROTO").is_some_and(|v| !v.is_empty() && v != "0") {
        fs::write(checked_in_path, generated).expect("write checked-in generated file");
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
            "generated file is out of date ({}: {first_diff}); \
             run `UPDATE_PROTO=1 cargo test -p l5d-proto --test codegen`",
            checked_in_path.display()
        );
    }
}
