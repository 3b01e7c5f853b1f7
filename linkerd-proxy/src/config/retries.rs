//! What retries and requeues are allowed: Linkerd 1.x's retry `budget`,
//! shared by `service.retries.budget` and the client's `requeueBudget`.

use std::time::Duration;

use l5d_runtime::config::{ConfigError, check, typed};
use serde::Deserialize;
use serde_json::Value;

/// A retry budget, as Finagle's `RetryBudget`: retries may add
/// `percent_can_retry` of the requests of the last `ttl`, plus
/// `min_retries_per_sec` for low traffic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    pub min_retries_per_sec: u32,
    /// A fraction of requests: `0.2` lets retries add 20% to the load.
    pub percent_can_retry: f64,
    pub ttl: Duration,
}

impl Default for BudgetConfig {
    /// Linkerd's (and Finagle's) defaults.
    fn default() -> Self {
        BudgetConfig {
            min_retries_per_sec: 10,
            percent_can_retry: 0.2,
            ttl: Duration::from_secs(10),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BudgetKeys {
    min_retries_per_sec: Option<u32>,
    percent_can_retry: Option<f64>,
    ttl_secs: Option<u64>,
}

/// The longest `ttlSecs`: the budget keeps one counter per second.
pub const MAX_BUDGET_TTL_SECS: u64 = 60;

/// Reads a `budget` (or `requeueBudget`) at `field`; unset keys keep
/// Linkerd's defaults.
pub(super) fn parse_budget(value: Value, field: &str) -> Result<BudgetConfig, ConfigError> {
    let k: BudgetKeys = typed(value, field)?;
    let default = BudgetConfig::default();
    let percent = k.percent_can_retry.unwrap_or(default.percent_can_retry);
    check(
        (0.0..=1000.0).contains(&percent),
        format!("{field}.percentCanRetry"),
        "expected a fraction of requests from 0.0 to 1000.0 (0.2 lets retries add 20%)",
    )?;
    let ttl = k.ttl_secs.unwrap_or(default.ttl.as_secs());
    check(
        (1..=MAX_BUDGET_TTL_SECS).contains(&ttl),
        format!("{field}.ttlSecs"),
        "expected 1 to 60 seconds",
    )?;
    Ok(BudgetConfig {
        min_retries_per_sec: k.min_retries_per_sec.unwrap_or(default.min_retries_per_sec),
        percent_can_retry: percent,
        ttl: Duration::from_secs(ttl),
    })
}
