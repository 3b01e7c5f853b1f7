//! `routers[].bindingCache`: how many routes (distinct local dtab and
//! logical name) a router keeps, and for how long. Linkerd's key, with
//! Linkerd's `paths` and `idleTtlSecs`; `maxKeyBytes` is ours, because
//! local dtabs come from clients and a count alone does not bound their
//! memory. At either bound the least recently used idle route goes.

use l5d_runtime::config::{ConfigError, check, typed};
use serde::Deserialize;
use serde_json::Value;

/// The route cache of one router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingCacheConfig {
    /// Routes at most.
    #[serde(default = "paths")]
    pub paths: usize,
    /// The routes' keys (name and local dtab, as text) summed, in bytes,
    /// at most.
    #[serde(default = "max_key_bytes")]
    pub max_key_bytes: usize,
    /// A route unused this long is dropped with its namerd streams.
    #[serde(default = "idle_ttl_secs")]
    pub idle_ttl_secs: u64,
}

fn paths() -> usize {
    10_000
}
fn max_key_bytes() -> usize {
    16 * 1024 * 1024
}
fn idle_ttl_secs() -> u64 {
    600
}

impl Default for BindingCacheConfig {
    fn default() -> Self {
        BindingCacheConfig {
            paths: paths(),
            max_key_bytes: max_key_bytes(),
            idle_ttl_secs: idle_ttl_secs(),
        }
    }
}

/// Reads `bindingCache` at `field`.
pub(super) fn parse_binding_cache(
    value: Value,
    field: &str,
) -> Result<BindingCacheConfig, ConfigError> {
    let config: BindingCacheConfig = typed(value, field)?;
    check(
        config.paths >= 1,
        format!("{field}.paths"),
        "must be at least 1",
    )?;
    check(
        config.max_key_bytes >= 1024,
        format!("{field}.maxKeyBytes"),
        "must be at least 1024",
    )?;
    check(
        config.idle_ttl_secs >= 1,
        format!("{field}.idleTtlSecs"),
        "must be at least 1",
    )?;
    Ok(config)
}
