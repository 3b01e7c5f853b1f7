//! The `telemetry` list's kinds. Both binaries always serve Prometheus
//! metrics on the admin port (`/admin/metrics/prometheus`), so
//! `io.l5d.prometheus` is accepted for compatibility with Linkerd's files;
//! the telemeters a binary reads itself (tracing, recent requests) are
//! named by the caller; Linkerd 1.x's `io.l5d.zipkin` is refused naming
//! its replacement; every other kind is refused by name, never silently
//! ignored.

use serde_json::Value;

use super::ConfigError;

const PROMETHEUS: &str = "io.l5d.prometheus";
const ZIPKIN: &str = "io.l5d.zipkin";
/// What replaces Zipkin's telemeter (`l5d-trace`'s kind).
const OPENTELEMETRY: &str = "io.l5d.opentelemetry";

/// Checks every entry's `kind`: Prometheus's, or one of `handled` (whose
/// entries the caller parses in full). Prometheus's own keys change
/// nothing.
pub fn telemetry(value: &Value, handled: &[&str]) -> Result<(), ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("telemetry", "expected a list"));
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("telemetry[{i}]");
        match item.get("kind").and_then(Value::as_str) {
            Some(PROMETHEUS) => {}
            Some(kind) if handled.contains(&kind) => {}
            Some(ZIPKIN) if handled.contains(&OPENTELEMETRY) => {
                return Err(ConfigError::new(
                    format!("{field}.kind"),
                    format!(
                        "{ZIPKIN} is replaced by {OPENTELEMETRY}: spans go over OTLP to an \
                         OpenTelemetry collector (whose zipkin exporter feeds a Zipkin server); \
                         sampleRate keeps its meaning, host and port become \
                         endpoint: http://HOST:4317"
                    ),
                ));
            }
            Some(other) => {
                let supported = std::iter::once(PROMETHEUS)
                    .chain(handled.iter().copied())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ConfigError::unsupported_kind(
                    &field,
                    "telemeter",
                    other,
                    &format!("supported: {supported}"),
                ));
            }
            None => return Err(ConfigError::missing(format!("{field}.kind"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prometheus_and_handled_kinds_are_accepted_and_others_refused() {
        let handled = &["io.l5d.recentRequests", OPENTELEMETRY];
        assert!(telemetry(&json!([{"kind": "io.l5d.prometheus", "prefix": "x"}]), &[]).is_ok());
        assert!(telemetry(&json!([{"kind": "io.l5d.recentRequests"}]), handled).is_ok());
        assert!(telemetry(&json!([]), &[]).is_ok());
        let err = |v: Value, handled: &[&str]| telemetry(&v, handled).unwrap_err().to_string();
        assert_eq!(
            err(
                json!([{"kind": "io.l5d.prometheus"}, {"kind": "io.l5d.statsd"}]),
                handled
            ),
            "telemetry[1].kind: unsupported telemeter kind \"io.l5d.statsd\"; \
             supported: io.l5d.prometheus, io.l5d.recentRequests, io.l5d.opentelemetry"
        );
        assert!(
            err(
                json!([{"kind": "io.l5d.prometheus"}, {"kind": "io.l5d.zipkin"}]),
                handled
            )
            .starts_with("telemetry[1].kind: io.l5d.zipkin is replaced by io.l5d.opentelemetry")
        );
        assert_eq!(
            err(json!([{}]), &[]),
            "telemetry[0].kind: missing; it is required"
        );
        assert_eq!(err(json!({}), &[]), "telemetry: expected a list");
    }
}
