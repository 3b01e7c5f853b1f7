//! The serving function over real loopback sockets: both protocols, peer
//! information, and every timeout, with short timeouts and generous upper
//! bounds (never a sleep that must be long enough).

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::Peer;
use crate::listen::{Listener, ListenerLimits};
use crate::testing::TestPki;
use crate::tls::{ALPN_HTTP, ClientTls, ServerTls};

/// Far beyond any of the timeouts below, even on a busy machine.
const BOUND: Duration = Duration::from_secs(30);

/// Set when the `/drain` handler has begun.
static DRAIN_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn limits() -> HttpLimits {
    HttpLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(800),
        body_read_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    }
}

fn app() -> Router {
    Router::new()
        .route(
            "/peer",
            get(|peer: axum::Extension<Peer>, ConnectInfo(addr): ConnectInfo<SocketAddr>| async move {
                assert_eq!(peer.addr, addr);
                let names = peer.identity.as_ref().map(|i| i.names.join(",")).unwrap_or_default();
                format!("{} {names}", peer.addr.ip())
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "done"
            }),
        )
        .route(
            "/drain",
            get(|| async {
                DRAIN_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        )
        .route(
            "/echo",
            post(|body: axum::body::Body| async move {
                match body.collect().await {
                    Ok(b) => (http::StatusCode::OK, b.to_bytes()),
                    Err(_) => (http::StatusCode::REQUEST_TIMEOUT, Bytes::from_static(b"stalled")),
                }
            }),
        )
}

async fn start(
    tls: Option<ServerTls>,
) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let listener = Listener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "test",
        tls,
        ListenerLimits {
            max_connections: 100,
            max_connections_per_peer: 100,
            handshake_timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(serve(listener, app(), limits(), stopped));
    (addr, stop, server)
}

/// Reads until the server closes (or errors); the text read.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut out))
        .await
        .expect("the server closes within the bound");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn both_protocols_with_the_peer_in_extensions() {
    let (addr, _stop, _server) = start(None).await;
    let mut h1 = TcpStream::connect(addr).await.unwrap();
    h1.write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let rsp = read_to_close(&mut h1).await;
    assert!(
        rsp.starts_with("HTTP/1.1 200") && rsp.ends_with("127.0.0.1 "),
        "{rsp}"
    );

    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://x/peer")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let rsp = h2.send_request(req).await.unwrap();
    assert_eq!(rsp.version(), Version::HTTP_2);
    assert_eq!(
        rsp.into_body().collect().await.unwrap().to_bytes(),
        "127.0.0.1 "
    );
}

#[tokio::test]
async fn tls_with_alpn_and_the_client_identity() {
    let pki = TestPki::new();
    let tls = ServerTls::load(&pki.mtls(false), ALPN_HTTP, "tls").unwrap();
    let (addr, _stop, _server) = start(Some(tls)).await;
    for (alpn, version) in [
        (&b"h2"[..], Version::HTTP_2),
        (b"http/1.1", Version::HTTP_11),
    ] {
        let client = ClientTls::new(&pki.client_tls_with(&pki.client), &[alpn]).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let stream = client
            .connector()
            .connect(client.server_name("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let io = TokioIo::new(stream);
        let req = Request::get("http://x/peer")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let rsp = if version == Version::HTTP_2 {
            let (mut c, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.send_request(req).await.unwrap()
        } else {
            let (mut c, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            c.send_request(req).await.unwrap()
        };
        assert_eq!(rsp.version(), version);
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "127.0.0.1 client.test,spiffe://l5d.test/deployer");
    }
}

/// Slowloris: a head that trickles in is cut off at the header timeout
/// counted from accept, however steadily the bytes come.
#[tokio::test]
async fn a_trickling_head_is_cut_off_at_the_header_timeout() {
    let (addr, _stop, _server) = start(None).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /peer HTTP/1.1\r\n").await.unwrap();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"x-a: b\r\n").await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(BOUND, trickle).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < BOUND,
        "{took:?}"
    );
}

/// A keep-alive connection is closed after the idle timeout; one whose
/// next head trickles is cut at the header timeout from its first byte.
#[tokio::test]
async fn idle_connections_close_and_later_heads_are_timed_too() {
    let (addr, _stop, _server) = start(None).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle = Instant::now();
    let rest = read_to_close(&mut stream).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(
        idle.elapsed() >= Duration::from_millis(800),
        "{:?}",
        idle.elapsed()
    );

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let _ = stream.read(&mut buf).await.unwrap();
    stream.write_all(b"GET /peer HTTP/1.1\r\n").await.unwrap();
    let began = Instant::now();
    let rest = read_to_close(&mut stream).await;
    assert!(rest.is_empty(), "{rest}");
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(500) && took < Duration::from_millis(800) + BOUND);
}

/// A request in flight longer than the idle timeout is not cut off.
#[tokio::test]
async fn a_slow_answer_is_not_idleness() {
    let (addr, _stop, _server) = start(None).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let rsp = read_to_close(&mut stream).await;
    assert!(
        rsp.starts_with("HTTP/1.1 200") && rsp.ends_with("done"),
        "{rsp}"
    );
}

/// A body that stops sending fails the read at the body timeout.
#[tokio::test]
async fn a_stalled_body_is_cut_off() {
    let (addr, _stop, _server) = start(None).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let started = Instant::now();
    let rsp = read_to_close(&mut stream).await;
    assert!(rsp.starts_with("HTTP/1.1 408"), "{rsp}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Shutdown lets a request in flight finish, then the server returns.
#[tokio::test]
async fn graceful_shutdown_finishes_what_is_in_flight() {
    let (addr, stop, server) = start(None).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /drain HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Polled every 10 ms for up to the bound.
    let began = Instant::now();
    while !DRAIN_STARTED.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(began.elapsed() < BOUND, "the request never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send_replace(true);
    let rsp = read_to_close(&mut stream).await;
    assert!(rsp.ends_with("done"), "{rsp}");
    tokio::time::timeout(BOUND, server).await.unwrap().unwrap();
}
