//! The dtab HTTP API over a real loopback socket, byte for byte as namerd
//! answers, with an in-memory store.

#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use namerd::testing::{TestNamerd, start_in_memory};
use namerd_client::next_chunk;

const INTERNAL: &str = "/srv => /#/io.l5d.fs; /host => /srv; /tmp => /srv; /svc => /host; /host/world => /srv/world-v1;";
const INTERNAL_JSON: &str = "[{\"prefix\":\"/srv\",\"dst\":\"/#/io.l5d.fs\"},{\"prefix\":\"/host\",\"dst\":\"/srv\"},\
{\"prefix\":\"/tmp\",\"dst\":\"/srv\"},{\"prefix\":\"/svc\",\"dst\":\"/host\"},\
{\"prefix\":\"/host/world\",\"dst\":\"/srv/world-v1\"}]\n";
const V1: &str = "AAAAAAAAAAE=";
const V2: &str = "AAAAAAAAAAI=";

struct Api {
    namerd: TestNamerd,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Api {
    async fn start() -> Api {
        Api {
            namerd: start_in_memory().await,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.namerd.base_url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let rsp = self
            .client
            .request(self.request(method, path, headers, body))
            .await
            .unwrap();
        let (parts, body) = rsp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], "").await
    }

    /// A `GET` that asks for the dtab text encoding.
    async fn get_text(&self, path: &str) -> Reply {
        let accept = [("accept", "application/dtab")];
        self.send(Method::GET, path, &accept, "").await
    }
}

const DTAB: (&str, &str) = ("content-type", "application/dtab");

/// How long a watch may take to send the next change.
const CHUNK_LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn dtab_lifecycle_matches_namerd() {
    let api = Api::start().await;

    let r = api.get("/api/1/dtabs").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "[]\n"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = api
        .send(Method::POST, "/api/1/dtabs/internal", &[DTAB], INTERNAL)
        .await;
    assert_eq!(
        (r.status, r.header("etag")),
        (StatusCode::NO_CONTENT, Some(V1))
    );

    let r = api
        .send(Method::POST, "/api/1/dtabs/internal", &[DTAB], INTERNAL)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body, "The dtab namespace internal already exists");
    assert_eq!(r.header("etag"), Some(V1));

    let r = api.get("/api/1/dtabs/internal").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, INTERNAL_JSON));
    assert_eq!(
        (r.header("etag"), r.header("content-type")),
        (Some(V1), Some("application/json"))
    );

    for (accept, media) in [
        ("application/dtab", "application/dtab"),
        ("text/plain", "text/plain"),
        ("text/html, application/dtab;q=0.5", "application/dtab"),
        ("image/png", "application/json"),
    ] {
        let r = api
            .send(
                Method::GET,
                "/api/1/dtabs/internal",
                &[("accept", accept)],
                "",
            )
            .await;
        assert_eq!(r.header("content-type"), Some(media), "Accept: {accept}");
        if media != "application/json" {
            assert_eq!(
                r.body,
                "/srv=>/#/io.l5d.fs;/host=>/srv;/tmp=>/srv;/svc=>/host;/host/world=>/srv/world-v1\n"
            );
        }
    }

    let r = api
        .send(Method::HEAD, "/api/1/dtabs/internal", &[], "")
        .await;
    assert_eq!(
        (r.status, r.header("etag"), r.body.as_str()),
        (StatusCode::OK, Some(V1), "")
    );

    let canary = "/host/world => 9*/srv/world-v1 & 1*/srv/world-v2";
    let r = api
        .send(
            Method::PUT,
            "/api/1/dtabs/internal",
            &[DTAB, ("if-match", V1)],
            canary,
        )
        .await;
    assert_eq!(
        (r.status, r.header("etag")),
        (StatusCode::NO_CONTENT, Some(V2))
    );

    let r = api
        .send(
            Method::PUT,
            "/api/1/dtabs/internal",
            &[DTAB, ("if-match", V1)],
            INTERNAL,
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        r.body,
        "Could not update dtab: current version does not match provided version"
    );
    assert_eq!(
        r.header("etag"),
        Some(V2),
        "a conflict names the current version"
    );

    let r = api.get_text("/api/1/dtabs/internal").await;
    assert_eq!(r.body, "/host/world=>9.00*/srv/world-v1 & /srv/world-v2\n");

    let r = api.get("/api/1/dtabs").await;
    assert_eq!(r.body, "[\"internal\"]\n");
    let r = api.get("/api/1/dtabs/").await;
    assert_eq!(r.body, "[\"internal\"]\n");

    let r = api
        .send(Method::DELETE, "/api/1/dtabs/internal", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .send(Method::DELETE, "/api/1/dtabs/internal", &[], "")
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NOT_FOUND, ""));
    let r = api.get("/api/1/dtabs/internal").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NOT_FOUND, ""));
    let r = api
        .send(Method::HEAD, "/api/1/dtabs/internal", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The history keeps every version, deletion included.
    let r = api.get("/api/1/dtabs/internal/history").await;
    assert_eq!(r.status, StatusCode::OK);
    let history: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let ops: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["version"].clone(), e["op"].clone()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (V1.into(), "create".into()),
            (V2.into(), "update".into()),
            ("AAAAAAAAAAM=".into(), "delete".into())
        ]
    );
    assert!(
        history[0]["author"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:")
    );
    assert!(history[0]["committedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(history[2]["dtab"], serde_json::Value::Null);

    let r = api
        .get(&format!("/api/1/dtabs/internal/history/{V1}"))
        .await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("etag")),
        (StatusCode::OK, INTERNAL_JSON, Some(V1))
    );
    let r = api.get("/api/1/dtabs/internal/history/AAAAAAAAAAM=").await;
    assert_eq!(r.status, StatusCode::GONE);
    let r = api.get("/api/1/dtabs/internal/history/AAAAAAAAAAQ=").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A re-created namespace never reuses a version.
    let r = api
        .send(Method::PUT, "/api/1/dtabs/internal", &[DTAB], INTERNAL)
        .await;
    assert_eq!(
        (r.status, r.header("etag")),
        (StatusCode::NO_CONTENT, Some("AAAAAAAAAAQ="))
    );
    let r = api
        .send(
            Method::PUT,
            "/api/1/dtabs/internal",
            &[DTAB, ("if-match", V1)],
            INTERNAL,
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    let r = api.get("/api/1/nope").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NOT_FOUND, ""));
    api.namerd.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let api = Api::start().await;
    let r = api
        .send(Method::POST, "/api/1/dtabs/internal", &[DTAB], "/a => /b")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let big = format!("/a => /{}", "b".repeat(1024 * 1024));
    // (method, path, headers, body, status, response body)
    type Case<'a> = (
        Method,
        &'a str,
        Vec<(&'a str, &'a str)>,
        &'a str,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            Method::PUT,
            "/api/1/dtabs/internal",
            vec![DTAB],
            "i am not a dtab",
            StatusCode::BAD_REQUEST,
            "'/' expected but 'i' found at '[i] am not a dtab'",
        ),
        (
            Method::PUT,
            "/api/1/dtabs/internal",
            vec![("content-type", "image/png")],
            "/a=>/c",
            StatusCode::BAD_REQUEST,
            "Invalid Content-Type \"image/png\". ",
        ),
        (
            Method::PUT,
            "/api/1/dtabs/internal",
            vec![("content-type", "application/json")],
            "[null]",
            StatusCode::BAD_REQUEST,
            "The dtab contains invalid dentries: [null]",
        ),
        (
            Method::PUT,
            "/api/1/dtabs/internal",
            vec![("content-type", "application/json")],
            "{\"prefix\": 1}",
            StatusCode::BAD_REQUEST,
            "a JSON dtab must be a list of {\"prefix\": ..., \"dst\": ...} objects",
        ),
        (
            Method::PUT,
            "/api/1/dtabs/internal",
            vec![DTAB, ("if-match", "not base64!")],
            "/a=>/c",
            StatusCode::BAD_REQUEST,
            "invalid version \"not base64!\": expected the base64 ETag of a version",
        ),
        (
            Method::PUT,
            "/api/1/dtabs/bad.name",
            vec![DTAB],
            "/a=>/c",
            StatusCode::BAD_REQUEST,
            "invalid dtab namespace bad.name: namespace must contain only letter, number, '_' or '-' characters (at most 128)",
        ),
        (
            Method::PUT,
            "/api/1/dtabs/internal",
            vec![DTAB],
            big.as_str(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body exceeds the limit of 1048576 bytes",
        ),
        (
            Method::POST,
            "/api/1/dtabs/other",
            vec![DTAB],
            "/a => ",
            StatusCode::BAD_REQUEST,
            "simple expected but end of input found at '/a => []'",
        ),
    ];
    for (method, path, headers, body, status, message) in cases {
        let r = api.send(method.clone(), path, &headers, body).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (status, message),
            "{method} {path} {headers:?}"
        );
    }
    let r = api.get_text("/api/1/dtabs/internal").await;
    assert_eq!(
        (r.body.as_str(), r.header("etag")),
        ("/a=>/b\n", Some(V1)),
        "nothing was stored"
    );
    assert_eq!(api.get("/api/1/dtabs").await.body, "[\"internal\"]\n");
    // namerd is still healthy.
    let ping = api
        .client
        .get(
            format!("{}/admin/ping", api.namerd.admin_url())
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    api.namerd.shutdown().await;
}

#[tokio::test]
async fn watches_stream_every_change() {
    let api = Api::start().await;
    let rsp = api
        .client
        .request(api.request(
            Method::GET,
            "/api/1/dtabs/internal?watch=true",
            &[("accept", "application/dtab")],
            "",
        ))
        .await
        .unwrap();
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(
        rsp.headers().get("content-type").unwrap(),
        "application/dtab"
    );
    let mut dtabs = rsp.into_body();

    let rsp = api
        .client
        .request(api.request(Method::GET, "/api/1/dtabs?watch=true", &[], ""))
        .await
        .unwrap();
    let mut names = rsp.into_body();
    assert_eq!(next_chunk(&mut names, CHUNK_LIMIT).await, "[]\n");

    // The namespace is absent: nothing until it is created.
    api.send(Method::POST, "/api/1/dtabs/internal", &[DTAB], "/a => /b")
        .await;
    assert_eq!(next_chunk(&mut dtabs, CHUNK_LIMIT).await, "/a=>/b\n");
    assert_eq!(
        next_chunk(&mut names, CHUNK_LIMIT).await,
        "[\"internal\"]\n"
    );
    api.send(
        Method::PUT,
        "/api/1/dtabs/internal",
        &[DTAB, ("if-match", V1)],
        "/a => /c",
    )
    .await;
    assert_eq!(next_chunk(&mut dtabs, CHUNK_LIMIT).await, "/a=>/c\n");

    // Shutdown ends the streams instead of waiting for them.
    tokio::time::timeout(Duration::from_secs(10), api.namerd.shutdown())
        .await
        .expect("shutdown drains watch streams");
}
