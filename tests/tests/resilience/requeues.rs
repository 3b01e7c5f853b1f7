//! Requeues: a request that was never written (the endpoint refused the
//! connection) goes to another endpoint at once, whatever its method, under
//! the client's `requeueBudget`; without budget it fails with the
//! connection error.

use http::Method;

use super::*;

/// An address on loopback where nothing listens: a port the OS gave a
/// listener that is then closed.
fn refusing_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_requeued_to_another_endpoint() {
    let dead = refusing_addr();
    let setup = Setup::start_with(
        "world",
        1,
        &[dead],
        r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  client:
    loadBalancer: {kind: roundRobin}
    failureAccrual: {kind: none}
"#,
    )
    .await;
    let router = setup.proxy.router("http").to_string();
    wait_routable(&router, "world").await;
    let client = http1();
    let before = setup
        .metric("linkerd_router_requeues_total", &[("router", "http")])
        .await;
    setup.clear_logs();
    let n = 100;
    for i in 0..n {
        // POST with a body: nothing was written, so it is safe to send again.
        let a = send(&client, &router, Method::POST, "world", "order=1").await;
        assert_eq!(a.status, 200, "request {i}: {a:?}");
    }
    let requeues = setup
        .metric("linkerd_router_requeues_total", &[("router", "http")])
        .await
        - before;
    // Round robin over the two counts every pick, a requeue's too: the
    // dead endpoint is tried first by at least every other request, and
    // each such request is requeued once.
    assert!(
        requeues >= (n / 2 - 1) as f64 && requeues <= n as f64,
        "{requeues} requeues for {n} requests"
    );
    assert_eq!(
        setup.logged()[0].len(),
        n,
        "each POST reached the backend once"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_requeue_budget_the_connection_error_reaches_the_client() {
    let dead = refusing_addr();
    let setup = Setup::start_with(
        "world",
        1,
        &[dead],
        r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  client:
    loadBalancer: {kind: roundRobin}
    failureAccrual: {kind: none}
    requeueBudget: {minRetriesPerSec: 0, percentCanRetry: 0.0}
"#,
    )
    .await;
    let router = setup.proxy.router("http").to_string();
    wait_routable(&router, "world").await;
    let client = http1();
    let n = 100;
    let mut refused = 0;
    for _ in 0..n {
        let a = send(&client, &router, Method::GET, "world", "").await;
        match a.status.as_u16() {
            200 => {}
            502 => {
                let err = a.headers["l5d-err"].to_str().unwrap();
                assert!(err.starts_with("Connection+to"), "{err}");
                assert_eq!(a.headers["l5d-retryable"], "true");
                refused += 1;
            }
            other => panic!("status {other}: {a:?}"),
        }
    }
    assert!(
        refused >= n / 2 - 1,
        "{refused} of {n} went to the dead endpoint"
    );
    let exhausted = setup
        .metric(
            "linkerd_router_requeue_budget_exhausted_total",
            &[("router", "http")],
        )
        .await;
    assert!(
        exhausted >= refused as f64,
        "{exhausted} refusals counted, {refused} seen"
    );
    setup.stop().await;
}
