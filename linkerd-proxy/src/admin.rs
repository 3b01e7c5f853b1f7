//! The admin server (127.0.0.1:9990 by default): liveness, metrics in
//! Prometheus and Linkerd's JSON forms, the delegator, and the state of
//! routes, clients and interpreters. It is separate from data traffic and
//! has no `/admin/shutdown`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router as Http};
use l5d_dtab::{Addr, Dtab, Path};
use l5d_runtime::tls::HANDSHAKE_FAILURE_REASONS;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::balance::{AccrualState, EndpointState};
use crate::interpreter::Resolution;
use crate::metrics::Metrics;
use crate::recent::RecentRequests;
use crate::router::handle::RouterHandle;
use crate::router::plan::Plan;

mod dashboard;
mod stats;

/// What the admin pages read.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub routers: Arc<Vec<RouterHandle>>,
    pub metrics: Metrics,
    /// `io.l5d.recentRequests`, when configured.
    pub recent: Option<Arc<RecentRequests>>,
}

pub fn routes(state: AdminState) -> Http {
    l5d_runtime::web::routes(dashboard::INDEX, dashboard::ASSETS)
        .route("/admin/ping", get(|| async { "pong" }))
        .route("/admin/ready", get(|| async { "ready" }))
        .route("/admin/metrics/prometheus", get(prometheus))
        .route("/admin/metrics.json", get(metrics_json))
        .route("/admin/stats.json", get(stats_json))
        .route("/admin/recent_requests.json", get(recent_requests))
        .route("/delegator.json", get(delegator))
        .route("/client_state.json", get(client_state))
        .route("/interpreter_state.json", get(interpreter_state))
        .route(
            "/{router}/interpreter_state/{kind}/{file}",
            get(router_interpreter_state),
        )
        .route("/routes.json", get(routes_json))
        .with_state(state)
}

/// The last sampled requests, newest first; 404 when the telemeter is off.
async fn recent_requests(State(state): State<AdminState>) -> Response {
    match &state.recent {
        Some(recent) => Json(recent.snapshot()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "recent requests are off: add {kind: io.l5d.recentRequests, sampleRate: 1.0} \
             to the configuration's telemetry list",
        )
            .into_response(),
    }
}

/// Every router's, name's and endpoint's request figures, cumulative.
async fn stats_json(State(state): State<AdminState>) -> Json<stats::Snapshot> {
    Json(stats::snapshot(&state.metrics))
}

async fn prometheus(State(state): State<AdminState>) -> Response {
    state.refresh_gauges();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render_prometheus(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct MetricsQuery {
    pretty: Option<String>,
    q: Option<String>,
}

async fn metrics_json(
    State(state): State<AdminState>,
    Query(query): Query<MetricsQuery>,
) -> Response {
    state.refresh_gauges();
    let mut map = state.metrics.render_json();
    if let Some(prefix) = query.q.as_deref() {
        map.retain(|k, _| k.starts_with(prefix));
        if map.is_empty() {
            return Json(json!({"error": format!("No such subtree: {prefix}")})).into_response();
        }
    }
    let sorted: BTreeMap<String, Value> = map.into_iter().collect();
    if query.pretty.is_some() {
        (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string_pretty(&sorted).unwrap_or_default(),
        )
            .into_response()
    } else {
        Json(sorted).into_response()
    }
}

#[derive(Deserialize)]
struct DelegatorQuery {
    path: Option<String>,
    #[serde(default)]
    dtab: String,
    /// The router label (Linkerd calls it `namespace`).
    namespace: Option<String>,
    router: Option<String>,
}

async fn delegator(
    State(state): State<AdminState>,
    Query(query): Query<DelegatorQuery>,
) -> Response {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m).into_response();
    let Some(path) = query.path.as_deref() else {
        return bad("the `path` parameter is required, e.g. ?path=/svc/world".into());
    };
    let path = match Path::read(path) {
        Ok(p) => p,
        Err(e) => return bad(format!("path: {e}")),
    };
    let dtab = match Dtab::read(&query.dtab) {
        Ok(d) => d,
        Err(e) => return bad(format!("dtab: {e}")),
    };
    let label = query.router.or(query.namespace);
    let handle = match label.as_deref() {
        None => state.routers.first(),
        Some(l) => state.routers.iter().find(|r| r.router.label() == l),
    };
    let Some(handle) = handle else {
        return (
            StatusCode::NOT_FOUND,
            format!("no router labelled {}", label.unwrap_or_default()),
        )
            .into_response();
    };
    match handle.router.interpreter().delegate(&dtab, &path).await {
        Ok(tree) => Json(tree).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.message).into_response(),
    }
}

/// Per router, per bound id: the address set the balancer works from and
/// its endpoints' load and failure accrual.
async fn client_state(State(state): State<AdminState>) -> Json<Value> {
    let mut out = serde_json::Map::new();
    let clock = (Instant::now(), SystemTime::now());
    for handle in state.routers.iter() {
        let mut clients = serde_json::Map::new();
        for route in handle.router.routes() {
            for leaf in route.plan.borrow().leaves() {
                let replicas = leaf.client.balancer.replicas();
                let mut value = replica_json(&replicas.borrow());
                let endpoints = leaf.client.balancer.endpoints();
                let endpoints = endpoints.iter().map(|e| endpoint_json(e, clock));
                value["endpoints"] = Value::Array(endpoints.collect());
                clients.insert(leaf.id.show(), value);
            }
        }
        out.insert(handle.router.label().to_string(), Value::Object(clients));
    }
    Json(Value::Object(out))
}

fn replica_json(state: &Resolution) -> Value {
    match &state.addr {
        Addr::Pending => json!({"state": "pending"}),
        Addr::Neg => json!({"state": "neg"}),
        Addr::Failed(message) => json!({"state": "failed", "message": &**message}),
        Addr::Bound(set) => json!({
            "state": "bound",
            "updatedAt": humantime_ms(state.at),
            "addresses": set.endpoints().iter().map(|e| json!({
                "address": e.addr.to_string(),
                "nodeName": e.node_name.as_deref(),
                "weight": e.effective_weight(),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// One endpoint of a balancer; times as milliseconds since the epoch,
/// durations in milliseconds.
fn endpoint_json(e: &EndpointState, (now, wall): (Instant, SystemTime)) -> Value {
    let wall_of = |at: Instant| humantime_ms(wall - now.saturating_duration_since(at));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let accrual = match e.accrual.state {
        AccrualState::Alive => json!({"state": "alive"}),
        AccrualState::Dead { until, period } => json!({
            "state": "dead",
            "deadUntil": humantime_ms(wall + until.saturating_duration_since(now)),
            "deadForMs": ms(until.saturating_duration_since(now)),
            "deadPeriodMs": ms(period),
        }),
        AccrualState::Probing { in_flight } => {
            json!({"state": "probing", "probeInFlight": in_flight})
        }
    };
    json!({
        "address": e.addr.to_string(),
        "pending": e.pending,
        "ewmaMs": e.ewma.map(ms),
        "accrual": accrual,
        "consecutiveFailures": e.accrual.consecutive_failures,
        "successRate": e.accrual.success_rate,
        "lastTransition": e.accrual.last_transition.map(wall_of),
        "transitions": e.accrual.transitions,
    })
}

fn humantime_ms(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn interpreter_state(State(state): State<AdminState>) -> Json<Value> {
    let mut out = serde_json::Map::new();
    for handle in state.routers.iter() {
        out.insert(
            handle.router.label().to_string(),
            handle.router.interpreter().state(),
        );
    }
    Json(Value::Object(out))
}

/// Linkerd's per-router path: `/<router>/interpreter_state/<kind>/<root>.json`.
async fn router_interpreter_state(
    State(state): State<AdminState>,
    axum::extract::Path((router, _kind, _file)): axum::extract::Path<(String, String, String)>,
) -> Response {
    match state.routers.iter().find(|r| r.router.label() == router) {
        Some(handle) => Json(handle.router.interpreter().state()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no router labelled {router}"),
        )
            .into_response(),
    }
}

/// Per router: every cached route, its binding and what it routes to.
async fn routes_json(State(state): State<AdminState>) -> Json<Value> {
    let mut out = serde_json::Map::new();
    for handle in state.routers.iter() {
        let routes: Vec<Value> = handle
            .router
            .routes()
            .iter()
            .map(|route| {
                let plan = route.plan.borrow().clone();
                let (state, detail) = match &*plan {
                    Plan::Pending => ("pending", Value::Null),
                    Plan::Failed(m) => ("failed", Value::String(m.to_string())),
                    Plan::Unroutable(why) => ("unroutable", Value::String(why.to_string())),
                    Plan::Ready(_) => (
                        "bound",
                        Value::Array(
                            plan.leaves()
                                .iter()
                                .map(|l| Value::String(l.id.show()))
                                .collect(),
                        ),
                    ),
                };
                json!({
                    "name": route.name.show(),
                    "localDtab": route.local.as_ref().map(|d| d.show()),
                    "state": state,
                    "detail": detail,
                })
            })
            .collect();
        out.insert(handle.router.label().to_string(), Value::Array(routes));
    }
    Json(Value::Object(out))
}

impl AdminState {
    /// Gauges read from the routers and interpreters at scrape time.
    fn refresh_gauges(&self) {
        for handle in self.routers.iter() {
            let label = handle.router.label().to_string();
            let labels = || vec![metrics::Label::new("router", label.clone())];
            let (routes, key_bytes) = handle.router.route_usage();
            self.metrics
                .gauge("linkerd_proxy_routes", labels())
                .set(routes as f64);
            self.metrics
                .gauge("linkerd_proxy_route_key_bytes", labels())
                .set(key_bytes as f64);
            if let Some(mesh) = &handle.mesh {
                let stats = mesh.stats();
                self.metrics
                    .gauge("linkerd_namerd_streams_open", labels())
                    .set(stats.streams_open as f64);
                self.metrics
                    .gauge("linkerd_namerd_stream_reconnects", labels())
                    .set(stats.reconnects as f64);
                self.metrics
                    .gauge("linkerd_namerd_updates", labels())
                    .set(stats.updates as f64);
                self.metrics
                    .gauge("linkerd_namerd_rejected_updates", labels())
                    .set(stats.rejected as f64);
                let failures = HANDSHAKE_FAILURE_REASONS.iter().zip(stats.tls_failures);
                for (reason, n) in failures.filter(|(_, n)| *n > 0) {
                    let mut labels = labels();
                    labels.push(metrics::Label::new("reason", *reason));
                    self.metrics
                        .counter("linkerd_namerd_tls_failures_total", labels)
                        .absolute(n);
                }
            }
        }
    }
}
