//! `telemetry: [{kind: io.l5d.opentelemetry, ...}]`: where spans go and
//! how many requests are traced. Linkerd 1.x's `io.l5d.zipkin` has no
//! place here (Zipkin's collector speaks its own protocol); the telemetry
//! check in `l5d-runtime` refuses it naming this telemeter, which an
//! OpenTelemetry Collector with a Zipkin exporter turns into Zipkin.

use std::time::Duration;

use l5d_runtime::config::{ConfigError, typed};
use serde::Deserialize;
use serde_json::Value;

/// The telemeter's `kind`.
pub const KIND: &str = "io.l5d.opentelemetry";

/// Linkerd's Zipkin telemeter's default: one request in a thousand.
const DEFAULT_SAMPLE_RATE: f64 = 0.001;
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4317";
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BATCH_DELAY: Duration = Duration::from_secs(1);
const DEFAULT_MAX_QUEUE: usize = 2048;
const MAX_QUEUE: usize = 1 << 20;

/// Where spans are exported and which requests make them.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceConfig {
    /// The collector's OTLP/gRPC address, `http://host:port`.
    pub endpoint: String,
    /// The share of requests that start a sampled trace; a request whose
    /// trusted caller decided is traced as the caller decided.
    pub sample_rate: f64,
    /// `service.name` of every span.
    pub service_name: String,
    /// An export that takes longer is abandoned (its spans are lost).
    pub export_timeout: Duration,
    /// How often finished spans are sent.
    pub batch_delay: Duration,
    /// Finished spans waiting to be sent; more are dropped (counted in
    /// the log), never waited for.
    pub max_queue: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Keys {
    #[allow(dead_code, reason = "the dispatch key, read before")]
    kind: String,
    endpoint: Option<String>,
    sample_rate: Option<f64>,
    service_name: Option<String>,
    export_timeout_ms: Option<u64>,
    batch_delay_ms: Option<u64>,
    max_queue_size: Option<usize>,
}

/// The last `io.l5d.opentelemetry` entry of a `telemetry` list (as Linkerd
/// takes its telemeters), checked; `service` names the spans unless the
/// entry does.
pub fn from_telemetry(
    telemetry: &Value,
    service: &str,
) -> Result<Option<TraceConfig>, ConfigError> {
    let Value::Array(items) = telemetry else {
        return Ok(None);
    };
    let mut found = None;
    for (i, item) in items.iter().enumerate() {
        if item.get("kind").and_then(Value::as_str) == Some(KIND) {
            found = Some(parse(item.clone(), &format!("telemetry[{i}]"), service)?);
        }
    }
    Ok(found)
}

fn parse(item: Value, field: &str, service: &str) -> Result<TraceConfig, ConfigError> {
    let keys: Keys = typed(item, field)?;
    let endpoint = keys.endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.into());
    check_endpoint(&endpoint).map_err(|why| ConfigError::new(format!("{field}.endpoint"), why))?;
    let sample_rate = keys.sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE);
    if !(0.0..=1.0).contains(&sample_rate) {
        return Err(ConfigError::new(
            format!("{field}.sampleRate"),
            format!("expected a fraction in [0, 1], got {sample_rate}"),
        ));
    }
    let service_name = keys.service_name.unwrap_or_else(|| service.into());
    if service_name.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.serviceName"),
            "expected a non-empty name",
        ));
    }
    let millis = |value: Option<u64>, key: &str, default: Duration| match value {
        None => Ok(default),
        Some(ms @ 1..=600_000) => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(ConfigError::new(
            format!("{field}.{key}"),
            format!("expected 1 to 600000 milliseconds, got {ms}"),
        )),
    };
    let max_queue = keys.max_queue_size.unwrap_or(DEFAULT_MAX_QUEUE);
    if !(1..=MAX_QUEUE).contains(&max_queue) {
        return Err(ConfigError::new(
            format!("{field}.maxQueueSize"),
            format!("expected 1 to {MAX_QUEUE}, got {max_queue}"),
        ));
    }
    Ok(TraceConfig {
        endpoint,
        sample_rate,
        service_name,
        export_timeout: millis(
            keys.export_timeout_ms,
            "exportTimeoutMs",
            DEFAULT_EXPORT_TIMEOUT,
        )?,
        batch_delay: millis(keys.batch_delay_ms, "batchDelayMs", DEFAULT_BATCH_DELAY)?,
        max_queue,
    })
}

/// `http://host:port`: OTLP over plain gRPC. The exporter is built without
/// TLS (a collector agent beside the process is the usual set-up), so
/// `https` is refused here rather than failing at the first export.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("expected http://host:port, got {endpoint:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{endpoint:?}: TLS to the collector is not supported; \
                 use a collector (or agent) reachable over plain http://"
            ));
        }
        _ => return Err(format!("expected http://host:port, got {endpoint:?}")),
    }
    match uri.authority() {
        Some(a) if a.port_u16().is_some() && !a.host().is_empty() => Ok(()),
        _ => Err(format!(
            "expected http://host:port with a port, got {endpoint:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(entry: Value) -> Result<Option<TraceConfig>, ConfigError> {
        from_telemetry(
            &json!([{"kind": "io.l5d.prometheus"}, entry]),
            "linkerd-proxy",
        )
    }

    #[test]
    fn defaults_and_keys() {
        let c = one(json!({"kind": KIND})).unwrap().unwrap();
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.sample_rate, 0.001);
        assert_eq!(c.service_name, "linkerd-proxy");
        let c = one(json!({
            "kind": KIND, "endpoint": "http://collector:4317", "sampleRate": 1.0,
            "serviceName": "edge", "exportTimeoutMs": 500, "batchDelayMs": 100, "maxQueueSize": 10
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                c.endpoint.as_str(),
                c.sample_rate,
                c.service_name.as_str(),
                c.max_queue
            ),
            ("http://collector:4317", 1.0, "edge", 10)
        );
        assert_eq!(c.export_timeout, Duration::from_millis(500));
        assert_eq!(c.batch_delay, Duration::from_millis(100));
        assert_eq!(from_telemetry(&json!([]), "x").unwrap(), None);
    }

    #[test]
    fn errors_name_the_field() {
        let err = |v: Value| one(v).unwrap_err().to_string();
        assert!(
            err(json!({"kind": KIND, "sampleRate": 1.5}))
                .starts_with("telemetry[1].sampleRate: expected a fraction")
        );
        assert!(
            err(json!({"kind": KIND, "endpoint": "collector:4317"}))
                .starts_with("telemetry[1].endpoint: expected http://host:port")
        );
        assert!(
            err(json!({"kind": KIND, "endpoint": "https://c:4317"}))
                .contains("TLS to the collector is not supported")
        );
        assert!(err(json!({"kind": KIND, "endpoint": "http://c"})).contains("with a port"));
        assert!(
            err(json!({"kind": KIND, "exportTimeoutMs": 0}))
                .starts_with("telemetry[1].exportTimeoutMs: expected 1 to")
        );
        assert!(
            err(json!({"kind": KIND, "maxQueueSize": 0})).starts_with("telemetry[1].maxQueueSize")
        );
        assert!(err(json!({"kind": KIND, "host": "zipkin"})).starts_with("telemetry[1]"));
    }
}
