//! A Linkerd 1.x configuration with `io.l5d.static` service and client
//! policies (retries, classifiers, failure accrual; the upstream
//! documentation's shapes) starts linkerd-proxy unchanged:
//! `deploy/examples/linkerd1-resilience.yaml`.
//!
//! It listens on Linkerd's fixed ports (4140, 4340, 9990), which a local
//! mesh may hold, so the binary runs in a network namespace of its own
//! (`unshare --net`, as root; CI runs as root). Without root it is only
//! parsed, and the start is skipped loudly (a failure under `CI=true`).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const EXAMPLE: &str = "deploy/examples/linkerd1-resilience.yaml";

#[test]
fn the_example_parses_unchanged() {
    let text = std::fs::read_to_string(l5d_e2e::repo_root().join(EXAMPLE)).unwrap();
    let config = linkerd_proxy::config::ProxyConfig::from_yaml(&text)
        .unwrap_or_else(|e| panic!("{EXAMPLE}: {e}"));
    assert_eq!(config.routers.len(), 2);
}

#[tokio::test]
async fn the_example_starts_the_proxy_unchanged() {
    let root = std::process::Command::new("id").arg("-u").output();
    if !root.is_ok_and(|o| o.stdout == b"0\n") {
        l5d_e2e::skip_or_fail("starting the example needs root, for a network namespace");
        return;
    }
    let path = l5d_e2e::repo_root().join(EXAMPLE);
    // Loopback up in the new namespace, then the proxy with the file as is.
    let script = format!(
        "ip link set lo up && exec {} {}",
        l5d_e2e::binary("linkerd-proxy").display(),
        path.display()
    );
    let mut child = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("unshare runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("a readiness line within 60 s")
        .unwrap()
        .unwrap_or_else(|| panic!("the proxy exited: {:?}", child.try_wait()));
    assert!(line.starts_with("linkerd-proxy listening"), "{line}");
    for expected in ["admin=", "outgoing=0.0.0.0:4140", "grpc=0.0.0.0:4340"] {
        assert!(line.contains(expected), "{expected} in {line}");
    }
    let pid = child.id().unwrap().to_string();
    // SIGTERM reaches the proxy: `sh` exec'd it.
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the proxy stops within 30 s")
        .unwrap();
    assert_eq!(exit.code(), Some(0), "a clean exit");
}
