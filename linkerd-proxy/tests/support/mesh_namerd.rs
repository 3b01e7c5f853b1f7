//! A real namerd in-process for the interpreter tests (`namerd::testing`):
//! an in-memory store seeded with one namespace, the `io.l5d.fs` namer over
//! a temporary directory, the dtab HTTP API and the mesh gRPC API on
//! loopback ports the OS picks; plus the dtab writes and bounded waits the
//! tests need.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use l5d_dtab::Dtab;
use namerd::config::{StorageConfig, parse_namers};
use namerd::store::Namespace;
use namerd::testing::{self, TestNamerd};
use tokio::sync::watch;
use tokio::time::Instant;

/// A bound on every HTTP call.
pub(crate) const CALL_LIMIT: Duration = Duration::from_secs(15);

/// Starts namerd with namespace `ns` holding `dtab` and the fs namer
/// (`/#/io.l5d.fs`) over `disco`.
pub(crate) async fn start(ns: &str, dtab: &str, disco: &FsPath) -> TestNamerd {
    let namespaces = BTreeMap::from([(
        Namespace::new(ns).expect("a namespace name"),
        Dtab::read(dtab).expect("a dtab"),
    )]);
    let namers = parse_namers(serde_json::json!([
        {"kind": "io.l5d.fs", "rootDir": disco}
    ]))
    .expect("the fs namer config");
    testing::start_with_namers(StorageConfig::InMemory { namespaces }, namers).await
}

/// `PUT /api/1/dtabs/<ns>` without `If-Match`: an unconditional write.
pub(crate) async fn put_dtab(http: SocketAddr, ns: &str, dtab: &str) {
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("http://{http}/api/1/dtabs/{ns}"))
        .header("content-type", "application/dtab")
        .body(Full::new(Bytes::from(dtab.to_owned())))
        .expect("a request");
    let client = Client::builder(TokioExecutor::new()).build_http();
    let rsp = tokio::time::timeout(CALL_LIMIT, client.request(req))
        .await
        .expect("namerd answers the dtab write in time")
        .expect("the dtab write is answered");
    let status = rsp.status();
    let body = rsp.into_body().collect().await.expect("a body").to_bytes();
    assert_eq!(status, StatusCode::NO_CONTENT, "PUT {ns}: {body:?}");
}

/// Waits until the channel holds a value that satisfies `pred`, at most
/// `within`; returns it and how long it took. Panics with the last value.
pub(crate) async fn wait_for<T, F>(
    rx: &mut watch::Receiver<T>,
    within: Duration,
    what: &str,
    pred: F,
) -> (T, Duration)
where
    T: Clone + Debug,
    F: FnMut(&T) -> bool,
{
    let start = Instant::now();
    let found = match tokio::time::timeout(within, rx.wait_for(pred)).await {
        Ok(Ok(v)) => Some(v.clone()),
        Ok(Err(_)) => panic!("the channel closed while waiting for {what}"),
        Err(_) => None,
    };
    match found {
        Some(v) => (v, start.elapsed()),
        None => panic!("no {what} within {within:?}; last {:?}", *rx.borrow()),
    }
}

/// Polls `cond` every 10 ms until it holds, at most `within`, for state
/// without a channel (counters, admin state). Returns how long it took.
pub(crate) async fn wait_until(
    within: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "no {what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}
