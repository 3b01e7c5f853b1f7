//! The admin server: liveness, readiness, Prometheus metrics and the
//! store's state. Bound to loopback by default; it has no mutating routes.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::store::DtabStore;

/// The store, once it is open: readiness waits for it.
pub type StoreSlot = watch::Receiver<Option<Arc<dyn DtabStore>>>;

#[derive(Clone)]
struct AdminState {
    store: StoreSlot,
    metrics: PrometheusHandle,
}

/// The process-wide Prometheus recorder, installed on first use.
///
/// Several namerds may run in one test process; the first installs the
/// global recorder and the others render the same registry.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /admin/metrics/prometheus will be empty");
            }
            handle
        })
        .clone()
}

pub fn router(store: StoreSlot) -> Router {
    Router::new()
        .route("/admin/ping", get(|| async { "pong" }))
        .route("/admin/ready", get(ready))
        .route("/admin/metrics/prometheus", get(metrics))
        .route("/admin/store.json", get(store_json))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(AdminState {
            store,
            metrics: prometheus(),
        })
}

/// 200 once the store is open and has loaded; 503 before (e.g. while
/// PostgreSQL is unreachable at startup). A store serving stale values is
/// still ready: it answers from its last good state.
async fn ready(State(state): State<AdminState>) -> Response {
    let store = state.store.borrow().clone();
    match store {
        Some(store) if store.health().ready => (StatusCode::OK, "ready\n").into_response(),
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage has not loaded yet\n",
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "storage is not open yet\n").into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let mut rsp = state.metrics.render().into_response();
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    rsp
}

async fn store_json(State(state): State<AdminState>) -> Response {
    let store = state.store.borrow().clone();
    let body = match store {
        None => serde_json::json!({"open": false}),
        Some(store) => {
            let h = store.health();
            serde_json::json!({
                "open": true,
                "ready": h.ready,
                "stale": h.stale,
                "lastError": h.last_error,
                "lastSync": h.last_sync.map(|t| humantime::format_rfc3339_millis(t).to_string()),
            })
        }
    };
    let mut rsp = format!("{body}\n").into_response();
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    rsp
}
