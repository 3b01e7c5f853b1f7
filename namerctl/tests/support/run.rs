//! Running the real `namerctl` binary, shared by the test files.

use std::path::Path;
use std::process::Output;

/// Runs namerctl in `dir` against `base_url` (via `NAMERCTL_BASE_URL`).
pub(crate) async fn namerctl(base_url: &str, dir: &Path, args: &[&str]) -> Output {
    namerctl_env(base_url, dir, &[], args).await
}

/// [`namerctl`] with the environment variables `env`, and none of the TLS
/// ones (`NAMERCTL_CA_CERT`, ...) but those.
pub(crate) async fn namerctl_env(
    base_url: &str,
    dir: &Path,
    env: &[(&str, &Path)],
    args: &[&str],
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_namerctl"));
    cmd.args(args)
        .current_dir(dir)
        .env("NAMERCTL_BASE_URL", base_url);
    for var in ["NAMERCTL_CA_CERT", "NAMERCTL_CERT", "NAMERCTL_KEY"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().await.unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}
