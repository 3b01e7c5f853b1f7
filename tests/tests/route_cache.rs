//! The proxy's route cache under client-chosen names, every part a real
//! process: namerd on SQLite with the fs namer, linkerd-proxy, an
//! `l5d-demo` backend, a Rust HTTP client over loopback.
//!
//! The probe: 10,000 distinct `Host` values through one proxy left
//! its cache full, and every new name got 503 "Too many requests in
//! flight" for the 600 s of the routes' idle TTL. Now a new name evicts the
//! least recently used idle routes: a name the proxy never saw still
//! routes, and the routes, the namerd streams and the proxy's memory stay
//! bounded through two more waves of 10,000 names each. Only when every
//! route has requests in flight is a new name refused, and then with the
//! route cache's own error.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_e2e::{Demo, Namerd, Proxy};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Distinct names per wave: the probe.
const WAVE: usize = 10_000;
/// Requests in flight while a wave is sent.
const CONCURRENCY: usize = 32;
/// The bound on a name's first successful response after a wave or a
/// release: the proxy drops a finished request's route and namerd learns
/// of cancelled streams asynchronously, so a first attempt may come too
/// early. Generous for a debug build on a busy machine.
const ROUTES_WITHIN: Duration = Duration::from_secs(30);

const DTAB: &str = "/srv => /#/io.l5d.fs;\n/host => /srv;\n/svc => /host;\n";

/// namerd, its dtab, the `world` backend (also named each of
/// `world_aliases`), the `services` and one proxy whose router `http` has
/// `binding_cache` (YAML, or empty for the defaults). Services are known to
/// the fs namer before namerd starts, so none is missed by a request that
/// comes before namerd has seen its file.
struct Mesh {
    _dir: tempfile::TempDir,
    namerd: Namerd,
    world: Demo,
    proxy: Proxy,
    client: HttpClient,
}

impl Mesh {
    async fn start(
        binding_cache: &str,
        world_aliases: &[&str],
        services: &[(&str, SocketAddr)],
    ) -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        let world = Demo::start("http", "world", &[]).await;
        for name in world_aliases.iter().chain(&["world"]) {
            std::fs::write(disco.join(name), world.fs_line()).unwrap();
        }
        for (name, addr) in services {
            let line = format!("{} {}\n", addr.ip(), addr.port());
            std::fs::write(disco.join(name), line).unwrap();
        }
        let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
        namerd.create_dtab(dir.path(), "internal", DTAB).await;
        let proxy = Proxy::start(&proxy_config(&namerd.mesh, binding_cache)).await;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(CONCURRENCY)
            .build(connector);
        Mesh {
            _dir: dir,
            namerd,
            world,
            proxy,
            client,
        }
    }

    fn router(&self) -> String {
        self.proxy.router("http").to_string()
    }

    async fn stop(self) {
        assert_eq!(self.proxy.stop().await, Some(0), "the proxy exits cleanly");
        self.namerd.stop().await;
        self.world.stop().await;
    }
}

fn proxy_config(mesh: &str, binding_cache: &str) -> String {
    let port = mesh.rsplit(':').next().unwrap();
    let binding_cache = if binding_cache.is_empty() {
        String::new()
    } else {
        format!("  bindingCache: {binding_cache}\n")
    };
    format!(
        "admin: {{port: 0}}\n\
         routers:\n\
         - protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  \
           interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal, \
           retry: {{baseSeconds: 1, maxSeconds: 2}}}}\n\
         {binding_cache}"
    )
}

/// A GET through the proxy for `host` with extra `headers`: the status
/// (0 if none came within 30 s), the headers and the body.
async fn get(
    client: &HttpClient,
    proxy: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut req = Request::get(format!("http://{proxy}/")).header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Empty::new()).unwrap();
    let answer = async {
        let rsp = client.request(req).await.ok()?;
        let (head, body) = rsp.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        Some((
            head.status.as_u16(),
            head.headers,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    };
    match tokio::time::timeout(Duration::from_secs(30), answer).await {
        Ok(Some(answer)) => answer,
        _ => (0, HeaderMap::new(), String::new()),
    }
}

async fn status(client: &HttpClient, proxy: &str, host: &str) -> u16 {
    get(client, proxy, host, &[]).await.0
}

/// Sends one request for each of `count` distinct hosts named after
/// `wave`; returns how many were answered by the proxy's 502 for a name
/// that binds to nothing (every one, when nothing is refused).
async fn send_wave(client: &HttpClient, proxy: &str, wave: &str, count: usize) -> usize {
    futures::stream::iter(0..count)
        .map(|i| {
            let host = format!("{wave}-{i}.example");
            async move { status(client, proxy, &host).await }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|s| futures::future::ready(*s == 502))
        .count()
        .await
}

/// A series of the proxy's Prometheus page: the value of the line that
/// starts with `name{` and has every one of `labels`.
async fn metric(client: &HttpClient, proxy: &Proxy, name: &str, labels: &[&str]) -> f64 {
    let url = format!("http://{}/admin/metrics/prometheus", proxy.admin);
    let req = Request::get(&url).body(Empty::new()).unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("the admin answers within 30 s")
        .expect("the admin answers");
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} with {labels:?} in the metrics:\n{body}"))
}

async fn gauge(client: &HttpClient, proxy: &Proxy, name: &str) -> f64 {
    metric(client, proxy, name, &["router=\"http\""]).await
}

/// `linkerd_proxy_errors_total` of the router `http` for `kind`.
async fn errors(client: &HttpClient, proxy: &Proxy, kind: &str) -> f64 {
    let kind = format!("kind=\"{kind}\"");
    let labels = ["router=\"http\"", kind.as_str()];
    metric(client, proxy, "linkerd_proxy_errors_total", &labels).await
}

/// The resident set of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb / 1024.0
}

/// Retries `host` until it answers 200, within [`ROUTES_WITHIN`]; the
/// attempts it took. `refusal` says which other answers may come first.
async fn routes_soon(
    client: &HttpClient,
    proxy: &str,
    host: &str,
    refusal: impl Fn(u16, &str) -> bool,
) -> u32 {
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (got, _, body) = get(client, proxy, host, &[]).await;
        if got == 200 {
            return attempts;
        }
        assert!(refusal(got, &body), "{host}: {got} {body}");
        assert!(
            start.elapsed() < ROUTES_WITHIN,
            "{host} still fails ({got} {body}) after {attempts} attempts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hosts_neither_lock_out_a_new_name_nor_grow_the_proxy() {
    // Names the proxy has not seen when each wave ends.
    let waves = ["first", "second", "third"];
    let new_names = waves.map(|wave| format!("new-after-{wave}"));
    let aliases = new_names.each_ref().map(String::as_str);
    let mesh = Mesh::start("", &aliases, &[]).await;
    let router = mesh.router();
    let client = &mesh.client;
    let pid = mesh.proxy.pid().expect("the proxy runs");
    let namerd_pid = mesh.namerd.pid().expect("namerd runs");

    assert_eq!(status(client, &router, "world").await, 200);
    let rss_start = rss_mib(pid);
    let namerd_rss_start = rss_mib(namerd_pid);

    // namerd may still be releasing the evicted routes' bindings when a
    // new name comes, and then refuses it (its binding cap); the proxy's
    // stream retries, and the request may time out waiting for it.
    let namerd_busy = |status: u16, body: &str| status == 503 && body.contains("timed out");
    let mut rss_first = 0.0;
    for (n, (wave, new_name)) in waves.into_iter().zip(&new_names).enumerate() {
        let started = Instant::now();
        let unbound = send_wave(client, &router, wave, WAVE).await;
        assert_eq!(
            unbound, WAVE,
            "the {wave} wave: every unknown name is a 502, none refused"
        );
        let took = started.elapsed();
        let attempts = routes_soon(client, &router, new_name, namerd_busy).await;
        let routes = gauge(client, &mesh.proxy, "linkerd_proxy_routes").await;
        let key_bytes = gauge(client, &mesh.proxy, "linkerd_proxy_route_key_bytes").await;
        let streams = gauge(client, &mesh.proxy, "linkerd_namerd_streams_open").await;
        let rss = rss_mib(pid);
        if n == 0 {
            rss_first = rss;
        }
        eprintln!(
            "{wave} wave: {WAVE} hosts in {took:?}; routes {routes} ({key_bytes} key bytes), \
             namerd streams {streams}, proxy RSS {rss_start:.1} -> {rss:.1} MiB \
             (namerd {namerd_rss_start:.1} -> {:.1} MiB); {new_name} routed on attempt {attempts}",
            rss_mib(namerd_pid)
        );
        assert!(routes <= 10_000.0, "{routes} routes");
        // Evicted routes released their streams: one binding per route
        // at most, plus the address sets of `world`'s id.
        assert!(
            streams <= routes + 1.0,
            "{streams} streams for {routes} routes"
        );
    }
    // After 30,000 names, memory is that of a full cache, not three times
    // it (a generous bound for allocator slack).
    let rss_last = rss_mib(pid);
    assert!(
        rss_last < rss_first * 1.5 + 32.0,
        "RSS {rss_first:.1} -> {rss_last:.1} MiB"
    );
    mesh.stop().await;
}

/// A backend that takes requests and answers none until released: each
/// request's arrival is reported, so the test knows it is in flight
/// through the proxy. Releasing closes every connection.
async fn blackhole() -> (
    SocketAddr,
    tokio::sync::mpsc::Receiver<()>,
    tokio::sync::watch::Sender<bool>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived_rx) = tokio::sync::mpsc::channel(16);
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let arrived = arrived_tx.clone();
            let mut release = release_rx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = arrived.send(()).await;
                let _ = release.wait_for(|r| *r).await;
            });
        }
    });
    (addr, arrived_rx, release_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_whose_every_route_is_in_use_refuses_with_its_own_error() {
    let (hole, mut arrived, release) = blackhole().await;
    let services = [("held-a", hole), ("held-b", hole)];
    let mesh = Mesh::start("{paths: 2, maxKeyBytes: 1024}", &[], &services).await;
    let router = mesh.router();
    let client = &mesh.client;

    // Two requests in flight hold both routes.
    let in_flight: Vec<_> = ["held-a", "held-b"]
        .into_iter()
        .map(|host| {
            let (client, router) = (client.clone(), router.clone());
            tokio::spawn(async move { status(&client, &router, host).await })
        })
        .collect();
    for _ in 0..2 {
        tokio::time::timeout(ROUTES_WITHIN, arrived.recv())
            .await
            .expect("both held requests reach the backend within 30 s")
            .expect("the backend runs");
    }

    let (got, headers, body) = get(client, &router, "world", &[]).await;
    assert_eq!(got, 503, "{body}");
    assert!(
        body.starts_with(
            "Cannot route /svc/world: the route cache is full (2 routes of bindingCache.paths 2, \
             22 key bytes of bindingCache.maxKeyBytes 1024) and every route in it has requests \
             in flight; retry later"
        ),
        "{body}"
    );
    assert!(!body.contains("Too many requests"), "{body}");
    assert!(headers.contains_key("l5d-err"));
    assert_eq!(headers["l5d-retryable"], "true");
    assert_eq!(errors(client, &mesh.proxy, "route_cache_full").await, 1.0);
    assert_eq!(errors(client, &mesh.proxy, "overloaded").await, 0.0);

    // Once the held requests end, their routes are idle and a new name
    // evicts one of them.
    release.send_replace(true);
    for request in in_flight {
        assert_eq!(request.await.unwrap(), 502, "a held request ends");
    }
    let cache_full =
        |status: u16, body: &str| status == 503 && body.contains("route cache is full");
    routes_soon(client, &router, "world", cache_full).await;

    // A name and local dtab larger than maxKeyBytes alone can never be
    // cached: 400, not a retry.
    let dtab: Vec<String> = (0..60)
        .map(|i| format!("/svc/pad{i}=>/svc/world"))
        .collect();
    let dtab = dtab.join(";");
    let (got, headers, body) = get(client, &router, "world", &[("l5d-dtab", &dtab)]).await;
    assert_eq!(got, 400, "{body}");
    assert!(
        body.contains("more than the route cache's bindingCache.maxKeyBytes (1024)"),
        "{body}"
    );
    assert!(!headers.contains_key("l5d-retryable"));
    assert_eq!(
        errors(client, &mesh.proxy, "route_key_too_large").await,
        1.0
    );
    mesh.stop().await;
}
