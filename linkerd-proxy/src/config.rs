//! The proxy's configuration file, in the shape of Linkerd 1.x's:
//! `admin`, `routers` (each with `protocol`, `label`, `servers`,
//! `identifier`, `dstPrefix`, `dtab`, `interpreter`, `client`, `service`),
//! plus the accepted-and-checked `telemetry` and `usage`.
//!
//! YAML or JSON (JSON is YAML). Every error names the field it is about
//! (`routers[0].identifier.kind: ...`), unknown fields are refused, and
//! kinds we do not support are refused by name rather than ignored.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

mod kinds;
mod router;

pub use kinds::{
    BalancerKind, ClientConfig, HeaderSource, IdentifierConfig, InterpreterConfig, ServiceConfig,
    TransformerConfig,
};
pub use router::{Protocol, RouterConfig, ServerConfig};

/// The default admin port, as Linkerd's.
pub const ADMIN_PORT: u16 = 9990;
pub(crate) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A configuration that could not be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The path of the field, e.g. `routers[1].servers[0].port`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl fmt::Display, message: impl fmt::Display) -> Self {
        ConfigError {
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub admin: AdminConfig,
    pub routers: Vec<RouterConfig>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminConfig {
    #[serde(default = "loopback")]
    pub ip: IpAddr,
    #[serde(default = "admin_port")]
    pub port: u16,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            ip: LOOPBACK,
            port: ADMIN_PORT,
        }
    }
}

impl AdminConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

fn loopback() -> IpAddr {
    LOOPBACK
}
fn admin_port() -> u16 {
    ADMIN_PORT
}

// === parsing ===

impl ProxyConfig {
    /// Parses a YAML or JSON document.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let doc: Value =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::new("(document)", e))?;
        Self::from_value(doc)
    }

    /// Checks a document already parsed into JSON values.
    pub fn from_value(doc: Value) -> Result<Self, ConfigError> {
        let Value::Object(mut top) = doc else {
            return Err(ConfigError::new(
                "(document)",
                "expected a mapping with `routers`",
            ));
        };
        const KNOWN: &[&str] = &["admin", "routers", "telemetry", "usage", "namers"];
        if let Some(unknown) = top.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ConfigError::new(
                unknown,
                format!("unknown field; expected one of {}", KNOWN.join(", ")),
            ));
        }
        let admin = match top.remove("admin") {
            Some(v) => typed::<AdminConfig>(v, "admin")?,
            None => AdminConfig::default(),
        };
        if let Some(telemetry) = top.remove("telemetry") {
            telemetry_kinds(&telemetry)?;
        }
        if let Some(usage) = top.remove("usage") {
            // Accepted for compatibility with Linkerd configs; this proxy
            // sends no usage data, so the keys only need to be well formed.
            typed::<Usage>(usage, "usage")?;
        }
        if let Some(namers) = top.remove("namers") {
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
            top.remove("routers")
                .ok_or_else(|| ConfigError::new("routers", "missing; it is required"))?,
        )?;
        let config = ProxyConfig { admin, routers };
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Usage {
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

fn telemetry_kinds(value: &Value) -> Result<(), ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("telemetry", "expected a list"));
    };
    for (i, item) in items.iter().enumerate() {
        let kind = item.get("kind").and_then(Value::as_str);
        match kind {
            // Prometheus is always served at /admin/metrics/prometheus.
            Some("io.l5d.prometheus") => {}
            Some(other) => {
                return Err(ConfigError::new(
                    format!("telemetry[{i}].kind"),
                    format!("unsupported telemeter {other:?}; supported: io.l5d.prometheus"),
                ));
            }
            None => {
                return Err(ConfigError::new(
                    format!("telemetry[{i}].kind"),
                    "missing; it is required",
                ));
            }
        }
    }
    Ok(())
}

/// Deserialises `value` as `T`, reporting errors at `field` plus the path
/// inside it.
pub(crate) fn typed<T: DeserializeOwned>(value: Value, field: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{inner}")
        };
        ConfigError::new(path, e.into_inner())
    })
}

/// The `kind` of an object at `field`, and the object without it.
pub(crate) fn kind_of(value: Value, field: &str) -> Result<(String, Value), ConfigError> {
    let Value::Object(mut obj) = value else {
        return Err(ConfigError::new(field, "expected a mapping with a `kind`"));
    };
    match obj.remove("kind") {
        Some(Value::String(kind)) => Ok((kind, Value::Object(obj))),
        Some(_) => Err(ConfigError::new(
            format!("{field}.kind"),
            "expected a string",
        )),
        None => Err(ConfigError::new(
            format!("{field}.kind"),
            "missing; it is required",
        )),
    }
}
