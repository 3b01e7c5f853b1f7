//! An ambiguous authority (issue 12: two `Host` headers were forwarded and
//! routing used the first): RFC 9112 3.2 requires 400 for more than one
//! `Host`; on HTTP/2 a `Host` naming another authority than `:authority`
//! is malformed (RFC 9113 8.3.1).

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::setup::Setup;

/// Sends `head` on a new connection; the whole answer (the proxy closes
/// after a 400 or on `Connection: close`).
async fn raw(addr: &str, head: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_string(&mut out),
    )
    .await
    .expect("an answer within 10 s")
    .unwrap();
    out
}

/// One HTTP/2 request to `addr` for `uri` with extra `Host` headers: the
/// status and `l5d-err`.
async fn h2(addr: &str, uri: &str, hosts: &[&str]) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
    for host in hosts {
        req.headers_mut()
            .append(http::header::HOST, host.parse().unwrap());
    }
    let rsp = send.send_request(req).await.unwrap();
    let err = rsp
        .headers()
        .get("l5d-err")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (rsp.status().as_u16(), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_host_is_refused() {
    let s = Setup::start().await;
    let http = s.proxy.router("http");
    let ok = raw(
        http,
        "GET / HTTP/1.1\r\nHost: world\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    for hosts in ["Host: world\r\nHost: evil", "Host: world\r\nHost: world"] {
        let rsp = raw(
            http,
            &format!("GET / HTTP/1.1\r\n{hosts}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(rsp.starts_with("HTTP/1.1 400"), "{hosts:?}: {rsp}");
        assert!(
            rsp.contains("l5d-err: Bad+Host%3A+more+than+one+Host+header"),
            "{rsp}"
        );
    }
    // Absolute-form: the target names the service and the Host header the
    // backend sees (l5d-demo echoes it).
    let rsp = raw(
        http,
        "GET http://world/ HTTP/1.1\r\nHost: evil\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(rsp.starts_with("HTTP/1.1 200"), "{rsp}");
    assert!(rsp.contains("x-echo-host: world\r\n"), "{rsp}");

    let h2_router = s.proxy.router("h2");
    assert_eq!(h2(h2_router, "http://world/", &[]).await.0, 200);
    assert_eq!(h2(h2_router, "http://world/", &["WORLD"]).await.0, 200);
    for hosts in [&["evil"][..], &["world", "world"]] {
        let (code, err) = h2(h2_router, "http://world/", hosts).await;
        assert_eq!(code, 400, "{hosts:?}");
        assert!(err.starts_with("Bad+Host"), "{hosts:?}: {err}");
    }
    s.stop().await;
}

/// The header count limit (`maxHeaders`, 100 by default): a request with
/// 100 headers is routed, one with 101 gets the proxy's own 431 and
/// reaches nothing. (A routed answer carries `l5d-success-class`; with the
/// headers the proxy adds, 100 are more than the backend's own limit, so
/// its answer to that one may be a 431 too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_headers_than_the_limit_get_431() {
    let s = Setup::start().await;
    let http = s.proxy.router("http");
    let request = |headers: usize| {
        // Host and Connection are two of them.
        let extra: String = (2..headers).map(|i| format!("x-h{i}: {i}\r\n")).collect();
        format!("GET / HTTP/1.1\r\nHost: world\r\n{extra}Connection: close\r\n\r\n")
    };
    let few = raw(http, &request(60)).await;
    assert!(few.starts_with("HTTP/1.1 200"), "{few}");
    let at_limit = raw(http, &request(100)).await;
    assert!(at_limit.contains("l5d-success-class"), "{at_limit}");
    let over = raw(http, &request(101)).await;
    assert!(over.starts_with("HTTP/1.1 431"), "{over}");
    assert!(!over.contains("l5d-success-class"), "{over}");
    s.stop().await;
}
