//! What the handlers read from a request, read one way for every route:
//! the `{ns}` of the path, validated; the `?watch=true` flag; and for dtab
//! writes their author, `If-Match` and the dtab in the body. They reject
//! with [`ApiError`], so an invalid namespace gets the same answer on every
//! route. Must not depend on the handlers.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use l5d_dtab::Dtab;

use super::error::ApiError;
use super::{ApiState, codec};
use crate::store::{Namespace, Version, WriteMeta};

/// The query string as a map, for routes that read more than `watch`.
pub(super) type Params = Query<HashMap<String, String>>;

/// The route's `{ns}`, a valid [`Namespace`] (400 otherwise, with the
/// store's message).
#[derive(Debug)]
pub(super) struct Ns(pub(super) Namespace);

/// The one path parameter [`Ns`] reads; routes may have others.
#[derive(Debug, serde::Deserialize)]
struct NsParam {
    ns: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ns {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(NsParam { ns }) = Path::from_request_parts(parts, state).await?;
        Ok(Ns(Namespace::new(&ns)?))
    }
}

/// Whether the client asked for a stream of every change (`?watch=true`)
/// rather than the current value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watch(pub(super) bool);

impl<S: Send + Sync> FromRequestParts<S> for Watch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params: Params = Query::from_request_parts(parts, state).await?;
        Ok(Watch(params.get("watch").is_some_and(|v| v == "true")))
    }
}

/// Who writes: the `l5d-author` header if it is printable, and the client's
/// address (the server must be served with connection info).
#[derive(Debug)]
pub(super) struct Author(pub(super) WriteMeta);

impl<S: Send + Sync> FromRequestParts<S> for Author {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::from_request_parts(parts, state).await?;
        Ok(Author(author(&parts.headers, peer)))
    }
}

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

/// The version an `If-Match` header expects, if there is one.
#[derive(Debug)]
pub(super) struct IfMatch(pub(super) Option<Version>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let etag = value.to_str().map_err(|_| ApiError::BadIfMatch)?;
        Ok(IfMatch(Some(Version::from_etag(etag)?)))
    }
}

/// The dtab a write carries, in either encoding, at most `max_body_bytes`
/// long (413 otherwise, before reading a body declared too large).
#[derive(Debug)]
pub(super) struct DtabBody(pub(super) Dtab);

impl FromRequest<ApiState> for DtabBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        let limit = state.max_body_bytes;
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::TooLarge { limit });
        }
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::TooLarge { limit })?;
        let dtab = codec::decode(parts.headers.get(header::CONTENT_TYPE), &bytes)
            .map_err(ApiError::BadRequest)?;
        Ok(DtabBody(dtab))
    }
}
