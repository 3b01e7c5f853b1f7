//! Deadlines across two proxies: the first proxy's total timeout reaches
//! the backend through the second, whose own longer timeout does not
//! extend it; a passed deadline fails unsent; a malformed one is ignored
//! and counted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;

use super::*;

/// `l5d-ctx-deadline` as the backend received it: the time it had left.
fn left(entry: &serde_json::Value) -> Duration {
    let value = entry["headers"]["l5d-ctx-deadline"]
        .as_str()
        .unwrap_or_else(|| panic!("no l5d-ctx-deadline in {entry}"));
    let (ts, deadline) = value.split_once(' ').unwrap();
    let (ts, deadline): (u64, u64) = (ts.parse().unwrap(), deadline.parse().unwrap());
    Duration::from_nanos(deadline - ts)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_shrink_across_two_proxies() {
    // The second proxy (the incoming side, trusting its clients' context)
    // routes to the backend; the first (outgoing) routes to the second.
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: http
  label: incoming
  servers: [{port: 0}]
  service: {totalTimeoutMs: 10000}
"#,
    )
    .await;
    let incoming = setup.proxy.router("incoming").to_string();
    wait_routable(&incoming, "world").await;
    let outgoing = Proxy::start(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: outgoing
  servers: [{{port: 0}}]
  dtab: /svc/world => /$/inet/127.0.0.1/{}
  service: {{totalTimeoutMs: 2000}}
"#,
        incoming.rsplit(':').next().unwrap()
    ))
    .await;
    let outgoing_addr = outgoing.router("outgoing").to_string();
    let client = http1();
    setup.clear_logs();
    let a = send(&client, &outgoing_addr, Method::GET, "world", "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let direct = send(&client, &incoming, Method::GET, "world", "").await;
    assert_eq!(direct.status, 200);
    let log = setup.logged()[0].clone();
    assert_eq!(log.len(), 2);
    let via_two = left(&log[0]);
    let via_one = left(&log[1]);
    assert!(
        via_two <= Duration::from_secs(2) && via_two > Duration::from_millis(1000),
        "through both proxies the backend had {via_two:?}: the first proxy's 2 s, less the hops"
    );
    assert!(
        via_one > Duration::from_secs(9) && via_one <= Duration::from_secs(10),
        "through the second only: its own 10 s, got {via_one:?}"
    );
    // Two Via entries: the request went through both.
    assert_eq!(log[0]["headers"]["l5d-dst-service"], "/svc/world");

    // A deadline that has passed fails at the first proxy, unsent.
    setup.clear_logs();
    let passed = format!(
        "{} {}",
        now_nanos() - 2_000_000_000,
        now_nanos() - 1_000_000_000
    );
    let (code, out, err) = l5d_e2e::curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "-H",
        &format!("l5d-ctx-deadline: {passed}"),
        "-H",
        "host: world",
        &format!("http://{incoming}/"),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("deadline"), "{out}");
    assert!(
        setup.logged()[0].is_empty(),
        "a passed deadline is not sent"
    );

    // Malformed values are ignored (the request goes through) and counted.
    // (`grpc-timeout` is read on h2 routers only: gRPC is HTTP/2.)
    for (header, value) in [("l5d-ctx-deadline", "soon")] {
        let (code, out, err) = l5d_e2e::curl(&[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("{header}: {value}"),
            "-H",
            "host: world",
            &format!("http://{incoming}/"),
        ])
        .await;
        assert_eq!((code, out.as_str()), (0, "200"), "{header}: {err}");
        let counted = setup
            .metric(
                "linkerd_router_malformed_deadlines_total",
                &[("router", "incoming"), ("header", header)],
            )
            .await;
        assert_eq!(counted, 1.0, "{header}");
    }
    assert_eq!(outgoing.stop().await, Some(0));
    setup.stop().await;
}
