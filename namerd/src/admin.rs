//! The admin server: liveness, readiness, Prometheus metrics, the state
//! of the store, the namers and every live binding, and the dashboard at
//! `/` (namespaces, a dtab editor, history and the delegator). Bound to
//! loopback by default. Its only writes are the dtab API's own routes,
//! served under `/api/1/` with the API's authorisation and a same-origin
//! check (`admin/writes.rs`).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::interpreter::Interpreter;
use crate::namer::NamerState;
use crate::store::DtabStore;

mod dashboard;
mod namespaces;
mod writes;

/// The store, once it is open: readiness waits for it.
pub type StoreSlot = watch::Receiver<Option<Arc<dyn DtabStore>>>;
/// The interpreter, once the store is open.
pub type InterpreterSlot = watch::Receiver<Option<Arc<Interpreter>>>;
/// The dtab API's routes, once the store is open and if an
/// `io.l5d.httpController` is configured (with its authorisation).
pub type ApiSlot = watch::Receiver<Option<Router>>;

#[derive(Clone)]
struct AdminState {
    store: StoreSlot,
    interpreter: InterpreterSlot,
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

pub fn router(store: StoreSlot, interpreter: InterpreterSlot, api: ApiSlot) -> Router {
    let writes = Router::new()
        .route("/api/1/{*rest}", axum::routing::any(writes::forward))
        .with_state(api);
    l5d_runtime::web::routes(dashboard::INDEX, dashboard::ASSETS)
        .merge(writes)
        .route("/admin/ping", get(|| async { "pong" }))
        .route("/admin/ready", get(ready))
        .route("/admin/metrics/prometheus", get(metrics))
        .route("/admin/store.json", get(store_json))
        .route("/namer_state.json", get(namer_state))
        .route("/interpreter_state.json", get(interpreter_state))
        .route("/admin/namespaces.json", get(namespaces::namespaces))
        .route("/admin/dtab/parse", post(namespaces::parse))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(AdminState {
            store,
            interpreter,
            metrics: prometheus(),
        })
}

fn json_response(body: serde_json::Value) -> Response {
    let mut rsp = format!("{body}\n").into_response();
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    rsp
}

fn time(t: Option<std::time::SystemTime>) -> Option<String> {
    t.map(|t| humantime::format_rfc3339_millis(t).to_string())
}

fn namer_json(state: &NamerState) -> serde_json::Value {
    serde_json::json!({
        "stale": state.stale,
        "lastError": state.last_error,
        "lastUpdate": time(state.last_update),
        "details": state.details,
    })
}

/// Every namer's state (and DNS's), with the time of its last update.
async fn namer_state(State(state): State<AdminState>) -> Response {
    let interpreter = state.interpreter.borrow().clone();
    let Some(interpreter) = interpreter else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not started yet\n").into_response();
    };
    let mut namers = serde_json::Map::new();
    for namer in interpreter.namers() {
        namers.insert(namer.prefix().show(), namer_json(&namer.state()));
    }
    namers.insert("/$/inet".into(), namer_json(&interpreter.inet().state()));
    json_response(serde_json::Value::Object(namers))
}

/// Every live binding: its key, state, last update and staleness.
async fn interpreter_state(State(state): State<AdminState>) -> Response {
    let interpreter = state.interpreter.borrow().clone();
    let Some(interpreter) = interpreter else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not started yet\n").into_response();
    };
    let watchers = interpreter.binding_watchers();
    let bindings: Vec<_> = interpreter
        .bindings()
        .into_iter()
        .map(|(ns, name, local, b)| {
            let (state, tree) = match &b.tree {
                l5d_dtab::Activity::Pending => ("pending", None),
                l5d_dtab::Activity::Ok(t) => (
                    "bound",
                    Some(t.show_with(|b, out| {
                        out.push_str(&b.id.show());
                        if !b.residual.is_empty() {
                            out.push_str(&b.residual.show());
                        }
                    })),
                ),
                l5d_dtab::Activity::Failed(e) => ("failed", Some(e.to_string())),
            };
            serde_json::json!({
                "namespace": ns.to_string(),
                "name": name.show(),
                "localDtab": local,
                "state": state,
                "tree": tree,
                "updated": time(Some(b.updated)),
                "watchers": watchers.get(&(ns.clone(), name.clone(), local.clone())),
                "stale": b.stale.as_deref(),
            })
        })
        .collect();
    json_response(serde_json::json!({ "bindings": bindings }))
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
                "lastSync": time(h.last_sync),
            })
        }
    };
    json_response(body)
}
