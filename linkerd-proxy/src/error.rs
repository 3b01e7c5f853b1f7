//! Every error the proxy generates, classified once: its HTTP status, its
//! `l5d-err` text, its metric label, and whether the request is known not
//! to have reached an application (so a caller may safely retry it).
//!
//! It sits below the request path: the client, the balancer and the router
//! produce these errors, and it depends on nothing of theirs (only on the
//! header names of [`crate::headers`]), so its response body is a plain
//! [`Full`] that the router wraps beside an upstream's body.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use l5d_dtab::Path;

use crate::headers::{L5D_ERR, L5D_RETRYABLE};
use crate::overrides::BadDtab;

/// Why the proxy could not get a response from upstream.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("Unknown destination: {0}")]
    Unidentified(String),
    #[error(transparent)]
    BadDtab(#[from] BadDtab),
    /// RFC 9112 3.2 and RFC 9113 8.3.1: the request's authority is
    /// ambiguous (two `Host` lines, or `Host` disagreeing with
    /// `:authority`), so routing and the application could disagree.
    #[error("Bad Host: {0}")]
    BadHost(String),
    #[error(
        "Maximum call depth exceeded: {hops} proxies in Via, at most {limit}; is there a routing loop?"
    )]
    CallDepth { hops: usize, limit: usize },
    #[error("Unable to route {name}: {why}")]
    NoRoute { name: Path, why: String },
    /// On a router with the `io.l5d.ingress` identifier, a name bound to
    /// nothing: no Ingress rule matches the request's host and path.
    #[error("No Ingress rule matches {name}")]
    NoIngressRule { name: Path },
    #[error("No hosts are available for {name} (client {id}): {why}")]
    NoEndpoints { name: Path, id: Path, why: String },
    #[error("Binding {name} timed out after {timeout:?}")]
    BindingTimeout { name: Path, timeout: Duration },
    /// No route could be made for a new name: the router's route cache is
    /// at a bound (`bindingCache`) and no route in it could be evicted,
    /// every one having requests in flight. Usage is as the refusal found
    /// it.
    #[error(
        "Cannot route {name}: the route cache is full ({routes} routes of bindingCache.paths {paths}, \
         {key_bytes} key bytes of bindingCache.maxKeyBytes {max_key_bytes}) and every route in it \
         has requests in flight; retry later"
    )]
    RouteCacheFull {
        name: Path,
        routes: usize,
        paths: usize,
        key_bytes: usize,
        max_key_bytes: usize,
    },
    /// A name and local dtab whose key alone exceeds the route cache's
    /// byte bound: no eviction could make room, now or later.
    #[error(
        "Cannot route {name}: its name and local dtab take {bytes} bytes, more than the route \
         cache's bindingCache.maxKeyBytes ({max_key_bytes})"
    )]
    RouteKeyTooLarge {
        name: Path,
        bytes: usize,
        max_key_bytes: usize,
    },
    #[error("Connection to {addr} failed: {message}")]
    Connect { addr: String, message: String },
    #[error("Request to {addr} failed: {message}")]
    Upstream { addr: String, message: String },
    #[error("Request to {name} exceeded the total timeout of {timeout:?}")]
    Timeout { name: Path, timeout: Duration },
    /// One attempt's `requestAttemptTimeoutMs` passed before the response
    /// head: the request may have reached the application.
    #[error("Request to {addr} exceeded the attempt timeout of {timeout:?}")]
    AttemptTimeout { addr: String, timeout: Duration },
    /// The request's deadline (`l5d-ctx-deadline` from an upstream proxy,
    /// `grpc-timeout`) had passed: it is failed, not sent.
    #[error("Request to {name} exceeded its deadline ({header})")]
    DeadlineExceeded { name: Path, header: &'static str },
    #[error("Too many requests in flight on this server")]
    Overloaded,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unidentified(_)
            | ProxyError::BadDtab(_)
            | ProxyError::BadHost(_)
            | ProxyError::CallDepth { .. }
            | ProxyError::RouteKeyTooLarge { .. } => StatusCode::BAD_REQUEST,
            ProxyError::NoIngressRule { .. } => StatusCode::NOT_FOUND,
            ProxyError::BindingTimeout { .. }
            | ProxyError::RouteCacheFull { .. }
            | ProxyError::Timeout { .. }
            | ProxyError::AttemptTimeout { .. }
            | ProxyError::DeadlineExceeded { .. }
            | ProxyError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::NoRoute { .. }
            | ProxyError::NoEndpoints { .. }
            | ProxyError::Connect { .. }
            | ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The label of `requests_total{class=...}` and `errors_total{kind=...}`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::Unidentified(_) => "unidentified",
            ProxyError::BadDtab(BadDtab::Malformed { .. }) => "bad_dtab",
            ProxyError::BadDtab(BadDtab::ToAddress { .. }) => "override_to_address",
            ProxyError::BadHost(_) => "bad_host",
            ProxyError::CallDepth { .. } => "call_depth",
            ProxyError::NoRoute { .. } => "no_route",
            ProxyError::NoIngressRule { .. } => "no_ingress_rule",
            ProxyError::NoEndpoints { .. } => "no_endpoints",
            ProxyError::BindingTimeout { .. } => "binding_timeout",
            ProxyError::RouteCacheFull { .. } => "route_cache_full",
            ProxyError::RouteKeyTooLarge { .. } => "route_key_too_large",
            ProxyError::Connect { .. } => "connect",
            ProxyError::Upstream { .. } => "upstream",
            ProxyError::Timeout { .. } => "timeout",
            ProxyError::AttemptTimeout { .. } => "attempt_timeout",
            ProxyError::DeadlineExceeded { .. } => "deadline_exceeded",
            ProxyError::Overloaded => "overloaded",
        }
    }

    /// Every value of [`kind`](Self::kind), for counters registered up
    /// front (the `kind` label of `proxy_errors_total`).
    pub const KINDS: &'static [&'static str] = &[
        "unidentified",
        "bad_dtab",
        "override_to_address",
        "bad_host",
        "call_depth",
        "no_route",
        "no_ingress_rule",
        "no_endpoints",
        "binding_timeout",
        "route_cache_full",
        "route_key_too_large",
        "connect",
        "upstream",
        "timeout",
        "attempt_timeout",
        "deadline_exceeded",
        "overloaded",
    ];

    /// True when the request certainly never reached an application and
    /// another attempt could fare better (not a refusal of the request
    /// itself: a 400, or the ingress's 404).
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            ProxyError::Upstream { .. }
                | ProxyError::Timeout { .. }
                | ProxyError::AttemptTimeout { .. }
                | ProxyError::DeadlineExceeded { .. }
                | ProxyError::NoIngressRule { .. }
        ) && self.status() != StatusCode::BAD_REQUEST
    }

    /// The response the client sees: status, `l5d-err` (URL-encoded, as
    /// Linkerd's), `l5d-retryable` when safe, and the message as the body.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let message = self.to_string();
        let mut rsp = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
        *rsp.status_mut() = self.status();
        let headers = rsp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&url_encode(&message)) {
            headers.insert(L5D_ERR, v);
        }
        if self.retryable() {
            headers.insert(L5D_RETRYABLE, HeaderValue::from_static("true"));
        }
        rsp
    }
}

/// An error and its sources, on one line: the message of a
/// [`ProxyError::Connect`] or [`ProxyError::Upstream`] made from hyper's
/// errors, whose useful part is often a source.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    push_sources(&mut out, e.source());
    out
}

/// Appends `source` and its own sources to `out`, `: `-separated, leaving
/// out any whose text `out` already says (hyper and tonic often repeat a
/// cause in the message above it).
pub(crate) fn push_sources(
    out: &mut String,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) {
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
}

/// `application/x-www-form-urlencoded`-style encoding, as the JVM's
/// `URLEncoder` that Linkerd uses for `l5d-err`: it also guarantees the
/// value holds no CR, LF or NUL whatever the message contains.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_linkerd() {
        let name = Path::utf8(["svc", "a"]);
        let cases = [
            (ProxyError::Unidentified("no Host".into()), 400, false),
            (
                ProxyError::CallDepth {
                    hops: 20,
                    limit: 20,
                },
                400,
                false,
            ),
            (ProxyError::BadHost("two Host lines".into()), 400, false),
            (
                ProxyError::from(BadDtab::Malformed {
                    header: "l5d-dtab",
                    message: "expected a path".into(),
                }),
                400,
                false,
            ),
            (
                ProxyError::from(BadDtab::ToAddress {
                    header: "l5d-dtab",
                    dentry: "/svc=>/$/inet/127.0.0.1/1".into(),
                }),
                400,
                false,
            ),
            (
                ProxyError::NoRoute {
                    name: name.clone(),
                    why: "neg".into(),
                },
                502,
                true,
            ),
            (ProxyError::NoIngressRule { name: name.clone() }, 404, false),
            (
                ProxyError::Connect {
                    addr: "127.0.0.1:1".into(),
                    message: "refused".into(),
                },
                502,
                true,
            ),
            (
                ProxyError::Upstream {
                    addr: "127.0.0.1:1".into(),
                    message: "reset".into(),
                },
                502,
                false,
            ),
            (
                ProxyError::NoEndpoints {
                    name: name.clone(),
                    id: Path::utf8(["#", "a"]),
                    why: "none".into(),
                },
                502,
                true,
            ),
            (
                ProxyError::BindingTimeout {
                    name: name.clone(),
                    timeout: Duration::from_secs(1),
                },
                503,
                true,
            ),
            (
                ProxyError::Timeout {
                    name,
                    timeout: Duration::from_secs(1),
                },
                503,
                false,
            ),
            (
                ProxyError::RouteCacheFull {
                    name: Path::utf8(["svc", "b"]),
                    routes: 2,
                    paths: 2,
                    key_bytes: 12,
                    max_key_bytes: 1024,
                },
                503,
                true,
            ),
            (
                ProxyError::RouteKeyTooLarge {
                    name: Path::utf8(["svc", "b"]),
                    bytes: 2000,
                    max_key_bytes: 1024,
                },
                400,
                false,
            ),
            (
                ProxyError::AttemptTimeout {
                    addr: "127.0.0.1:1".into(),
                    timeout: Duration::from_secs(1),
                },
                503,
                false,
            ),
            (
                ProxyError::DeadlineExceeded {
                    name: Path::utf8(["svc", "c"]),
                    header: "l5d-ctx-deadline",
                },
                503,
                false,
            ),
            (ProxyError::Overloaded, 503, true),
        ];
        let mut kinds: Vec<&str> = cases.iter().map(|(e, _, _)| e.kind()).collect();
        kinds.sort_unstable();
        let mut all = ProxyError::KINDS.to_vec();
        all.sort_unstable();
        assert_eq!(kinds, all, "every kind is listed once in KINDS");
        for (error, status, retryable) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.retryable(), retryable, "{error}");
            let rsp = error.to_response();
            assert_eq!(rsp.status().as_u16(), status);
            let err = rsp.headers()[L5D_ERR].to_str().unwrap();
            assert!(!err.contains(' '), "{err}");
        }
    }

    #[test]
    fn l5d_err_never_carries_control_characters() {
        assert_eq!(url_encode("a b\r\n\0/é"), "a+b%0D%0A%00%2F%C3%A9");
    }
}
