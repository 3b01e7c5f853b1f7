//! `client`: how a router talks to endpoints (balancer, connection pool,
//! connect and attempt timeouts, requeues, TLS), for every bound id
//! (`io.l5d.global`) or by prefix of the id (`io.l5d.static`, see
//! `prefix.rs`).

use std::time::Duration;

use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use l5d_runtime::tls::ClientTlsConfig;
use serde::Deserialize;
use serde_json::Value;

use super::accrual::{AccrualConfig, parse_accrual};
use super::prefix::{PrefixPattern, Static};
use super::retries::{BudgetConfig, parse_budget};
use super::tls::client_tls;

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

/// What a bound id's balancer is built with: how it chooses among
/// endpoints and when it stops choosing one.
#[derive(Clone, Debug, PartialEq)]
pub struct BalancerConfig {
    pub kind: BalancerKind,
    pub accrual: AccrualConfig,
}

/// `client`: how the proxy talks to the endpoints of bound ids, for
/// every id (`io.l5d.global`) or by prefix of the id (`io.l5d.static`).
pub type ClientConfigs = Static<ClientParams>;

/// What one `client` block (or `io.l5d.static` entry) sets; unset fields
/// come from earlier matching entries or the defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientParams {
    pub load_balancer: Option<BalancerKind>,
    pub connect_timeout: Option<Duration>,
    pub pool: Option<PoolConfig>,
    /// `commonName` may hold `{name}` captures of the entry's prefix.
    pub tls: Option<ClientTlsConfig>,
    pub request_attempt_timeout: Option<Duration>,
    pub requeue_budget: Option<BudgetConfig>,
    pub failure_accrual: Option<AccrualConfig>,
}

/// `hostConnectionPool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle pooled HTTP/1.1 connections are closed after this.
    pub idle_timeout: Duration,
    /// Idle pooled HTTP/1.1 connections kept per endpoint.
    pub max_idle: usize,
}

/// The settings of the client of one bound id, TLS aside: every matching
/// entry applied in order over the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    pub load_balancer: BalancerKind,
    /// Establishing a connection to an endpoint (TLS included) may take
    /// this long.
    pub connect_timeout: Duration,
    pub pool: PoolConfig,
    /// One attempt (one endpoint's answer, up to its response head) may
    /// take this long; a retry may follow within the total timeout.
    pub request_attempt_timeout: Option<Duration>,
    /// Connection failures (the request was never written) are retried on
    /// another endpoint within this budget.
    pub requeue_budget: BudgetConfig,
    pub failure_accrual: AccrualConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            load_balancer: BalancerKind::Ewma {
                decay: Duration::from_secs(10),
            },
            connect_timeout: Duration::from_secs(1),
            pool: PoolConfig {
                idle_timeout: Duration::from_millis(pool_idle_ms()),
                max_idle: pool_max_idle(),
            },
            request_attempt_timeout: None,
            requeue_budget: BudgetConfig::default(),
            failure_accrual: AccrualConfig::default(),
        }
    }
}

impl ClientConfig {
    /// Overrides what `params` sets.
    pub fn apply(&mut self, params: &ClientParams) {
        if let Some(lb) = params.load_balancer {
            self.load_balancer = lb;
        }
        if let Some(t) = params.connect_timeout {
            self.connect_timeout = t;
        }
        if let Some(pool) = params.pool {
            self.pool = pool;
        }
        if params.request_attempt_timeout.is_some() {
            self.request_attempt_timeout = params.request_attempt_timeout;
        }
        if let Some(b) = params.requeue_budget {
            self.requeue_budget = b;
        }
        if let Some(accrual) = &params.failure_accrual {
            self.failure_accrual = accrual.clone();
        }
    }

    /// What the balancer of an id with these settings is built with.
    pub fn balancer(&self) -> BalancerConfig {
        BalancerConfig {
            kind: self.load_balancer,
            accrual: self.failure_accrual.clone(),
        }
    }
}

impl ClientConfigs {
    /// The settings for the client of `id`.
    pub fn resolve(&self, id: &l5d_dtab::Path) -> ClientConfig {
        let mut config = ClientConfig::default();
        for (_, entry, _) in self.matching(id) {
            config.apply(&entry.value);
        }
        config
    }

    /// The TLS towards the endpoints of `id`: that of the last matching
    /// entry with a `tls` block, as (the entry's index, the block, its
    /// `commonName` with the entry's captures substituted); `None` for
    /// plaintext.
    pub fn tls_for<'a>(&'a self, id: &'a l5d_dtab::Path) -> Option<TlsForId<'a>> {
        let mut found = None;
        for (index, entry, captures) in self.matching(id) {
            if let Some(block) = &entry.value.tls {
                let common_name = block.common_name.as_deref().map(|n| captures.substitute(n));
                found = Some(TlsForId {
                    index,
                    block,
                    common_name,
                });
            }
        }
        found
    }
}

/// The client TLS that applies to one bound id (see
/// [`ClientConfigs::tls_for`]).
#[derive(Debug)]
pub struct TlsForId<'a> {
    /// The entry it comes from, in [`Static::entries`].
    pub index: usize,
    pub block: &'a ClientTlsConfig,
    /// `commonName`, its captures substituted.
    pub common_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClientKeys {
    #[serde(default)]
    load_balancer: Option<Value>,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    host_connection_pool: Option<PoolKeys>,
    #[serde(default)]
    tls: Option<Value>,
    request_attempt_timeout_ms: Option<u64>,
    requeue_budget: Option<Value>,
    #[serde(default)]
    failure_accrual: Option<Value>,
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

fn pool_idle_ms() -> u64 {
    60_000
}
fn pool_max_idle() -> usize {
    128
}
fn decay_ms() -> u64 {
    10_000
}

/// Reads the `client` section at `field`: `io.l5d.global` (the default)
/// or `io.l5d.static` with `configs: [{prefix, ...}]`.
pub(super) fn parse_client(value: Value, field: &str) -> Result<ClientConfigs, ConfigError> {
    Static::parse(value, field, "client", parse_params)
}

/// One client block (global, or a static entry under `prefix`).
fn parse_params(
    value: Value,
    field: &str,
    prefix: &PrefixPattern,
) -> Result<ClientParams, ConfigError> {
    let k: ClientKeys = typed(value, field)?;
    let load_balancer = match k.load_balancer {
        None => None,
        Some(v) => Some(parse_balancer(v, &format!("{field}.loadBalancer"))?),
    };
    check(
        k.connect_timeout_ms != Some(0),
        format!("{field}.connectTimeoutMs"),
        "must be greater than 0",
    )?;
    check(
        k.request_attempt_timeout_ms != Some(0),
        format!("{field}.requestAttemptTimeoutMs"),
        "must be greater than 0",
    )?;
    let requeue_budget = k
        .requeue_budget
        .map(|v| parse_budget(v, &format!("{field}.requeueBudget")))
        .transpose()?;
    let tls = match k.tls {
        None | Some(Value::Null) => None,
        Some(v) => {
            let at = format!("{field}.tls");
            let tls = client_tls(v, &at, true)?;
            if let Some(name) = &tls.common_name {
                prefix.check_template(name).map_err(|e| {
                    let hint = if prefix.capture_names().next().is_none() {
                        " (captures need kind: io.l5d.static and a prefix with {name} segments)"
                    } else {
                        ""
                    };
                    ConfigError::new(format!("{at}.commonName"), format!("{e}{hint}"))
                })?;
            }
            Some(tls)
        }
    };
    let failure_accrual = match k.failure_accrual {
        None => None,
        Some(v) => Some(parse_accrual(v, &format!("{field}.failureAccrual"))?),
    };
    Ok(ClientParams {
        load_balancer,
        failure_accrual,
        connect_timeout: k.connect_timeout_ms.map(Duration::from_millis),
        pool: k.host_connection_pool.map(|p| PoolConfig {
            idle_timeout: Duration::from_millis(p.idle_time_ms),
            max_idle: p.max_idle,
        }),
        tls,
        request_attempt_timeout: k.request_attempt_timeout_ms.map(Duration::from_millis),
        requeue_budget,
    })
}

fn parse_balancer(v: Value, f: &str) -> Result<BalancerKind, ConfigError> {
    let (kind, rest) = kind_of(v, f)?;
    let keys: BalancerKeys = typed(rest, f)?;
    match kind.as_str() {
        "ewma" => Ok(BalancerKind::Ewma {
            decay: Duration::from_millis(keys.decay_time_ms.max(1)),
        }),
        "p2c" => Ok(BalancerKind::P2c),
        "roundRobin" => Ok(BalancerKind::RoundRobin),
        "aperture" | "heap" => Err(ConfigError::new(
            format!("{f}.kind"),
            format!("balancer {kind:?} is not supported; supported: ewma, p2c, roundRobin"),
        )),
        _ => Err(ConfigError::new(
            format!("{f}.kind"),
            format!("unknown balancer {kind:?}; expected ewma, p2c or roundRobin"),
        )),
    }
}
