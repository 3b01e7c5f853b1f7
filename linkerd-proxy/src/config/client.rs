//! `client` and `service`: how a router talks to endpoints (balancer,
//! connection pool, connect timeout) and the policies of a logical name
//! (total timeout). Both accept only Linkerd's `io.l5d.global` kind.

use std::time::Duration;

use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

/// The balancer over one bound id's endpoints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BalancerKind {
    /// Power of two choices over peak-EWMA latency (the default here).
    Ewma {
        decay: Duration,
    },
    /// Power of two choices over requests in flight.
    P2c,
    RoundRobin,
}

/// `client`: how the proxy talks to endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    pub load_balancer: BalancerKind,
    /// Establishing a connection to an endpoint may take this long.
    pub connect_timeout: Duration,
    /// Idle pooled HTTP/1.1 connections are closed after this.
    pub pool_idle_timeout: Duration,
    /// Idle pooled HTTP/1.1 connections kept per endpoint.
    pub pool_max_idle: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            load_balancer: BalancerKind::Ewma {
                decay: Duration::from_secs(10),
            },
            connect_timeout: Duration::from_secs(1),
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle: 128,
        }
    }
}

/// `service`: policies for a logical name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    /// The whole request, from routing to the response head, may take
    /// this long (503 afterwards).
    pub total_timeout: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClientKeys {
    #[serde(default)]
    load_balancer: Option<Value>,
    #[serde(default = "connect_timeout_ms")]
    connect_timeout_ms: u64,
    #[serde(default)]
    host_connection_pool: Option<PoolKeys>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PoolKeys {
    #[serde(default = "pool_idle_ms")]
    idle_time_ms: u64,
    #[serde(default = "pool_max_idle")]
    max_idle: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BalancerKeys {
    #[serde(default, rename = "maxEffort")]
    _max_effort: Option<u32>,
    #[serde(default = "decay_ms")]
    decay_time_ms: u64,
    #[serde(default, rename = "enableProbation")]
    _enable_probation: Option<bool>,
}

fn connect_timeout_ms() -> u64 {
    1_000
}
fn pool_idle_ms() -> u64 {
    60_000
}
fn pool_max_idle() -> usize {
    128
}
fn decay_ms() -> u64 {
    10_000
}

/// Reads the `client` section at `field`.
pub(super) fn parse_client(value: Value, field: &str) -> Result<ClientConfig, ConfigError> {
    let k: ClientKeys = typed(global(value, field, "client")?, field)?;
    let load_balancer = match k.load_balancer {
        None => ClientConfig::default().load_balancer,
        Some(v) => {
            let f = format!("{field}.loadBalancer");
            let (kind, rest) = kind_of(v, &f)?;
            let keys: BalancerKeys = typed(rest, &f)?;
            match kind.as_str() {
                "ewma" => BalancerKind::Ewma {
                    decay: Duration::from_millis(keys.decay_time_ms.max(1)),
                },
                "p2c" => BalancerKind::P2c,
                "roundRobin" => BalancerKind::RoundRobin,
                "aperture" | "heap" => {
                    return Err(ConfigError::new(
                        format!("{f}.kind"),
                        format!(
                            "balancer {kind:?} is not supported; supported: ewma, p2c, roundRobin"
                        ),
                    ));
                }
                _ => {
                    return Err(ConfigError::new(
                        format!("{f}.kind"),
                        format!("unknown balancer {kind:?}; expected ewma, p2c or roundRobin"),
                    ));
                }
            }
        }
    };
    check(
        k.connect_timeout_ms != 0,
        format!("{field}.connectTimeoutMs"),
        "must be greater than 0",
    )?;
    let pool = k.host_connection_pool.unwrap_or(PoolKeys {
        idle_time_ms: pool_idle_ms(),
        max_idle: pool_max_idle(),
    });
    Ok(ClientConfig {
        load_balancer,
        connect_timeout: Duration::from_millis(k.connect_timeout_ms),
        pool_idle_timeout: Duration::from_millis(pool.idle_time_ms),
        pool_max_idle: pool.max_idle,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceKeys {
    total_timeout_ms: Option<u64>,
}

/// Reads the `service` section at `field`.
pub(super) fn parse_service(value: Value, field: &str) -> Result<ServiceConfig, ConfigError> {
    let k: ServiceKeys = typed(global(value, field, "service")?, field)?;
    check(
        k.total_timeout_ms != Some(0),
        format!("{field}.totalTimeoutMs"),
        "must be greater than 0",
    )?;
    Ok(ServiceConfig {
        total_timeout: k.total_timeout_ms.map(Duration::from_millis),
    })
}

/// The section at `field` without its optional `kind`, which may only be
/// Linkerd's `io.l5d.global` (per-prefix `client`/`service` configs are
/// not supported).
fn global(mut value: Value, field: &str, what: &str) -> Result<Value, ConfigError> {
    if let Some(obj) = value.as_object_mut()
        && let Some(kind) = obj.remove("kind")
        && kind.as_str() != Some("io.l5d.global")
    {
        return Err(ConfigError::new(
            format!("{field}.kind"),
            format!("{what} kind {kind} is not supported; supported: io.l5d.global"),
        ));
    }
    Ok(value)
}
