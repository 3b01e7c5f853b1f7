//! The namerd HTTP API (`io.l5d.httpController`): the dtab routes under
//! `/api/1/dtabs` (JSON or dtab text, `ETag` versions, `If-Match`
//! compare-and-set, `?watch=true` streams, plus the history of every
//! namespace so a bad change can be rolled back), and the interpreter routes
//! (`/api/1/bind`, `/addr`, `/resolve`, `/delegate`, `/bound-names`).
//!
//! Built by [`router`], so tests call it without sockets. It depends on the
//! store trait only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use l5d_dtab::Dtab;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use crate::interpreter::Interpreter;
use crate::store::{
    DtabStore, HistoryEntry, Namespace, StoreError, Version, VersionedDtab, WriteMeta,
};

mod codec;
mod names;

use codec::Media;

/// How long a read waits for storage before serving the last value seen.
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
/// The same, once the store has reported storage unreachable.
const STALE_READ_PATIENCE: std::time::Duration = std::time::Duration::from_millis(250);

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn DtabStore>,
    /// Binds and resolves for the interpreter routes.
    pub interpreter: Arc<Interpreter>,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Ends `?watch=true` streams when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The routes of the dtab API. Serve it with connection info
/// (`into_make_service_with_connect_info::<SocketAddr>`) so that writes
/// record their client.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/1/dtabs", get(list))
        .route("/api/1/dtabs/", get(list))
        .route(
            "/api/1/dtabs/{ns}",
            get(get_dtab)
                .head(head_dtab)
                .post(create)
                .put(put)
                .delete(delete),
        )
        .route("/api/1/dtabs/{ns}/history", get(history))
        .route("/api/1/dtabs/{ns}/history/{version}", get(history_version))
        .route("/api/1/bind/{ns}", get(names::bind))
        .route("/api/1/addr/{ns}", get(names::addr))
        .route("/api/1/resolve/{ns}", get(names::resolve))
        .route("/api/1/delegate/{ns}", get(names::delegate_ns))
        .route(
            "/api/1/delegate",
            get(names::delegate_get).post(names::delegate_post),
        )
        .route("/api/1/bound-names", get(names::bound_names))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let rsp = next.run(req).await;
    metrics::counter!(
        "namerd_http_requests_total",
        "method" => method,
        "status" => rsp.status().as_u16().to_string(),
    )
    .increment(1);
    rsp
}

type Params = Query<HashMap<String, String>>;

fn watching(params: &Params) -> bool {
    params.get("watch").is_some_and(|v| v == "true")
}

fn namespace(name: &str) -> Result<Namespace, ApiError> {
    Namespace::new(name).map_err(ApiError::Store)
}

// === handlers ===

async fn list(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    if watching(&params) {
        let names = WatchStream::new(state.store.watch_list()).map(|names| codec::names(&names));
        return Ok(stream(&state, Media::Json, names));
    }
    let names = state.store.list().await?;
    Ok(codec::respond(
        StatusCode::OK,
        Media::Json,
        codec::names(&names),
    ))
}

async fn get_dtab(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    let media = Media::negotiate(&headers);
    if watching(&params) {
        // Absent states are skipped, as namerd does.
        let dtabs = WatchStream::new(state.store.watch(&ns))
            .filter_map(move |v| futures::future::ready(v.map(|v| codec::encode(&v.dtab, media))));
        return Ok(stream(&state, media, dtabs));
    }
    let (current, stale) = read(&state, &ns).await?;
    let Some(current) = current else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let mut rsp = codec::respond(StatusCode::OK, media, codec::encode(&current.dtab, media));
    set_etag(&mut rsp, &current.version);
    if stale {
        rsp.headers_mut()
            .insert("l5d-stale", HeaderValue::from_static("true"));
    }
    Ok(rsp)
}

async fn head_dtab(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    let Some(current) = read(&state, &ns).await?.0 else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let mut rsp = StatusCode::OK.into_response();
    set_etag(&mut rsp, &current.version);
    Ok(rsp)
}

/// Reads from storage; while storage is unreachable, serves the last value
/// this replica saw and says it is stale.
async fn read(state: &ApiState, ns: &Namespace) -> Result<(Option<VersionedDtab>, bool), ApiError> {
    // While the store already knows storage is down, don't make every reader
    // wait out a connection timeout before it gets the last good value.
    let patience = if state.store.health().stale {
        STALE_READ_PATIENCE
    } else {
        READ_PATIENCE
    };
    let read = tokio::time::timeout(patience, state.store.get(ns))
        .await
        .unwrap_or_else(|_| Err(StoreError::unavailable("no answer from storage in time")));
    match read {
        Ok(v) => Ok((v, false)),
        Err(StoreError::Unavailable { message }) => match state.store.watch(ns).borrow().clone() {
            Some(last) => {
                tracing::warn!(%ns, %message, "storage unavailable; serving the last known dtab");
                Ok((Some(last), true))
            }
            None => Err(ApiError::Store(StoreError::Unavailable { message })),
        },
        Err(e) => Err(e.into()),
    }
}

async fn create(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    let dtab = body_dtab(&state, &headers, body).await?;
    match state
        .store
        .create(&ns, &dtab, &author(&headers, peer))
        .await
    {
        Ok(version) => Ok(no_content(&version)),
        Err(e @ StoreError::AlreadyExists { .. }) => {
            // Say which version is there, as a failed compare-and-set does.
            let mut rsp = ApiError::Store(e).into_response();
            if let Ok(Some(current)) = state.store.get(&ns).await {
                set_etag(&mut rsp, &current.version);
            }
            Ok(rsp)
        }
        Err(e) => Err(e.into()),
    }
}

/// `PUT` with `If-Match` is compare-and-set; without it, namerd's upsert.
async fn put(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    let expected = match headers.get(header::IF_MATCH) {
        Some(v) => Some(Version::from_etag(
            v.to_str().map_err(|_| ApiError::BadIfMatch)?,
        )?),
        None => None,
    };
    let dtab = body_dtab(&state, &headers, body).await?;
    let meta = author(&headers, peer);
    let version = match expected {
        Some(expected) => state.store.update(&ns, &dtab, &expected, &meta).await?,
        None => state.store.put(&ns, &dtab, &meta).await?,
    };
    Ok(no_content(&version))
}

async fn delete(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    state.store.delete(&ns, &author(&headers, peer)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn history(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    let entries = state.store.history(&ns).await?;
    if entries.is_empty() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let entries = entries.iter().map(HistoryJson::from).collect::<Vec<_>>();
    let json = serde_json::to_string(&entries).expect("history serializes");
    Ok(codec::respond(
        StatusCode::OK,
        Media::Json,
        format!("{json}\n"),
    ))
}

/// One history entry on the wire.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson {
    version: String,
    op: &'static str,
    committed_at: String,
    author: Option<String>,
    dtab: Option<Vec<codec::DentryJson>>,
}

impl From<&HistoryEntry> for HistoryJson {
    fn from(e: &HistoryEntry) -> Self {
        HistoryJson {
            version: e.version.to_etag(),
            op: e.op.as_str(),
            committed_at: humantime::format_rfc3339_millis(e.committed_at).to_string(),
            author: e.author.clone(),
            dtab: e.dtab.as_ref().map(codec::dentries_json),
        }
    }
}

/// One past version, to inspect or roll back to.
async fn history_version(
    State(state): State<ApiState>,
    Path((ns, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ns = namespace(&ns)?;
    let version = Version::from_etag(&version)?;
    let media = Media::negotiate(&headers);
    let Some(entry) = state.store.version(&ns, &version).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let Some(dtab) = entry.dtab else {
        let msg = format!("version {version} of {ns} is its deletion; it has no dtab");
        return Ok((StatusCode::GONE, msg).into_response());
    };
    let mut rsp = codec::respond(StatusCode::OK, media, codec::encode(&dtab, media));
    set_etag(&mut rsp, &entry.version);
    Ok(rsp)
}

// === helpers ===

/// A chunked response of one document per value, ended at shutdown.
fn stream(
    state: &ApiState,
    media: Media,
    docs: impl futures::Stream<Item = String> + Send + 'static,
) -> Response {
    let mut shutdown = state.shutdown.clone();
    let done = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let body = docs.take_until(done).map(Ok::<_, std::convert::Infallible>);
    let mut rsp = Response::new(Body::from_stream(body));
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    rsp
}

fn set_etag(rsp: &mut Response, version: &Version) {
    if let Ok(v) = HeaderValue::from_str(&version.to_etag()) {
        rsp.headers_mut().insert(header::ETAG, v);
    }
}

/// 204 with the new version, so a client need not read it back.
fn no_content(version: &Version) -> Response {
    let mut rsp = StatusCode::NO_CONTENT.into_response();
    set_etag(&mut rsp, version);
    rsp
}

/// Who wrote: the `l5d-author` header if it is printable, else the client.
fn author(headers: &HeaderMap, peer: SocketAddr) -> WriteMeta {
    let declared = headers
        .get("l5d-author")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256 && v.chars().all(|c| !c.is_control()));
    WriteMeta {
        author: Some(match declared {
            Some(name) => format!("{name} ({peer})"),
            None => peer.to_string(),
        }),
    }
}

async fn body_dtab(state: &ApiState, headers: &HeaderMap, body: Body) -> Result<Dtab, ApiError> {
    let limit = state.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    codec::decode(headers.get(header::CONTENT_TYPE), &bytes).map_err(ApiError::BadBody)
}

/// Everything a request can fail with, and its status.
#[derive(Debug)]
enum ApiError {
    Store(StoreError),
    BadBody(String),
    BadIfMatch,
    TooLarge { limit: usize },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match &self {
            ApiError::BadBody(msg) => (StatusCode::BAD_REQUEST, msg.clone()),
            ApiError::BadIfMatch => (
                StatusCode::BAD_REQUEST,
                "If-Match must be an ASCII ETag".to_string(),
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body exceeds the limit of {limit} bytes"),
            ),
            ApiError::Store(e) => {
                let status = match e {
                    StoreError::InvalidNamespace { .. } | StoreError::InvalidVersion { .. } => {
                        StatusCode::BAD_REQUEST
                    }
                    StoreError::AlreadyExists { .. } => StatusCode::CONFLICT,
                    // namerd answers 404 with an empty body.
                    StoreError::NotFound { .. } => return StatusCode::NOT_FOUND.into_response(),
                    StoreError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
                    StoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    StoreError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                    StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                };
                (status, e.to_string())
            }
        };
        if status.is_server_error() {
            tracing::warn!(%status, error = %msg, "dtab API request failed");
        }
        let mut rsp = (status, msg).into_response();
        // A conflict says what the version is now, so the client can show it.
        if let ApiError::Store(StoreError::VersionMismatch { current, .. }) = &self {
            set_etag(&mut rsp, current);
        }
        rsp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dtab no store can hold is the client's to shrink: 413, like a
    /// body over `maxBodyBytes`, not a 503 that invites retries.
    #[test]
    fn a_dtab_too_large_to_store_is_413() {
        let error = ApiError::Store(StoreError::TooLarge {
            ns: Namespace::new("big").unwrap(),
            storage: "a Kubernetes ConfigMap",
            size: 2,
            limit: 1,
        });
        assert_eq!(
            error.into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
