//! namerd's configuration file, in the shape of Linkerd 1.x's namerd:
//! `admin`, `storage` (with a `kind`), `namers`, `interpreter`, `interfaces`
//! and the accepted-and-checked `telemetry`, one module per section.
//!
//! YAML or JSON (JSON is YAML), read with `l5d-runtime`'s configuration
//! toolkit: every error names the field it is about (`storage.kind: ...`),
//! unknown fields are refused, and kinds we do not support are refused by
//! name rather than ignored.

use l5d_runtime::config::{self as toolkit, AdminConfig, ConfigError, present};
use serde::Deserialize;
use serde_json::Value;

use crate::store::Retention;

mod connection;
mod interfaces;
mod interpreter;
mod namers;
mod storage;
#[cfg(test)]
mod tests;
mod transformers;

pub use interfaces::{
    HTTP_CONTROLLER_PORT, HttpControllerConfig, InterfaceConfig, MAX_BODY_BYTES, MESH_IDLE,
    MESH_PORT, MeshConfig,
};
pub use interpreter::InterpreterConfig;
pub use namers::{NamerConfig, NamerKind, build_namers, parse_namers};
pub use storage::StorageConfig;
pub use transformers::{BuildContext, TransformerConfig, TransformerKind};

/// The default admin port (namerd's code says 9991; its docs said 9990).
pub const ADMIN_PORT: u16 = 9991;

/// namerd's whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NamerdConfig {
    pub admin: AdminConfig,
    pub storage: StorageConfig,
    /// `storage.history`: how much dtab history the store keeps, whatever
    /// its kind.
    pub history: Retention,
    /// Service discovery, in configuration order.
    pub namers: Vec<NamerConfig>,
    pub interpreter: InterpreterConfig,
    pub interfaces: Vec<InterfaceConfig>,
    /// `io.l5d.opentelemetry`: spans of binds and store writes; off
    /// unless configured.
    pub tracing: Option<l5d_trace::TraceConfig>,
}

/// The top level: each section is read by its own parser, in this order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamerdKeys {
    #[serde(default, deserialize_with = "present")]
    admin: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    storage: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    namers: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    interpreter: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    interfaces: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    telemetry: Option<Value>,
}

// === impl NamerdConfig ===

impl Default for NamerdConfig {
    /// What `namerd` runs with no configuration file: SQLite in `namerd.db`
    /// in the working directory, the HTTP API on 127.0.0.1:4180, the gRPC
    /// API on 127.0.0.1:4321, admin on 127.0.0.1:9991.
    fn default() -> Self {
        NamerdConfig {
            admin: AdminConfig::loopback(ADMIN_PORT),
            storage: StorageConfig::default(),
            history: Retention::default(),
            namers: Vec::new(),
            interpreter: InterpreterConfig::default(),
            interfaces: vec![
                InterfaceConfig::HttpController(HttpControllerConfig::default()),
                InterfaceConfig::Mesh(MeshConfig::default()),
            ],
            tracing: None,
        }
    }
}

impl NamerdConfig {
    /// Parses a YAML or JSON document.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let keys: NamerdKeys = toolkit::sections(
            toolkit::yaml(text)?,
            "expected a mapping with `storage` and `interfaces`",
        )?;
        let admin = AdminConfig::parse_serving(keys.admin, ADMIN_PORT)?;
        let (storage, history) = StorageConfig::parse(
            keys.storage
                .ok_or_else(|| ConfigError::missing("storage"))?,
        )?;
        let namers = match keys.namers {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_namers(v)?,
        };
        let interpreter = InterpreterConfig::parse(keys.interpreter)?;
        let mut tracing = None;
        if let Some(telemetry) = keys.telemetry {
            toolkit::telemetry(&telemetry, &[l5d_trace::KIND])?;
            tracing = l5d_trace::config::from_telemetry(&telemetry, "namerd")?;
        }
        let interfaces = InterfaceConfig::parse_list(
            keys.interfaces
                .ok_or_else(|| ConfigError::new("interfaces", interfaces::NONE))?,
        )?;
        Ok(NamerdConfig {
            admin,
            storage,
            history,
            namers,
            interpreter,
            interfaces,
            tracing,
        })
    }

    pub fn http_controller(&self) -> Option<&HttpControllerConfig> {
        self.interfaces.iter().find_map(|i| match i {
            InterfaceConfig::HttpController(c) => Some(c),
            InterfaceConfig::Mesh(_) => None,
        })
    }

    pub fn mesh(&self) -> Option<&MeshConfig> {
        self.interfaces.iter().find_map(|i| match i {
            InterfaceConfig::Mesh(c) => Some(c),
            InterfaceConfig::HttpController(_) => None,
        })
    }
}
