//! The HTTP backend's request log (`/requests`): its fields over real
//! sockets, clearing, switching it on and off, and its bound (through
//! `HttpBackend::respond`, without sockets, for speed).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_demo::http::HttpBackend;
use serde_json::{Value, json};
use tokio::net::TcpListener;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn backend(log: bool) -> HttpBackend {
    HttpBackend::new(&"web".parse().unwrap(), Duration::ZERO, None).with_request_log(log)
}

async fn start(backend: HttpBackend) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(backend.serve(listener, std::future::pending()));
    addr
}

async fn get(client: &HttpClient, req: Request<Empty<Bytes>>) -> (StatusCode, Bytes) {
    let rsp = client.request(req).await.unwrap();
    let status = rsp.status();
    (status, rsp.into_body().collect().await.unwrap().to_bytes())
}

fn plain(addr: SocketAddr, method: &str, path: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap()
}

async fn log(client: &HttpClient, addr: SocketAddr, query: &str) -> Vec<Value> {
    let (status, body) = get(client, plain(addr, "GET", &format!("/requests{query}"))).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn the_log_records_each_answered_request_but_not_the_control_endpoints() {
    let addr = start(backend(true)).await;
    let h1: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();

    let first = Request::get(format!("http://{addr}/a?x=1"))
        .header("l5d-dst-service", "/svc/web")
        .header("l5d-dtab", "/a=>/b")
        .header("l5d-dtab", "/c=>/d")
        .header("grpc-timeout", "250m")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("x-not-logged", "1")
        .body(Empty::new())
        .unwrap();
    assert_eq!(get(&h1, first).await.0, StatusCode::OK);
    assert_eq!(
        get(&h1, plain(addr, "PUT", "/fault?status=503")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&h1, plain(addr, "POST", "/delay?ms=0")).await.0,
        StatusCode::OK
    );
    let second = get(&h2, plain(addr, "POST", "/b")).await;
    assert_eq!(second.0, StatusCode::SERVICE_UNAVAILABLE);

    let entries = log(&h1, addr, "").await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let (a, b) = (&entries[0], &entries[1]);
    let cases = [
        ("seq", json!(0), json!(1)),
        ("method", json!("GET"), json!("POST")),
        ("path", json!("/a?x=1"), json!("/b")),
        ("version", json!("HTTP/1.1"), json!("HTTP/2")),
        ("faulted", Value::Null, json!("status")),
        ("status", json!(200), json!(503)),
        ("grpc_status", Value::Null, Value::Null),
    ];
    for (field, want_a, want_b) in cases {
        assert_eq!((field, &a[field], &b[field]), (field, &want_a, &want_b));
    }
    assert_eq!(
        a["headers"],
        json!({
            "grpc-timeout": "250m",
            "l5d-dst-service": "/svc/web",
            "l5d-dtab": "/a=>/b, /c=>/d",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        })
    );
    assert_eq!(b["headers"], json!({}));
    let (at_a, at_b) = (a["at_ms"].as_f64().unwrap(), b["at_ms"].as_f64().unwrap());
    assert!(0.0 < at_a && at_a < at_b, "{at_a} {at_b}");

    // `?clear` answers the log as it was, then numbers from 0 again.
    assert_eq!(log(&h1, addr, "?clear").await, entries);
    assert_eq!(log(&h1, addr, "").await, Vec::<Value>::new());
    get(&h1, plain(addr, "GET", "/fault")).await;
    get(&h1, plain(addr, "GET", "/c")).await;
    let entries = log(&h1, addr, "").await;
    assert_eq!((entries.len(), &entries[0]["seq"]), (1, &json!(0)));
}

#[tokio::test]
async fn the_log_is_off_unless_switched_on() {
    let addr = start(backend(false)).await;
    let h1: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    get(&h1, plain(addr, "GET", "/before")).await;
    let (status, body) = get(&h1, plain(addr, "GET", "/requests")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.starts_with(b"the request log is off"), "{body:?}");

    let (status, body) = get(&h1, plain(addr, "GET", "/requests?on")).await;
    assert_eq!(
        (status, body.as_ref()),
        (StatusCode::OK, &b"requests log=on\n"[..])
    );
    get(&h1, plain(addr, "GET", "/after")).await;
    let entries = log(&h1, addr, "").await;
    let paths: Vec<&Value> = entries.iter().map(|e| &e["path"]).collect();
    assert_eq!(paths, [&json!("/after")]);

    get(&h1, plain(addr, "GET", "/requests?off")).await;
    let (status, _) = get(&h1, plain(addr, "GET", "/requests")).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// 10,005 requests leave the last 10,000, numbered 5 to 10,004.
#[tokio::test]
async fn the_log_keeps_the_last_10000_requests() {
    let backend = backend(true);
    let req = |path: String| Request::get(path).body(Empty::<Bytes>::new()).unwrap();
    for i in 0..10_005 {
        backend.respond(req(format!("/{i}"))).await.unwrap();
    }
    let rsp = backend.respond(req("/requests".into())).await.unwrap();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    let entries: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(entries.len(), 10_000);
    let ends = [&entries[0], &entries[9_999]];
    let got: Vec<(&Value, &Value)> = ends.iter().map(|e| (&e["seq"], &e["path"])).collect();
    assert_eq!(
        got,
        [
            (&json!(5), &json!("/5")),
            (&json!(10_004), &json!("/10004"))
        ]
    );
}
