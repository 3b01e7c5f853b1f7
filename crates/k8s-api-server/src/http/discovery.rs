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
    let groups = json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": [group("discovery.k8s.io")] });
    let discovery_group = {
        let mut g = group("discovery.k8s.io");
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    };
    Router::new()
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
            "/apis/discovery.k8s.io",
            get(move || async move { json(StatusCode::OK, &discovery_group) }),
        )
        .route(
            "/api/v1",
            get(|| async { json(StatusCode::OK, &resources("v1")) }),
        )
        .route(
            "/apis/discovery.k8s.io/v1",
            get(|| async { json(StatusCode::OK, &resources("discovery.k8s.io/v1")) }),
        )
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
