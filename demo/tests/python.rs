//! A real third-party gRPC client (Python grpcio, `tests/grpcio/demo_client.py`)
//! against the `l5d-demo` binary: the unary call and an interleaved
//! bidirectional stream; a gRPC status fault on the Greeter; and the HTTP
//! backend answering any gRPC method, with and without a fault.
//!
//! Without grpcio this test skips loudly, except under `CI=true`, where it
//! fails (as the `l5d-e2e` tests do; their two helpers are repeated here
//! rather than depended on, because the end-to-end crate is the one meant to
//! depend on the demo backends).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Skips (loudly) outside CI, fails in CI.
fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("required for this test under CI=true: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Whether `python3` can import `module`.
async fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// True when python3 has grpcio; otherwise skips loudly (false), or fails
/// under CI.
async fn grpcio_or_skip() -> bool {
    if python_has("grpc").await {
        return true;
    }
    skip_or_fail("python3 with grpcio (pip install -r tests/grpcio/requirements.txt)");
    false
}

/// Starts `l5d-demo grpc --name NAME` on a free port; returns it and the
/// address from its `listening` line.
async fn start_grpc(name: &str) -> (Child, String) {
    start("grpc", name).await
}

/// Starts `l5d-demo KIND --name NAME` on a free port; returns it and the
/// address from its `listening` line.
async fn start(kind: &str, name: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l5d-demo"))
        .args([kind, "--name", name])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("l5d-demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("l5d-demo reports its address")
        .unwrap()
        .expect("a listening line");
    let addr = line
        .strip_prefix(&format!("l5d-demo listening name={name} addr="))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_string();
    (child, addr)
}

/// Runs the Python client; returns its exit status and stdout lines.
async fn demo_client(args: &[&str]) -> (i32, Vec<String>) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/grpcio/demo_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("python3").arg(script).args(args).output(),
    )
    .await
    .expect("the client finishes within 60 s")
    .expect("python3 runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_string).collect(),
    )
}

fn reply(name: &str) -> String {
    format!(r#"{{"message": "hello {name} from py-demo", "served_by": "py-demo"}}"#)
}

#[tokio::test]
async fn python_grpcio_calls_and_chats() {
    if !grpcio_or_skip().await {
        return;
    }
    let (_demo, addr) = start_grpc("py-demo").await;

    let (code, lines) = demo_client(&["--target", &addr, "unary", "alice"]).await;
    assert_eq!((code, lines), (0, vec![reply("alice")]));

    let args = [
        "--target",
        &addr,
        "--authority",
        "greeter",
        "chat",
        "a",
        "b",
        "c",
    ];
    let (code, lines) = demo_client(&args).await;
    assert_eq!((code, lines), (0, vec![reply("a"), reply("b"), reply("c")]));
}

/// An unreachable target exits with the gRPC status (14, UNAVAILABLE).
#[tokio::test]
async fn python_client_exits_with_the_grpc_status() {
    if !grpcio_or_skip().await {
        return;
    }
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let (code, lines) = demo_client(&["--target", &target, "--timeout", "5", "unary", "x"]).await;
    assert_eq!(code, 14, "{lines:?}");
    assert!(lines[0].contains(r#""code": "UNAVAILABLE""#), "{lines:?}");
}

/// Sets a fault with `/fault?QUERY` over HTTP/1.1; the whole answer.
async fn set_fault(addr: &str, query: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /fault?{query} HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut rsp = String::new();
    conn.read_to_string(&mut rsp).await.unwrap();
    assert!(rsp.starts_with("HTTP/1.1 200 OK\r\n"), "{rsp}");
    rsp
}

/// Every second SayHello fails with UNAVAILABLE (14), as grpcio sees it.
#[tokio::test]
async fn python_grpcio_sees_the_greeters_fault() {
    if !grpcio_or_skip().await {
        return;
    }
    let (_demo, addr) = start_grpc("py-demo").await;
    set_fault(&addr, "grpc_status=14&fraction=0.5").await;
    let mut codes = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let (code, lines) = demo_client(&["--target", &addr, "unary", name]).await;
        if code == 14 {
            assert!(lines[0].contains(r#""code": "UNAVAILABLE""#), "{lines:?}");
        }
        codes.push(code);
    }
    assert_eq!(codes, [0, 14, 0, 14]);
}

/// The HTTP backend answers any gRPC method with an empty message (which
/// grpcio decodes as a reply with empty fields), or with the fault's status.
#[tokio::test]
async fn python_grpcio_calls_the_http_backend() {
    if !grpcio_or_skip().await {
        return;
    }
    let (_demo, addr) = start("http", "py-web").await;
    let (code, lines) = demo_client(&["--target", &addr, "unary", "a"]).await;
    let empty = r#"{"message": "", "served_by": ""}"#;
    assert_eq!((code, lines), (0, vec![empty.to_string()]));
    for place in ["trailers", "headers"] {
        set_fault(&addr, &format!("grpc_status=9&grpc_in={place}")).await;
        let (code, lines) = demo_client(&["--target", &addr, "unary", "a"]).await;
        assert_eq!(code, 9, "{place}: {lines:?}");
        assert!(
            lines[0].contains(r#""code": "FAILED_PRECONDITION""#),
            "{lines:?}"
        );
    }
}
