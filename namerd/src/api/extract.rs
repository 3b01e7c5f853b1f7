//! What the handlers read from a request, read one way for every route:
//! the `{ns}` of the path, validated; the `?watch=true` flag (with the
//! stream's lease against the client's limits); the client; and for dtab
//! writes their author, `If-Match` and the dtab in the body. They reject
//! with [`ApiError`], so an invalid namespace gets the same answer on every
//! route. Must not depend on the handlers.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use l5d_dtab::Dtab;

use super::access::Verified;
use super::error::ApiError;
use super::{ApiState, codec};
use crate::client::{Client, StreamLease};
use crate::interpreter::InterpretError;
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
/// rather than the current value: if it did, the stream, counted against
/// the client until the lease is dropped (429 if the client is at its
/// stream limit).
#[derive(Debug)]
pub(super) struct Watch(pub(super) Option<StreamLease>);

impl FromRequestParts<ApiState> for Watch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let params: Params = Query::from_request_parts(parts, state).await?;
        if params.get("watch").is_none_or(|v| v != "true") {
            return Ok(Watch(None));
        }
        let client = Client::of(&parts.extensions);
        let lease = state.interpreter.clients().open_stream(&client);
        Ok(Watch(Some(lease.map_err(InterpretError::from)?)))
    }
}

/// The client a request came from, for its limits.
#[derive(Debug, Clone)]
pub(super) struct Caller(pub(super) Client);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(Client::of(&parts.extensions)))
    }
}

/// Who writes, as the history records it: the authenticated identity, or
/// without one the client's address, followed by what else is known as a
/// note (the address, the `l5d-author` the client declared if printable):
/// `deployer (10.0.0.7:51234, l5d-author: alice)`,
/// `127.0.0.1:40312 (l5d-author: alice)`. A declared author is never
/// recorded as the author itself.
#[derive(Debug)]
pub(super) struct Author(pub(super) WriteMeta);

impl<S: Send + Sync> FromRequestParts<S> for Author {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Every routed request passed `access::authorize`, which put it there.
        let verified = parts.extensions.get::<Verified>().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request was not authorised",
        ))?;
        Ok(Author(WriteMeta {
            author: Some(author(verified, &parts.headers)),
        }))
    }
}

fn author(verified: &Verified, headers: &HeaderMap) -> String {
    let declared = headers
        .get("l5d-author")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256 && v.chars().all(|c| !c.is_control()));
    let addr = verified.caller.addr.map(|a| a.to_string());
    let mut notes = Vec::new();
    let who = match (&verified.identity, addr) {
        (Some(identity), addr) => {
            notes.extend(addr);
            identity.to_string()
        }
        (None, Some(addr)) => addr,
        (None, None) => "unknown".to_string(),
    };
    notes.extend(declared.map(|d| format!("l5d-author: {d}")));
    if notes.is_empty() {
        who
    } else {
        format!("{who} ({})", notes.join(", "))
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::auth::{Caller, Identity};

    #[test]
    fn the_author_is_the_identity_and_the_declared_one_a_note() {
        let verified = |identity: Option<&str>, addr: Option<&str>| Verified {
            caller: Caller {
                addr: addr.map(|a| a.parse().unwrap()),
                certificate: None,
            },
            identity: identity.map(|i| Identity::new(i).unwrap()),
        };
        let mut alice = HeaderMap::new();
        alice.insert("l5d-author", HeaderValue::from_static("alice"));
        let mut control = HeaderMap::new();
        control.insert("l5d-author", HeaderValue::from_static("a\tb"));
        let none = HeaderMap::new();
        let addr = Some("10.0.0.7:51234");
        let cases = [
            (
                verified(Some("deployer"), addr),
                &alice,
                "deployer (10.0.0.7:51234, l5d-author: alice)",
            ),
            (
                verified(Some("deployer"), addr),
                &none,
                "deployer (10.0.0.7:51234)",
            ),
            (
                verified(Some("deployer"), None),
                &alice,
                "deployer (l5d-author: alice)",
            ),
            (
                verified(None, Some("127.0.0.1:4000")),
                &alice,
                "127.0.0.1:4000 (l5d-author: alice)",
            ),
            (
                verified(None, Some("127.0.0.1:4000")),
                &control,
                "127.0.0.1:4000",
            ),
            (verified(None, None), &none, "unknown"),
        ];
        for (verified, headers, want) in cases {
            assert_eq!(author(&verified, headers), want);
        }
    }
}
