//! The `namerd` binary as operators run it: configuration errors, start-up
//! from standard input, clean shutdown, and two replicas sharing one
//! PostgreSQL database.

#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use namerd_client::next_chunk;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const NAMERD: &str = env!("CARGO_BIN_EXE_namerd");

fn namerd() -> Command {
    let mut cmd = Command::new(NAMERD);
    cmd.env("RUST_LOG", "warn").kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn bad_configurations_exit_64_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "storage: {kind: io.l5d.zk}\ninterfaces: [{kind: io.l5d.httpController}]",
            "storage.kind",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, port: x}]",
            "interfaces[0].port",
        ),
        ("storage: {kind: io.l5d.inMemory}", "interfaces"),
        (
            "storage: {kind: io.l5d.inMemory, namespaces: {internal: \"/a =>\"}}\ninterfaces: [{kind: io.l5d.httpController}]",
            "storage.namespaces.internal",
        ),
        (": : :", "(document)"),
        // A per-client limit of zero would refuse every client.
        (
            "storage: {kind: io.l5d.inMemory}\ninterpreter: {maxBindingsPerClient: 0}\ninterfaces: [{kind: io.l5d.mesh}]",
            "interpreter.maxBindingsPerClient: must be at least 1",
        ),
        // The dtab API beyond loopback without authentication.
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, ip: 0.0.0.0}]",
            "interfaces[0].auth: missing: io.l5d.httpController listens on 0.0.0.0",
        ),
        // Found only when starting: a token file that is not there.
        (
            "admin: {port: 0}\nstorage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh, port: 0}, \
             {kind: io.l5d.httpController, port: 0, auth: {tokenFile: /nonexistent/tokens.yaml, permissions: {}}}]",
            "interfaces[1].auth.tokenFile: cannot read /nonexistent/tokens.yaml",
        ),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("namerd-{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let out = namerd().arg(&path).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text:?}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid configuration: {field}")),
            "{text:?}: stderr {stderr:?} does not name {field}"
        );
    }
    let out = namerd()
        .arg(dir.path().join("missing.yaml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

/// A namerd process and the addresses it printed.
struct Running {
    child: Child,
    admin: String,
    http: String,
}

/// Starts namerd with `config` on standard input and waits for its
/// "listening" line.
async fn start(config: &str) -> Running {
    let mut child = namerd()
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(config.as_bytes()).await.unwrap();
    drop(stdin);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("namerd reports its addresses within 30 s")
        .unwrap()
        .expect("namerd printed a line");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
            .to_string()
    };
    let (admin, http) = (field("admin"), field("http"));
    Running { child, admin, http }
}

impl Running {
    async fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("namerd exits within 15 s of SIGTERM")
            .unwrap();
        status.code()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(
    method: Method,
    url: String,
    body: &str,
    if_match: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/dtab");
    if let Some(v) = if_match {
        req = req.header("if-match", v);
    }
    let rsp = client()
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let status = rsp.status();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn runs_from_stdin_and_stops_cleanly() {
    let running = start(
        "admin: {port: 0}\n\
         storage: {kind: io.l5d.inMemory, namespaces: {internal: /svc => /host}}\n\
         interfaces: [{kind: io.l5d.httpController, port: 0}]\n",
    )
    .await;
    let (status, body) = send(
        Method::GET,
        format!("http://{}/admin/ping", running.admin),
        "",
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "pong"));
    let (status, _) = send(
        Method::GET,
        format!("http://{}/admin/ready", running.admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        Method::GET,
        format!("http://{}/api/1/dtabs/internal", running.http),
        "",
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            "[{\"prefix\":\"/svc\",\"dst\":\"/host\"}]\n"
        )
    );
    let (status, body) = send(
        Method::GET,
        format!("http://{}/admin/metrics/prometheus", running.admin),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("namerd_http_requests_total"), "{body}");
    assert_eq!(running.stop().await, Some(0));
}

#[tokio::test]
async fn two_replicas_on_one_postgres_see_each_others_writes() {
    let Some(schema) = namerd::testing::PgSchema::create("replicas").await else {
        return;
    };
    let pool = schema.pool().clone();
    let url = schema.url().to_string();
    // A long poll interval: within the test, only NOTIFY and the re-read
    // after a listener reconnect can deliver changes in time.
    let config = |name: &str| {
        format!(
            "admin: {{port: 0}}\n\
             storage: {{kind: io.l5d.postgres, pollIntervalMs: 60000, \
             url: \"{url}&application_name={name}\"}}\n\
             interfaces: [{{kind: io.l5d.httpController, port: 0}}]\n"
        )
    };
    let a = start(&config("replica-a")).await;
    let b = start(&config("replica-b")).await;

    let (status, _) = send(
        Method::POST,
        format!("http://{}/api/1/dtabs/internal", a.http),
        "/a => /b",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let req = Request::get(format!("http://{}/api/1/dtabs/internal?watch=true", b.http))
        .header("accept", "application/dtab")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut watch = client().request(req).await.unwrap().into_body();
    assert_eq!(
        next_chunk(&mut watch, Duration::from_secs(5)).await,
        "/a=>/b\n"
    );

    let started = Instant::now();
    let (status, _) = send(
        Method::PUT,
        format!("http://{}/api/1/dtabs/internal", a.http),
        "/a => /c",
        Some("AAAAAAAAAAE="),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        next_chunk(&mut watch, Duration::from_secs(1)).await,
        "/a=>/c\n"
    );
    eprintln!("replica b saw the write after {:?}", started.elapsed());

    // Kill b's LISTEN connection: the write that follows must still reach b
    // within a second, through the re-read after the listener reconnects.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind("replica-b-listener")
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "b has one listener connection");
    let started = Instant::now();
    let (status, _) = send(
        Method::PUT,
        format!("http://{}/api/1/dtabs/internal", a.http),
        "/a => /d",
        Some("AAAAAAAAAAI="),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        next_chunk(&mut watch, Duration::from_secs(1)).await,
        "/a=>/d\n"
    );
    eprintln!(
        "after the listener was killed, replica b saw the write after {:?}",
        started.elapsed()
    );

    assert_eq!(a.stop().await, Some(0));
    assert_eq!(b.stop().await, Some(0));
    schema.drop_schema().await;
}
