//! API errors and the `Status` objects that carry them, worded as the real
//! kube-apiserver words them, because clients (kube-rs, kubectl) branch on
//! `reason` and `code` and people compare messages.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::Resource;

/// An error answer: HTTP code, `reason`, message and optional details.
#[derive(Debug, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        ApiError {
            code,
            reason,
            message,
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn named(resource: Resource, name: &str) -> Value {
        let mut details = json!({ "name": name, "kind": resource.plural() });
        if !resource.group().is_empty() {
            details["group"] = json!(resource.group());
        }
        details
    }

    pub(crate) fn not_found(resource: Resource, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", resource.qualified());
        Self::new(404, "NotFound", message).with_details(Self::named(resource, name))
    }

    pub(crate) fn already_exists(resource: Resource, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", resource.qualified());
        Self::new(409, "AlreadyExists", message).with_details(Self::named(resource, name))
    }

    pub(crate) fn conflict(resource: Resource, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            resource.qualified()
        );
        Self::new(409, "Conflict", message).with_details(Self::named(resource, name))
    }

    /// A failed precondition on delete (`preconditions.resourceVersion`).
    pub(crate) fn precondition(resource: Resource, name: &str, detail: String) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {detail}",
            resource.qualified()
        );
        Self::new(409, "Conflict", message).with_details(Self::named(resource, name))
    }

    /// A validation failure: `Kind "name" is invalid: field: message`.
    pub(crate) fn invalid(
        resource: Resource,
        name: &str,
        field: &str,
        cause_reason: &str,
        detail: String,
    ) -> Self {
        let message = format!(
            "{} \"{name}\" is invalid: {field}: {detail}",
            resource.kind()
        );
        let mut details = json!({
            "name": name,
            "kind": resource.kind(),
            "causes": [{ "reason": cause_reason, "message": detail, "field": field }],
        });
        if !resource.group().is_empty() {
            details["group"] = json!(resource.group());
        }
        Self::new(422, "Invalid", message).with_details(details)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    /// A resource version older than the server keeps.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into())
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message.into())
    }

    pub(crate) fn not_found_path() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource".into())
            .with_details(json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }] }))
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
        )
    }

    /// A body in a media type the server does not decode; `accepted` lists
    /// the ones it does.
    pub(crate) fn unsupported_media_type(content_type: &str, accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: {accepted}"
            ),
        )
    }

    /// An injected failure with any status code: the reason the real server
    /// would give for that code.
    pub(crate) fn injected(code: u16) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "",
        };
        Self::new(code, reason, format!("injected failure ({code})"))
    }

    /// The `Status` object for this error.
    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.status())).into_response()
    }
}

/// The `Status` a successful delete answers with.
pub(crate) fn deleted(resource: Resource, name: &str, uid: &Value) -> Value {
    let mut details = json!({ "name": name, "kind": resource.plural(), "uid": uid });
    if !resource.group().is_empty() {
        details["group"] = json!(resource.group());
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
