//! Every way a request to namerd's HTTP API fails, and the one response
//! each maps to: the status namerd answers with, and the message as a
//! plain-text body (a missing namespace is namerd's bare 404; a request
//! without credentials also gets `WWW-Authenticate: Bearer`).
//!
//! Handlers of the dtab and the interpreter routes return it alike, and
//! the extractors in `extract.rs` reject with it. Must not depend on the
//! handlers.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::set_etag;
use crate::auth::Refusal;
use crate::interpreter::InterpretError;
use crate::store::{Namespace, StoreError, Version};

#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Interpret(#[from] InterpretError),
    /// A parameter or body that did not parse; the message says why.
    #[error("{0}")]
    BadRequest(String),
    #[error("If-Match must be an ASCII ETag")]
    BadIfMatch,
    #[error("the request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("expected application/json")]
    NotJson,
    /// The version asked for is the namespace's deletion.
    #[error("version {version} of {ns} is its deletion; it has no dtab")]
    Deleted { ns: Namespace, version: Version },
    /// axum could not extract the route's parameters; its answer is kept.
    #[error(transparent)]
    Path(#[from] PathRejection),
    #[error(transparent)]
    Query(#[from] QueryRejection),
    /// No identity, or one without the permission.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl ApiError {
    /// The status of a failure whose response is the status and the message.
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadIfMatch => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Deleted { .. } => StatusCode::GONE,
            ApiError::Store(e) => match e {
                StoreError::InvalidNamespace { .. } | StoreError::InvalidVersion { .. } => {
                    StatusCode::BAD_REQUEST
                }
                StoreError::AlreadyExists { .. } => StatusCode::CONFLICT,
                StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
                StoreError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
                StoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                StoreError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            },
            ApiError::Interpret(e) => match e {
                InterpretError::Name(_) | InterpretError::KeyTooLarge { .. } => {
                    StatusCode::BAD_REQUEST
                }
                InterpretError::Limit(_) | InterpretError::Evicted => StatusCode::TOO_MANY_REQUESTS,
                InterpretError::TooManyBindings { .. }
                | InterpretError::Timeout
                | InterpretError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Path(e) => e.status(),
            ApiError::Query(e) => e.status(),
            ApiError::Refused(r) if r.is_unauthenticated() => StatusCode::UNAUTHORIZED,
            ApiError::Refused(_) => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            // namerd answers 404 with an empty body.
            ApiError::Store(StoreError::NotFound { .. }) => {
                return StatusCode::NOT_FOUND.into_response();
            }
            ApiError::Path(e) => return e.into_response(),
            ApiError::Query(e) => return e.into_response(),
            _ => {}
        }
        let status = self.status();
        let msg = self.to_string();
        // The interpreter routes' failures are a binding's, not storage's,
        // and were never logged here.
        if status.is_server_error() && !matches!(self, ApiError::Interpret(_)) {
            tracing::warn!(%status, error = %msg, "dtab API request failed");
        }
        let mut rsp = (status, msg).into_response();
        // A conflict says what the version is now, so the client can show it.
        if let ApiError::Store(StoreError::VersionMismatch { current, .. }) = &self {
            set_etag(&mut rsp, current);
        }
        if status == StatusCode::UNAUTHORIZED
            && let ApiError::Refused(refusal) = &self
        {
            rsp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge(refusal));
        }
        rsp
    }
}

/// RFC 6750's challenge: which scheme, and what was wrong with the
/// credentials that were sent.
fn challenge(refusal: &Refusal) -> HeaderValue {
    HeaderValue::from_static(match refusal {
        Refusal::InvalidToken => r#"Bearer realm="namerd", error="invalid_token""#,
        Refusal::MalformedCredentials => r#"Bearer realm="namerd", error="invalid_request""#,
        _ => r#"Bearer realm="namerd""#,
    })
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
