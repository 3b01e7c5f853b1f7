//! `telemetry: [{kind: io.l5d.recentRequests, sampleRate, capacity}]`,
//! Linkerd's telemeter of the last requests served, shown on the admin
//! dashboard. Off unless configured.

use l5d_runtime::config::{ConfigError, typed};
use serde::Deserialize;
use serde_json::Value;

/// The kind, as Linkerd's.
pub(super) const KIND: &str = "io.l5d.recentRequests";

/// Linkerd's default capacity.
const DEFAULT_CAPACITY: usize = 10;

/// The most requests kept; each is a few hundred bytes.
pub(super) const MAX_CAPACITY: usize = 10_000;

/// What the telemeter keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecentRequestsConfig {
    /// The fraction of requests recorded, in (0, 1].
    pub sample_rate: f64,
    /// The last this many recorded requests are kept.
    pub capacity: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Keys {
    #[allow(dead_code, reason = "the dispatch key, read before")]
    kind: String,
    sample_rate: Option<f64>,
    capacity: Option<usize>,
}

/// The last `io.l5d.recentRequests` entry of `telemetry` (as Linkerd
/// takes its telemeters), checked.
pub(super) fn from_telemetry(
    telemetry: &Value,
) -> Result<Option<RecentRequestsConfig>, ConfigError> {
    let Value::Array(items) = telemetry else {
        return Ok(None);
    };
    let mut found = None;
    for (i, item) in items.iter().enumerate() {
        if item.get("kind").and_then(Value::as_str) != Some(KIND) {
            continue;
        }
        let field = format!("telemetry[{i}]");
        let keys: Keys = typed(item.clone(), &field)?;
        let sample_rate = keys
            .sample_rate
            .ok_or_else(|| ConfigError::missing(format!("{field}.sampleRate")))?;
        if !(sample_rate > 0.0 && sample_rate <= 1.0) {
            return Err(ConfigError::new(
                format!("{field}.sampleRate"),
                format!("expected a fraction in (0, 1], got {sample_rate}"),
            ));
        }
        let capacity = keys.capacity.unwrap_or(DEFAULT_CAPACITY);
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(ConfigError::new(
                format!("{field}.capacity"),
                format!("expected 1 to {MAX_CAPACITY}, got {capacity}"),
            ));
        }
        found = Some(RecentRequestsConfig {
            sample_rate,
            capacity,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn read_from_the_list_with_linkerds_defaults() {
        let found = from_telemetry(&json!([
            {"kind": "io.l5d.prometheus"},
            {"kind": "io.l5d.recentRequests", "sampleRate": 0.5}
        ]))
        .unwrap();
        assert_eq!(
            found,
            Some(RecentRequestsConfig {
                sample_rate: 0.5,
                capacity: 10
            })
        );
        assert_eq!(from_telemetry(&json!([])).unwrap(), None);
    }

    #[test]
    fn bad_keys_name_the_field() {
        let err = |v: Value| from_telemetry(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!([{"kind": "io.l5d.recentRequests"}])),
            "telemetry[0].sampleRate: missing; it is required"
        );
        assert!(
            err(json!([{"kind": "io.l5d.recentRequests", "sampleRate": 0}]))
                .starts_with("telemetry[0].sampleRate: expected a fraction")
        );
        assert!(
            err(json!([{"kind": "io.l5d.recentRequests", "sampleRate": 1, "capacity": 0}]))
                .starts_with("telemetry[0].capacity: expected 1 to")
        );
        assert!(
            err(json!([{"kind": "io.l5d.recentRequests", "sampleRate": 1, "bogus": 1}]))
                .contains("bogus")
        );
    }
}
