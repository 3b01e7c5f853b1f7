//! Checks that the checked-in generated code matches the `.proto` files.
//!
//! Regenerates `src/gen/io.linkerd.mesh.rs` with protox (no system `protoc`)
//! and tonic-prost-build, and the encoded `FileDescriptorSet`
//! `src/gen/descriptor.bin` (served by gRPC reflection, with the comments of
//! the `.proto` files), through `l5d_proto::codegen`, and compares both byte
//! for byte with the checked-in files. With `UPDATE_PROTO=1` in the
//! environment it rewrites the checked-in files instead.

use std::path::Path;

use l5d_proto::codegen;
use prost::Message as _;

/// The `.proto` files, relative to the include root `proto/`.
const PROTOS: &[&str] = &[
    "io/linkerd/mesh/dtab.proto",
    "io/linkerd/mesh/interpreter.proto",
    "io/linkerd/mesh/resolver.proto",
    "io/linkerd/mesh/delegator.proto",
    "io/linkerd/mesh/codec.proto",
];

const UPDATE: &str = "UPDATE_PROTO=1 cargo test -p l5d-proto --test codegen";

#[test]
fn generated_code_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = codegen::generate_with_codec(
        &dir.join("proto"),
        PROTOS,
        "io.linkerd.mesh.rs",
        &Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("l5d-proto-codegen-{}", std::process::id())),
        // `src/codec.rs`: a smaller encode buffer per call.
        "crate::codec::MeshCodec",
    );
    let gen_dir = dir.join("src/gen");
    codegen::check_or_update(
        &gen_dir.join("io.linkerd.mesh.rs"),
        generated.code.as_bytes(),
        UPDATE,
    );
    codegen::check_or_update(
        &gen_dir.join("descriptor.bin"),
        &generated.descriptor,
        UPDATE,
    );
}

/// The checked-in descriptor set decodes and names the five files.
#[test]
fn descriptor_set_lists_the_mesh_files() {
    let fds = prost_types::FileDescriptorSet::decode(l5d_proto::FILE_DESCRIPTOR_SET)
        .expect("the checked-in descriptor set decodes");
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    assert_eq!(names, PROTOS);
}
