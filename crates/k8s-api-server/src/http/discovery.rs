//! Discovery as kubectl and client-go read it: `/version`, the legacy
//! group lists (`/api`, `/apis`) and per-version resource lists. Aggregated
//! discovery (`application/json;g=apidiscovery.k8s.io;v=v2`) is not
//! served: answering the legacy documents with `application/json` is how an
//! older real server answers, and client-go falls back to them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};

use super::json;
use crate::{Resource, Shared};

pub(super) fn routes(addr: SocketAddr) -> Router<Arc<Shared>> {
    let api = json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string() }],
    });
    let all: Vec<Value> = Resource::groups().into_iter().map(group).collect();
    let groups = json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": all });
    let mut router = Router::new()
        .route(
            "/version",
            get(|| async { json(StatusCode::OK, &version()) }),
        )
        .route(
            "/api",
            get(move || async move { json(StatusCode::OK, &api) }),
        )
        .route(
            "/apis",
            get(move || async move { json(StatusCode::OK, &groups) }),
        )
        .route(
            "/api/v1",
            get(|| async { json(StatusCode::OK, &resources("v1")) }),
        );
    // Each named group: its APIGroup document and its v1 resource list.
    for name in Resource::groups() {
        let mut one = group(name);
        one["kind"] = json!("APIGroup");
        one["apiVersion"] = json!("v1");
        let list = resources(&format!("{name}/v1"));
        router = router
            .route(
                &format!("/apis/{name}"),
                get(move || async move { json(StatusCode::OK, &one) }),
            )
            .route(
                &format!("/apis/{name}/v1"),
                get(move || async move { json(StatusCode::OK, &list) }),
            );
    }
    router
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "l5d-k8s-api-server",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group(name: &str) -> Value {
    let version = json!({ "groupVersion": format!("{name}/v1"), "version": "v1" });
    json!({ "name": name, "versions": [version], "preferredVersion": version })
}

/// The `APIResourceList` of a group version.
fn resources(group_version: &str) -> Value {
    let resources: Vec<Value> = Resource::ALL
        .into_iter()
        .filter(|r| r.api_version() == group_version)
        .map(|r| {
            let mut entry = json!({
                "name": r.plural(),
                "singularName": r.singular(),
                "namespaced": true,
                "kind": r.kind(),
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            });
            if !r.short_names().is_empty() {
                entry["shortNames"] = json!(r.short_names());
            }
            if r == Resource::Services {
                entry["categories"] = json!(["all"]);
            }
            entry
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}
