//! The namerd HTTP API (`io.l5d.httpController`): the dtab routes under
//! `/api/1/dtabs` (JSON or dtab text, `ETag` versions, `If-Match`
//! compare-and-set, `?watch=true` streams, plus the paginated history of
//! every namespace so a bad change can be rolled back, and a dry run of a
//! proposed dtab against the names streamed now), and the interpreter routes
//! (`/api/1/bind`, `/addr`, `/resolve`, `/delegate`, `/bound-names`).
//!
//! Built by [`router`], so tests call it without sockets. Every routed
//! request is authorised first (`access.rs`, on the listener's
//! [`Access`] rules). The routes live in `dtabs.rs`, `history.rs`,
//! `dry_run.rs` and `names.rs`; they read the namespace and `?watch` with the extractors of
//! `extract.rs` and fail with the one `ApiError` of `error.rs`. It depends
//! on the store trait, the interpreter and the access rules only.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use futures::StreamExt;
use tokio::sync::watch;

use crate::auth::Access;
use crate::interpreter::Interpreter;
use crate::store::{DtabStore, Version};

mod access;
mod codec;
mod dry_run;
mod dtabs;
mod error;
mod extract;
mod history;
mod names;

use codec::Media;

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
    /// Who may read and write.
    pub access: Arc<Access>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The routes of the dtab API. Serve it with a [`l5d_runtime::Peer`] in
/// each request's extensions, or with connection info
/// (`into_make_service_with_connect_info::<SocketAddr>`): without either,
/// a caller is not on loopback and its writes have no address.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/1/dtabs", get(dtabs::list))
        .route("/api/1/dtabs/", get(dtabs::list))
        .route(
            "/api/1/dtabs/{ns}",
            get(dtabs::get_dtab)
                .head(dtabs::head_dtab)
                .post(dtabs::create)
                .put(dtabs::put)
                .delete(dtabs::delete),
        )
        .route("/api/1/dtabs/{ns}/history", get(history::history))
        .route("/api/1/dtabs/{ns}/dry-run", post(dry_run::dry_run))
        .route(
            "/api/1/dtabs/{ns}/history/{version}",
            get(history::history_version),
        )
        .route("/api/1/bind/{ns}", get(names::bind))
        .route("/api/1/addr/{ns}", get(names::addr))
        .route("/api/1/resolve/{ns}", get(names::resolve))
        .route("/api/1/delegate/{ns}", get(names::delegate_ns))
        .route(
            "/api/1/delegate",
            get(names::delegate_get).post(names::delegate_post),
        )
        .route("/api/1/bound-names", get(names::bound_names))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
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

// === helpers ===

/// A chunked response of one document per value, ended at shutdown,
/// holding `leases` (what the stream counts against its client) until the
/// body is dropped, however the stream ends.
fn stream(
    state: &ApiState,
    media: Media,
    docs: impl futures::Stream<Item = String> + Send + 'static,
    leases: impl Send + Sync + 'static,
) -> Response {
    let mut shutdown = state.shutdown.clone();
    let done = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let body = docs.take_until(done).map(move |doc| {
        let _held = &leases;
        Ok::<_, std::convert::Infallible>(doc)
    });
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
