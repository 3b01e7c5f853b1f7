//! Running the real `namerctl` binary, shared by the test files.

use std::path::Path;
use std::process::Output;

/// Runs namerctl in `dir` against `base_url` (via `NAMERCTL_BASE_URL`).
pub(crate) async fn namerctl(base_url: &str, dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_namerctl"))
        .args(args)
        .current_dir(dir)
        .env("NAMERCTL_BASE_URL", base_url)
        .output()
        .await
        .unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}
