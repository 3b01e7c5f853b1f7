//! Failure accrual end to end in one process: a real namerd (the fs namer
//! names five backends as one id), five real HTTP backends that answer 500
//! while told to fail, and the proxy, on loopback sockets.

#[allow(
    dead_code,
    reason = "the dtab writes and waits are the interpreter tests'"
)]
#[path = "support/mesh_namerd.rs"]
mod mesh_namerd;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::proxy::Proxy;
use mesh_namerd::CALL_LIMIT;
use serde_json::Value;
use tokio::net::TcpListener;

/// One backend: answers 500 while `fail` is set, 200 otherwise, and names
/// itself in `x-backend`.
struct Backend {
    addr: SocketAddr,
    fail: Arc<AtomicBool>,
    /// Requests answered 200.
    served: Arc<AtomicUsize>,
}

impl Backend {
    async fn start(index: usize) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (f, s) = (fail.clone(), served.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (f, s) = (f.clone(), s.clone());
                let service = hyper::service::service_fn(move |_req| {
                    let status = if f.load(Ordering::SeqCst) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        s.fetch_add(1, Ordering::SeqCst);
                        StatusCode::OK
                    };
                    let rsp = Response::builder()
                        .status(status)
                        .header("x-backend", index.to_string())
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    async move { Ok::<_, Infallible>(rsp) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Backend { addr, fail, served }
    }

    fn set_failing(&self, failing: bool) {
        self.fail.store(failing, Ordering::SeqCst);
    }
}

struct Mesh {
    _dir: tempfile::TempDir,
    namerd: namerd::testing::TestNamerd,
    proxy: Proxy,
    backends: Vec<Backend>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Mesh {
    /// Five backends as `/#/io.l5d.fs/pool`, routed from `Host: pool`
    /// with `failureAccrual` as given. The balancer is `p2c`: requests
    /// sent one at a time leave every endpoint with nothing in flight, so
    /// its two choices tie and each request goes to a uniformly random
    /// usable endpoint (peak-EWMA could settle on a few).
    async fn start(accrual: &str) -> Mesh {
        let mut backends = Vec::new();
        for i in 0..5 {
            backends.push(Backend::start(i).await);
        }
        let dir = tempfile::tempdir().unwrap();
        let lines: String = backends
            .iter()
            .map(|b| format!("{} {}\n", b.addr.ip(), b.addr.port()))
            .collect();
        std::fs::write(dir.path().join("pool"), lines).unwrap();
        let namerd = mesh_namerd::start("default", "/svc => /#/io.l5d.fs", dir.path()).await;
        let mesh_port = namerd.mesh_url().rsplit(':').next().unwrap().to_string();
        let config = ProxyConfig::from_yaml(&format!(
            r#"
admin: {{port: 0}}
routers:
- protocol: http
  servers: [{{port: 0}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{mesh_port}, root: /default}}
  client:
    loadBalancer: {{kind: p2c}}
    failureAccrual: {accrual}
"#
        ))
        .unwrap();
        let proxy = Proxy::start(config).await.unwrap();
        Mesh {
            _dir: dir,
            namerd,
            proxy,
            backends,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// One request for `pool`: its status and the backend that answered.
    async fn get(&self) -> (StatusCode, Option<usize>) {
        let addr = self.proxy.server_addrs("http")[0];
        let req = Request::get(format!("http://{addr}/"))
            .header("host", "pool")
            .body(Empty::new())
            .unwrap();
        let rsp = tokio::time::timeout(CALL_LIMIT, self.client.request(req))
            .await
            .expect("the proxy answers in time")
            .expect("the proxy answers");
        let backend = rsp
            .headers()
            .get("x-backend")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let status = rsp.status();
        rsp.into_body().collect().await.unwrap();
        (status, backend)
    }

    async fn admin(&self, path: &str) -> String {
        let uri = format!("http://{}{path}", self.proxy.admin_addr());
        let rsp = self.client.get(uri.parse().unwrap()).await.unwrap();
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// The endpoint of backend `i` in `/client_state.json`.
    async fn endpoint_state(&self, i: usize) -> Value {
        let state: Value = serde_json::from_str(&self.admin("/client_state.json").await).unwrap();
        let endpoints = &state["http"]["/#/io.l5d.fs/pool"]["endpoints"];
        let addr = self.backends[i].addr.to_string();
        endpoints
            .as_array()
            .unwrap_or_else(|| panic!("no endpoints in {state}"))
            .iter()
            .find(|e| e["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr} not in {endpoints}"))
            .clone()
    }

    /// Waits until `pool` routes to a backend (namerd and the fs namer
    /// answered), at most 10 s.
    async fn wait_routed(&self) {
        let since = Instant::now();
        while self.get().await.1.is_none() {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "pool is not routed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.proxy.shutdown(Duration::from_secs(1)).await;
        self.namerd.shutdown().await;
    }
}

/// The counter `name` summed over its series in the Prometheus text.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_removed_probed_and_readmitted() {
    let mesh = Mesh::start(
        "{kind: io.l5d.consecutiveFailures, failures: 3, backoff: {kind: constant, ms: 1000}}",
    )
    .await;
    mesh.wait_routed().await;
    mesh.backends[0].set_failing(true);

    // 1,000 requests one at a time: backend 0 gets the three that trip it
    // and then one probe per dead second at most (one more for rounding).
    let start = Instant::now();
    let mut to_failing = 0;
    for _ in 0..1_000 {
        let (status, backend) = mesh.get().await;
        match backend {
            Some(0) => {
                assert_eq!(status, 500);
                to_failing += 1;
            }
            Some(_) => assert_eq!(status, 200),
            None => panic!("a request did not reach a backend: {status}"),
        }
    }
    let elapsed = start.elapsed();
    let bound = 3 + elapsed.as_secs() as usize + 1;
    assert!(
        (3..=bound).contains(&to_failing),
        "the failing backend got {to_failing} of 1,000 requests in {elapsed:?} (at most {bound})"
    );
    eprintln!("the failing backend got {to_failing} of 1,000 requests in {elapsed:?}");
    let state = mesh.endpoint_state(0).await;
    assert_ne!(state["accrual"]["state"], "alive", "{state}");
    if state["accrual"]["state"] == "dead" {
        assert_eq!(state["accrual"]["deadPeriodMs"], 1000.0, "{state}");
    }
    assert!(
        state["consecutiveFailures"].as_u64().unwrap() >= 3,
        "{state}"
    );
    let healthy = mesh.endpoint_state(1).await;
    assert_eq!(healthy["accrual"]["state"], "alive", "{healthy}");

    // Healthy again: the next probe (within about a second) readmits it.
    mesh.backends[0].set_failing(false);
    let served_before = mesh.backends[0].served.load(Ordering::SeqCst);
    let waited = wait_readmitted(&mesh, Duration::from_secs(15)).await;
    let state = mesh.endpoint_state(0).await;
    assert_eq!(state["accrual"]["state"], "alive", "{state}");
    assert_eq!(state["consecutiveFailures"], 0, "{state}");
    // It takes requests again: of 200, a uniform share is 40; fewer than
    // 5 would be a one-in-a-billion draw.
    for _ in 0..200 {
        assert_eq!(mesh.get().await.0, 200);
    }
    let served = mesh.backends[0].served.load(Ordering::SeqCst) - served_before;
    eprintln!("readmitted after {waited:?}, then served {served} of 200");
    assert!(
        served >= 5,
        "readmitted after {waited:?} but served {served}"
    );

    let metrics = mesh.admin("/admin/metrics/prometheus").await;
    for name in [
        "linkerd_failure_accrual_removals_total",
        "linkerd_failure_accrual_probes_total",
        "linkerd_failure_accrual_revivals_total",
    ] {
        assert!(counter(&metrics, name) >= 1.0, "{name}:\n{metrics}");
    }
    assert!(
        metrics.contains(&format!(
            "linkerd_failure_accrual_state{{router=\"http\",client=\"/#/io.l5d.fs/pool\",endpoint=\"{}\"}} 0",
            mesh.backends[0].addr
        )),
        "{metrics}"
    );
    mesh.stop().await;
}

/// Sends requests one at a time until backend 0 shows alive again, at
/// most `within`; how long it took.
async fn wait_readmitted(mesh: &Mesh, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        assert_eq!(mesh.get().await.0, 200);
        let state = mesh.endpoint_state(0).await;
        if state["accrual"]["state"] == "alive" {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "not readmitted within {within:?}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_endpoint_fails_requests_still_go_out() {
    let mesh = Mesh::start(
        "{kind: io.l5d.consecutiveFailures, failures: 1, backoff: {kind: constant, ms: 60000}}",
    )
    .await;
    mesh.wait_routed().await;
    for b in &mesh.backends {
        b.set_failing(true);
    }
    // Every endpoint dies within a few requests and stays dead for a
    // minute; every request still reaches a backend, none is refused by
    // the proxy. They all go to the endpoint whose dead period ends
    // soonest: a forced request's failure does not extend it.
    let mut last = None;
    for _ in 0..200 {
        let (status, backend) = mesh.get().await;
        assert_eq!(status, 500);
        assert!(backend.is_some(), "the proxy answered itself");
        last = backend;
    }
    for i in 0..5 {
        let state = mesh.endpoint_state(i).await;
        assert_eq!(state["accrual"]["state"], "dead", "{state}");
    }
    // When that backend recovers, the first request it answers revives it.
    let soonest = last.unwrap();
    mesh.backends[soonest].set_failing(false);
    assert_eq!(mesh.get().await, (StatusCode::OK, Some(soonest)));
    let state = mesh.endpoint_state(soonest).await;
    assert_eq!(state["accrual"]["state"], "alive", "{state}");
    for _ in 0..20 {
        assert_eq!(mesh.get().await, (StatusCode::OK, Some(soonest)));
    }
    mesh.stop().await;
}
