//! Routing end to end in one process: a real namerd (SQLite, the fs
//! namer), demo backends and the proxy, on loopback sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::proxy::Proxy;
use namerd::config::StorageConfig;
use tokio::net::TcpListener;

/// namerd, two backends (`world-v1`, `world-v2`) named in the fs namer's
/// directory, and a proxy with a trusting HTTP router, an untrusting one,
/// and an h2 router, all bound to namerd's `internal` namespace.
struct Mesh {
    dir: tempfile::TempDir,
    namerd: namerd::testing::TestNamerd,
    proxy: Proxy,
    _backends: Vec<tokio::sync::oneshot::Sender<()>>,
}

const DTAB: &str =
    "/srv => /#/io.l5d.fs; /host => /srv; /svc => /host; /host/world => /srv/world-v1";

impl Mesh {
    async fn start() -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        let mut backends = Vec::new();
        for (name, delay) in [("world-v1", 0), ("world-v2", 0), ("slow", 600)] {
            let (addr, stop) = backend(name, Duration::from_millis(delay)).await;
            std::fs::write(disco.join(name), format!("{} {}\n", addr.ip(), addr.port())).unwrap();
            backends.push(stop);
        }
        let namerd = namerd::testing::start_with_namers_yaml(
            StorageConfig::Sqlite {
                path: dir.path().join("namerd.db"),
                poll_interval: Duration::from_secs(5),
            },
            &format!("[{{kind: io.l5d.fs, rootDir: {}}}]", disco.display()),
        )
        .await;
        let client = http1();
        put_dtab(&client, &namerd.base_url(), "internal", DTAB).await;
        let mesh_port = namerd.mesh_url().rsplit(':').next().unwrap().to_string();
        let interpreter =
            format!("{{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{mesh_port}, root: /internal}}");
        let config = ProxyConfig::from_yaml(&format!(
            r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: trusting
  servers: [{{port: 0}}]
  interpreter: {interpreter}
- protocol: http
  label: edge
  servers: [{{port: 0, clearContext: true}}]
  interpreter: {interpreter}
- protocol: h2
  label: h2
  servers: [{{port: 0}}]
  interpreter: {interpreter}
- protocol: http
  label: timed
  servers: [{{port: 0, maxHeaders: 20}}]
  interpreter: {interpreter}
  service: {{totalTimeoutMs: 200}}
"#
        ))
        .unwrap();
        let proxy = Proxy::start(config).await.unwrap();
        Mesh {
            dir,
            namerd,
            proxy,
            _backends: backends,
        }
    }

    fn addr(&self, label: &str) -> SocketAddr {
        self.proxy.server_addrs(label)[0]
    }
}

async fn backend(name: &str, delay: Duration) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = l5d_demo::http::HttpBackend::new(&name.parse().unwrap(), delay, None);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(backend.serve(listener, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

fn http1() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One HTTP/2 request over a prior-knowledge connection to `proxy`, with
/// the URI (and so `:authority`) as given.
async fn h2_get(proxy: SocketAddr, uri: &str) -> (StatusCode, String, http::HeaderMap) {
    let stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(15), send.send_request(req))
        .await
        .expect("a response within 15 s")
        .unwrap();
    summarize(rsp).await
}

/// The status, the backend that answered (`x-served-by`), and headers.
async fn summarize(
    rsp: http::Response<hyper::body::Incoming>,
) -> (StatusCode, String, http::HeaderMap) {
    let status = rsp.status();
    let headers = rsp.headers().clone();
    let _ = rsp.into_body().collect().await.unwrap();
    let served = headers
        .get("x-served-by")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, served, headers)
}

async fn put_dtab(client: &Client<HttpConnector, Empty<Bytes>>, base: &str, ns: &str, dtab: &str) {
    // The dtab API takes the text in the body; build the request with a
    // full body through a second client type.
    let client2: Client<HttpConnector, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let _ = client;
    let req = Request::put(format!("{base}/api/1/dtabs/{ns}"))
        .header("content-type", "application/dtab")
        .body(http_body_util::Full::new(Bytes::from(dtab.to_string())))
        .unwrap();
    let rsp = client2.request(req).await.unwrap();
    assert!(rsp.status().is_success(), "PUT dtab: {}", rsp.status());
}

/// GET through a client: see [`summarize`].
async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    req: Request<Empty<Bytes>>,
) -> (StatusCode, String, http::HeaderMap) {
    let rsp = tokio::time::timeout(Duration::from_secs(15), client.request(req))
        .await
        .expect("a response within 15 s")
        .unwrap();
    summarize(rsp).await
}

fn request(addr: SocketAddr, host: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://{addr}/hello"))
        .header("host", host)
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_reach_the_backend_the_dtab_names() {
    let mesh = Mesh::start().await;
    let client = http1();
    let (status, served, headers) = get(&client, request(mesh.addr("trusting"), "world")).await;
    assert_eq!(status, 200, "{headers:?}");
    assert_eq!(served, "world-v1");
    assert_eq!(headers["x-echo-l5d-dst-service"], "/svc/world");
    assert_eq!(headers["x-echo-l5d-dst-client"], "/#/io.l5d.fs/world-v1");
    assert_eq!(headers["x-echo-host"], "world");
    assert!(headers.contains_key("x-echo-l5d-reqid"));

    // Absolute-form, as sent by clients using http_proxy.
    let mut conn = tokio::net::TcpStream::connect(mesh.addr("trusting"))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    conn.write_all(b"GET http://world/abs HTTP/1.1\r\nHost: world\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("x-served-by: world-v1"), "{raw}");
    assert!(raw.contains("x-echo-path: /abs"), "{raw}");

    // HTTP/2 with prior knowledge: :authority names the service.
    let (status, served, headers) = h2_get(mesh.addr("h2"), "http://world/h2").await;
    assert_eq!(
        (status, served.as_str()),
        (StatusCode::OK, "world-v1"),
        "{headers:?}"
    );
    assert_eq!(headers["x-echo-host"], "world");
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtab_update_moves_traffic_within_a_second() {
    let mesh = Mesh::start().await;
    let client = http1();
    let (_, served, _) = get(&client, request(mesh.addr("trusting"), "world")).await;
    assert_eq!(served, "world-v1");
    put_dtab(
        &client,
        &mesh.namerd.base_url(),
        "internal",
        &DTAB.replace("world-v1", "world-v2"),
    )
    .await;
    let written = Instant::now();
    loop {
        let (_, served, _) = get(&client, request(mesh.addr("trusting"), "world")).await;
        if served == "world-v2" {
            break;
        }
        // Generous (it takes milliseconds), so a loaded machine cannot fail it.
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "still {served} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_apply_on_trusting_servers_and_are_stripped_at_the_edge() {
    let mesh = Mesh::start().await;
    let client = http1();
    // A deadline a minute away: context the edge must strip and a trusting
    // server honours (a passed one would fail the request unsent).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let deadline = format!("{now} {}", now + 60_000_000_000);
    let with_override = |addr| {
        let mut req = request(addr, "world");
        req.headers_mut()
            .insert("l5d-dtab", "/host/world => /srv/world-v2".parse().unwrap());
        req.headers_mut()
            .insert("l5d-ctx-deadline", deadline.parse().unwrap());
        req
    };
    let (status, served, headers) = get(&client, with_override(mesh.addr("trusting"))).await;
    assert_eq!((status, served.as_str()), (StatusCode::OK, "world-v2"));
    assert!(
        !headers.contains_key("x-echo-l5d-dtab"),
        "l5d-dtab is not forwarded"
    );
    assert_eq!(headers["x-echo-l5d-ctx-dtab"], "/host/world=>/srv/world-v2");

    let (status, served, headers) = get(&client, with_override(mesh.addr("edge"))).await;
    assert_eq!((status, served.as_str()), (StatusCode::OK, "world-v1"));
    for h in [
        "x-echo-l5d-dtab",
        "x-echo-l5d-ctx-dtab",
        "x-echo-l5d-ctx-deadline",
    ] {
        assert!(
            !headers.contains_key(h),
            "{h} reached the backend through the edge"
        );
    }

    let mut bad = request(mesh.addr("trusting"), "world");
    bad.headers_mut()
        .insert("l5d-dtab", "/a => ".parse().unwrap());
    let (status, _, headers) = get(&client, bad).await;
    assert_eq!(status, 400);
    let err = headers["l5d-err"].to_str().unwrap();
    assert!(err.starts_with("Invalid+dtab+in+l5d-dtab"), "{err}");

    // An override may not name an address; at the edge it is not read.
    let namerd_http = mesh.namerd.base_url().replace("http://", "");
    let (ip, port) = namerd_http.rsplit_once(':').unwrap();
    let to_address = format!("/svc/world => /$/inet/{ip}/{port}");
    for (label, want) in [("trusting", 400), ("edge", 200)] {
        let mut req = request(mesh.addr(label), "world");
        req.headers_mut()
            .insert("l5d-dtab", to_address.parse().unwrap());
        let (status, _, headers) = get(&client, req).await;
        assert_eq!(status, want, "{label}: {headers:?}");
    }
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_follow_linkerds_status_mapping() {
    let mesh = Mesh::start().await;
    let client = http1();
    // No such service in the fs namer's directory: bound to nothing.
    let (status, _, headers) = get(&client, request(mesh.addr("trusting"), "nosuch")).await;
    assert_eq!(status, 502, "{headers:?}");
    assert!(headers.contains_key("l5d-err"));
    // A request that already went through too many proxies.
    let mut looped = request(mesh.addr("trusting"), "world");
    let via = vec!["1.1 linkerd"; 1000].join(", ");
    looped.headers_mut().insert("via", via.parse().unwrap());
    let (status, _, _) = get(&client, looped).await;
    assert_eq!(status, 400);
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_timeout_answers_503() {
    let mesh = Mesh::start().await;
    let client = http1();
    let (status, _, headers) = get(&client, request(mesh.addr("timed"), "slow")).await;
    assert_eq!(status, 503, "{headers:?}");
    let err = headers["l5d-err"].to_str().unwrap();
    assert!(err.contains("total+timeout"), "{err}");
    let (status, served, _) = get(&client, request(mesh.addr("timed"), "world")).await;
    assert_eq!((status, served.as_str()), (StatusCode::OK, "world-v1"));
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

/// A server's own header count limit (`maxHeaders: 20` on `timed`; the
/// default of 100 is checked end to end in `tests/tests/hardening`): 20
/// headers are routed, 21 get the proxy's 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_header_limit_answers_431_beyond_it() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mesh = Mesh::start().await;
    let status_line = |headers: usize| {
        let addr = mesh.addr("timed");
        async move {
            // Host and Connection are two of them.
            let extra: String = (2..headers).map(|i| format!("x-h{i}: {i}\r\n")).collect();
            let head =
                format!("GET /hello HTTP/1.1\r\nHost: world\r\n{extra}Connection: close\r\n\r\n");
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            conn.write_all(head.as_bytes()).await.unwrap();
            let mut out = String::new();
            tokio::time::timeout(Duration::from_secs(15), conn.read_to_string(&mut out))
                .await
                .expect("an answer within 15 s")
                .unwrap();
            out.lines().next().unwrap_or_default().to_string()
        }
    };
    assert_eq!(status_line(20).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_line(21).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_removed_mid_request_still_answers_it() {
    let mesh = Mesh::start().await;
    let client = http1();
    // Bind `slow` first, so its endpoints are known.
    let (status, served, _) = get(&client, request(mesh.addr("trusting"), "slow")).await;
    assert_eq!((status, served.as_str()), (StatusCode::OK, "slow"));
    let in_flight = {
        let client = client.clone();
        let req = request(mesh.addr("trusting"), "slow");
        tokio::spawn(async move { get(&client, req).await })
    };
    // Once it waits on the slow backend (the proxy counted the second
    // request to it), the fs namer's file for `slow` moves to world-v1's
    // address.
    let metrics = format!("http://{}/admin/metrics.json", mesh.proxy.admin_addr());
    let since = Instant::now();
    loop {
        let rsp = client.get(metrics.parse().unwrap()).await.unwrap();
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let sent = json
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| {
                k.starts_with("linkerd_endpoint_requests_total")
                    && k.contains("client=\"/#/io.l5d.fs/slow\"")
            })
            .and_then(|(_, v)| v.as_f64());
        if sent == Some(2.0) {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the request never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let v1 = std::fs::read_to_string(mesh.dir.path().join("disco/world-v1")).unwrap();
    std::fs::write(mesh.dir.path().join("disco/slow"), v1).unwrap();
    let moved = Instant::now();
    loop {
        let (_, served, _) = get(&client, request(mesh.addr("trusting"), "slow")).await;
        if served == "world-v1" {
            break;
        }
        assert!(
            moved.elapsed() < Duration::from_secs(5),
            "the new endpoint never took over"
        );
    }
    let (status, served, _) = in_flight.await.unwrap();
    assert_eq!(
        (status, served.as_str()),
        (StatusCode::OK, "slow"),
        "the in-flight request failed"
    );
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}

/// GET on the admin server: (status, body).
async fn admin(mesh: &Mesh, path: &str) -> (StatusCode, String) {
    let client = http1();
    let uri = format!("http://{}{path}", mesh.proxy.admin_addr());
    let rsp = client.get(uri.parse().unwrap()).await.unwrap();
    let status = rsp.status();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_server_reports_what_the_proxy_routes() {
    let mesh = Mesh::start().await;
    let client = http1();
    let (status, _, _) = get(&client, request(mesh.addr("trusting"), "world")).await;
    assert_eq!(status, 200);

    let (status, body) = admin(&mesh, "/admin/ping").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "pong"));
    let (_, prom) = admin(&mesh, "/admin/metrics/prometheus").await;
    for series in [
        "linkerd_router_requests_total{router=\"trusting\"} 1",
        "linkerd_service_requests_total{router=\"trusting\",service=\"/svc/world\"} 1",
        "linkerd_router_responses_total{router=\"trusting\",classification=\"success\"} 1",
        "linkerd_endpoint_requests_total{router=\"trusting\",client=\"/#/io.l5d.fs/world-v1\"",
        "linkerd_router_request_duration_seconds_bucket{router=\"trusting\"",
    ] {
        assert!(prom.contains(series), "no {series} in\n{prom}");
    }
    let (_, json) = admin(&mesh, "/admin/metrics.json?q=linkerd_router_requests_total").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["linkerd_router_requests_total{router=\"trusting\"}"],
        1.0
    );

    let (status, delegate) = admin(&mesh, "/delegator.json?path=/svc/world&router=trusting").await;
    assert_eq!(status, 200, "{delegate}");
    assert!(delegate.contains("/#/io.l5d.fs/world-v1"), "{delegate}");
    let (status, _) = admin(&mesh, "/delegator.json?path=svc").await;
    assert_eq!(status, 400);

    let (_, clients) = admin(&mesh, "/client_state.json").await;
    let clients: serde_json::Value = serde_json::from_str(&clients).unwrap();
    let v1 = &clients["trusting"]["/#/io.l5d.fs/world-v1"];
    assert_eq!(v1["state"], "bound", "{clients}");
    assert_eq!(v1["addresses"].as_array().unwrap().len(), 1);

    let (_, interp) = admin(&mesh, "/interpreter_state.json").await;
    assert!(interp.contains("/svc/world"), "{interp}");
    let (status, one) = admin(
        &mesh,
        "/trusting/interpreter_state/io.l5d.mesh/internal.json",
    )
    .await;
    assert_eq!(status, 200);
    assert!(one.contains("/svc/world"), "{one}");
    let (_, routes) = admin(&mesh, "/routes.json").await;
    assert!(routes.contains("/#/io.l5d.fs/world-v1"), "{routes}");
    let (_, page) = admin(&mesh, "/").await;
    assert!(page.contains("/assets/proxy.js"), "the dashboard is served");
    let (status, script) = admin(&mesh, "/assets/overview.js").await;
    assert_eq!(status, 200, "the dashboard's modules are served");
    assert!(script.contains("/admin/stats.json"), "{script}");
    let (_, stats) = admin(&mesh, "/admin/stats.json").await;
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let world = &stats["routers"]["trusting"]["services"]["/svc/world"];
    assert!(world["requests"].as_f64() >= Some(1.0), "{stats}");
    assert_eq!(world["requests"], world["success"], "{stats}");
    let (status, _) = admin(&mesh, "/admin/recent_requests.json").await;
    assert_eq!(status, 404, "recent requests are off by default");
    mesh.proxy.shutdown(Duration::from_secs(1)).await;
    mesh.namerd.shutdown().await;
}
