//! The HTTP/1.1 connection pool: connections are reused (also after
//! bodiless responses), a connection the endpoint closes while idle costs
//! no request, and a response abandoned mid-body does not poison the pool.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::proxy::Proxy;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A keep-alive HTTP/1.1 backend that counts connections; `/empty` answers
/// 204, `/big` a 1 MiB body, `/huge` 64 MiB, anything else `ok`.
async fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let rsp = match req.uri().path() {
                        "/empty" => {
                            let mut r = Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = StatusCode::NO_CONTENT;
                            r
                        }
                        "/big" => Response::new(Full::new(Bytes::from(vec![b'x'; 1 << 20]))),
                        // More than loopback socket buffers hold, so a
                        // client that stops reading leaves it unfinished.
                        "/huge" => Response::new(Full::new(Bytes::from(vec![b'x'; 64 << 20]))),
                        _ => Response::new(Full::new(Bytes::from_static(b"ok"))),
                    };
                    Ok::<_, Infallible>(rsp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// A backend that answers one request per connection and closes it
/// without saying so (no `Connection: close`): the pooled connection is
/// dead by the time the next request wants it.
async fn closing_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    (addr, accepted)
}

async fn proxy_to(backend: SocketAddr) -> Proxy {
    let config = ProxyConfig::from_yaml(&format!(
        "admin: {{port: 0}}\nrouters: [{{protocol: http, servers: [{{port: 0}}], dtab: '/svc => /$/inet/127.0.0.1/{}'}}]",
        backend.port()
    ))
    .unwrap();
    Proxy::start(config).await.unwrap()
}

async fn get(proxy: &Proxy, path: &str) -> (StatusCode, Bytes) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::get(format!("http://{}{path}", proxy.server_addrs("http")[0]))
        .header("host", "web")
        .body(Empty::new())
        .unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("a response within 10 s")
        .unwrap();
    let status = rsp.status();
    (status, rsp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_share_one_connection() {
    let (backend, accepted) = counting_backend().await;
    let proxy = proxy_to(backend).await;
    for path in ["/", "/empty", "/big"] {
        for _ in 0..20 {
            let (status, _) = get(&proxy, path).await;
            assert!(status.is_success(), "{path}: {status}");
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection for 60 requests"
    );
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_while_idle_costs_no_request() {
    let (backend, accepted) = closing_backend().await;
    let proxy = proxy_to(backend).await;
    for i in 0..30 {
        let (status, body) = get(&proxy, "/").await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::OK, &b"ok"[..]),
            "request {i}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 30);
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_response_does_not_poison_the_pool() {
    let (backend, accepted) = counting_backend().await;
    let proxy = proxy_to(backend).await;
    // The client reads the head of a 64 MiB response and hangs up.
    let mut conn = tokio::net::TcpStream::connect(proxy.server_addrs("http")[0])
        .await
        .unwrap();
    conn.write_all(b"GET /huge HTTP/1.1\r\nHost: web\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = conn.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    drop(conn);
    for _ in 0..10 {
        let (status, body) = get(&proxy, "/").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    }
    // The abandoned connection was closed, not reused mid-body.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    proxy.shutdown(Duration::from_secs(1)).await;
}
