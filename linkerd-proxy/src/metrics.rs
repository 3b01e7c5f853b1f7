//! The proxy's metrics: one Prometheus registry per proxy (not the
//! process-wide recorder, so several proxies in one test process stay
//! apart), with handles registered once per router, logical name and
//! endpoint and kept by whoever records, so the request path does no
//! label formatting or registry lookup.
//!
//! `/admin/metrics/prometheus` renders the registry; `/admin/metrics.json`
//! is the same figures as Linkerd's flat JSON map.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use l5d_dtab::Path;
use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use metrics_util::MetricKindMask;

/// Latency buckets, in seconds: sub-millisecond to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Series nobody updated for this long are dropped (names are chosen by
/// clients, so their number must not grow without bound).
const IDLE_SERIES: Duration = Duration::from_secs(600);

/// Logical names given series of their own within [`IDLE_SERIES`], per
/// proxy. A route is bounded by the route cache, but its series outlive it
/// by [`IDLE_SERIES`], so without this a stream of distinct `Host` values
/// would grow the registry by every name seen in ten minutes (about 5 KiB
/// each). Names beyond it share the series of [`OVERFLOW_SERVICE`].
pub const MAX_SERVICE_SERIES: usize = 10_000;

/// The `service` label of names beyond [`MAX_SERVICE_SERIES`].
pub const OVERFLOW_SERVICE: &str = "(overflow)";

/// The registry of one proxy.
#[derive(Debug, Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    services: Arc<Mutex<ServiceNames>>,
}

/// Which names have series of their own, and since when.
#[derive(Debug, Default)]
struct ServiceNames {
    given: HashMap<(String, String), Instant>,
    last_pruned: Option<Instant>,
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("non-empty buckets")
            .idle_timeout(
                MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM,
                Some(IDLE_SERIES),
            )
            .build_recorder();
        let handle = recorder.handle();
        Metrics {
            recorder: Arc::new(recorder),
            handle,
            services: Arc::default(),
        }
    }

    /// Makes this registry the process-wide recorder, so that what
    /// `l5d-runtime` records through the `metrics` macros (listeners'
    /// connections, refusals and timeouts; certificate expiry and reload
    /// errors) is rendered with the proxy's own figures. For the binary:
    /// one proxy per process. Fails if a recorder is already installed.
    pub fn install_global(&self) -> Result<(), metrics::SetRecorderError<Global>> {
        metrics::set_global_recorder(Global(self.recorder.clone()))
    }

    /// Drains histogram samples into their buckets; call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Drops the series idle for [`IDLE_SERIES`]: the exporter does so only
    /// when it renders, so without a scrape they would stay. Call every
    /// minute or so.
    pub fn expire_idle(&self) {
        drop(self.handle.render());
    }

    pub fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn render_prometheus(&self) -> String {
        self.handle.render()
    }

    /// The registry as Linkerd's flat map: `name{labels}` to value;
    /// histograms appear as their `_bucket`, `_sum` and `_count` series.
    pub fn render_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let text = self.handle.render();
        let mut out = serde_json::Map::new();
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some((series, value)) = line.rsplit_once(' ')
                && let Ok(v) = value.parse::<f64>()
            {
                let value = serde_json::Number::from_f64(v)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number);
                out.insert(series.to_string(), value);
            }
        }
        out
    }

    /// Request figures for a router (all names together).
    pub fn router(&self, router: &str) -> RequestMetrics {
        RequestMetrics::new(
            self,
            "router",
            vec![Label::new("router", router.to_string())],
        )
    }

    /// Request figures for one logical name of a router; shared with
    /// other names under [`OVERFLOW_SERVICE`] when [`MAX_SERVICE_SERIES`]
    /// names already have their own.
    pub fn service(&self, router: &str, name: &Path) -> RequestMetrics {
        RequestMetrics::new(self, "service", self.service_labels(router, name))
    }

    /// Retries and requeues for a router (all names together).
    pub fn router_retries(&self, router: &str) -> RetryMetrics {
        RetryMetrics::new(
            self,
            "router",
            vec![Label::new("router", router.to_string())],
        )
    }

    /// Retries and requeues for one logical name of a router (under
    /// [`OVERFLOW_SERVICE`] as [`service`](Self::service)).
    pub fn service_retries(&self, router: &str, name: &Path) -> RetryMetrics {
        RetryMetrics::new(self, "service", self.service_labels(router, name))
    }

    fn service_labels(&self, router: &str, name: &Path) -> Vec<Label> {
        let name = name.show();
        let label = if self.admit(router, &name) {
            name
        } else {
            OVERFLOW_SERVICE.to_string()
        };
        vec![
            Label::new("router", router.to_string()),
            Label::new("service", label),
        ]
    }

    /// Whether `name` of `router` gets series of its own: it has them, or
    /// there is room among the names given series within [`IDLE_SERIES`].
    /// Older names are forgotten at most once a second, so that a flood of
    /// new names does not scan the map on every one.
    fn admit(&self, router: &str, name: &str) -> bool {
        let mut names = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let key = (router.to_string(), name.to_string());
        if let Some(since) = names.given.get_mut(&key) {
            *since = now;
            return true;
        }
        let due = names
            .last_pruned
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if names.given.len() >= MAX_SERVICE_SERIES && due {
            names
                .given
                .retain(|_, since| now.duration_since(*since) < IDLE_SERIES);
            names.last_pruned = Some(now);
        }
        if names.given.len() >= MAX_SERVICE_SERIES {
            return false;
        }
        names.given.insert(key, now);
        true
    }

    /// Request figures for one endpoint of a bound id.
    pub fn endpoint(&self, router: &str, id: &Path, addr: SocketAddr) -> EndpointMetrics {
        let labels = vec![
            Label::new("router", router.to_string()),
            Label::new("client", id.show()),
            Label::new("endpoint", addr.to_string()),
        ];
        EndpointMetrics(Arc::new(RequestMetrics::new(self, "endpoint", labels)))
    }

    /// Errors the proxy generated, by kind.
    pub fn error(&self, router: &str, kind: &'static str) -> Counter {
        self.counter(
            "linkerd_proxy_errors_total",
            vec![
                Label::new("router", router.to_string()),
                Label::new("kind", kind),
            ],
        )
    }
}

/// A proxy's registry as the process-wide recorder.
#[derive(Debug)]
pub struct Global(Arc<PrometheusRecorder>);

impl Recorder for Global {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}

/// Requests, successes, failures and latency of one scope.
#[derive(Debug, Clone)]
pub struct RequestMetrics {
    requests: Counter,
    success: Counter,
    failure: Counter,
    latency: Histogram,
}

impl RequestMetrics {
    fn new(metrics: &Metrics, scope: &'static str, labels: Vec<Label>) -> Self {
        let (requests, responses, latency) = match scope {
            "router" => (
                "linkerd_router_requests_total",
                "linkerd_router_responses_total",
                "linkerd_router_request_duration_seconds",
            ),
            "service" => (
                "linkerd_service_requests_total",
                "linkerd_service_responses_total",
                "linkerd_service_request_duration_seconds",
            ),
            _ => (
                "linkerd_endpoint_requests_total",
                "linkerd_endpoint_responses_total",
                "linkerd_endpoint_request_duration_seconds",
            ),
        };
        let with = |class: &'static str| {
            let mut l = labels.clone();
            l.push(Label::new("classification", class));
            l
        };
        RequestMetrics {
            requests: metrics.counter(requests, labels.clone()),
            success: metrics.counter(responses, with("success")),
            failure: metrics.counter(responses, with("failure")),
            latency: metrics.histogram(latency, labels),
        }
    }

    pub fn request(&self) {
        self.requests.increment(1);
    }

    /// A response (or error) after `elapsed`; 5xx and proxy errors are
    /// failures, as Linkerd's default classifier.
    pub fn response(&self, success: bool, elapsed: Duration) {
        if success {
            self.success.increment(1);
        } else {
            self.failure.increment(1);
        }
        self.latency.record(elapsed.as_secs_f64());
    }
}

/// Retries (a new attempt after a retryable response), requeues (a new
/// attempt after a connection failure: the request was never written)
/// and the attempts their budgets refused, of one scope.
#[derive(Debug, Clone)]
pub struct RetryMetrics {
    pub retries: Counter,
    pub budget_exhausted: Counter,
    pub requeues: Counter,
    pub requeue_budget_exhausted: Counter,
}

impl RetryMetrics {
    fn new(metrics: &Metrics, scope: &'static str, labels: Vec<Label>) -> Self {
        let names: [&'static str; 4] = match scope {
            "router" => [
                "linkerd_router_retries_total",
                "linkerd_router_retry_budget_exhausted_total",
                "linkerd_router_requeues_total",
                "linkerd_router_requeue_budget_exhausted_total",
            ],
            _ => [
                "linkerd_service_retries_total",
                "linkerd_service_retry_budget_exhausted_total",
                "linkerd_service_requeues_total",
                "linkerd_service_requeue_budget_exhausted_total",
            ],
        };
        let [
            retries,
            budget_exhausted,
            requeues,
            requeue_budget_exhausted,
        ] = names.map(|name| metrics.counter(name, labels.clone()));
        RetryMetrics {
            retries,
            budget_exhausted,
            requeues,
            requeue_budget_exhausted,
        }
    }
}

/// [`RequestMetrics`] shared by every clone of one endpoint's service.
#[derive(Debug, Clone)]
pub struct EndpointMetrics(Arc<RequestMetrics>);

impl std::ops::Deref for EndpointMetrics {
    type Target = RequestMetrics;
    fn deref(&self) -> &RequestMetrics {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beyond_the_budget_share_the_overflow_series() {
        let metrics = Metrics::new();
        for i in 0..MAX_SERVICE_SERIES {
            assert!(metrics.admit("http", &format!("/svc/n{i}")));
        }
        assert!(!metrics.admit("http", "/svc/one-too-many"));
        assert!(
            metrics.admit("http", "/svc/n0"),
            "a name with series keeps them"
        );
        metrics
            .service("http", &Path::utf8(["svc", "late"]))
            .request();
        let text = metrics.render_prometheus();
        assert!(
            text.contains("service=\"(overflow)\""),
            "the late name counts under the overflow label"
        );
        assert!(!text.contains("/svc/late"));
    }
}
