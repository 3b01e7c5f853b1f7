//! The smallest OpenAPI v3 documents that let kubectl choose server-side
//! field validation: kubectl 1.32 `create -f` / `replace -f` read
//! `/openapi/v3` and the group-version document, and look for a PATCH
//! operation tagged with the object's group-version-kind that takes a
//! `fieldValidation` query parameter. Without them it would download the
//! full schemas for client-side validation. No schemas are served.

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

use super::json;
use crate::{Resource, Shared};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/openapi/v3",
            get(|| async { json(StatusCode::OK, &root()) }),
        )
        .route(
            "/openapi/v3/api/v1",
            get(|| async { json(StatusCode::OK, &document("v1")) }),
        )
        .route(
            "/openapi/v3/apis/{group}/{version}",
            get(
                |Path((group, version)): Path<(String, String)>| async move {
                    let doc = document(&format!("{group}/{version}"));
                    match doc["paths"].as_object().is_some_and(|p| !p.is_empty()) {
                        true => json(StatusCode::OK, &doc),
                        false => json(StatusCode::NOT_FOUND, &json!({})),
                    }
                },
            ),
        )
}

fn path_of(group_version: &str) -> String {
    match group_version {
        "v1" => "api/v1".into(),
        gv => format!("apis/{gv}"),
    }
}

fn root() -> Value {
    let mut paths = serde_json::Map::new();
    let versions = Resource::groups().into_iter().map(|g| format!("{g}/v1"));
    for gv in std::iter::once("v1".to_string()).chain(versions) {
        let path = path_of(&gv);
        let url = format!("/openapi/v3/{path}?hash=l5d");
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

fn document(group_version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for resource in Resource::ALL
        .into_iter()
        .filter(|r| r.api_version() == group_version)
    {
        let path = format!(
            "/{}/namespaces/{{namespace}}/{}/{{name}}",
            path_of(group_version),
            resource.plural()
        );
        let gvk = json!({
            "group": resource.group(),
            "version": "v1",
            "kind": resource.kind(),
        });
        let field_validation = json!({
            "name": "fieldValidation",
            "in": "query",
            "description": "Ignore, Warn or Strict handling of unknown or duplicate fields.",
            "schema": { "type": "string", "uniqueItems": true },
        });
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", resource.kind()),
                    "parameters": [field_validation],
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                },
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.32.4" },
        "paths": paths,
        "components": {},
    })
}
