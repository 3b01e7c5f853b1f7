//! `backoff` blocks, as Linkerd 1.x's: `{kind: constant, ms}` or
//! `{kind: jittered, minMs, maxMs}`, for retries (`service.retries`) and
//! for failure accrual's dead periods (`client.failureAccrual`).

use std::time::Duration;

use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

/// The wait before each retry of one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BackoffConfig {
    Constant(Duration),
    /// Decorrelated jitter between the bounds.
    Jittered {
        min: Duration,
        max: Duration,
    },
}

impl Default for BackoffConfig {
    /// Linkerd's: retry at once (the budget bounds the extra load).
    fn default() -> Self {
        BackoffConfig::Constant(Duration::ZERO)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConstantKeys {
    ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JitteredKeys {
    min_ms: u64,
    max_ms: u64,
}

/// Reads a `backoff` at `field`: `{kind: constant, ms}` or
/// `{kind: jittered, minMs, maxMs}`.
/// `constant_ms`: what a `constant` backoff without `ms` waits (`None`:
/// `ms` is required, as for a dead period, where no wait makes no sense).
pub(super) fn parse_backoff(
    value: Value,
    field: &str,
    constant_ms: Option<u64>,
) -> Result<BackoffConfig, ConfigError> {
    let (kind, rest) = kind_of(value, field)?;
    match kind.as_str() {
        "constant" => {
            let k: ConstantKeys = typed(rest, field)?;
            let ms =
                k.ms.or(constant_ms)
                    .ok_or_else(|| ConfigError::missing(format!("{field}.ms")))?;
            Ok(BackoffConfig::Constant(Duration::from_millis(ms)))
        }
        "jittered" => {
            let k: JitteredKeys = typed(rest, field)?;
            check(
                k.min_ms > 0,
                format!("{field}.minMs"),
                "must be greater than 0",
            )?;
            check(
                k.max_ms >= k.min_ms,
                format!("{field}.maxMs"),
                "must be at least minMs",
            )?;
            Ok(BackoffConfig::Jittered {
                min: Duration::from_millis(k.min_ms),
                max: Duration::from_millis(k.max_ms),
            })
        }
        other => Err(ConfigError::unsupported_kind(
            field,
            "backoff",
            other,
            "supported: constant, jittered",
        )),
    }
}
