//! Response classification, as Linkerd 1.x's response classifiers: every
//! response (or failure) of an attempt is a success, a failure that may be
//! retried, or a failure that may not. The class drives the success and
//! failure metrics, failure accrual and retries, and is stamped on the
//! response as `l5d-success-class`.
//!
//! Most classes are known from the response head. A gRPC response says
//! its status in the trailers unless it failed at once ("Trailers-Only"),
//! so for those the head says nothing and the class comes at the end of
//! the stream.

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::config::{ClassifierConfig, GrpcRetryable, Protocol, RetryableMethods};
use crate::error::ProxyError;
use crate::headers::{GRPC_STATUS, L5D_RETRYABLE, L5D_SUCCESS_CLASS};

/// The class of one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    Success,
    /// A failure that a retry may fix (the classifier says so, or the
    /// request is known not to have reached an application).
    RetryableFailure,
    NonRetryableFailure,
}

impl ResponseClass {
    pub fn is_success(self) -> bool {
        self == ResponseClass::Success
    }
}

impl ResponseClass {
    /// `l5d-success-class`, as Linkerd stamps it.
    pub fn header_value(self) -> HeaderValue {
        if self.is_success() {
            HeaderValue::from_static("1.0")
        } else {
            HeaderValue::from_static("0.0")
        }
    }
}

/// `grpc-status` UNAVAILABLE.
const UNAVAILABLE: u32 = 14;

/// A `service.responseClassifier`, ready to classify one router's
/// responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classifier {
    config: ClassifierConfig,
    protocol: Protocol,
}

impl Classifier {
    pub fn new(config: ClassifierConfig, protocol: Protocol) -> Self {
        Classifier { config, protocol }
    }

    /// Whether any response to `method` could be classified retryable:
    /// if not, a request is never held for a retry.
    pub fn may_retry(&self, method: &Method) -> bool {
        match &self.config {
            ClassifierConfig::Default | ClassifierConfig::AllSuccessful => false,
            ClassifierConfig::Status(methods) => retryable_method(*methods, method),
            ClassifierConfig::Grpc { retryable, .. } => *retryable != GrpcRetryable::Never,
        }
    }

    /// The class of a response from its head, or `None` when it is in the
    /// trailers (a gRPC response without `grpc-status` in its head). A
    /// downstream proxy's `l5d-success-class` decides success or failure,
    /// so that both hops count the same; whether a failure is retryable is
    /// still this classifier's call, or the downstream proxy's
    /// `l5d-retryable: true`.
    pub fn classify_head(
        &self,
        method: &Method,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<ResponseClass> {
        if status.is_server_error() && retryable_hint(headers) {
            return Some(ResponseClass::RetryableFailure);
        }
        let own = self.own_head(method, status, headers);
        match success_hint(headers) {
            None => own,
            Some(success) => Some(agree(success, own)),
        }
    }

    fn own_head(
        &self,
        method: &Method,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<ResponseClass> {
        let failure = |retryable: bool| {
            if retryable {
                ResponseClass::RetryableFailure
            } else {
                ResponseClass::NonRetryableFailure
            }
        };
        match &self.config {
            ClassifierConfig::AllSuccessful => Some(ResponseClass::Success),
            ClassifierConfig::Status(methods) => Some(if status.is_server_error() {
                failure(retryable_method(*methods, method))
            } else {
                ResponseClass::Success
            }),
            ClassifierConfig::Default => {
                if status.is_server_error() {
                    Some(ResponseClass::NonRetryableFailure)
                } else if self.protocol == Protocol::H2 && is_grpc(headers) {
                    grpc_status(headers).map(|code| self.grpc_class(code))
                } else {
                    Some(ResponseClass::Success)
                }
            }
            ClassifierConfig::Grpc { retryable, .. } => {
                if let Some(code) = grpc_status(headers) {
                    return Some(self.grpc_class(code));
                }
                if status != StatusCode::OK {
                    // The gRPC specification maps these to UNAVAILABLE.
                    let unavailable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                    return Some(failure(match retryable {
                        GrpcRetryable::Always => true,
                        GrpcRetryable::Never | GrpcRetryable::Unavailable => false,
                        GrpcRetryable::Compliant => unavailable,
                        GrpcRetryable::Codes(codes) => unavailable && codes.contains(&UNAVAILABLE),
                    }));
                }
                None
            }
        }
    }

    /// The class of a response whose head did not say, from its trailers
    /// (`None`: the stream ended without any, which gRPC calls a failure).
    pub fn classify_trailers(&self, trailers: Option<&HeaderMap>) -> ResponseClass {
        let Some(trailers) = trailers else {
            return ResponseClass::NonRetryableFailure;
        };
        let own = match grpc_status(trailers) {
            Some(code) => self.grpc_class(code),
            None => ResponseClass::NonRetryableFailure,
        };
        match success_hint(trailers) {
            None => own,
            Some(success) => agree(success, Some(own)),
        }
    }

    /// The class of an attempt that got no response. A request known not
    /// to have reached an application is retryable; one that may have is
    /// retryable only where the classifier retries failures of its method
    /// (Linkerd's HTTP classifiers do; its gRPC ones do not).
    pub fn classify_error(&self, method: &Method, e: &ProxyError) -> ResponseClass {
        if e.retryable() {
            return ResponseClass::RetryableFailure;
        }
        let retryable = match (&self.config, e) {
            (_, ProxyError::Timeout { .. } | ProxyError::DeadlineExceeded { .. }) => false,
            (ClassifierConfig::Status(methods), _) => retryable_method(*methods, method),
            _ => false,
        };
        if retryable {
            ResponseClass::RetryableFailure
        } else {
            ResponseClass::NonRetryableFailure
        }
    }

    fn grpc_class(&self, code: u32) -> ResponseClass {
        let (retryable, success) = match &self.config {
            ClassifierConfig::Grpc { retryable, success } => (retryable, success.as_slice()),
            _ => (&GrpcRetryable::Never, &[][..]),
        };
        if code == 0 || success.contains(&code) {
            return ResponseClass::Success;
        }
        let retry = match retryable {
            GrpcRetryable::Always => true,
            GrpcRetryable::Never => false,
            GrpcRetryable::Unavailable | GrpcRetryable::Compliant => code == UNAVAILABLE,
            GrpcRetryable::Codes(codes) => codes.contains(&code),
        };
        if retry {
            ResponseClass::RetryableFailure
        } else {
            ResponseClass::NonRetryableFailure
        }
    }
}

fn retryable_method(methods: RetryableMethods, method: &Method) -> bool {
    let read = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    match methods {
        RetryableMethods::None => false,
        RetryableMethods::Read => read,
        RetryableMethods::Idempotent => read || *method == Method::PUT || *method == Method::DELETE,
        RetryableMethods::All => true,
    }
}

/// A downstream proxy's `l5d-retryable: true`: the request never reached
/// an application.
fn retryable_hint(headers: &HeaderMap) -> bool {
    headers
        .get(L5D_RETRYABLE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
}

/// A downstream proxy's `l5d-success-class`: `1.0` is a success, anything
/// else (unparsable included) a failure.
fn success_hint(headers: &HeaderMap) -> Option<bool> {
    let class = headers.get(L5D_SUCCESS_CLASS)?;
    Some(
        std::str::from_utf8(class.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .is_some_and(|v| v >= 1.0),
    )
}

/// A downstream proxy's verdict, `success`, with this classifier's word
/// on whether a failure is retryable.
fn agree(success: bool, own: Option<ResponseClass>) -> ResponseClass {
    match (success, own) {
        (true, _) => ResponseClass::Success,
        (false, Some(ResponseClass::RetryableFailure)) => ResponseClass::RetryableFailure,
        (false, _) => ResponseClass::NonRetryableFailure,
    }
}

/// Whether a response (or request) is gRPC: `content-type:
/// application/grpc`, `application/grpc+proto`, ...
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `grpc-status`, if present and a number.
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    std::str::from_utf8(headers.get(GRPC_STATUS)?.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests;
