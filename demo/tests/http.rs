//! The HTTP backend over real sockets with hyper's client, over HTTP/1.1 and
//! HTTP/2 with prior knowledge on the same port; and `/delay` on paused time
//! through `HttpBackend::respond`, without sockets.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_demo::http::HttpBackend;
use tokio::net::TcpListener;
use tokio::time::Instant;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A backend on a loopback port, served until the test ends.
async fn start(backend: HttpBackend) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(backend.serve(listener, std::future::pending()));
    addr
}

fn backend(name: &str, body_bytes: Option<usize>) -> HttpBackend {
    HttpBackend::new(&name.parse().unwrap(), Duration::ZERO, body_bytes)
}

/// The two protocols the port speaks, each with its own client.
fn clients() -> [(Version, HttpClient); 2] {
    let h1 = Client::builder(TokioExecutor::new()).build_http();
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    [(Version::HTTP_11, h1), (Version::HTTP_2, h2)]
}

async fn get(client: &HttpClient, req: Request<Empty<Bytes>>) -> (Response<()>, Bytes) {
    let rsp = client.request(req).await.expect("the backend answers");
    let (head, body) = rsp.into_parts();
    let body = body.collect().await.expect("the body arrives").to_bytes();
    (Response::from_parts(head, ()), body)
}

fn header<'a>(rsp: &'a Response<()>, name: &str) -> Option<&'a str> {
    rsp.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn both_protocols_get_the_name_and_the_echoed_request() {
    let addr = start(backend("world-v1", None)).await;
    for (version, client) in clients() {
        let req = Request::get(format!("http://{addr}/greeting?lang=en"))
            .header("l5d-dst-service", "/svc/world")
            .header("l5d-dst-client", "/#/io.l5d.fs/world-v1")
            .header("l5d-ctx-dtab", "/svc=>/srv")
            .header("l5d-reqid", "abc123")
            .header("via", "1.1 linkerd, 1.1 linkerd")
            .header("x-not-echoed", "1")
            .body(Empty::new())
            .unwrap();
        let (rsp, body) = get(&client, req).await;
        let host = addr.to_string();
        assert_eq!(rsp.status(), StatusCode::OK, "{version:?}");
        assert_eq!(rsp.version(), version);
        assert_eq!(body, "world-v1\n", "{version:?}");
        let cases = [
            ("x-served-by", Some("world-v1")),
            ("x-echo-l5d-dst-service", Some("/svc/world")),
            ("x-echo-l5d-dst-client", Some("/#/io.l5d.fs/world-v1")),
            ("x-echo-l5d-ctx-dtab", Some("/svc=>/srv")),
            ("x-echo-l5d-reqid", Some("abc123")),
            ("x-echo-via", Some("1.1 linkerd, 1.1 linkerd")),
            // Absent: what a test sees when the proxy stripped l5d-dtab.
            ("x-echo-l5d-dtab", None),
            ("x-echo-x-not-echoed", None),
            ("x-echo-host", Some(host.as_str())),
            ("x-echo-path", Some("/greeting?lang=en")),
        ];
        for (name, want) in cases {
            assert_eq!(header(&rsp, name), want, "{version:?} {name}");
        }
    }
}

#[tokio::test]
async fn host_header_and_repeated_l5d_headers_are_echoed() {
    let addr = start(backend("web", None)).await;
    let [(_, h1), _] = clients();
    let req = Request::get(format!("http://{addr}/"))
        .header("host", "web.example")
        .header("l5d-dtab", "/a=>/b")
        .header("l5d-dtab", "/c=>/d")
        .body(Empty::new())
        .unwrap();
    let (rsp, _) = get(&h1, req).await;
    assert_eq!(header(&rsp, "x-echo-host"), Some("web.example"));
    let dtabs: Vec<_> = rsp.headers().get_all("x-echo-l5d-dtab").iter().collect();
    assert_eq!(dtabs, ["/a=>/b", "/c=>/d"]);
}

#[tokio::test]
async fn body_bytes_sets_the_exact_size() {
    let addr = start(backend("bench", Some(1024))).await;
    for (version, client) in clients() {
        let req = Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        let (_, body) = get(&client, req).await;
        assert_eq!(body.len(), 1024, "{version:?}");
        assert!(body.starts_with(b"bench"), "{version:?}");
    }
}

/// A POST body is read and dropped before the answer, request after request.
#[tokio::test]
async fn request_bodies_are_drained() {
    let addr = start(backend("web", None)).await;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..3 {
        let req = Request::post(format!("http://{addr}/upload"))
            .body(Full::new(Bytes::from(vec![b'x'; 100_000])))
            .unwrap();
        let rsp = client.request(req).await.unwrap();
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "web\n");
    }
}

#[tokio::test]
async fn delay_is_reported_and_applied_over_the_network() {
    let addr = start(backend("slow", None)).await;
    let [(_, h1), _] = clients();
    let set = |q: &str| {
        Request::post(format!("http://{addr}/delay{q}"))
            .body(Empty::new())
            .unwrap()
    };
    let (rsp, body) = get(&h1, set("?ms=nope")).await;
    assert_eq!(rsp.status(), StatusCode::BAD_REQUEST, "{body:?}");
    let (rsp, body) = get(&h1, set("?ms=150")).await;
    assert_eq!(
        (rsp.status(), body.as_ref()),
        (StatusCode::OK, &b"delay=150\n"[..])
    );
    assert_eq!(header(&rsp, "x-served-by"), Some("slow"));

    let started = std::time::Instant::now();
    let req = Request::get(format!("http://{addr}/"))
        .body(Empty::new())
        .unwrap();
    let (_, body) = get(&h1, req).await;
    assert_eq!(body, "slow\n");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// `/delay` changes the delay of later requests, and answers at once.
#[tokio::test(start_paused = true)]
async fn delay_changes_at_run_time() {
    let backend = HttpBackend::new(&"web".parse().unwrap(), Duration::from_millis(20), None);
    let req = |uri: &str| Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
    let cases = [
        // (request, body, time the answer takes)
        ("/", "web\n", 20),
        ("/delay?ms=1000", "delay=1000\n", 0),
        ("/", "web\n", 1000),
        ("/delay?a=b&ms=0", "delay=0\n", 0),
        ("/", "web\n", 0),
    ];
    for (uri, want, ms) in cases {
        let started = Instant::now();
        let rsp = backend.respond(req(uri)).await.unwrap();
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, want, "{uri}");
        let took = started.elapsed();
        if ms == 0 {
            // Paused time moves only when a timer is waited on.
            assert_eq!(took, Duration::ZERO, "{uri}");
        } else {
            assert!(took >= Duration::from_millis(ms), "{uri}: {took:?}");
        }
    }
    assert_eq!(backend.delay(), Duration::ZERO);
}
