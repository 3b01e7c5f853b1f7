//! The API semantics over HTTP with a plain client: optimistic concurrency,
//! watches that resume and expire, bookmarks, selectors, pagination,
//! opaque versions and injected faults. Waits are bounded by timeouts on
//! the next event, never sleeps.

use std::time::Duration;

use l5d_k8s_api_server::{ApiServer, Options, Resource};
use serde_json::json;

use client::{Api, CM, cm, ev, rv, summary};

#[path = "semantics/client.rs"]
mod client;
#[path = "semantics/watches.rs"]
mod watches;

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

    // Unknown fields: rejected under strict validation, dropped otherwise.
    let mut extra = cm("extra", json!({}), json!({}));
    extra["spec"] = json!({"x": 1});
    let (code, status) = api
        .call(
            "POST",
            &format!("{CM}?fieldValidation=Strict"),
            Some(extra.clone()),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "strict decoding error: unknown field \"spec\""
    );
    let (code, created) = api.call("POST", CM, Some(extra)).await;
    assert_eq!(code, 201);
    assert!(created.get("spec").is_none());

    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"}});
    let path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    let (code, status) = api.call("POST", path, Some(slice)).await;
    assert_eq!(
        (code, status["details"]["causes"][0]["field"].as_str()),
        (422, Some("addressType"))
    );
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

    // Ingresses, in every namespace and in one, watched from a list's
    // version like the other types; a spec change bumps the generation.
    let ing = |ns: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"rules": [{"host": host}], "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}})
    };
    server.apply(ing("default", "a.example"));
    server.apply(ing("other", "b.example"));
    const ING: &str = "/apis/networking.k8s.io/v1";
    let (_, all) = api.call("GET", &format!("{ING}/ingresses"), None).await;
    assert_eq!(all["kind"], "IngressList");
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, one) = api
        .call("GET", &format!("{ING}/namespaces/other/ingresses"), None)
        .await;
    assert_eq!(one["items"][0]["spec"]["rules"][0]["host"], "b.example");
    let version = all["metadata"]["resourceVersion"].as_str().unwrap();
    let mut watch = api
        .watch(&format!(
            "{ING}/ingresses?watch=true&resourceVersion={version}"
        ))
        .await;
    let changed = server.apply(ing("default", "c.example"));
    assert_eq!(changed["metadata"]["generation"], 2);
    assert_eq!(
        summary(&watch.next_change().await.unwrap()),
        ev("MODIFIED", "web")
    );
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

    // Closed: a clean end of the stream, and no longer counted open.
    assert_eq!(server.faults().open_watches(), 1);
    server.faults().close_watches();
    assert!(watch.next_change().await.is_none());
    assert_eq!(server.faults().open_watches(), 0);

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
