//! Retries: within the budget, only where the classifier allows, never
//! after the total timeout.

use std::time::{Duration, Instant};

use http::Method;

use super::*;

const ROUTER: &str = "http";

/// 20% of requests fail with a retryable 503 (every fifth, exactly): each
/// failure is retried once and succeeds, so the client sees every request
/// succeed and the backend sees exactly one retry per failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_503s_at_20_percent_are_retried_within_the_budget() {
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  service:
    responseClassifier: {kind: io.l5d.http.retryableRead5XX}
    retries: {budget: {minRetriesPerSec: 10, percentCanRetry: 0.5, ttlSecs: 10}}
"#,
    )
    .await;
    let router = setup.proxy.router(ROUTER).to_string();
    wait_routable(&router, "world").await;
    let backend = setup.backends[0].addr;
    setup.clear_logs();
    fault(backend, "status=503&fraction=0.2");
    let client = http1();
    let n = 1000;
    let mut answers = Vec::with_capacity(n);
    for _ in 0..n {
        answers.push(send(&client, &router, Method::GET, "world", "").await);
    }
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert!(
        ok * 1000 >= n * 999,
        "success {ok}/{n}: {:?}",
        tally(&answers)
    );
    assert!(
        answers
            .iter()
            .all(|a| a.headers["l5d-success-class"] == "1.0")
    );
    let log = &setup.logged()[0];
    let failed = log.iter().filter(|r| r["status"] == 503).count();
    let retries = setup
        .metric("linkerd_router_retries_total", &[("router", ROUTER)])
        .await;
    assert_eq!(
        log.len(),
        n + retries as usize,
        "the backend saw each request and each retry"
    );
    assert_eq!(failed, retries as usize, "one retry per 503");
    assert_eq!(
        failed,
        log.len() / 5,
        "exactly a fifth of what arrived failed"
    );
    let per_service = setup
        .metric(
            "linkerd_service_retries_total",
            &[("service", "/svc/world")],
        )
        .await;
    assert_eq!(per_service, retries);
    setup.stop().await;
}

/// Every request fails: retries stop at the budget (the reserve of
/// `minRetriesPerSec` for each second of the window plus `percentCanRetry`
/// of the requests), and the refusals are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_storm_stays_within_the_retry_budget() {
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  service:
    responseClassifier: {kind: io.l5d.http.retryableRead5XX}
    retries: {budget: {minRetriesPerSec: 2, percentCanRetry: 0.1, ttlSecs: 60}}
"#,
    )
    .await;
    let router = setup.proxy.router(ROUTER).to_string();
    wait_routable(&router, "world").await;
    let backend = setup.backends[0].addr;
    // The requests wait_routable sent count towards the budget too.
    let before = setup
        .metric("linkerd_router_requests_total", &[("router", ROUTER)])
        .await;
    setup.clear_logs();
    fault(backend, "status=503");
    let client = http1();
    let n = 400;
    for _ in 0..n {
        let a = send(&client, &router, Method::GET, "world", "").await;
        assert_eq!(a.status, 503);
        assert_eq!(a.headers["l5d-success-class"], "0.0");
    }
    let arrived = setup.logged()[0].len();
    let extra = arrived - n;
    // Within one 60 s window: 2 x 60 reserved, plus 10% of the requests.
    let bound = 2 * 60 + (n + before as usize) / 10;
    eprintln!("storm: {n} requests, {extra} retries, budget {bound}");
    assert!(extra <= bound, "{extra} retries, budget {bound}");
    assert!(
        extra >= bound - 2,
        "the budget was used: {extra} of {bound}"
    );
    let retries = setup
        .metric("linkerd_router_retries_total", &[("router", ROUTER)])
        .await;
    assert_eq!(retries as usize, extra);
    let refused = setup
        .metric(
            "linkerd_router_retry_budget_exhausted_total",
            &[("router", ROUTER)],
        )
        .await as usize;
    // A request retries until an attempt succeeds or the budget refuses:
    // here every request ends with a refusal.
    assert_eq!(refused, n, "every request ended with the budget's refusal");
    setup.stop().await;
}

/// `retryableIdempotent5XX` retries PUT and never POST, whose body is
/// sent once only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_posts_are_not_retried() {
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  service:
    responseClassifier: {kind: io.l5d.http.retryableIdempotent5XX}
"#,
    )
    .await;
    let router = setup.proxy.router(ROUTER).to_string();
    wait_routable(&router, "world").await;
    let backend = setup.backends[0].addr;
    setup.clear_logs();
    fault(backend, "status=503&fraction=0.5");
    let client = http1();
    let mut posts = Vec::new();
    for _ in 0..50 {
        posts.push(send(&client, &router, Method::POST, "world", "order=1").await);
    }
    let log = setup.logged()[0].clone();
    assert_eq!(log.len(), 50, "50 POSTs, none retried");
    assert_eq!(tally(&posts)[&503], 25);
    setup.clear_logs();
    fault(backend, "status=503&fraction=0.5");
    let mut puts = Vec::new();
    for _ in 0..50 {
        puts.push(send(&client, &router, Method::PUT, "world", "state=1").await);
    }
    assert!(puts.iter().all(|a| a.status == 200), "{:?}", tally(&puts));
    // The fault hits every other request the backend receives (the
    // second, fourth, ...): the first PUT succeeds, each later one fails
    // once and its retry succeeds.
    let log = setup.logged()[0].clone();
    assert_eq!(log.len(), 1 + 49 * 2, "each failed PUT retried once");
    setup.stop().await;
}

/// With every attempt taking 200 ms and failing, and 150 ms between
/// attempts, a 500 ms total timeout allows two attempts: the client gets
/// the timeout at 500 ms and the backend receives nothing after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_retry_is_sent_after_the_total_timeout() {
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: http
  label: http
  servers: [{port: 0}]
  service:
    totalTimeoutMs: 500
    responseClassifier: {kind: io.l5d.http.retryableRead5XX}
    retries: {backoff: {kind: constant, ms: 150}}
"#,
    )
    .await;
    let router = setup.proxy.router(ROUTER).to_string();
    wait_routable(&router, "world").await;
    let backend = setup.backends[0].addr;
    fault(backend, "status=503&delay_ms=200");
    let client = http1();
    for round in 0..5 {
        setup.clear_logs();
        let start = Instant::now();
        let a = send(&client, &router, Method::GET, "world", "").await;
        let took = start.elapsed();
        assert_eq!(a.status, 503, "round {round}");
        let err = a.headers["l5d-err"].to_str().unwrap();
        assert!(err.contains("total+timeout"), "round {round}: {err}");
        assert!(
            took >= Duration::from_millis(500),
            "round {round}: {took:?}"
        );
        // Wait past the longest an attempt could still be running.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let log = setup.logged()[0].clone();
        assert!(!log.is_empty(), "round {round}");
        let first = log[0]["at_ms"].as_f64().unwrap();
        for r in &log {
            let at = r["at_ms"].as_f64().unwrap() - first;
            assert!(
                at < 500.0,
                "round {round}: an attempt {at} ms after the first: {log:?}"
            );
        }
    }
    setup.stop().await;
}

/// Two proxies in a row, as the DaemonSet mesh: the incoming one (default
/// classifier) stamps `l5d-success-class: 0.0` on the backend's 503s; the
/// outgoing one (`retryableRead5XX`) still retries them, and both count
/// the same failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outgoing_proxy_retries_through_the_incoming_one() {
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: http
  label: incoming
  servers: [{port: 0}]
"#,
    )
    .await;
    let incoming = setup.proxy.router("incoming").to_string();
    wait_routable(&incoming, "world").await;
    let outgoing = outgoing_to(
        &incoming,
        "responseClassifier: {kind: io.l5d.http.retryableRead5XX}",
    )
    .await;
    let router = outgoing.router("outgoing").to_string();
    wait_routable(&router, "world").await;
    let backend = setup.backends[0].addr;
    setup.clear_logs();
    fault(backend, "status=503&fraction=0.2");
    let client = http1();
    let n = 200;
    for i in 0..n {
        let a = send(&client, &router, Method::GET, "world", "").await;
        assert_eq!(a.status, 200, "request {i}: {a:?}");
    }
    let log = setup.logged()[0].clone();
    let failed = log.iter().filter(|r| r["status"] == 503).count();
    assert_eq!(
        log.len(),
        n + failed,
        "each 503 retried once, through both proxies"
    );
    let failures = setup
        .metric(
            "linkerd_router_responses_total",
            &[("router", "incoming"), ("classification", "failure")],
        )
        .await;
    assert_eq!(
        failures as usize, failed,
        "the incoming proxy counted every 503"
    );
    assert_eq!(outgoing.stop().await, Some(0));
    setup.stop().await;
}

/// A downstream proxy's `l5d-retryable: true` is retried by the upstream
/// proxy with the default classifier (which retries nothing of its own):
/// the request reached no application. Here the incoming proxy's only
/// endpoint refuses connections, so every attempt comes back retryable
/// and the outgoing proxy retries each request within its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_retryable_answer_is_retried_with_the_default_classifier() {
    // Nothing listens on a port just released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let setup = Setup::start_with(
        "world",
        0,
        &[dead],
        r#"
- protocol: http
  label: incoming
  servers: [{port: 0}]
"#,
    )
    .await;
    let incoming = setup.proxy.router("incoming").to_string();
    let outgoing = outgoing_to(&incoming, "retries: {backoff: {kind: constant, ms: 1}}").await;
    let router = outgoing.router("outgoing").to_string();
    let client = http1();
    // Bound through namerd (10 s, generous): the incoming proxy's own
    // answer names the refused connection.
    let since = Instant::now();
    loop {
        let a = send(&client, &incoming, Method::GET, "world", "").await;
        let err = a
            .headers
            .get("l5d-err")
            .map(|v| v.to_str().unwrap().to_string());
        if err
            .as_deref()
            .is_some_and(|e| e.starts_with("Connection+to"))
        {
            assert_eq!(a.headers["l5d-retryable"], "true");
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(10), "{a:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = 3;
    for _ in 0..n {
        let a = send(&client, &router, Method::GET, "world", "").await;
        assert_eq!(a.status, 502, "{a:?}");
    }
    let page = admin_get(&outgoing, "/admin/metrics/prometheus").await;
    let retries = sum_metric(
        &page,
        "linkerd_router_retries_total",
        &[("router", "outgoing")],
    );
    assert!(
        retries >= n as f64,
        "{retries} retries for {n} requests answered retryable"
    );
    assert_eq!(outgoing.stop().await, Some(0));
    setup.stop().await;
}

/// A second proxy in front of `incoming`, as the DaemonSet mesh's
/// outgoing router: `world` goes to `incoming`, under `service` (one line
/// of the router's `service` block).
async fn outgoing_to(incoming: &str, service: &str) -> Proxy {
    let port = incoming.rsplit(':').next().unwrap();
    Proxy::start(&format!(
        "admin: {{port: 0}}\n\
         routers:\n\
         - protocol: http\n  label: outgoing\n  servers: [{{port: 0}}]\n  \
           dtab: /svc/world => /$/inet/127.0.0.1/{port}\n  service:\n    {service}\n"
    ))
    .await
}
