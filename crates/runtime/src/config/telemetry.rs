//! The `telemetry` section, accepted for compatibility with Linkerd's
//! files: both binaries always serve Prometheus metrics on the admin port
//! (`/admin/metrics/prometheus`), so `io.l5d.prometheus` is accepted and
//! every other telemeter refused by name, never silently ignored.

use serde_json::Value;

use super::ConfigError;

/// Checks the `telemetry` list. Only each entry's `kind` is read: the
/// Prometheus telemeter's own keys change nothing here.
pub fn telemetry(value: &Value) -> Result<(), ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("telemetry", "expected a list"));
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("telemetry[{i}]");
        match item.get("kind").and_then(Value::as_str) {
            Some("io.l5d.prometheus") => {}
            Some(other) => {
                return Err(ConfigError::unsupported_kind(
                    &field,
                    "telemeter",
                    other,
                    "supported: io.l5d.prometheus",
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
    fn prometheus_is_accepted_and_other_telemeters_refused() {
        assert!(telemetry(&json!([{"kind": "io.l5d.prometheus", "prefix": "x"}])).is_ok());
        assert!(telemetry(&json!([])).is_ok());
        let err = |v: Value| telemetry(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!([{"kind": "io.l5d.prometheus"}, {"kind": "io.l5d.zipkin"}])),
            "telemetry[1].kind: unsupported telemeter kind \"io.l5d.zipkin\"; supported: io.l5d.prometheus"
        );
        assert_eq!(
            err(json!([{}])),
            "telemetry[0].kind: missing; it is required"
        );
        assert_eq!(err(json!({})), "telemetry: expected a list");
    }
}
