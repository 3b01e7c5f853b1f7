//! R3: the proxy's gRPC connection to namerd blackholed (a relay that
//! stops forwarding without closing) under 1,000 requests a second: the
//! proxy notices by HTTP/2 keep-alive within its bound (10 s between
//! PINGs, 5 s to answer), reconnects, and requests keep flowing on the
//! last known state the whole time.

use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, curl};

use super::load::Load;

use super::mesh_faults::Forwarder;

/// The keep-alive bound of the proxy's namerd client: a PING every 10 s,
/// 5 s for its answer (`interpreter/mesh/shared.rs`).
const KEEPALIVE_BOUND: Duration = Duration::from_secs(15);

async fn reconnects(proxy: &Proxy) -> u64 {
    let (code, out, err) = curl(&[
        "-sS",
        &format!("http://{}/interpreter_state.json", proxy.admin),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let state: serde_json::Value = serde_json::from_str(&out).unwrap();
    state["http"]["connection"]["watch_reconnects_total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no reconnect count in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_namerd_connection_is_detected_and_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("disco")).unwrap();
    let world = Demo::start("http", "world", &[]).await;
    std::fs::write(dir.path().join("disco/world"), world.fs_line()).unwrap();
    let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
    namerd
        .create_dtab(dir.path(), "internal", "/svc => /#/io.l5d.fs;\n")
        .await;
    let fwd = Forwarder::start(namerd.mesh.parse().unwrap()).await;
    let proxy = Proxy::start(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: http
  servers: [{{port: 0}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{}, root: /internal, retry: {{baseSeconds: 1, maxSeconds: 2}}}}
"#,
        fwd.addr().port()
    ))
    .await;
    let router = proxy.router("http").to_string();
    let warm = Load::start(&router, "world", 200, 4);
    warm.wait_answered(50, Duration::from_secs(10)).await;
    warm.stop().await;

    let load = Load::start(&router, "world", 1000, 16);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = reconnects(&proxy).await;
    fwd.blackhole_open();
    let holed = Instant::now();
    // Bounded: the keep-alive bound and a generous margin for the reconnect
    // on a loaded machine.
    while reconnects(&proxy).await == before {
        assert!(
            holed.elapsed() < KEEPALIVE_BOUND + Duration::from_secs(10),
            "no reconnect within {:?} of the blackhole",
            holed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detected = holed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = load.stop().await;
    eprintln!(
        "R3: blackhole detected and the connection remade after {detected:?} (bound {KEEPALIVE_BOUND:?}); \
         {} requests, {} answered, {} failed {:?}",
        tally.sent,
        tally.answered(),
        tally.failures(),
        tally.failed
    );
    assert_eq!(tally.failures(), 0, "{:?}", tally.failed);
    assert!(
        detected <= KEEPALIVE_BOUND + Duration::from_secs(3),
        "detected after {detected:?}"
    );
    proxy.stop().await;
    namerd.stop().await;
    world.stop().await;
}
