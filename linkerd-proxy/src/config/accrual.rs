//! `failureAccrual` of a `client` block: when the balancer stops sending
//! requests to an endpoint, and for how long, as Linkerd 1.x's failure
//! accrual policies (`io.l5d.consecutiveFailures`, `io.l5d.successRate`,
//! `io.l5d.successRateWindowed`, `none`), each with a `backoff` for the
//! dead period. The state machine that applies it is `balance/accrual.rs`.

use std::time::Duration;

use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

use super::backoff::{BackoffConfig, parse_backoff};

/// The failure accrual of one bound id's endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct AccrualConfig {
    pub policy: AccrualPolicy,
    /// How long an endpoint that tripped stays dead.
    pub backoff: BackoffConfig,
}

/// When an endpoint trips.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AccrualPolicy {
    /// After this many failures in a row.
    ConsecutiveFailures { failures: u32 },
    /// When the success rate, an exponentially weighted average over about
    /// `requests` requests, falls below `rate`, once `requests` were seen.
    SuccessRate { rate: f64, requests: u32 },
    /// When the success rate, an exponentially weighted average over about
    /// `window` of time, falls below `rate`, once a whole window was seen.
    SuccessRateWindowed { rate: f64, window: Duration },
    /// Never.
    None,
}

impl Default for AccrualConfig {
    /// Linkerd's: five consecutive failures, dead for 5 s to 300 s.
    fn default() -> Self {
        AccrualConfig {
            policy: AccrualPolicy::ConsecutiveFailures {
                failures: default_failures(),
            },
            backoff: BackoffConfig::Jittered {
                min: Duration::from_secs(5),
                max: Duration::from_secs(300),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConsecutiveKeys {
    #[serde(default = "default_failures")]
    failures: u32,
    #[serde(default)]
    backoff: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SuccessRateKeys {
    success_rate: f64,
    requests: u32,
    #[serde(default)]
    backoff: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WindowedKeys {
    success_rate: f64,
    /// Seconds.
    window: u64,
    #[serde(default)]
    backoff: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoneKeys {}

fn default_failures() -> u32 {
    5
}

const SUPPORTED: &str = "supported: io.l5d.consecutiveFailures, io.l5d.successRate, \
                         io.l5d.successRateWindowed, none";

/// Reads `failureAccrual` at `field`.
pub(super) fn parse_accrual(value: Value, field: &str) -> Result<AccrualConfig, ConfigError> {
    let (kind, rest) = kind_of(value, field)?;
    let (policy, backoff) = match kind.as_str() {
        "io.l5d.consecutiveFailures" => {
            let k: ConsecutiveKeys = typed(rest, field)?;
            at_least_one(k.failures.into(), field, "failures")?;
            let policy = AccrualPolicy::ConsecutiveFailures {
                failures: k.failures,
            };
            (policy, k.backoff)
        }
        "io.l5d.successRate" => {
            let k: SuccessRateKeys = typed(rest, field)?;
            check_rate(k.success_rate, field)?;
            at_least_one(k.requests.into(), field, "requests")?;
            let policy = AccrualPolicy::SuccessRate {
                rate: k.success_rate,
                requests: k.requests,
            };
            (policy, k.backoff)
        }
        "io.l5d.successRateWindowed" => {
            let k: WindowedKeys = typed(rest, field)?;
            check_rate(k.success_rate, field)?;
            at_least_one(k.window, field, "window")?;
            let policy = AccrualPolicy::SuccessRateWindowed {
                rate: k.success_rate,
                window: Duration::from_secs(k.window),
            };
            (policy, k.backoff)
        }
        "none" => {
            let _: NoneKeys = typed(rest, field)?;
            (AccrualPolicy::None, None)
        }
        other => {
            return Err(ConfigError::unsupported_kind(
                field,
                "failure accrual",
                other,
                SUPPORTED,
            ));
        }
    };
    let backoff = match backoff {
        None => AccrualConfig::default().backoff,
        Some(v) => parse_backoff(v, &format!("{field}.backoff"), None)?,
    };
    Ok(AccrualConfig { policy, backoff })
}

fn at_least_one(n: u64, field: &str, key: &str) -> Result<(), ConfigError> {
    check(n > 0, format!("{field}.{key}"), "must be at least 1")
}

fn check_rate(rate: f64, field: &str) -> Result<(), ConfigError> {
    check(
        rate > 0.0 && rate <= 1.0,
        format!("{field}.successRate"),
        "must be in (0, 1]",
    )
}
