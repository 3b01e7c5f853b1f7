//! `POST /api/1/dtabs/{ns}/dry-run` over a real socket: HTTP watches are
//! opened on some names (namerd streams them), a dtab is proposed, and the
//! answer lists exactly the streamed names whose tree would change, with
//! their trees before and after and their open watches; nothing is
//! written. Then the limits: the client's binding limit cuts the list
//! (busiest names first), the run holds one of the client's streams, and
//! it is a read, so a caller who may not write may run it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use l5d_dtab::Dtab;
use namerd::config::{StorageConfig, parse_namers};
use namerd::store::Namespace;
use namerd::testing::{self, TestNamerd};

const DTAB: &str = "/svc => /#/io.l5d.fs";

/// The watches' bound on their first answer, and on each request.
const LIMIT: Duration = Duration::from_secs(15);

struct Setup {
    namerd: TestNamerd,
    _dir: tempfile::TempDir,
}

/// namerd with the fs namer serving `web`, `api` and `db`, namespace
/// `internal` holding [`DTAB`]; `limits` edits its configuration.
async fn setup(limits: impl FnOnce(&mut namerd::config::NamerdConfig)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    for (name, port) in [("web", 8080), ("api", 8081), ("db", 8082)] {
        std::fs::write(disco.join(name), format!("127.0.0.1 {port}\n")).unwrap();
    }
    let namers =
        parse_namers(serde_json::json!([{"kind": "io.l5d.fs", "rootDir": disco}])).unwrap();
    let storage = StorageConfig::InMemory {
        namespaces: [(
            Namespace::new("internal").unwrap(),
            Dtab::read(DTAB).unwrap(),
        )]
        .into(),
    };
    let mut config = testing::loopback_config(storage, namers);
    limits(&mut config);
    Setup {
        namerd: testing::start_config(config).await,
        _dir: dir,
    }
}

/// An HTTP client whose connections come from `source`: namerd counts
/// its limits per client IP, and every 127/8 address reaches a loopback
/// listener, so each source is a client of its own.
fn client_from(source: Ipv4Addr) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(IpAddr::V4(source)));
    Client::builder(TokioExecutor::new()).build(connector)
}

impl Setup {
    /// Opens `?watch=true` on `name` (with the local dtab `local`) and
    /// waits for its first tree, so the binding is streamed when this
    /// returns. The watch lasts as long as the returned body.
    async fn watch(&self, source: Ipv4Addr, name: &str, local: &str) -> Incoming {
        let uri = format!(
            "http://{}/api/1/bind/internal?path={name}&dtab={}&watch=true",
            self.namerd.http_addr().unwrap(),
            local.replace(' ', "").replace("=>", "%3D%3E")
        );
        let rsp = tokio::time::timeout(LIMIT, client_from(source).get(uri.parse().unwrap()))
            .await
            .expect("the watch answers")
            .unwrap();
        assert_eq!(rsp.status(), StatusCode::OK, "watch {name}");
        let mut body = rsp.into_body();
        let first = tokio::time::timeout(LIMIT, body.frame())
            .await
            .expect("the watch sends its first tree");
        assert!(first.is_some(), "watch {name} ended");
        body
    }

    async fn dry_run(&self, source: Ipv4Addr, dtab: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "http://{}/api/1/dtabs/internal/dry-run",
                self.namerd.http_addr().unwrap()
            ))
            .header("content-type", "application/dtab")
            .body(Full::new(Bytes::from(dtab.to_owned())))
            .unwrap();
        let rsp = tokio::time::timeout(LIMIT, client_from(source).request(req))
            .await
            .expect("the dry run answers")
            .unwrap();
        let status = rsp.status();
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn stored(&self) -> String {
        let store = self.namerd.ready().await;
        let stored = store
            .get(&Namespace::new("internal").unwrap())
            .await
            .unwrap()
            .expect("internal exists");
        format!("{} {}", stored.version, stored.dtab.show())
    }
}

const WATCHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER_WATCHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const OPERATOR: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// `web` shifts 10% to `api`, `db` moves to an address, `api` is untouched;
/// the watch of `/svc/api` with a local dtab sending it to `web` follows
/// `web` (the proposed dtab is read before the local one).
const PROPOSED: &str = "/svc => /#/io.l5d.fs; \
     /svc/web => 9 * /#/io.l5d.fs/web & 1 * /#/io.l5d.fs/api; /svc/db => /$/inet/127.0.0.1/9999";

#[tokio::test]
async fn a_dry_run_lists_exactly_the_streamed_names_it_would_change() {
    let s = setup(|_| {}).await;
    let _web = s.watch(WATCHER, "/svc/web", "").await;
    let _web2 = s.watch(OTHER_WATCHER, "/svc/web", "").await;
    let _api = s.watch(WATCHER, "/svc/api", "").await;
    let _db = s.watch(WATCHER, "/svc/db", "").await;
    let _api_as_web = s.watch(WATCHER, "/svc/api", "/svc/api => /svc/web").await;
    let before = s.stored().await;

    let (status, body) = s.dry_run(OPERATOR, PROPOSED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = concat!(
        r#"{"namespace":"internal","streamed":4,"evaluated":4,"truncated":false,"changed":["#,
        r#"{"name":"/svc/web","localDtab":"","watchers":2,"#,
        r#""before":{"state":"bound","tree":"/#/io.l5d.fs/web"},"#,
        r#""after":{"state":"bound","tree":"9.00*/#/io.l5d.fs/web & /#/io.l5d.fs/api"}},"#,
        r#"{"name":"/svc/api","localDtab":"/svc/api=>/svc/web","watchers":1,"#,
        r#""before":{"state":"bound","tree":"/#/io.l5d.fs/web"},"#,
        r#""after":{"state":"bound","tree":"9.00*/#/io.l5d.fs/web & /#/io.l5d.fs/api"}},"#,
        r#"{"name":"/svc/db","localDtab":"","watchers":1,"#,
        r#""before":{"state":"bound","tree":"/#/io.l5d.fs/db"},"#,
        r#""after":{"state":"bound","tree":"/$/inet/127.0.0.1/9999"}}]}"#,
        "\n"
    );
    assert_eq!(body, expected);
    assert_eq!(s.stored().await, before, "a dry run writes nothing");

    // The watches end: nothing is streamed, so nothing would change.
    drop((_web, _web2, _api, _db, _api_as_web));
    let mut last = String::new();
    for _ in 0..150 {
        let (status, body) = s.dry_run(OPERATOR, PROPOSED).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body.contains(r#""streamed":0"#) {
            last = body;
            break;
        }
        // Bounded: the closed watches are given back within 15 s.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last,
        "{\"namespace\":\"internal\",\"streamed\":0,\"evaluated\":0,\"truncated\":false,\"changed\":[]}\n"
    );
    s.namerd.shutdown().await;
}

#[tokio::test]
async fn the_clients_binding_limit_cuts_the_list_busiest_names_first() {
    let s = setup(|c| c.interpreter.max_bindings_per_client = 2).await;
    // Three names streamed by two other clients; `db` has two watchers.
    let _web = s.watch(WATCHER, "/svc/web", "").await;
    let _db = s.watch(WATCHER, "/svc/db", "").await;
    let _db2 = s.watch(OTHER_WATCHER, "/svc/db", "").await;
    let _api = s.watch(OTHER_WATCHER, "/svc/api", "").await;

    let (status, body) = s.dry_run(OPERATOR, PROPOSED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Bound again: `db` (two watchers), then `api` before `web` by name;
    // `web`, which would change, was cut, and `truncated` says so.
    assert!(
        body.starts_with(
            r#"{"namespace":"internal","streamed":3,"evaluated":2,"truncated":true,"changed":[{"name":"/svc/db","#
        ),
        "{body}"
    );
    assert!(!body.contains(r#""name":"/svc/web""#), "{body}");
    s.namerd.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_holds_one_of_the_clients_streams() {
    let s = setup(|c| c.interpreter.max_streams_per_client = 1).await;
    let _web = s.watch(OPERATOR, "/svc/web", "").await;
    let (status, body) = s.dry_run(OPERATOR, PROPOSED).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("maxStreamsPerClient"), "{body}");
    // Another client, holding no stream, may run it.
    let (status, body) = s.dry_run(WATCHER, PROPOSED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""streamed":1"#), "{body}");
    s.namerd.shutdown().await;
}
