//! gRPC: a status in the trailers classifies the response; UNAVAILABLE is
//! retried under `io.l5d.h2.grpc.retryableStatusCodes: [14]` (the response
//! is held to read its trailers), DEADLINE_EXCEEDED is not; the class is
//! stamped in the trailers.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;

/// One unary gRPC-shaped call (an empty message) over `send`: the
/// `grpc-status` and `l5d-success-class` of its trailers.
async fn call(send: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>) -> (String, String) {
    let req = Request::post("http://world/l5d.demo.Greeter/Hello")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(15), send.send_request(req))
        .await
        .expect("an answer within 15 s")
        .expect("a response");
    if rsp.status() != 200 {
        return (format!("http {}", rsp.status()), String::new());
    }
    let body = rsp.into_body().collect().await.expect("a whole body");
    let trailers = body.trailers().cloned().unwrap_or_default();
    let get = |name: &str| {
        trailers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (get("grpc-status"), get("l5d-success-class"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_in_trailers_is_retried_and_deadline_exceeded_is_not() {
    let setup = Setup::start(
        "world",
        1,
        r#"
- protocol: h2
  label: grpc
  servers: [{port: 0}]
  service:
    responseClassifier: {kind: io.l5d.h2.grpc.retryableStatusCodes, retryableStatusCodes: [14]}
"#,
    )
    .await;
    let router = setup.proxy.router("grpc").to_string();
    let stream = tokio::net::TcpStream::connect(&router).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Routable: the first call answers.
    let since = std::time::Instant::now();
    while call(&mut send).await.0 != "0" {
        assert!(since.elapsed() < Duration::from_secs(10), "not routable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backend = setup.backends[0].addr;
    setup.clear_logs();
    fault(backend, "grpc_status=14&grpc_in=trailers&fraction=0.5");
    let n = 100;
    for i in 0..n {
        let (status, class) = call(&mut send).await;
        assert_eq!((status.as_str(), class.as_str()), ("0", "1.0"), "call {i}");
    }
    let log = setup.logged()[0].clone();
    let unavailable = log.iter().filter(|r| r["faulted"].is_string()).count();
    assert_eq!(log.len(), n + unavailable, "each UNAVAILABLE retried once");
    assert_eq!(unavailable, log.len() / 2);
    let retries = setup
        .metric("linkerd_router_retries_total", &[("router", "grpc")])
        .await;
    assert_eq!(retries as usize, unavailable);

    setup.clear_logs();
    let failures_before = setup
        .metric(
            "linkerd_router_responses_total",
            &[("router", "grpc"), ("classification", "failure")],
        )
        .await;
    fault(backend, "grpc_status=4&grpc_in=trailers&fraction=0.5");
    let mut failed = 0;
    for _ in 0..n {
        let (status, class) = call(&mut send).await;
        match status.as_str() {
            "0" => assert_eq!(class, "1.0"),
            "4" => {
                assert_eq!(class, "0.0");
                failed += 1;
            }
            other => panic!("grpc-status {other}"),
        }
    }
    assert_eq!(failed, n / 2, "DEADLINE_EXCEEDED reaches the client");
    assert_eq!(setup.logged()[0].len(), n, "and is not retried");
    let failures = setup
        .metric(
            "linkerd_router_responses_total",
            &[("router", "grpc"), ("classification", "failure")],
        )
        .await;
    assert_eq!(
        (failures - failures_before) as usize,
        n / 2,
        "classified from the trailers"
    );
    setup.stop().await;
}
