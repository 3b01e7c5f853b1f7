//! TLS in one process, with the test PKI of `l5d-runtime`: client TLS
//! chosen by prefix of the bound id (captures in `commonName`, a client
//! certificate, HTTP/1.1 and h2), the caller's verified identity in
//! `l5d-client-id` (never the client's own), and a router's certificate
//! rotated under a steady request loop. The third-party clients (curl, openssl) are in
//! the end-to-end tests (`tests/tests/proxy/tls.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Extension;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use l5d_dtab::Dtab;
use l5d_runtime::Peer;
use l5d_runtime::listen::{Listener, ListenerLimits};
use l5d_runtime::serve::{self, HttpLimits};
use l5d_runtime::testing::TestPki;
use l5d_runtime::tls::{ALPN_HTTP, ClientTls, ServerTls};
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::proxy::Proxy;
use namerd::config::StorageConfig;
use namerd::store::Namespace;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Far beyond anything below, even on a busy machine.
const BOUND: Duration = Duration::from_secs(30);

/// A TLS backend for `names` that requires a client certificate from the
/// test CA and answers with the caller's identity and HTTP version.
async fn tls_backend(pki: &TestPki, names: &[&str]) -> (SocketAddr, watch::Sender<bool>) {
    let pair = pki.issue(&format!("backend-{}", names[0]), names);
    let mut cfg = pki.mtls(true);
    cfg.cert_path = pair.cert;
    cfg.key_path = pair.key;
    let tls = ServerTls::load(&cfg, ALPN_HTTP, "backend.tls").unwrap();
    let limits = ListenerLimits {
        max_connections: 100,
        max_connections_per_peer: 100,
        handshake_timeout: BOUND,
    };
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), "backend", Some(tls), limits)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let app = axum::Router::new().fallback(
        |Extension(peer): Extension<Peer>, req: Request<axum::body::Body>| async move {
            let names = peer.identity.map(|i| i.names.join(",")).unwrap_or_default();
            format!("identity={names} version={:?}", req.version())
        },
    );
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve::serve(listener, app, HttpLimits::default(), stopped));
    (addr, stop)
}

/// A plain HTTP/1.1 demo backend.
async fn plain_backend(name: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = l5d_demo::http::HttpBackend::new(&name.parse().unwrap(), Duration::ZERO, None);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(backend.serve(listener, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// One request to a plain router: (status, `l5d-err`, body).
async fn get(proxy: SocketAddr, host: &str, h2: bool) -> (StatusCode, String, String) {
    let io = TokioIo::new(TcpStream::connect(proxy).await.unwrap());
    let req = Request::get(format!("http://{host}/"))
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let call = async {
        if h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        }
    };
    let rsp = tokio::time::timeout(BOUND, call).await.unwrap().unwrap();
    let status = rsp.status();
    let err = rsp
        .headers()
        .get("l5d-err")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, err, String::from_utf8_lossy(&body).into_owned())
}

/// `io.l5d.static` client configs: the entry for `/#/io.l5d.fs/{service}`
/// dials TLS with `commonName: "{service}.example"` and a client
/// certificate, on HTTP/1.1 and h2; an id whose substituted name the
/// backend's certificate does not carry is refused (502, counted); an id
/// under no TLS entry is dialled in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_by_prefix_with_captures() {
    let pki = TestPki::new();
    let (tls_addr, _tls) = tls_backend(&pki, &["world.example"]).await;
    let (plain_addr, _plain) = plain_backend("plain").await;
    let dir = tempfile::tempdir().unwrap();
    for (name, addr) in [("world", tls_addr), ("other", tls_addr)] {
        let line = format!("{} {}\n", addr.ip(), addr.port());
        std::fs::write(dir.path().join(name), line).unwrap();
    }
    let dtab = format!(
        "/svc => /#/io.l5d.fs; /svc/plain => /$/inet/127.0.0.1/{}",
        plain_addr.port()
    );
    let namespaces = BTreeMap::from([(
        Namespace::new("internal").unwrap(),
        Dtab::read(&dtab).unwrap(),
    )]);
    let namerd = namerd::testing::start_with_namers_yaml(
        StorageConfig::InMemory { namespaces },
        &format!("[{{kind: io.l5d.fs, rootDir: {}}}]", dir.path().display()),
    )
    .await;
    let mesh_port = namerd.mesh_url().rsplit(':').next().unwrap().to_string();
    let client = format!(
        r#"
    kind: io.l5d.static
    configs:
    - prefix: "/#/io.l5d.fs/{{service}}"
      tls:
        commonName: "{{service}}.example"
        trustCerts: [{ca}]
        clientAuth: {{certPath: {cert}, keyPath: {key}}}
    - prefix: /#/io.l5d.fs/*
      connectTimeoutMs: 5000"#,
        ca = pki.ca_cert.display(),
        cert = pki.client.cert.display(),
        key = pki.client.key.display(),
    );
    let config = ProxyConfig::from_yaml(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: http
  servers: [{{port: 0}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{mesh_port}, root: /internal}}
  client: {client}
- protocol: h2
  label: h2
  servers: [{{port: 0}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{mesh_port}, root: /internal}}
  client: {client}
"#
    ))
    .unwrap();
    let proxy = Proxy::start(config).await.unwrap();
    let http = proxy.server_addrs("http")[0];
    let h2 = proxy.server_addrs("h2")[0];

    let (status, err, body) = get(http, "world", false).await;
    assert_eq!(status, StatusCode::OK, "{err}");
    assert!(
        body.contains("identity=client.test,spiffe://l5d.test/deployer"),
        "{body}"
    );
    assert!(body.contains("version=HTTP/1.1"), "{body}");
    let (status, err, body) = get(h2, "world", true).await;
    assert_eq!(status, StatusCode::OK, "{err}");
    assert!(body.contains("version=HTTP/2.0"), "{body}");

    // `other.example` is not in the backend's certificate.
    let (status, err, _) = get(http, "other", false).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // `l5d-err` is form-encoded, as Linkerd's.
    assert!(err.contains("TLS+handshake+failed"), "{err}");
    assert!(
        err.contains("not+valid+for+name+%22other.example%22"),
        "{err}"
    );

    let (status, err, body) = get(http, "plain", false).await;
    assert_eq!(status, StatusCode::OK, "{err}");
    assert!(!body.contains("identity="), "a plaintext backend: {body}");

    let metrics = admin(proxy.admin_addr(), "/admin/metrics/prometheus").await;
    let failures = "linkerd_client_tls_failures_total{router=\"http\",client=\"/#/io.l5d.fs/other\",reason=\"name_mismatch\"} 1";
    assert!(metrics.contains(failures), "no {failures} in\n{metrics}");
    proxy.shutdown(Duration::from_secs(1)).await;
    namerd.shutdown().await;
}

/// One request over TLS (presenting a client certificate if `client` has
/// one) to an HTTP/1.1 or h2 router, with a forged `l5d-client-id`: the
/// `l5d-client-id` values the backend received (the demo echoes them).
async fn client_ids(client: &ClientTls, proxy: SocketAddr, h2: bool) -> Vec<String> {
    let tcp = TcpStream::connect(proxy).await.unwrap();
    let name = client.server_name("localhost").unwrap();
    let tls = client.connector().connect(name, tcp).await.unwrap();
    let io = TokioIo::new(tls);
    let req = Request::get("https://world/")
        .header("l5d-client-id", "spiffe://l5d.test/forged")
        .header("l5d-client-id", "another")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let call = async {
        if h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let (mut parts, body) = req.into_parts();
            parts.uri = "/".parse().unwrap();
            parts.headers.insert("host", "world".parse().unwrap());
            send.send_request(Request::from_parts(parts, body)).await
        }
    };
    let rsp = tokio::time::timeout(BOUND, call).await.unwrap().unwrap();
    assert_eq!(rsp.status(), StatusCode::OK, "{:?}", rsp.headers());
    rsp.headers()
        .get_all("x-echo-l5d-client-id")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// On a TLS router that verifies client certificates, the application
/// gets the caller's identity (its first URI SAN, else its first DNS SAN)
/// in `l5d-client-id`, over HTTP/1.1 and h2; a value the client sent is
/// always removed: without a certificate, and on a plaintext router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_identity_reaches_the_application_and_cannot_be_forged() {
    let pki = TestPki::new();
    let (backend, _stop) = plain_backend("world").await;
    let tls = |require: bool| {
        format!(
            "{{certPath: {}, keyPath: {}, caCertPath: {}, requireClientAuth: {require}}}",
            pki.server.cert.display(),
            pki.server.key.display(),
            pki.ca_cert.display(),
        )
    };
    let dtab = format!("/svc/world => /$/inet/127.0.0.1/{}", backend.port());
    let config = ProxyConfig::from_yaml(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: https
  servers: [{{port: 0, tls: {optional}}}]
  dtab: {dtab}
- protocol: h2
  label: h2s
  servers: [{{port: 0, tls: {required}}}]
  dtab: {dtab}
- protocol: http
  label: plain
  servers: [{{port: 0}}]
  dtab: {dtab}
"#,
        optional = tls(false),
        required = tls(true),
    ))
    .unwrap();
    let proxy = Proxy::start(config).await.unwrap();
    let https = proxy.server_addrs("https")[0];
    let h2s = proxy.server_addrs("h2s")[0];
    let plain = proxy.server_addrs("plain")[0];
    let with_cert = |alpn: &[&[u8]]| ClientTls::new(&pki.client_tls_with(&pki.client), alpn);
    let spiffe = vec!["spiffe://l5d.test/deployer".to_string()];

    let http1 = with_cert(&[b"http/1.1"]).unwrap();
    assert_eq!(client_ids(&http1, https, false).await, spiffe);
    let h2 = with_cert(&[b"h2"]).unwrap();
    assert_eq!(client_ids(&h2, h2s, true).await, spiffe);
    // A certificate with DNS names only: the first of them.
    let dns_only = pki.issue("dns-only", &["first.test", "second.test"]);
    let client = ClientTls::new(&pki.client_tls_with(&dns_only), &[b"http/1.1"]).unwrap();
    assert_eq!(client_ids(&client, https, false).await, ["first.test"]);
    // No certificate on a server where it is optional: nothing.
    let anonymous = ClientTls::new(&pki.client_tls(), &[b"http/1.1"]).unwrap();
    assert!(client_ids(&anonymous, https, false).await.is_empty());

    // A plaintext router: the forged values are removed too.
    let io = TokioIo::new(TcpStream::connect(plain).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "world")
        .header("l5d-client-id", "spiffe://l5d.test/forged")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let rsp = tokio::time::timeout(BOUND, send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rsp.status(), StatusCode::OK);
    assert!(rsp.headers().get("x-echo-l5d-client-id").is_none());
    assert!(rsp.headers().get("x-echo-l5d-dst-service").is_some());
    proxy.shutdown(Duration::from_secs(1)).await;
}

async fn admin(addr: SocketAddr, path: &str) -> String {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "admin")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let rsp = send.send_request(req).await.unwrap();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Requests over TLS through a router: on one kept-alive connection, and
/// on a new connection each. Counts answers and failures, and notes the
/// certificate each new connection was served.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

async fn tls_get(
    client: &ClientTls,
    proxy: SocketAddr,
) -> Option<(
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    Vec<u8>,
)> {
    let tcp = TcpStream::connect(proxy).await.ok()?;
    let tls = client
        .connector()
        .connect(client.server_name("localhost").ok()?, tcp)
        .await
        .ok()?;
    let served = tls.get_ref().1.peer_certificates()?[0].to_vec();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some((send, served))
}

async fn send(send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) -> bool {
    let req = Request::get("/")
        .header("host", "world")
        .body(Empty::<Bytes>::new())
        .unwrap();
    match tokio::time::timeout(BOUND, send.send_request(req)).await {
        Ok(Ok(rsp)) => {
            let ok = rsp.status() == StatusCode::OK;
            ok && rsp.into_body().collect().await.is_ok()
        }
        _ => false,
    }
}

/// A router's certificate is rotated (new files under the same paths, as
/// a Kubernetes Secret) while requests flow on a kept-alive connection and
/// on new connections: new connections get the new certificate within a
/// few polls, the old connection keeps working, and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_drops_no_request() {
    let pki = TestPki::new();
    let (backend, _stop) = plain_backend("world").await;
    let config = ProxyConfig::from_yaml(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  servers:
  - port: 0
    tls: {{certPath: {cert}, keyPath: {key}, reloadIntervalSecs: 1}}
  dtab: /svc/world => /$/inet/127.0.0.1/{port}
"#,
        cert = pki.server.cert.display(),
        key = pki.server.key.display(),
        port = backend.port(),
    ))
    .unwrap();
    let proxy = Proxy::start(config).await.unwrap();
    let addr = proxy.server_addrs("http")[0];
    let client = ClientTls::new(&pki.client_tls(), &[b"http/1.1"]).unwrap();
    let first = std::fs::read(&pki.server.cert).unwrap();

    let load = Arc::new(Load::default());
    let (mut kept, old_cert) = tls_get(&client, addr).await.expect("a TLS connection");
    let kept_alive = {
        let load = load.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !load.stop.load(Ordering::Relaxed) {
                let counter = if send(&mut kept).await {
                    &load.ok
                } else {
                    &load.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            n
        })
    };
    let next = pki.issue("next-server", &["localhost", "127.0.0.1"]);
    let mut rotated_at = None;
    let mut new_conns = 0u64;
    for i in 0..3000u64 {
        if i == 20 {
            // Rotate as Kubernetes does: new contents under the same paths.
            std::fs::copy(&next.cert, &pki.server.cert).unwrap();
            std::fs::copy(&next.key, &pki.server.key).unwrap();
        }
        let result = match tls_get(&client, addr).await {
            Some((mut conn, served)) => {
                if served != old_cert && rotated_at.is_none() {
                    rotated_at = Some(i);
                }
                send(&mut conn).await
            }
            None => false,
        };
        let counter = if result { &load.ok } else { &load.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        new_conns += 1;
        // Twenty more requests after the new certificate was served.
        if rotated_at.is_some_and(|at| i >= at + 20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    let on_kept = kept_alive.await.unwrap();
    let rotated_at = rotated_at.expect("the new certificate was served within 3,000 connections");
    assert_ne!(std::fs::read(&pki.server.cert).unwrap(), first);
    let (ok, failed) = (
        load.ok.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "rotation: {ok} requests answered, {failed} failed; {new_conns} new connections \
         (the new certificate from the {rotated_at}th), {on_kept} on the kept-alive connection"
    );
    assert_eq!(failed, 0, "requests failed during the rotation");
    assert!(on_kept > 0 && ok == on_kept + new_conns);
    proxy.shutdown(Duration::from_secs(1)).await;
}
