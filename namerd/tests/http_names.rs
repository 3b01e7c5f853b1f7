//! The HTTP interpreter routes (`/api/1/bind`, `/addr`, `/resolve`,
//! `/delegate`, `/bound-names`) over a real socket, with the fs namer.

#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use l5d_dtab::Dtab;
use namerd::config::{StorageConfig, parse_namers};
use namerd::store::{Namespace, WriteMeta};
use namerd::testing::{self, TestNamerd};
use namerd_client::next_chunk;

struct Setup {
    namerd: TestNamerd,
    _dir: tempfile::TempDir,
    disco: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    std::fs::write(disco.join("web"), "127.0.0.1 8080\n").unwrap();
    let namers =
        parse_namers(serde_json::json!([{"kind": "io.l5d.fs", "rootDir": disco}])).unwrap();
    let storage = StorageConfig::InMemory {
        namespaces: [(
            Namespace::new("internal").unwrap(),
            Dtab::read("/svc => /#/io.l5d.fs; /ext => /$/inet/127.0.0.1/9999").unwrap(),
        )]
        .into(),
    };
    let namerd = testing::start_with_namers(storage, namers).await;
    Setup {
        namerd,
        _dir: dir,
        disco,
    }
}

async fn send(
    s: &Setup,
    method: Method,
    path: &str,
    ct: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", s.namerd.http_addr().unwrap()));
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let rsp = client
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let status = rsp.status();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(s: &Setup, path: &str) -> (StatusCode, String) {
    send(s, Method::GET, path, None, "").await
}

const WEB_ADDR: &str =
    r#"{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080,"meta":{}}],"meta":{}}"#;

#[tokio::test]
async fn interpreter_routes_answer_in_namerds_shapes() {
    let s = setup().await;
    let cases = [
        (
            "/api/1/bind/internal?path=/svc/web/x",
            StatusCode::OK,
            format!(r#"{{"type":"leaf","bound":{{"addr":{WEB_ADDR},"id":"/#/io.l5d.fs/web","path":"/x"}}}}"#),
        ),
        ("/api/1/bind/internal?path=/svc/nope", StatusCode::OK, r#"{"type":"neg"}"#.to_string()),
        (
            "/api/1/bind/internal?path=/svc/web&dtab=/svc/web%3D%3E/ext",
            StatusCode::OK,
            r#"{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":9999,"meta":{}}],"meta":{}},"id":"/$/inet/127.0.0.1/9999","path":"/"}}"#.to_string(),
        ),
        ("/api/1/addr/internal?path=/%23/io.l5d.fs/web", StatusCode::OK, WEB_ADDR.to_string()),
        ("/api/1/addr/internal?path=/%23/io.l5d.fs/nope", StatusCode::OK, r#"{"type":"neg"}"#.to_string()),
        ("/api/1/resolve/internal?path=/svc/web", StatusCode::OK, WEB_ADDR.to_string()),
        ("/api/1/resolve/internal?path=/svc/nope", StatusCode::OK, r#"{"type":"neg"}"#.to_string()),
        (
            "/api/1/delegate/internal?path=/svc/web",
            StatusCode::OK,
            format!(
                r#"{{"type":"delegate","path":"/svc/web","delegate":{{"type":"leaf","path":"/#/io.l5d.fs/web","dentry":{{"prefix":"/svc","dst":"/#/io.l5d.fs"}},"bound":{{"addr":{WEB_ADDR},"id":"/#/io.l5d.fs/web","path":"/"}}}}}}"#
            ),
        ),
        ("/api/1/bound-names", StatusCode::OK, r#"["/#/io.l5d.fs/web"]"#.to_string()),
        ("/api/1/bind/internal?path=nope", StatusCode::BAD_REQUEST, "Invalid path: nope / '/' expected but 'n' found at '[n]ope'".to_string()),
        ("/api/1/delegate/internal?path=/svc&dtab=oops", StatusCode::BAD_REQUEST, "Invalid dtab: '/' expected but 'o' found at '[o]ops'".to_string()),
        ("/api/1/delegate?path=/svc/web&dtab=/svc%3D%3E/%23/io.l5d.fs", StatusCode::OK, format!(
            r#"{{"type":"delegate","path":"/svc/web","delegate":{{"type":"leaf","path":"/#/io.l5d.fs/web","dentry":{{"prefix":"/svc","dst":"/#/io.l5d.fs"}},"bound":{{"addr":{WEB_ADDR},"id":"/#/io.l5d.fs/web","path":"/"}}}}}}"#
        )),
        ("/api/1/delegate?path=/svc/web", StatusCode::BAD_REQUEST, "Malformed delegation request: both dtab and path are required".to_string()),
    ];
    for (path, status, body) in cases {
        let (got_status, got_body) = get(&s, path).await;
        assert_eq!(
            (got_status, got_body.trim_end()),
            (status, body.as_str()),
            "GET {path}"
        );
    }

    let (status, body) = send(
        &s,
        Method::POST,
        "/api/1/delegate",
        Some("application/json"),
        r#"{"namespace":"internal","dtab":"","path":"/svc/web"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.starts_with(r#"{"type":"delegate","path":"/svc/web""#),
        "{body}"
    );
    let (status, _) = send(&s, Method::POST, "/api/1/delegate", Some("text/plain"), "x").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = send(
        &s,
        Method::POST,
        "/api/1/delegate",
        Some("application/json"),
        "{",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("Malformed delegation request: "), "{body}");
    s.namerd.shutdown().await;
}

#[tokio::test]
async fn bind_watches_follow_the_dtab_and_the_directory() {
    let s = setup().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let uri = format!(
        "http://{}/api/1/bind/internal?path=/svc/api&watch=true",
        s.namerd.http_addr().unwrap()
    );
    let mut body = client.get(uri.parse().unwrap()).await.unwrap().into_body();
    let mut next = async || next_chunk(&mut body, Duration::from_secs(5)).await;
    assert_eq!(next().await, "{\"type\":\"neg\"}\n");
    // A file appears in the fs namer's directory: the name binds.
    std::fs::write(s.disco.join("api"), "127.0.0.1 7070\n").unwrap();
    assert!(next().await.contains("\"id\":\"/#/io.l5d.fs/api\""));
    // The dtab changes: the binding follows.
    let store = s.namerd.ready().await;
    store
        .put(
            &Namespace::new("internal").unwrap(),
            &Dtab::read("/svc => /$/inet/127.0.0.1/1234").unwrap(),
            &WriteMeta::default(),
        )
        .await
        .unwrap();
    assert!(next().await.contains("\"id\":\"/$/inet/127.0.0.1/1234\""));
    tokio::time::timeout(Duration::from_secs(10), s.namerd.shutdown())
        .await
        .expect("shutdown ends the watch");
}
