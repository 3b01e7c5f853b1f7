//! Checks that the checked-in generated code matches the `.proto` file.
//!
//! Regenerates `src/gen/l5d.demo.rs` with protox (no system `protoc`) and
//! tonic-prost-build, through `l5d_proto::codegen` as `l5d-proto` does, and
//! compares it byte for byte with the checked-in file. With
//! `UPDATE_PROTO=1` in the environment it rewrites the checked-in file
//! instead.

use std::path::Path;

use l5d_proto::codegen;

#[test]
fn generated_code_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = codegen::generate(
        &dir.join("proto"),
        &["l5d/demo/greeter.proto"],
        "l5d.demo.rs",
        &Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("l5d-demo-codegen-{}", std::process::id())),
    );
    codegen::check_or_update(
        &dir.join("src/gen/l5d.demo.rs"),
        generated.code.as_bytes(),
        "UPDATE_PROTO=1 cargo test -p l5d-demo --test codegen",
    );
}
