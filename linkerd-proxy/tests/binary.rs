//! The binary: a configuration that cannot be used exits 64 naming the
//! field; one that cannot start says what; a good one serves until SIGTERM
//! and exits 0.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_linkerd-proxy");

/// Runs the proxy with `config` on stdin; returns (exit code, stderr).
fn run_stdin(config: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_configurations_exit_64_naming_the_field() {
    let cases = [
        (
            "routers: [{protocol: http, servers: [{port: 0}], dstPrefix: svc}]",
            vec![],
            "routers[0].dstPrefix",
        ),
        (
            "routers: [{protocol: thrift, servers: [{}]}]",
            vec![],
            "routers[0].protocol",
        ),
        (
            "routers: [{protocol: http, servers: [{port: 0}], identifier: {kind: io.l5d.ingress, ingressClasss: linkerd}}]",
            vec![],
            "routers[0].identifier.ingressClasss",
        ),
        (
            "admin: {port: 0}\nrouters: [{protocol: http, servers: [{port: 0}]}]",
            vec!["--threads", "0"],
            "--threads",
        ),
        (
            "admin: {port: 0}\nrouters: [{protocol: http, servers: [{port: 0}], interpreter: {kind: default, transformers: [{kind: io.l5d.k8s.localnode, hostNetwork: true}]}}]",
            vec![],
            "routers[0].interpreter.transformers[0]",
        ),
    ];
    for (config, args, field) in cases {
        let (code, stderr) = run_stdin(config, &args);
        assert_eq!(code, Some(64), "{config}: {stderr}");
        assert!(stderr.contains(field), "{config}: {stderr}");
    }
    let out = Command::new(BIN)
        .arg("/nonexistent/linkerd.yaml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/linkerd.yaml"));
}

#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, stderr) = run_stdin(
        &format!("admin: {{port: 0}}\nrouters: [{{protocol: http, servers: [{{port: {port}}}]}}]"),
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("routers[0].servers[0]"), "{stderr}");
}

#[test]
fn it_serves_until_sigterm_and_exits_cleanly() {
    let mut child = Command::new(BIN)
        .arg("-")
        .env_remove("NODE_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"admin: {port: 0}\nrouters: [{protocol: http, servers: [{port: 0}]}]")
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("linkerd-proxy listening admin=127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains(" http=127.0.0.1:"), "{line}");
    // It serves: one request to the http router is answered (whatever
    // the status: no route is configured).
    let http = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("http="))
        .expect("the readiness line names the http router")
        .to_string();
    let mut conn = std::net::TcpStream::connect(&http).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 "), "{answer:?}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
