//! A throwaway PostgreSQL cluster owned by one test: `initdb` in a
//! temporary directory, started on a free loopback port with `fsync=off`,
//! restartable and stoppable, and stopped and deleted on drop even when the
//! test fails. PostgreSQL refuses to run as root, so as root every command
//! runs through `runuser -u postgres`. Depends on sqlx, tokio and the
//! server binaries (`pg_config --bindir` or `/usr/lib/postgresql/*/bin`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::postgres::PgConnectOptions;
use tempfile::TempDir;

pub(crate) struct PgCluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// The server's own options, given again on every start.
    server_opts: String,
}

impl PgCluster {
    /// Creates and starts a cluster. `None`, after printing why, if this is
    /// not root or the binaries are missing, unless `CI=true`, which fails.
    pub(crate) fn start() -> Option<PgCluster> {
        let missing = |why: String| {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("cannot run a PostgreSQL cluster (CI=true): {why}");
            }
            skipped(&format!("cannot run a PostgreSQL cluster: {why}"));
            None
        };
        if !is_root() {
            return missing(
                "not running as root (needed to run the server as user postgres)".into(),
            );
        }
        let Some(bin) = server_bin() else {
            return missing(
                "no initdb in `pg_config --bindir` or /usr/lib/postgresql/*/bin".into(),
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("l5d-pg-")
            .tempdir()
            .expect("temporary directory");
        check(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .output(),
            "chown",
        );
        // Bind port 0 to pick a free port, then release it for the server.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server_opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let cluster = PgCluster {
            bin,
            dir,
            port,
            server_opts,
        };
        let data = cluster.data();
        cluster.run_blocking(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        let (log, opts) = (cluster.log(), cluster.server_opts.clone());
        cluster.run_blocking(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"],
        );
        Some(cluster)
    }

    pub(crate) fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }

    /// `pg_ctl restart -m fast`: sessions are terminated, committed work is
    /// kept, and the server is back when this returns.
    pub(crate) async fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "restart"]).await;
    }

    pub(crate) async fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]).await;
    }

    /// Starts a stopped cluster on the same port.
    pub(crate) async fn start_again(&self) {
        let opts = self.server_opts.clone();
        self.pg_ctl(&["-o", &opts, "-w", "start"]).await;
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let (data, log) = (self.data(), self.log());
        let mut all = vec!["-D", &data, "-l", &log];
        all.extend_from_slice(args);
        let output = tokio::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(&all)
            .output()
            .await;
        check(output, &format!("pg_ctl {args:?} (log in {log})"));
    }

    fn run_blocking(&self, program: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .output();
        check(output, program);
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> String {
        self.dir.path().join("server.log").display().to_string()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: nothing in a throwaway cluster is worth a checkpoint.
        // Errors are ignored (the server may already be stopped); the
        // directory goes with `TempDir`.
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn check(output: std::io::Result<Output>, what: &str) {
    let output = output.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn server_bin() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        // Newest major version first.
        found.sort_by_key(|p| std::cmp::Reverse(major(p)));
        candidates.extend(found);
    }
    candidates
        .into_iter()
        .find(|bin| bin.join("initdb").is_file())
}

fn major(bin: &Path) -> u32 {
    let version = bin
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    version.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Prints a skip straight to stderr: the test harness captures `eprintln!`
/// of passing tests, and a skip must not pass unnoticed.
fn skipped(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}
