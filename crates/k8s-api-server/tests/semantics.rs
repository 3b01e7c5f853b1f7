//! The API semantics over HTTP with a plain client: optimistic concurrency,
//! watches that resume and expire, bookmarks, selectors, pagination,
//! opaque versions and injected faults. Waits are bounded by timeouts on
//! the next event, never sleeps.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use l5d_k8s_api_server::{ApiServer, Options, Resource};
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const WAIT: Duration = Duration::from_secs(5);

struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    fn new(server: &ApiServer) -> Api {
        Api {
            base: server.url(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> hyper::Response<Incoming> {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        tokio::time::timeout(WAIT, self.client.request(request))
            .await
            .expect("response in time")
            .expect("request succeeds")
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn watch(&self, path: &str) -> Watch {
        let response = self.send("GET", path, None).await;
        assert_eq!(response.status(), 200, "watch {path}");
        Watch {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }
}

struct Watch {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next event, or `None` at the end of the stream.
    async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, self.read())
            .await
            .expect("a watch event in time")
    }

    /// Whether an event arrives within `d` (for asserting silence).
    async fn quiet_for(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.read()).await.is_err()
    }

    /// The next event that is not a bookmark.
    async fn next_change(&mut self) -> Option<Value> {
        loop {
            let event = self.next().await?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a JSON event line"));
            }
            let frame = self.body.frame().await?.expect("body frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

fn cm(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": labels}, "data": data})
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned()
}

fn summary(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap_or("").to_owned(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

fn ev(kind: &str, name: &str) -> (String, String) {
    (kind.to_owned(), name.to_owned())
}

#[tokio::test]
async fn writes_follow_optimistic_concurrency() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    let (code, created) = api
        .call("POST", CM, Some(cm("a", json!({}), json!({"k": "1"}))))
        .await;
    assert_eq!(code, 201);
    assert!(created["metadata"]["uid"].is_string());
    assert!(created["metadata"]["creationTimestamp"].is_string());
    assert_eq!(
        server.get(Resource::ConfigMaps, "default", "a").unwrap(),
        created
    );

    let (code, status) = api
        .call("POST", CM, Some(cm("a", json!({}), json!({}))))
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["details"]["name"], "a");

    let mut update = created.clone();
    update["data"]["k"] = json!("2");
    let (code, updated) = api
        .call("PUT", &format!("{CM}/a"), Some(update.clone()))
        .await;
    assert_eq!(code, 200);
    assert_ne!(rv(&updated), rv(&created));
    // The same body again carries a stale version now.
    let (code, status) = api.call("PUT", &format!("{CM}/a"), Some(update)).await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified")
    );

    let (code, status) = api
        .call(
            "PUT",
            &format!("{CM}/missing"),
            Some(cm("missing", json!({}), json!({}))),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(status["message"], "configmaps \"missing\" not found");

    let (code, _) = api.call("PATCH", &format!("{CM}/a"), None).await;
    assert_eq!(code, 415, "a PATCH without a merge-patch content type");

    let (code, status) = api.call("DELETE", &format!("{CM}/a"), None).await;
    assert_eq!((code, status["status"].as_str()), (200, Some("Success")));
    let (code, _) = api.call("DELETE", &format!("{CM}/a"), None).await;
    assert_eq!(code, 404);
    assert!(server.get(Resource::ConfigMaps, "default", "a").is_none());
}

#[tokio::test]
async fn invalid_objects_are_rejected_as_the_real_server_does() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    let (code, status) = api
        .call("POST", CM, Some(cm("Bad_Name", json!({}), json!({}))))
        .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("RFC 1123 subdomain")
    );

    let big = "x".repeat(1024 * 1024);
    let (code, status) = api
        .call("POST", CM, Some(cm("big", json!({}), json!({"k": big}))))
        .await;
    assert_eq!(code, 422);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("Too long: must have at most 1048576 bytes")
    );

    let mut other_ns = cm("a", json!({}), json!({}));
    other_ns["metadata"]["namespace"] = json!("elsewhere");
    let (code, _) = api.call("POST", CM, Some(other_ns)).await;
    assert_eq!(code, 400);

    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"}});
    let path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    let (code, status) = api.call("POST", path, Some(slice)).await;
    assert_eq!(
        (code, status["details"]["causes"][0]["field"].as_str()),
        (422, Some("addressType"))
    );
}

#[tokio::test]
async fn a_watch_resumes_exactly_after_its_version() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    let a = server.apply(cm("a", json!({}), json!({"v": "1"})));
    server.apply(cm("a", json!({}), json!({"v": "2"})));
    server.apply(cm("b", json!({}), json!({})));
    // Writes to another resource move the global version but are not ours.
    server.apply(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {}}),
    );

    let mut watch = api
        .watch(&format!("{CM}?watch=true&resourceVersion={}", rv(&a)))
        .await;
    let first = watch.next().await.unwrap();
    assert_eq!(summary(&first), ev("MODIFIED", "a"));
    assert_eq!(first["object"]["data"]["v"], "2");
    assert_eq!(first["object"]["kind"], "ConfigMap");
    assert_eq!(summary(&watch.next().await.unwrap()), ev("ADDED", "b"));
    server.remove(Resource::ConfigMaps, "default", "a");
    let deleted = watch.next().await.unwrap();
    assert_eq!(summary(&deleted), ev("DELETED", "a"));
    // A deleted object carries the delete's version.
    let list = api.call("GET", CM, None).await.1;
    assert_eq!(
        rv(&deleted["object"]),
        list["metadata"]["resourceVersion"].as_str().unwrap()
    );

    // Without a version, a watch starts with the current state.
    let mut fresh = api.watch(&format!("{CM}?watch=1")).await;
    assert_eq!(summary(&fresh.next().await.unwrap()), ev("ADDED", "b"));
    server.apply(cm("c", json!({}), json!({})));
    assert_eq!(summary(&fresh.next().await.unwrap()), ev("ADDED", "c"));
}

#[tokio::test]
async fn bookmarks_carry_the_current_version() {
    let options = Options {
        bookmark_interval: Duration::from_millis(50),
        ..Options::default()
    };
    let server = ApiServer::start_with(options).await.unwrap();
    let api = Api::new(&server);
    let a = server.apply(cm("a", json!({}), json!({})));
    let mut watch = api
        .watch(&format!(
            "{CM}?watch=true&allowWatchBookmarks=true&resourceVersion={}",
            rv(&a)
        ))
        .await;
    let bookmark = watch.next().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert_eq!(bookmark["object"]["apiVersion"], "v1");
    assert_eq!(rv(&bookmark["object"]), rv(&a));
    // A write elsewhere moves the version bookmarks report.
    let svc = server.apply(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {}}),
    );
    loop {
        let event = watch.next().await.unwrap();
        assert_eq!(
            event["type"], "BOOKMARK",
            "no change to configmaps happened"
        );
        if rv(&event["object"]) == rv(&svc) {
            break;
        }
    }
    // Without allowWatchBookmarks there are none.
    let mut plain = api
        .watch(&format!("{CM}?watch=true&resourceVersion={}", rv(&svc)))
        .await;
    assert!(plain.quiet_for(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn compacted_versions_answer_410() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    let old = server.apply(cm("a", json!({}), json!({"v": "1"})));
    server.apply(cm("a", json!({}), json!({"v": "2"})));
    // Before compaction an exact list at the old version sees the old state.
    let (code, list) = api
        .call(
            "GET",
            &format!(
                "{CM}?resourceVersion={}&resourceVersionMatch=Exact",
                rv(&old)
            ),
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(list["items"][0]["data"]["v"], "1");
    assert_eq!(list["metadata"]["resourceVersion"], rv(&old));
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind"
    );

    server.compact();
    let (code, status) = api
        .call(
            "GET",
            &format!(
                "{CM}?resourceVersion={}&resourceVersionMatch=Exact",
                rv(&old)
            ),
            None,
        )
        .await;
    assert_eq!(
        (code, status["reason"].as_str(), status["code"].as_u64()),
        (410, Some("Expired"), Some(410))
    );
    // NotOlderThan serves newer data instead, as the real server does.
    let (code, list) = api
        .call(
            "GET",
            &format!(
                "{CM}?resourceVersion={}&resourceVersionMatch=NotOlderThan",
                rv(&old)
            ),
            None,
        )
        .await;
    assert_eq!(
        (code, list["items"][0]["data"]["v"].as_str()),
        (200, Some("2"))
    );

    let mut watch = api
        .watch(&format!("{CM}?watch=true&resourceVersion={}", rv(&old)))
        .await;
    let error = watch.next().await.unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        watch.next().await.is_none(),
        "the stream ends after the error"
    );

    // The current version is still good.
    let current = api.call("GET", CM, None).await.1;
    let version = current["metadata"]["resourceVersion"].as_str().unwrap();
    let mut watch = api
        .watch(&format!("{CM}?watch=true&resourceVersion={version}"))
        .await;
    server.apply(cm("b", json!({}), json!({})));
    assert_eq!(summary(&watch.next().await.unwrap()), ev("ADDED", "b"));
}

#[tokio::test]
async fn opaque_versions_are_not_numbers_but_work() {
    let options = Options {
        opaque_versions: true,
        ..Options::default()
    };
    let server = ApiServer::start_with(options).await.unwrap();
    let api = Api::new(&server);
    let a = server.apply(cm("a", json!({}), json!({})));
    assert!(rv(&a).parse::<u64>().is_err(), "{}", rv(&a));
    let (_, list) = api.call("GET", CM, None).await;
    let listed = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(listed.parse::<u64>().is_err());
    let mut watch = api
        .watch(&format!("{CM}?watch=true&resourceVersion={listed}"))
        .await;
    let mut stale = a.clone();
    stale["data"] = json!({"x": "y"});
    let (code, b) = api
        .call("PUT", &format!("{CM}/a"), Some(stale.clone()))
        .await;
    assert_eq!(code, 200);
    assert_eq!(summary(&watch.next().await.unwrap()), ev("MODIFIED", "a"));
    assert_eq!(
        api.call("PUT", &format!("{CM}/a"), Some(stale)).await.0,
        409
    );
    let (code, _) = api
        .call("GET", &format!("{CM}?watch=true&resourceVersion=12"), None)
        .await;
    assert_eq!(code, 400, "a numeric version was never issued");
    let _ = b;
}

#[tokio::test]
async fn label_selectors_filter_lists_and_watches() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    server.apply(cm("web", json!({"app": "web", "env": "prod"}), json!({})));
    server.apply(cm("db", json!({"app": "db"}), json!({})));
    server.apply(cm("plain", json!({}), json!({})));
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases: [(&str, &[&str]); 7] = [
        ("app%3Dweb", &["web"]),
        ("app%21%3Dweb", &["db", "plain"]),
        ("app", &["db", "web"]),
        ("%21app", &["plain"]),
        ("app%20in%20(web%2Cdb)", &["db", "web"]),
        ("app%20notin%20(web)", &["db", "plain"]),
        ("app%3Dweb%2Cenv%3Dprod", &["web"]),
    ];
    for (selector, expected) in cases {
        let (code, list) = api
            .call("GET", &format!("{CM}?labelSelector={selector}"), None)
            .await;
        assert_eq!(code, 200, "{selector}");
        assert_eq!(names(&list), expected, "{selector}");
    }
    let (_, list) = api
        .call(
            "GET",
            &format!("{CM}?fieldSelector=metadata.name%3Ddb"),
            None,
        )
        .await;
    assert_eq!(names(&list), ["db"]);
    assert_eq!(
        api.call("GET", &format!("{CM}?labelSelector=app%20in%20web"), None)
            .await
            .0,
        400
    );

    let mut watch = api
        .watch(&format!("{CM}?watch=true&labelSelector=app%3Dweb"))
        .await;
    assert_eq!(summary(&watch.next().await.unwrap()), ev("ADDED", "web"));
    // Leaving the selector is a deletion for this watcher, entering it an addition.
    server.apply(cm("web", json!({"app": "other"}), json!({})));
    let left = watch.next().await.unwrap();
    assert_eq!(summary(&left), ev("DELETED", "web"));
    assert_eq!(
        left["object"]["metadata"]["labels"]["app"], "web",
        "the last state it matched in"
    );
    server.apply(cm("db", json!({"app": "db", "x": "1"}), json!({})));
    server.apply(cm("db", json!({"app": "web"}), json!({})));
    assert_eq!(summary(&watch.next().await.unwrap()), ev("ADDED", "db"));
}

#[tokio::test]
async fn lists_paginate_with_continue_tokens() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    for name in ["e", "d", "c", "b", "a"] {
        server.apply(cm(name, json!({}), json!({})));
    }
    let (_, first) = api.call("GET", &format!("{CM}?limit=2"), None).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["items"][0]["metadata"]["name"], "a");
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
    // Writes after the first page do not show up in later pages.
    server.apply(cm("bb", json!({}), json!({})));
    let (_, second) = api
        .call("GET", &format!("{CM}?limit=2&continue={token}"), None)
        .await;
    let names: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c", "d"]);
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    let token = second["metadata"]["continue"].as_str().unwrap().to_owned();
    let (_, last) = api
        .call("GET", &format!("{CM}?limit=2&continue={token}"), None)
        .await;
    assert_eq!(last["items"][0]["metadata"]["name"], "e");
    assert!(last["metadata"].get("continue").is_none());

    server.compact();
    let (code, status) = api
        .call("GET", &format!("{CM}?limit=2&continue={token}"), None)
        .await;
    assert_eq!((code, status["reason"].as_str()), (410, Some("Expired")));

    // All namespaces, and the EndpointSlice paths.
    let mut elsewhere = cm("z", json!({}), json!({}));
    elsewhere["metadata"]["namespace"] = json!("other");
    server.apply(elsewhere);
    let (_, all) = api.call("GET", "/api/v1/configmaps", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
    server.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}));
    let (_, slices) = api
        .call("GET", "/apis/discovery.k8s.io/v1/endpointslices", None)
        .await;
    assert_eq!(slices["kind"], "EndpointSliceList");
    assert_eq!(slices["items"][0]["metadata"]["generation"], 1);
}

#[tokio::test]
async fn faults_stall_close_fail_and_hide() {
    let options = Options {
        bookmark_interval: Duration::from_millis(50),
        ..Options::default()
    };
    let server = ApiServer::start_with(options).await.unwrap();
    let api = Api::new(&server);
    let a = server.apply(cm("a", json!({}), json!({})));

    // Stalled: nothing at all, not even bookmarks; unstalled: it catches up.
    server.faults().stall_watches(true);
    let path = format!(
        "{CM}?watch=true&allowWatchBookmarks=true&resourceVersion={}",
        rv(&a)
    );
    let mut watch = api.watch(&path).await;
    server.apply(cm("b", json!({}), json!({})));
    assert!(watch.quiet_for(Duration::from_millis(300)).await);
    server.faults().stall_watches(false);
    assert_eq!(
        summary(&watch.next_change().await.unwrap()),
        ev("ADDED", "b")
    );

    // Closed: a clean end of the stream.
    server.faults().close_watches();
    assert!(watch.next_change().await.is_none());

    // Failed: the next n API requests, not discovery.
    server.faults().fail_next(2, 503);
    assert_eq!(api.call("GET", "/api/v1", None).await.0, 200);
    let (code, status) = api.call("GET", CM, None).await;
    assert_eq!(
        (code, status["kind"].as_str(), status["code"].as_u64()),
        (503, Some("Status"), Some(503))
    );
    assert_eq!(
        api.call("GET", &format!("{CM}?watch=true"), None).await.0,
        503
    );
    assert_eq!(api.call("GET", &format!("{CM}/a"), None).await.0, 200);

    // Hidden: 404, absent from lists, silent in watches; still stored.
    let mut watch = api
        .watch(&format!("{CM}?watch=true&resourceVersion={}", rv(&a)))
        .await;
    assert_eq!(summary(&watch.next().await.unwrap()), ev("ADDED", "b"));
    server
        .faults()
        .hide(Resource::ConfigMaps, "default", "a", true);
    assert_eq!(api.call("GET", &format!("{CM}/a"), None).await.0, 404);
    let (_, list) = api.call("GET", CM, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    server.apply(cm("a", json!({"changed": "yes"}), json!({})));
    server.apply(cm("c", json!({}), json!({})));
    assert_eq!(summary(&watch.next().await.unwrap()), ev("ADDED", "c"));
    assert!(server.get(Resource::ConfigMaps, "default", "a").is_some());
    server
        .faults()
        .hide(Resource::ConfigMaps, "default", "a", false);
    assert_eq!(api.call("GET", &format!("{CM}/a"), None).await.0, 200);

    let watches = server.requests().iter().filter(|r| r.is_watch()).count();
    assert_eq!(watches, 3);
}

#[tokio::test]
async fn watches_end_at_their_timeout() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    let mut watch = api
        .watch(&format!("{CM}?watch=true&timeoutSeconds=1"))
        .await;
    assert!(watch.next().await.is_none());
    server.shutdown().await;
}
