//! The proxy's configuration file, in the shape of Linkerd 1.x's:
//! `admin`, `routers` (each with `protocol`, `label`, `servers`,
//! `identifier`, `dstPrefix`, `dtab`, `interpreter`, `client`, `service`),
//! plus the accepted-and-checked `telemetry`, `usage` and (empty) `namers`,
//! one module per section.
//!
//! YAML or JSON (JSON is YAML), read with `l5d-runtime`'s configuration
//! toolkit: every error names the field it is about
//! (`routers[0].identifier.kind: ...`), unknown fields are refused, and
//! kinds we do not support are refused by name rather than ignored.

use std::net::SocketAddr;

use l5d_runtime::config::{self as toolkit, AdminConfig, ConfigError, present, typed};
use serde::Deserialize;
use serde_json::Value;

mod accrual;
mod backoff;
mod binding_cache;
mod client;
mod identifier;
mod interpreter;
pub mod prefix;
mod protocol;
mod recent_requests;
mod retries;
mod router;
mod service;
mod tls;

pub use accrual::{AccrualConfig, AccrualPolicy};
pub use backoff::BackoffConfig;
pub use binding_cache::BindingCacheConfig;
pub use client::{
    BalancerConfig, BalancerKind, ClientConfig, ClientConfigs, ClientParams, PoolConfig, TlsForId,
};
pub use identifier::{HeaderSource, IdentifierConfig};
pub use interpreter::{InterpreterConfig, TransformerConfig};
pub use protocol::Protocol;
pub use recent_requests::RecentRequestsConfig;
pub use retries::{BudgetConfig, MAX_BUDGET_TTL_SECS};
pub use router::{RouterConfig, ServerConfig};
pub use service::{
    ClassifierConfig, GrpcRetryable, RetryBufferConfig, RetryableMethods, ServiceConfig,
    ServiceConfigs, ServiceParams,
};

/// The default admin port, as Linkerd's.
pub const ADMIN_PORT: u16 = 9990;

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub admin: AdminConfig,
    pub routers: Vec<RouterConfig>,
    /// `io.l5d.recentRequests`: off unless configured.
    pub recent_requests: Option<RecentRequestsConfig>,
    /// `io.l5d.opentelemetry`: a span per sampled request; off unless
    /// configured.
    pub tracing: Option<l5d_trace::TraceConfig>,
}

/// The top level: each section is read by its own parser, in this order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyKeys {
    #[serde(default, deserialize_with = "present")]
    admin: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    routers: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    telemetry: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    usage: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    namers: Option<Value>,
}

/// `usage`: accepted for compatibility with Linkerd configs; this proxy
/// sends no usage data, so the keys only need to be well formed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UsageKeys {
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted for compatibility; no usage data is sent"
    )]
    org_id: Option<String>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted for compatibility; no usage data is sent"
    )]
    enabled: Option<bool>,
}

// === impl ProxyConfig ===

impl ProxyConfig {
    /// Parses a YAML or JSON document.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::from_value(toolkit::yaml(text)?)
    }

    /// Checks a document already parsed into JSON values.
    pub fn from_value(doc: Value) -> Result<Self, ConfigError> {
        let keys: ProxyKeys = toolkit::sections(doc, "expected a mapping with `routers`")?;
        let admin = AdminConfig::parse_serving(keys.admin, ADMIN_PORT)?;
        let (mut recent_requests, mut tracing) = (None, None);
        if let Some(telemetry) = keys.telemetry {
            toolkit::telemetry(&telemetry, &[recent_requests::KIND, l5d_trace::KIND])?;
            recent_requests = recent_requests::from_telemetry(&telemetry)?;
            tracing = l5d_trace::config::from_telemetry(&telemetry, "linkerd-proxy")?;
        }
        if let Some(usage) = keys.usage {
            typed::<UsageKeys>(usage, "usage")?;
        }
        if let Some(namers) = keys.namers {
            let empty = matches!(&namers, Value::Null)
                || matches!(&namers, Value::Array(a) if a.is_empty());
            if !empty {
                return Err(ConfigError::new(
                    "namers",
                    "local namers are not supported by this proxy: configure them in namerd \
                     and use the io.l5d.mesh interpreter (the default interpreter binds /$/inet only)",
                ));
            }
        }
        let routers = router::parse_routers(
            keys.routers
                .ok_or_else(|| ConfigError::missing("routers"))?,
        )?;
        let config = ProxyConfig {
            admin,
            routers,
            recent_requests,
            tracing,
        };
        config.check_ports()?;
        Ok(config)
    }

    /// Two listeners on one address cannot both start; say which.
    fn check_ports(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<(SocketAddr, String)> = vec![(self.admin.addr(), "admin".into())];
        for (r, router) in self.routers.iter().enumerate() {
            for (s, server) in router.servers.iter().enumerate() {
                let field = format!("routers[{r}].servers[{s}].port");
                let addr = server.addr();
                if server.port != 0
                    && let Some((_, other)) = seen.iter().find(|(a, _)| *a == addr)
                {
                    return Err(ConfigError::new(
                        field,
                        format!("{addr} is already used by {other}"),
                    ));
                }
                seen.push((addr, field));
            }
        }
        Ok(())
    }
}
