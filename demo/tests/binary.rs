//! The `l5d-demo` process contract that scripts rely on: one `listening`
//! line, environment fallbacks, exit 0 on SIGTERM, exit 64 for a listen
//! address that cannot be bound, clap's usage error for bad arguments,
//! `--log-requests` on both backends.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

fn demo() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l5d-demo"));
    cmd.env("RUST_LOG", "warn")
        .env_remove("L5D_DEMO_NAME")
        .env_remove("L5D_DEMO_LISTEN")
        .env_remove("L5D_DEMO_DELAY_MS")
        .env_remove("L5D_DEMO_BODY_BYTES")
        .env_remove("L5D_DEMO_LOG_REQUESTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs to completion; returns the exit status and stderr.
async fn exits(cmd: &mut Command) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("l5d-demo exits")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn env_configured_backend_prints_its_address_serves_and_stops_on_sigterm() {
    let mut cmd = demo();
    cmd.arg("http")
        .env("L5D_DEMO_NAME", "env-web")
        .env("L5D_DEMO_LISTEN", "127.0.0.1:0");
    let (mut child, line, mut lines) = spawn_listening(&mut cmd).await;
    let addr = line
        .strip_prefix("l5d-demo listening name=env-web addr=127.0.0.1:")
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));

    let rsp = http10(&addr, "/").await;
    assert!(rsp.starts_with("HTTP/1.0 200 OK\r\n"), "{rsp}");
    assert!(rsp.ends_with("\r\n\r\nenv-web\n"), "{rsp}");

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await;
    assert!(killed.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits within 15 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(lines.next_line().await.unwrap(), None, "exactly one line");
}

/// Spawns `cmd` and waits for its `listening` line; the process, the line
/// and the rest of its stdout.
async fn spawn_listening(cmd: &mut Command) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the listening line")
        .unwrap()
        .unwrap();
    (child, line, lines)
}

/// One HTTP/1.0 request, without keep-alive: the server closes after one
/// answer, which is returned whole.
async fn http10(addr: &str, path: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.0\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut rsp = String::new();
    conn.read_to_string(&mut rsp).await.unwrap();
    rsp
}

#[tokio::test]
async fn log_requests_turns_the_request_log_on_for_both_backends() {
    for (kind, flag) in [
        ("http", None),
        ("http", Some("--log-requests")),
        ("grpc", Some("--log-requests")),
    ] {
        let mut cmd = demo();
        cmd.args([kind, "--name", "logged"]).args(flag);
        let (_child, line, _) = spawn_listening(&mut cmd).await;
        let addr = line.rsplit_once("addr=").expect("an address").1.to_string();
        let rsp = http10(&addr, "/requests").await;
        let want = if flag.is_some() {
            "HTTP/1.0 200 OK\r\n"
        } else {
            "HTTP/1.0 409 Conflict\r\n"
        };
        assert!(rsp.starts_with(want), "{kind} {flag:?}: {rsp}");
        if flag.is_some() {
            assert!(rsp.ends_with("\r\n\r\n[]"), "{kind}: {rsp}");
        }
    }
}

#[tokio::test]
async fn a_listen_address_in_use_exits_64_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for kind in ["http", "grpc"] {
        let (code, stderr) = exits(demo().args([kind, "--name", "a", "--listen", &addr])).await;
        assert_eq!(code, 64, "{kind}: {stderr}");
        assert!(
            stderr.contains(&format!("--listen {addr}")),
            "{kind}: {stderr}"
        );
    }
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    let cases: &[&[&str]] = &[
        &["http"],
        &["http", "--name", "two words"],
        &["http", "--name", "a", "--listen", "localhost"],
        &["grpc", "--name", "a", "--delay-ms", "-1"],
        &["ftp", "--name", "a"],
    ];
    for args in cases {
        let (code, stderr) = exits(demo().args(*args)).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}
