//! What namerd's benches share: settings from the environment, namerd as
//! its own process, connections to its mesh interface, percentiles.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

/// A numeric setting from the environment, or `default`.
pub(crate) fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The value at `p` (0 to 1) of `sorted`, or zero when it is empty.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// A running namerd (the release binary, or `NAMERD=path`: another build,
/// e.g. one from before a change) with `config` on its standard input.
pub(crate) struct Namerd {
    pub(crate) process: Child,
    pub(crate) pid: u32,
    /// Its readiness line (`namerd listening admin=... http=... mesh=...`).
    line: String,
}

impl Namerd {
    pub(crate) async fn start(config: &str) -> Namerd {
        let bin = std::env::var("NAMERD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_namerd").into());
        let mut process = Command::new(bin)
            .arg("-")
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("namerd starts");
        let mut stdin = process.stdin.take().unwrap();
        stdin.write_all(config.as_bytes()).await.unwrap();
        drop(stdin);
        let line = BufReader::new(process.stdout.take().unwrap())
            .lines()
            .next_line()
            .await
            .unwrap()
            .expect("namerd prints its addresses");
        let pid = process.id().unwrap();
        Namerd { process, pid, line }
    }

    /// The address of its interface `name` (`http`, `mesh`, `admin`).
    pub(crate) fn addr(&self, name: &str) -> String {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("namerd prints its {name} address"))
            .to_string()
    }

    /// `n` HTTP/2 connections to its mesh interface, as `n` proxies.
    pub(crate) async fn mesh_channels(&self, n: usize) -> Vec<Channel> {
        let mut channels = Vec::new();
        for _ in 0..n {
            channels.push(
                tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr("mesh")))
                    .unwrap()
                    .connect()
                    .await
                    .expect("connect to namerd's mesh interface"),
            );
        }
        channels
    }
}
