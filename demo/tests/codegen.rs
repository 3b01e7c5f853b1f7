//! Checks that the checked-in generated code matches the `.proto` file.
//!
//! Regenerates `src/gen/l5d.demo.rs` with protox (no system `protoc`) and
//! tonic-prost-build into a temporary directory and compares it byte for
//! byte with the checked-in file, as `l5d-proto` does. With `UPDATE_PROTO=1`
//! in the environment it rewrites the checked-in file instead.

use std::fs;
use std::path::{Path, PathBuf};

/// The `.proto` files, relative to the include root `proto/`.
const PROTOS: &[&str] = &["l5d/demo/greeter.proto"];

/// The file prost-build writes for package `l5d.demo`.
const GENERATED: &str = "l5d.demo.rs";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Generates the Rust code into a fresh temporary directory and returns it.
fn generate() -> String {
    let include = manifest_dir().join("proto");
    let fds = protox::compile(PROTOS, [&include]).unwrap_or_else(|e| panic!("protox: {e:?}"));

    let out_dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("l5d-demo-codegen-{}", std::process::id()));
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
    code
}

#[test]
fn generated_code_is_up_to_date() {
    let code = generate();
    let path = manifest_dir().join("src").join("gen").join(GENERATED);
    check_or_update(&path, code.as_bytes());
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
             run `UPDATE_PROTO=1 cargo test -p l5d-demo --test codegen`",
            checked_in_path.display()
        );
    }
}
