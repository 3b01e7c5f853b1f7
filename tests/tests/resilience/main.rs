//! Issue 13's resilience, end to end with the binaries: namerd (the fs
//! namer), linkerd-proxy and `l5d-demo` backends that misbehave on purpose
//! (`/fault`) and log what they received (`/requests`). Every test counts
//! exactly: what the client saw, what each backend received, and what the
//! proxy's metrics say.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_e2e::{Demo, Namerd, Proxy};

mod accrual;
mod deadlines;
mod grpc;
mod requeues;
mod retries;

const DTAB: &str = "/svc => /#/io.l5d.fs;\n";

/// namerd, some `l5d-demo http` backends (each with its request log on),
/// and a proxy whose routers the test configures.
pub(crate) struct Setup {
    /// namerd's database and the fs namer's directory, removed on drop.
    _dir: tempfile::TempDir,
    namerd: Namerd,
    pub(crate) proxy: Proxy,
    pub(crate) backends: Vec<Demo>,
}

impl Setup {
    /// `backends` of `service` (all named in one fs file, so one id with
    /// that many endpoints) and a proxy with `routers` (YAML list items
    /// without `interpreter`, which is added: namerd's `internal`).
    pub(crate) async fn start(service: &str, backends: usize, routers: &str) -> Setup {
        Setup::start_with(service, backends, &[], routers).await
    }

    /// As [`start`](Self::start), with `extra` addresses (`ip:port`) named
    /// in the id beside the backends: endpoints that are not there.
    pub(crate) async fn start_with(
        service: &str,
        backends: usize,
        extra: &[SocketAddr],
        routers: &str,
    ) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        let mut demos = Vec::new();
        let mut lines = String::new();
        for i in 0..backends {
            let demo = Demo::start("http", &format!("{service}-{i}"), &["--log-requests"]).await;
            lines.push_str(&demo.fs_line());
            demos.push(demo);
        }
        for addr in extra {
            lines.push_str(&format!("{} {}\n", addr.ip(), addr.port()));
        }
        std::fs::write(disco.join(service), lines).unwrap();
        let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
        namerd.create_dtab(dir.path(), "internal", DTAB).await;
        let proxy = Proxy::start(&proxy_config(&namerd.mesh, routers)).await;
        Setup {
            _dir: dir,
            namerd,
            proxy,
            backends: demos,
        }
    }

    /// Every backend's request log, emptied.
    pub(crate) fn clear_logs(&self) {
        for b in &self.backends {
            l5d_e2e::demo_requests_clear(b.addr);
        }
    }

    /// The requests each backend logged.
    pub(crate) fn logged(&self) -> Vec<Vec<serde_json::Value>> {
        self.backends
            .iter()
            .map(|b| {
                l5d_e2e::demo_requests(b.addr)
                    .as_array()
                    .expect("a JSON array")
                    .clone()
            })
            .collect()
    }

    /// A counter or gauge of the proxy's Prometheus page: the sum of the
    /// series of `name` whose labels include every pair of `labels`.
    pub(crate) async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let page = admin_get(&self.proxy, "/admin/metrics/prometheus").await;
        sum_metric(&page, name, labels)
    }

    pub(crate) async fn stop(self) {
        assert_eq!(self.proxy.stop().await, Some(0), "the proxy exits cleanly");
        self.namerd.stop().await;
        for b in self.backends {
            b.stop().await;
        }
    }
}

fn proxy_config(mesh: &str, routers: &str) -> String {
    let port = mesh.rsplit(':').next().unwrap();
    let interpreter = format!(
        "{{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal, retry: {{baseSeconds: 1, maxSeconds: 2}}}}"
    );
    let mut config = "admin: {port: 0}\nrouters:\n".to_string();
    for line in routers.lines() {
        if line.trim().is_empty() {
            continue;
        }
        config.push_str(line);
        config.push('\n');
        if line.starts_with("- ") {
            config.push_str(&format!("  interpreter: {interpreter}\n"));
        }
    }
    config
}

pub(crate) async fn admin_get(proxy: &Proxy, path: &str) -> String {
    let url = format!("http://{}{path}", proxy.admin);
    let (code, out, err) = l5d_e2e::curl(&["-sS", &url]).await;
    assert_eq!(code, 0, "curl {url}: {err}");
    out
}

/// The sum of the samples of `name` whose labels include `labels`.
pub(crate) fn sum_metric(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// An HTTP/1.1 client with a connection pool, as an application's.
pub(crate) fn http1() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What one request got.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub served_by: String,
}

/// `method http://{host}/ ` through `router`, with `body`; bounded to
/// 15 s so that a hang fails the test instead of stalling it.
pub(crate) async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    router: &str,
    method: Method,
    host: &str,
    body: &'static str,
) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{router}/"))
        .header("host", host)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(15), client.request(req))
        .await
        .expect("an answer within 15 s")
        .expect("a response");
    let status = rsp.status();
    let headers = rsp.headers().clone();
    let _ = rsp.into_body().collect().await;
    let served_by = headers
        .get("x-served-by")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Answer {
        status,
        headers,
        served_by,
    }
}

/// Counts of statuses.
pub(crate) fn tally(answers: &[Answer]) -> BTreeMap<u16, usize> {
    let mut out = BTreeMap::new();
    for a in answers {
        *out.entry(a.status.as_u16()).or_default() += 1;
    }
    out
}

/// Waits until `router` routes `host` to a backend (namerd and the fs
/// namer answer within milliseconds; 10 s is a generous bound).
pub(crate) async fn wait_routable(router: &str, host: &str) {
    let client = http1();
    let since = Instant::now();
    loop {
        let a = send(&client, router, Method::GET, host, "").await;
        if !a.served_by.is_empty() {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{host} not routable through {router} within 10 s: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The faults of `addr`, set for the test.
pub(crate) fn fault(addr: SocketAddr, query: &str) {
    l5d_e2e::demo_fault(addr, query);
}
