//! The HTTP backend's run-time faults (`/fault`) over real sockets, with
//! hyper's clients over HTTP/1.1 and HTTP/2 and a raw TCP stream where the
//! wire itself is the point: exact counts for a fraction, narrowing by
//! method and path, resets before and after the head, gRPC statuses in
//! trailers and in headers, bad parameters.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_demo::http::HttpBackend;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Demo {
    addr: SocketAddr,
    h1: HttpClient,
    h2: HttpClient,
}

impl Demo {
    /// A backend named `web` on a loopback port, served until the test ends.
    async fn start() -> Demo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backend = HttpBackend::new(&"web".parse().unwrap(), Duration::ZERO, None);
        tokio::spawn(backend.serve(listener, std::future::pending()));
        Demo {
            addr,
            h1: Client::builder(TokioExecutor::new()).build_http(),
            h2: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        }
    }

    fn request(&self, method: Method, path: &str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .body(Full::default())
            .unwrap()
    }

    /// Sets a fault over HTTP/1.1; the answer's status and line.
    async fn fault(&self, query: &str) -> (StatusCode, String) {
        let (rsp, body) = self
            .call(&self.h1, Method::POST, &format!("/fault{query}"))
            .await;
        (rsp.status(), String::from_utf8(body.to_vec()).unwrap())
    }

    async fn call(&self, client: &HttpClient, method: Method, path: &str) -> (Response<()>, Bytes) {
        let rsp = client.request(self.request(method, path)).await.unwrap();
        let (head, body) = rsp.into_parts();
        let body = body.collect().await.expect("the whole body").to_bytes();
        (Response::from_parts(head, ()), body)
    }
}

fn header<'a, T>(rsp: &'a Response<T>, name: &str) -> Option<&'a str> {
    rsp.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_status_fraction_hits_exactly_the_error_diffusion_positions() {
    let demo = Demo::start().await;
    let set = demo.fault("?status=503&fraction=0.2").await;
    assert_eq!(
        set,
        (StatusCode::OK, "fault status=503 fraction=0.2\n".into())
    );

    let mut hit = Vec::new();
    for i in 0..100 {
        // Both protocols share the count; control endpoints do not count.
        let client = if i % 2 == 0 { &demo.h1 } else { &demo.h2 };
        let (rsp, body) = demo.call(client, Method::GET, "/").await;
        match rsp.status() {
            StatusCode::OK => assert_eq!(body, "web\n"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(header(&rsp, "x-fault"), Some("status"));
                assert_eq!(body, "l5d-demo web: fault status=503\n");
                hit.push(i);
            }
            other => panic!("request {i}: {other}"),
        }
        let (rsp, _) = demo.call(&demo.h1, Method::GET, "/delay?ms=0").await;
        assert_eq!(rsp.status(), StatusCode::OK);
    }
    let want: Vec<u32> = (0..20).map(|k| 5 * k + 4).collect();
    assert_eq!(hit, want);

    let cleared = demo.fault("?clear").await;
    assert_eq!(cleared, (StatusCode::OK, "fault none\n".into()));
    let (rsp, _) = demo.call(&demo.h1, Method::GET, "/").await;
    assert_eq!(rsp.status(), StatusCode::OK);
}

#[tokio::test]
async fn method_and_path_narrow_the_requests_a_fault_hits() {
    let demo = Demo::start().await;
    demo.fault("?status=500&method=POST&path=/api").await;
    let cases = [
        (Method::GET, "/api", StatusCode::OK),
        (Method::POST, "/other", StatusCode::OK),
        (Method::POST, "/api/x?y", StatusCode::INTERNAL_SERVER_ERROR),
        (Method::POST, "/api", StatusCode::INTERNAL_SERVER_ERROR),
        (Method::PUT, "/api/x", StatusCode::OK),
    ];
    for (method, path, want) in cases {
        let (rsp, _) = demo.call(&demo.h1, method.clone(), path).await;
        assert_eq!(rsp.status(), want, "{method} {path}");
    }
}

/// HTTP/1.1: not a byte of response, then TCP RST (SO_LINGER 0). HTTP/2:
/// RST_STREAM with INTERNAL_ERROR, and the connection goes on serving.
#[tokio::test]
async fn reset_before_head_answers_nothing() {
    let demo = Demo::start().await;
    demo.fault("?reset=before_head&path=/gone").await;

    let mut conn = TcpStream::connect(demo.addr).await.unwrap();
    conn.write_all(b"GET /gone HTTP/1.1\r\nhost: web\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got))
        .await
        .expect("the backend closes the connection");
    let err = read.expect_err("closed with RST, not FIN");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(got, b"");

    let err = demo
        .h2
        .request(demo.request(Method::GET, "/gone"))
        .await
        .expect_err("the stream is reset");
    assert!(format!("{err:?}").contains("INTERNAL_ERROR"), "{err:?}");
    let (rsp, body) = demo.call(&demo.h2, Method::GET, "/kept").await;
    assert_eq!(
        (rsp.status(), body.as_ref()),
        (StatusCode::OK, &b"web\n"[..])
    );
}

/// The head and the first bytes arrive; then the HTTP/1.1 connection
/// closes before the last chunk, or the HTTP/2 stream is reset.
#[tokio::test]
async fn reset_after_head_truncates_the_body() {
    let demo = Demo::start().await;
    demo.fault("?reset=after_head").await;
    for (version, client) in [("HTTP/1.1", &demo.h1), ("HTTP/2", &demo.h2)] {
        let rsp: Response<Incoming> = client
            .request(demo.request(Method::GET, "/"))
            .await
            .expect("the head arrives");
        assert_eq!(rsp.status(), StatusCode::OK, "{version}");
        assert_eq!(
            header(&rsp, "x-fault"),
            Some("reset_after_head"),
            "{version}"
        );
        let mut body = rsp.into_body();
        let first = body.frame().await.expect("a frame");
        if version == "HTTP/1.1" {
            // Written and flushed before the body fails: always there.
            let data = first.unwrap().into_data().unwrap();
            assert!(
                data.starts_with(b"l5d-demo web: fault reset=after_head"),
                "{data:?}"
            );
            let rest = body.collect().await;
            assert!(rest.is_err(), "{version}: the body ends in an error");
        } else {
            // The bytes normally arrive first, but a reset may overtake
            // them; either way the body fails.
            let failed = match first {
                Err(_) => true,
                Ok(_) => body.collect().await.is_err(),
            };
            assert!(failed, "{version}: the body ends in an error");
        }
    }
}

#[tokio::test]
async fn a_delay_fault_delays_the_hit_requests() {
    let demo = Demo::start().await;
    demo.fault("?delay_ms=300&fraction=0.5").await;
    for i in 0..2 {
        let started = std::time::Instant::now();
        let (rsp, body) = demo.call(&demo.h1, Method::GET, "/").await;
        assert_eq!(body, "web\n");
        let delayed = header(&rsp, "x-fault") == Some("delay");
        assert_eq!(delayed, i == 1);
        if delayed {
            assert!(started.elapsed() >= Duration::from_millis(300));
        }
    }
}

/// A gRPC request (`content-type: application/grpc`) over HTTP/2, as a
/// gRPC client would send it: an empty message.
fn grpc_request(demo: &Demo) -> Request<Full<Bytes>> {
    Request::post(format!("http://{}/any.Service/Method", demo.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0; 5])))
        .unwrap()
}

/// (head, body, trailers) of a gRPC call.
async fn grpc_call(demo: &Demo) -> (Response<()>, Bytes, Option<hyper::HeaderMap>) {
    let rsp = demo.h2.request(grpc_request(demo)).await.unwrap();
    let (head, body) = rsp.into_parts();
    let body = body.collect().await.unwrap();
    let trailers = body.trailers().cloned();
    (Response::from_parts(head, ()), body.to_bytes(), trailers)
}

#[tokio::test]
async fn grpc_requests_get_grpc_answers_and_faults_in_trailers_or_headers() {
    let demo = Demo::start().await;
    let (rsp, body, trailers) = grpc_call(&demo).await;
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(header(&rsp, "content-type"), Some("application/grpc"));
    assert_eq!(header(&rsp, "grpc-status"), None);
    assert_eq!(body, &[0u8; 5][..], "one empty message");
    let trailers = trailers.expect("trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");

    let set = demo.fault("?grpc_status=14").await;
    assert_eq!(set.1, "fault grpc_status=14 grpc_in=trailers fraction=1\n");
    // Not gRPC: the fault does not apply.
    let (rsp, _) = demo.call(&demo.h2, Method::GET, "/").await;
    assert_eq!(rsp.status(), StatusCode::OK);
    let (rsp, body, trailers) = grpc_call(&demo).await;
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(header(&rsp, "x-fault"), Some("grpc_status"));
    assert_eq!(header(&rsp, "grpc-status"), None);
    assert_eq!(body, "");
    let trailers = trailers.expect("trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "14");
    assert_eq!(trailers.get("grpc-message").unwrap(), "fault");

    demo.fault("?grpc_status=8&grpc_in=headers").await;
    let (rsp, body, trailers) = grpc_call(&demo).await;
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(header(&rsp, "content-type"), Some("application/grpc"));
    assert_eq!(header(&rsp, "grpc-status"), Some("8"));
    assert_eq!(header(&rsp, "grpc-message"), Some("fault"));
    assert_eq!((body.as_ref(), trailers), (&b""[..], None), "Trailers-Only");
}

#[tokio::test]
async fn bad_parameters_are_400_naming_them_and_keep_the_fault() {
    let demo = Demo::start().await;
    demo.fault("?status=503").await;
    let cases = [
        (
            "?status=1000",
            "status: expected an HTTP status from 200 to 599",
        ),
        ("?status=503&fraction=0.5.5", "fraction: expected a decimal"),
        ("?reset=now", "reset: expected before_head or after_head"),
        ("?delay_ms=soon", "delay_ms: expected milliseconds"),
        (
            "?grpc_status=99",
            "grpc_status: expected a gRPC status code",
        ),
        (
            "?grpc_status=1&grpc_in=body",
            "grpc_in: expected trailers or headers",
        ),
        ("?status=503&path=api", "path: expected a path prefix"),
        ("?status=503&mode=x", "mode: expected one of"),
        ("?method=GET", "method=GET: expected one of status, reset"),
    ];
    for (query, want) in cases {
        let (status, body) = demo.fault(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body.starts_with(&format!("/fault: {want}")),
            "{query}: {body}"
        );
        assert!(
            body.ends_with("\nstill fault status=503 fraction=1\n"),
            "{query}: {body}"
        );
    }
    let (rsp, _) = demo.call(&demo.h1, Method::GET, "/").await;
    assert_eq!(rsp.status(), StatusCode::SERVICE_UNAVAILABLE);
}
