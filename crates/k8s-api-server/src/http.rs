//! The HTTP face of the server: request recording and injected failures as
//! middleware, discovery, and one dispatcher for the resource paths
//! (`/api/v1[/namespaces/{ns}]/{plural}[/{name}]` and the same under
//! `/apis/{group}/{version}`), which routes to reads, watches and writes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Uri, header};
use serde::Deserialize;

use crate::faults::lock;
use crate::status::ApiError;
use crate::{RecordedRequest, Resource, Shared};

mod discovery;
mod openapi;
mod read;
mod table;
mod watch;
mod write;

/// What a resource path names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) resource: Resource,
    /// `None` for the all-namespaces collection.
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
}

impl Target {
    /// Parses `/api/v1/...` and `/apis/{group}/{version}/...` resource paths.
    fn parse(path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (api_version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ((*version).to_owned(), rest),
            ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
            _ => return None,
        };
        let (namespace, plural, name) = match rest {
            [plural] => (None, *plural, None),
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
            _ => return None,
        };
        let resource = Resource::from_path(&api_version, plural)?;
        Some(Target {
            resource,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        })
    }
}

/// The query parameters of list, watch and write requests.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Params {
    watch: Option<String>,
    resource_version: Option<String>,
    resource_version_match: Option<String>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    limit: Option<i64>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
    timeout_seconds: Option<u64>,
    allow_watch_bookmarks: Option<String>,
    send_initial_events: Option<String>,
    dry_run: Option<String>,
    field_validation: Option<String>,
}

fn flag(value: &Option<String>) -> bool {
    matches!(value.as_deref(), Some("true" | "1"))
}

/// Builds the router for a server listening on `addr`.
pub(crate) fn router(shared: Arc<Shared>, addr: SocketAddr) -> Router {
    Router::new()
        .merge(discovery::routes(addr))
        .merge(openapi::routes())
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}

/// Records every request and answers injected failures for API requests.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    tracing::debug!(method = %request.method(), %path, headers = ?request.headers(), "request");
    lock(&shared.requests).push(RecordedRequest {
        method: request.method().to_string(),
        path,
    });
    if Target::parse(request.uri().path()).is_some()
        && let Some(code) = shared.faults.take_failure()
    {
        return ApiError::injected(code).into_response();
    }
    next.run(request).await
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(target) = Target::parse(uri.path()) else {
        return ApiError::not_found_path().into_response();
    };
    let params = match axum::extract::Query::<Params>::try_from_uri(&uri) {
        Ok(query) => query.0,
        Err(error) => return ApiError::bad_request(error.body_text()).into_response(),
    };
    let table = wants_table(&headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Only JSON bodies are decoded: the protobuf encoding of the built-in
    // types would need their generated messages (see the crate docs).
    if matches!(method, Method::POST | Method::PUT)
        && !content_type.is_empty()
        && !content_type.starts_with("application/json")
    {
        return ApiError::unsupported_media_type(content_type, "application/json").into_response();
    }
    let result = match (&method, &target.name) {
        (&Method::GET, None) if flag(&params.watch) => watch::watch(shared, target, &params, table),
        (&Method::GET, None) => read::list(&shared, &target, &params, table),
        (&Method::GET, Some(name)) => read::get(&shared, &target, name, table),
        (&Method::POST, None) => match &target.namespace {
            Some(ns) => write::create(&shared, target.resource, ns, &params, &body),
            None => Err(ApiError::method_not_allowed()),
        },
        (&Method::PUT, Some(name)) => write::replace(&shared, &target, name, &params, &body),
        (&Method::PATCH, Some(name)) => {
            write::patch(&shared, &target, name, content_type, &params, &body)
        }
        (&Method::DELETE, Some(name)) => write::delete(&shared, &target, name, &params, &body),
        _ => Err(ApiError::method_not_allowed()),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Whether the client asked for server-side printing (`kubectl get`).
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=Table"))
}

/// A JSON response with a status code.
pub(crate) fn json(code: http::StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).expect("a JSON value serialises");
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}
