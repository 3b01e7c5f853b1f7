//! The dtab routes of namerd's HTTP API (`/api/1/dtabs`): JSON or dtab
//! text, `ETag` versions, `If-Match` compare-and-set and `?watch=true`
//! streams (the history routes are in `history.rs`). Depends on the store
//! trait only.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio_stream::wrappers::WatchStream;

use super::codec::{self, Media};
use super::error::ApiError;
use super::extract::{Author, DtabBody, IfMatch, Ns, Watch};
use super::{ApiState, set_etag, stream};
use crate::store::{Namespace, StoreError, Version, VersionedDtab};

/// How long a read waits for storage before serving the last value seen.
const READ_PATIENCE: Duration = Duration::from_secs(5);
/// The same, once the store has reported storage unreachable.
const STALE_READ_PATIENCE: Duration = Duration::from_millis(250);

pub(super) async fn list(
    State(state): State<ApiState>,
    Watch(watch): Watch,
) -> Result<Response, ApiError> {
    if let Some(lease) = watch {
        let names = WatchStream::new(state.store.watch_list()).map(|names| codec::names(&names));
        return Ok(stream(&state, Media::Json, names, lease));
    }
    let names = state.store.list().await?;
    Ok(codec::respond(
        StatusCode::OK,
        Media::Json,
        codec::names(&names),
    ))
}

pub(super) async fn get_dtab(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    Watch(watch): Watch,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let media = Media::negotiate(&headers);
    if let Some(lease) = watch {
        // Absent states are skipped, as namerd does.
        let dtabs = WatchStream::new(state.store.watch(&ns))
            .filter_map(move |v| futures::future::ready(v.map(|v| codec::encode(&v.dtab, media))));
        return Ok(stream(&state, media, dtabs, lease));
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

pub(super) async fn head_dtab(
    State(state): State<ApiState>,
    Ns(ns): Ns,
) -> Result<Response, ApiError> {
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

pub(super) async fn create(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    Author(meta): Author,
    DtabBody(dtab): DtabBody,
) -> Result<Response, ApiError> {
    match state.store.create(&ns, &dtab, &meta).await {
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
pub(super) async fn put(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    Author(meta): Author,
    IfMatch(expected): IfMatch,
    DtabBody(dtab): DtabBody,
) -> Result<Response, ApiError> {
    let version = match expected {
        Some(expected) => state.store.update(&ns, &dtab, &expected, &meta).await?,
        None => state.store.put(&ns, &dtab, &meta).await?,
    };
    Ok(no_content(&version))
}

pub(super) async fn delete(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    Author(meta): Author,
) -> Result<Response, ApiError> {
    state.store.delete(&ns, &meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// 204 with the new version, so a client need not read it back.
fn no_content(version: &Version) -> Response {
    let mut rsp = StatusCode::NO_CONTENT.into_response();
    set_etag(&mut rsp, version);
    rsp
}
