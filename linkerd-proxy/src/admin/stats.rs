//! `/admin/stats.json`: the request figures of every router, logical name
//! and endpoint as one structured snapshot (requests, successes, failures
//! and the latency histogram's cumulative buckets), read from the same
//! registry `/admin/metrics/prometheus` renders.
//!
//! The figures are cumulative, as Prometheus counters are: the dashboard
//! and scripts take two snapshots and divide their difference by the time
//! between them (`time` in each), which gives rates and percentiles over
//! exactly that interval without the proxy keeping any history.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::Metrics;

/// Requests, responses by class and latency of one scope.
#[derive(Debug, Default, Serialize, PartialEq)]
pub(super) struct Figures {
    pub(super) requests: f64,
    pub(super) success: f64,
    pub(super) failure: f64,
    /// Upper bounds in seconds (`null` for +Inf) and cumulative counts.
    pub(super) buckets: Vec<(Option<f64>, f64)>,
    /// Seconds summed over every response.
    pub(super) sum: f64,
}

/// One router: its totals, its logical names and its endpoints by bound id.
#[derive(Debug, Default, Serialize, PartialEq)]
pub(super) struct RouterFigures {
    #[serde(flatten)]
    pub(super) total: Figures,
    pub(super) services: BTreeMap<String, Figures>,
    pub(super) endpoints: BTreeMap<String, BTreeMap<String, Figures>>,
}

/// The snapshot: milliseconds since the epoch, and every router's figures.
#[derive(Debug, Serialize)]
pub(super) struct Snapshot {
    pub(super) time: u64,
    pub(super) routers: BTreeMap<String, RouterFigures>,
}

pub(super) fn snapshot(metrics: &Metrics) -> Snapshot {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Snapshot {
        time,
        routers: read(&metrics.render_prometheus()),
    }
}

/// Reads the request series out of Prometheus text.
fn read(text: &str) -> BTreeMap<String, RouterFigures> {
    let mut routers: BTreeMap<String, RouterFigures> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(series) = Series::parse(line) else {
            continue;
        };
        let Some((scope, metric)) = series
            .name
            .strip_prefix("linkerd_")
            .and_then(|n| n.split_once('_'))
        else {
            continue;
        };
        if !matches!(scope, "router" | "service" | "endpoint") {
            continue;
        }
        let Some(router) = series.label("router") else {
            continue;
        };
        let entry = routers.entry(router.to_string()).or_default();
        let figures = match scope {
            "router" => &mut entry.total,
            "service" => match series.label("service") {
                Some(s) => entry.services.entry(s.to_string()).or_default(),
                None => continue,
            },
            _ => match (series.label("client"), series.label("endpoint")) {
                (Some(c), Some(e)) => entry
                    .endpoints
                    .entry(c.to_string())
                    .or_default()
                    .entry(e.to_string())
                    .or_default(),
                _ => continue,
            },
        };
        figures.add(metric, &series);
    }
    routers
}

impl Figures {
    fn add(&mut self, metric: &str, series: &Series<'_>) {
        match metric {
            "requests_total" => self.requests = series.value,
            "responses_total" => match series.label("classification") {
                Some("success") => self.success = series.value,
                Some("failure") => self.failure = series.value,
                _ => {}
            },
            "request_duration_seconds_bucket" => {
                let le = series.label("le").and_then(|le| le.parse::<f64>().ok());
                let le = le.filter(|l| l.is_finite());
                self.buckets.push((le, series.value));
            }
            "request_duration_seconds_sum" => self.sum = series.value,
            _ => {}
        }
    }
}

/// One line of Prometheus text: `name{k="v",...} value`.
struct Series<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl<'a> Series<'a> {
    fn parse(line: &'a str) -> Option<Series<'a>> {
        let (head, value) = line.rsplit_once(' ')?;
        let value = value.parse().ok()?;
        let Some((name, rest)) = head.split_once('{') else {
            return Some(Series {
                name: head,
                labels: Vec::new(),
                value,
            });
        };
        let labels = labels(rest.strip_suffix('}')?)?;
        Some(Series {
            name,
            labels,
            value,
        })
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `k="v",k2="v2"` with the exposition format's escapes (`\\`, `\"`, `\n`)
/// undone, so that a name holding quotes or commas reads back whole.
fn labels(mut text: &str) -> Option<Vec<(&str, String)>> {
    let mut out = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key, value));
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_router_service_and_endpoint_series() {
        let text = r#"# TYPE linkerd_router_requests_total counter
linkerd_router_requests_total{router="http"} 7
linkerd_router_responses_total{router="http",classification="success"} 6
linkerd_router_responses_total{router="http",classification="failure"} 1
linkerd_service_requests_total{router="http",service="/svc/a\"<script>,b"} 3
linkerd_service_request_duration_seconds_bucket{router="http",service="/svc/a\"<script>,b",le="0.005"} 2
linkerd_service_request_duration_seconds_bucket{router="http",service="/svc/a\"<script>,b",le="+Inf"} 3
linkerd_service_request_duration_seconds_sum{router="http",service="/svc/a\"<script>,b"} 0.25
linkerd_endpoint_requests_total{router="http",client="/#/io.l5d.fs/world",endpoint="127.0.0.1:80"} 4
"#;
        let routers = read(text);
        let http = &routers["http"];
        assert_eq!(
            (http.total.requests, http.total.success, http.total.failure),
            (7.0, 6.0, 1.0)
        );
        let svc = &http.services["/svc/a\"<script>,b"];
        assert_eq!(svc.requests, 3.0);
        assert_eq!(svc.buckets, vec![(Some(0.005), 2.0), (None, 3.0)]);
        assert_eq!(svc.sum, 0.25);
        assert_eq!(
            http.endpoints["/#/io.l5d.fs/world"]["127.0.0.1:80"].requests,
            4.0
        );
    }

    #[test]
    fn the_live_registry_reads_back() {
        let metrics = Metrics::new();
        let name = l5d_dtab::Path::read("/svc/world").unwrap();
        let m = metrics.service("http", &name);
        m.request();
        m.response(true, std::time::Duration::from_millis(3));
        let snap = snapshot(&metrics);
        let world = &snap.routers["http"].services["/svc/world"];
        assert_eq!((world.requests, world.success), (1.0, 1.0));
        assert_eq!(world.buckets.last().map(|b| b.1), Some(1.0));
    }
}
