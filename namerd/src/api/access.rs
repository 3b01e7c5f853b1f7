//! The HTTP API's door: every routed request passes [`authorize`] before
//! its handler runs (and before a body is read), which asks the listener's
//! [`Access`](crate::auth::Access) rules, refuses with 401 or 403, counts
//! and logs refusals (never the credentials), and hands the handlers the
//! caller and its identity ([`Verified`]) for the history's author.
//!
//! A request is a read only if its method is `GET` or `HEAD`, or it is the
//! generic delegator's `POST` (a trace of the posted dtab) or a dtab's
//! dry run (`POST /api/1/dtabs/{ns}/dry-run`), which change nothing;
//! anything else is a write, so a mutating route added later is
//! guarded without being listed here.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::{Extensions, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use l5d_runtime::Peer;

use super::ApiState;
use super::error::ApiError;
use crate::auth::{Caller, Identity, Permission};

/// Routes that take a body but only read.
const READS_BY_POST: &[&str] = &["/api/1/delegate"];

/// Who a request came from, once [`authorize`] let it through.
#[derive(Clone, Debug)]
pub(super) struct Verified {
    pub(super) caller: Caller,
    /// The authenticated identity, if credentials were sent or needed.
    pub(super) identity: Option<Identity>,
}

/// The middleware: decide, then run the handler or refuse.
pub(super) async fn authorize(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let ns = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find(|(key, _)| *key == "ns")
                .map(|(_, value)| value.to_string())
        });
    let need = need(&parts.method, parts.uri.path());
    let caller = caller(&parts.extensions);
    // Taken out, so that no handler can log or echo it.
    let authorization = parts.headers.remove(header::AUTHORIZATION);
    let decision = state.access.decide(
        &caller,
        authorization.as_ref().map(|v| v.as_bytes()),
        ns.as_deref(),
        need,
    );
    match decision {
        Ok(identity) => {
            parts.extensions.insert(Verified { caller, identity });
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refusal) => {
            let scope = state.access.scope(ns.as_deref());
            metrics::counter!(
                "namerd_http_auth_refused_total",
                "reason" => refusal.reason(),
                "namespace" => scope.to_string(),
            )
            .increment(1);
            tracing::warn!(
                reason = refusal.reason(),
                %need,
                namespace = ns.as_deref().unwrap_or("-"),
                method = %parts.method,
                path = parts.uri.path(),
                peer = %caller.addr.map_or_else(|| "-".to_string(), |a| a.to_string()),
                "refused: {refusal}"
            );
            ApiError::Refused(refusal).into_response()
        }
    }
}

/// `path` as routed: a route without parameters matches it exactly, and
/// any other spelling is a write, the stricter answer.
fn need(method: &Method, path: &str) -> Permission {
    let read = method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST && (READS_BY_POST.contains(&path) || is_dry_run(path)));
    if read {
        Permission::Read
    } else {
        Permission::Write
    }
}

/// `/api/1/dtabs/{ns}/dry-run` exactly, with a non-empty `{ns}` of one
/// segment.
fn is_dry_run(path: &str) -> bool {
    path.strip_prefix("/api/1/dtabs/")
        .and_then(|rest| rest.strip_suffix("/dry-run"))
        .is_some_and(|ns| !ns.is_empty() && !ns.contains('/'))
}

/// The one place the caller is read: the listener's [`Peer`] (with a
/// verified client certificate, on TLS), else axum's connection info.
fn caller(extensions: &Extensions) -> Caller {
    if let Some(peer) = extensions.get::<Peer>() {
        return Caller {
            addr: Some(peer.addr),
            certificate: peer.identity.clone(),
        };
    }
    Caller {
        addr: extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr),
        certificate: None,
    }
}
