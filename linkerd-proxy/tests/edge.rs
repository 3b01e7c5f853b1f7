//! The untrusting edge and the ingress router in one process: a real
//! namerd (the fs namer; a dtab stands in for namerd's Ingress namer,
//! mapping `/ingress/<host>` to a backend), a backend that answers with
//! `l5d-*` headers and trailers of its own, and the proxy with the
//! `io.l5d.ingress` identifier on an untrusting (`clearContext: true`) and
//! a trusting server, over HTTP/1.1 and HTTP/2.
//!
//! - A name no rule matches is a 404 with `l5d-err`, also at the edge.
//! - At the edge no `l5d-*` header leaves in a response, head or
//!   trailers, but the proxy's own `l5d-err`; on trusting servers they
//!   all pass (a downstream proxy reads them).

#[allow(
    dead_code,
    reason = "the dtab writes and waits are the interpreter tests'"
)]
#[path = "support/mesh_namerd.rs"]
mod mesh_namerd;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::proxy::Proxy;
use mesh_namerd::CALL_LIMIT;
use tokio::net::TcpListener;

/// The dtab of the `ingress` namespace: what namerd's Ingress namer would
/// answer for `shop.example`, and nothing for any other host.
const DTAB: &str = "/ingress/shop.example => /#/io.l5d.fs/noisy";

/// A backend that puts `l5d-*` headers in its answers' heads and
/// trailers (what another proxy or a careless application might), beside
/// headers of its own that must pass.
async fn noisy_backend(h2: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(|_req| async {
                let mut trailers = HeaderMap::new();
                trailers.insert("l5d-backend-trailer", "secret".parse().unwrap());
                trailers.insert("x-trailer", "kept".parse().unwrap());
                let body = Full::new(Bytes::from_static(b"noisy\n"))
                    .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
                let rsp = Response::builder()
                    .header("l5d-backend-secret", "internal")
                    .header("l5d-success-class", "1.0")
                    .header("x-served-by", "noisy")
                    .body(body)
                    .unwrap();
                Ok::<_, Infallible>(rsp)
            });
            let io = TokioIo::new(stream);
            if h2 {
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service);
                tokio::spawn(conn);
            } else {
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
                tokio::spawn(conn);
            }
        }
    });
    addr
}

/// namerd, the backends and a proxy with an HTTP/1.1 and an h2 ingress
/// router, each with an untrusting (`edge`) and a trusting server.
struct Edge {
    _dir: tempfile::TempDir,
    namerd: namerd::testing::TestNamerd,
    proxy: Proxy,
}

impl Edge {
    async fn start(h2: bool) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let disco = dir.path().join("disco");
        std::fs::create_dir(&disco).unwrap();
        let backend = noisy_backend(h2).await;
        std::fs::write(
            disco.join("noisy"),
            format!("{} {}\n", backend.ip(), backend.port()),
        )
        .unwrap();
        let namerd = mesh_namerd::start("ingress", DTAB, &disco).await;
        let port = namerd.mesh_url().rsplit(':').next().unwrap().to_string();
        let mesh = format!("127.0.0.1/{port}");
        let protocol = if h2 { "h2" } else { "http" };
        let config = ProxyConfig::from_yaml(&format!(
            r#"
admin: {{port: 0}}
routers:
- protocol: {protocol}
  label: edge
  dstPrefix: /ingress
  identifier: {{kind: io.l5d.ingress}}
  servers: [{{port: 0, clearContext: true}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/{mesh}, root: /ingress}}
- protocol: {protocol}
  label: trusting
  dstPrefix: /ingress
  identifier: {{kind: io.l5d.ingress}}
  servers: [{{port: 0}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/{mesh}, root: /ingress}}
"#
        ))
        .unwrap();
        let proxy = Proxy::start(config).await.unwrap();
        Edge {
            _dir: dir,
            namerd,
            proxy,
        }
    }

    /// GET `http://<host>/cart` from the server of router `label`, over
    /// HTTP/2 (prior knowledge) or HTTP/1.1 with `TE: trailers`; the
    /// status, head, body and trailers.
    async fn get(&self, label: &str, host: &str, h2: bool) -> Answer {
        let addr = self.proxy.server_addrs(label)[0];
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = TokioIo::new(stream);
        let rsp = if h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = Request::get(format!("http://{host}/cart"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            tokio::time::timeout(CALL_LIMIT, send.send_request(req)).await
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let req = Request::get("/cart")
                .header("host", host)
                .header("te", "trailers")
                .body(Empty::<Bytes>::new())
                .unwrap();
            tokio::time::timeout(CALL_LIMIT, send.send_request(req)).await
        };
        let rsp = rsp.expect("an answer in time").expect("an answer");
        let (head, body) = rsp.into_parts();
        let collected = body.collect().await.expect("the body");
        Answer {
            status: head.status,
            headers: head.headers,
            trailers: collected.trailers().cloned().unwrap_or_default(),
            body: collected.to_bytes(),
        }
    }

    async fn stop(self) {
        self.proxy.shutdown(Duration::from_secs(1)).await;
        self.namerd.shutdown().await;
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    trailers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The `l5d-*` names in the head and the trailers.
    fn l5d(&self) -> Vec<&str> {
        self.headers
            .keys()
            .chain(self.trailers.keys())
            .map(|k| k.as_str())
            .filter(|k| k.starts_with("l5d-"))
            .collect()
    }
}

/// Over HTTP/1.1 and HTTP/2: the backend's answer through the edge loses
/// every `l5d-*` header (head and trailers, h2; the head, HTTP/1.1, whose
/// proxy client asks for no trailers) and keeps the rest; through the
/// trusting server they pass, with the proxy's own `l5d-success-class`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_lets_no_l5d_header_out_and_trusting_servers_pass_them() {
    for h2 in [false, true] {
        let edge = Edge::start(h2).await;
        let answer = edge.get("edge", "Shop.Example:8443", h2).await;
        assert_eq!(answer.status, StatusCode::OK, "h2 {h2}: {answer:?}");
        assert_eq!(&answer.body[..], b"noisy\n");
        assert_eq!(answer.headers["x-served-by"], "noisy");
        assert_eq!(answer.l5d(), Vec::<&str>::new(), "h2 {h2}: {answer:?}");
        if h2 {
            assert_eq!(answer.trailers["x-trailer"], "kept", "{answer:?}");
        }

        let answer = edge.get("trusting", "shop.example", h2).await;
        assert_eq!(answer.status, StatusCode::OK, "h2 {h2}: {answer:?}");
        assert_eq!(answer.headers["l5d-backend-secret"], "internal");
        assert!(answer.headers.contains_key("l5d-success-class"));
        if h2 {
            assert_eq!(
                answer.trailers["l5d-backend-trailer"], "secret",
                "{answer:?}"
            );
        }
        edge.stop().await;
    }
}

/// A host no rule matches: 404 with Linkerd's error header, the only
/// `l5d-*` header at the edge; the trusting server adds its class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ingress_rule_is_a_404_with_l5d_err_at_the_edge() {
    for h2 in [false, true] {
        let edge = Edge::start(h2).await;
        let answer = edge.get("edge", "elsewhere.example", h2).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "h2 {h2}: {answer:?}");
        let err = answer.headers["l5d-err"].to_str().unwrap();
        assert!(err.starts_with("No+Ingress+rule+matches"), "{err}");
        assert!(err.contains("elsewhere.example"), "{err}");
        assert_eq!(answer.l5d(), ["l5d-err"], "h2 {h2}: {answer:?}");

        let answer = edge.get("trusting", "elsewhere.example", h2).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "h2 {h2}: {answer:?}");
        assert!(answer.headers.contains_key("l5d-err"));
        assert_eq!(answer.headers["l5d-success-class"], "0.0");
        // Not retryable: another attempt meets the same rules.
        assert!(!answer.headers.contains_key("l5d-retryable"));
        edge.stop().await;
    }
}
