//! Helpers for end-to-end tests: the project's binaries as real processes,
//! and checks for the third-party clients the tests drive.
//!
//! Binaries are found in the target directory beside the running test
//! (`target/debug/namerd`), where `cargo test --workspace` has built them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The path of one of the workspace's binaries.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build --bins` first)",
        path.display()
    );
    path
}

/// Whether tests run in CI, where a missing tool or service is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skips (loudly) outside CI, fails in CI.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("required for this test under CI=true: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// A running namerd and the addresses it printed.
#[derive(Debug)]
pub struct Namerd {
    child: Child,
    pub admin: String,
    pub http: String,
    pub mesh: String,
}

impl Namerd {
    /// Starts `namerd -` with `config` on standard input and waits for its
    /// `namerd listening ...` line.
    pub async fn start(config: &str) -> Namerd {
        let mut child = Command::new(binary("namerd"))
            .arg("-")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("namerd starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(config.as_bytes())
            .await
            .expect("config written");
        drop(stdin);
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("namerd reports its addresses within 60 s")
            .expect("namerd's stdout is readable")
            .expect("namerd printed its addresses");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
                .to_string()
        };
        let (admin, http, mesh) = (field("admin"), field("http"), field("mesh"));
        Namerd {
            child,
            admin,
            http,
            mesh,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// SIGTERM, then the exit status (within 15 s).
    pub async fn stop(mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("namerd exits within 15 s of SIGTERM")
            .ok()
            .and_then(|s| s.code())
    }
}

/// Runs namerctl against `base_url`; returns (exit status, stdout, stderr).
pub async fn namerctl(base_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary("namerctl"))
        .args(args)
        .env("NAMERCTL_BASE_URL", base_url)
        .output()
        .await
        .expect("namerctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Whether `python3` can import `module`.
pub async fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}
