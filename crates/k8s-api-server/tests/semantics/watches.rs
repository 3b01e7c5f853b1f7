//! Watches: resuming from a version, bookmarks, 410 after compaction,
//! selectors (leaving one is a deletion) and timeouts.

use std::time::Duration;

use l5d_k8s_api_server::{ApiServer, Options, Resource};
use serde_json::{Value, json};

use crate::client::{Api, CM, cm, ev, rv, summary};

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
async fn watches_end_at_their_timeout() {
    let server = ApiServer::start().await.unwrap();
    let api = Api::new(&server);
    let mut watch = api
        .watch(&format!("{CM}?watch=true&timeoutSeconds=1"))
        .await;
    assert!(watch.next().await.is_none());
    server.shutdown().await;
}
