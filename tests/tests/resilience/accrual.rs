//! Failure accrual: one of five endpoints failing every request is taken
//! out after `failures` consecutive failures, shown dead on
//! `/client_state.json`, probed and readmitted once it recovers; with all
//! five failing, requests still go out.

use std::time::{Duration, Instant};

use http::Method;

use super::*;

const ROUTERS: &str = r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  client:
    loadBalancer: {kind: p2c}
    failureAccrual:
      kind: io.l5d.consecutiveFailures
      failures: 3
      backoff: {kind: constant, ms: 1000}
"#;

/// The accrual state of `addr` on `/client_state.json`.
async fn state_of(setup: &Setup, addr: SocketAddr) -> String {
    let page = admin_get(&setup.proxy, "/client_state.json").await;
    let json: serde_json::Value = serde_json::from_str(&page).unwrap();
    let client = &json["http"]["/#/io.l5d.fs/world"];
    client["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no endpoints in {page}"))
        .iter()
        .find(|e| e["address"] == addr.to_string())
        .map(|e| e["accrual"]["state"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{addr} not in {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_removed_probed_and_readmitted() {
    let setup = Setup::start("world", 5, ROUTERS).await;
    let router = setup.proxy.router("http").to_string();
    wait_routable(&router, "world").await;
    let bad = setup.backends[0].addr;
    setup.clear_logs();
    fault(bad, "status=500");
    let client = http1();
    let n = 2000;
    let start = Instant::now();
    let mut failed = 0;
    for _ in 0..n {
        let a = send(&client, &router, Method::GET, "world", "").await;
        if a.status != 200 {
            assert_eq!(a.status, 500, "{a:?}");
            failed += 1;
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "accrual: {failed} of {n} failed in {elapsed:?}, all at the failing endpoint ({:.2} % success)",
        100.0 * (n - failed) as f64 / n as f64
    );
    // Three to trip it, then one probe per dead second at most.
    let bound = 3 + elapsed.as_secs() as usize + 1;
    let bad_got = setup.logged()[0].len();
    assert_eq!(
        failed, bad_got,
        "every failure came from the failing endpoint"
    );
    assert!(
        bad_got <= bound,
        "{bad_got} requests reached the failing endpoint in {elapsed:?}"
    );
    assert!((n - failed) * 1000 >= n * 995, "success {}/{n}", n - failed);
    let state = state_of(&setup, bad).await;
    assert!(state == "dead" || state == "probing", "{state}");
    let removals = setup
        .metric(
            "linkerd_failure_accrual_removals_total",
            &[("router", "http")],
        )
        .await;
    assert!(removals >= 1.0);

    // Healthy again: the next probe (within the 1 s dead period) readmits it.
    fault(bad, "");
    setup.clear_logs();
    let since = Instant::now();
    loop {
        let a = send(&client, &router, Method::GET, "world", "").await;
        assert_eq!(a.status, 200);
        if state_of(&setup, bad).await == "alive" && !setup.logged()[0].is_empty() {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "not readmitted within 10 s (dead periods are 1 s)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Readmitted: it takes its share again.
    setup.clear_logs();
    for _ in 0..500 {
        let a = send(&client, &router, Method::GET, "world", "").await;
        assert_eq!(a.status, 200);
    }
    let share = setup.logged()[0].len();
    assert!(share >= 30, "the readmitted endpoint served {share} of 500");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_endpoint_dead_requests_still_go_out() {
    let setup = Setup::start("world", 5, ROUTERS).await;
    let router = setup.proxy.router("http").to_string();
    wait_routable(&router, "world").await;
    for b in &setup.backends {
        fault(b.addr, "status=500");
    }
    setup.clear_logs();
    let client = http1();
    let n = 200;
    for i in 0..n {
        let a = send(&client, &router, Method::GET, "world", "").await;
        // The backends' own 500, never the proxy's "no hosts".
        assert_eq!(a.status, 500, "request {i}: {a:?}");
        assert!(!a.headers.contains_key("l5d-err"), "request {i}: {a:?}");
    }
    let reached: usize = setup.logged().iter().map(Vec::len).sum();
    assert_eq!(reached, n, "every request reached a backend");
    setup.stop().await;
}
