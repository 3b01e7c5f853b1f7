//! namerd's configuration file, in the shape of Linkerd 1.x's namerd:
//! `admin`, `storage` (with a `kind`), `namers` and `interfaces`.
//!
//! YAML or JSON (JSON is YAML). Every error names the field it is about
//! (`storage.kind: ...`), and kinds we do not support are refused by name
//! rather than ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use l5d_dtab::Dtab;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::store::Namespace;

/// The default port of the dtab HTTP API (`io.l5d.httpController`).
pub const HTTP_CONTROLLER_PORT: u16 = 4180;
/// The default port of the `io.linkerd.mesh` gRPC API.
pub const MESH_PORT: u16 = 4321;
/// The default admin port (namerd's code says 9991; its docs said 9990).
pub const ADMIN_PORT: u16 = 9991;
/// The default limit on a dtab request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A configuration that could not be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The path of the field, e.g. `storage.kind` or `interfaces[0].port`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl fmt::Display, message: impl fmt::Display) -> Self {
        ConfigError {
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

/// namerd's whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NamerdConfig {
    pub admin: AdminConfig,
    pub storage: StorageConfig,
    pub interfaces: Vec<InterfaceConfig>,
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

/// Where dtabs are kept.
#[derive(Clone, Debug, PartialEq)]
pub enum StorageConfig {
    /// `io.l5d.inMemory`: lost on restart; `namespaces` seeds it.
    InMemory {
        namespaces: BTreeMap<Namespace, Dtab>,
    },
    /// `io.l5d.sqlite`: one file, the embedded default.
    Sqlite {
        path: PathBuf,
        poll_interval: Duration,
    },
    /// `io.l5d.postgres`: shared by several namerd replicas.
    Postgres {
        url: String,
        poll_interval: Duration,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InMemoryConfig {
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as in namerd; in-memory storage is not experimental here"
    )]
    experimental: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SqliteConfig {
    #[serde(default = "default_sqlite_path")]
    path: PathBuf,
    #[serde(default = "default_poll_ms")]
    poll_interval_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostgresConfig {
    url: String,
    #[serde(default = "default_poll_ms")]
    poll_interval_ms: u64,
}

/// A served interface.
#[derive(Clone, Debug, PartialEq)]
pub enum InterfaceConfig {
    /// `io.l5d.httpController`: the dtab HTTP API.
    HttpController(HttpControllerConfig),
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpControllerConfig {
    #[serde(default = "loopback")]
    pub ip: IpAddr,
    #[serde(default = "http_controller_port")]
    pub port: u16,
    /// Larger dtab bodies are refused with 413.
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: usize,
}

impl Default for HttpControllerConfig {
    fn default() -> Self {
        HttpControllerConfig {
            ip: LOOPBACK,
            port: HTTP_CONTROLLER_PORT,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

impl HttpControllerConfig {
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
fn http_controller_port() -> u16 {
    HTTP_CONTROLLER_PORT
}
fn max_body_bytes() -> usize {
    MAX_BODY_BYTES
}
fn default_sqlite_path() -> PathBuf {
    PathBuf::from("namerd.db")
}
fn default_poll_ms() -> u64 {
    5_000
}

impl Default for NamerdConfig {
    /// What `namerd` runs with no configuration file: SQLite in `namerd.db`
    /// in the working directory, the HTTP API on 127.0.0.1:4180, admin on
    /// 127.0.0.1:9991.
    fn default() -> Self {
        NamerdConfig {
            admin: AdminConfig::default(),
            storage: StorageConfig::Sqlite {
                path: default_sqlite_path(),
                poll_interval: Duration::from_millis(default_poll_ms()),
            },
            interfaces: vec![InterfaceConfig::HttpController(
                HttpControllerConfig::default(),
            )],
        }
    }
}

// === parsing ===

impl NamerdConfig {
    /// Parses a YAML or JSON document.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let doc: Value =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::new("(document)", e))?;
        let Value::Object(mut top) = doc else {
            return Err(ConfigError::new(
                "(document)",
                "expected a mapping with `storage` and `interfaces`",
            ));
        };
        const KNOWN: &[&str] = &["admin", "storage", "namers", "interfaces", "telemetry"];
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
        let storage = storage(
            top.remove("storage")
                .ok_or_else(|| ConfigError::new("storage", "missing; it is required"))?,
        )?;
        if let Some(namers) = top.remove("namers") {
            refuse_kinds(
                &namers,
                "namers",
                "namer",
                "namers arrive with binding; none is supported yet",
            )?;
        }
        if let Some(telemetry) = top.remove("telemetry") {
            telemetry_kinds(&telemetry)?;
        }
        let interfaces = interfaces(top.remove("interfaces").ok_or_else(|| {
            ConfigError::new("interfaces", "One or more interfaces must be specified")
        })?)?;
        Ok(NamerdConfig {
            admin,
            storage,
            interfaces,
        })
    }

    pub fn http_controller(&self) -> Option<&HttpControllerConfig> {
        self.interfaces
            .iter()
            .map(|InterfaceConfig::HttpController(c)| c)
            .next()
    }
}

/// Deserialises `value` as `T`, reporting errors at `field` plus the path
/// inside it.
fn typed<T: DeserializeOwned>(value: Value, field: &str) -> Result<T, ConfigError> {
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
fn kind_of(value: Value, field: &str) -> Result<(String, Value), ConfigError> {
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

fn storage(value: Value) -> Result<StorageConfig, ConfigError> {
    let (kind, rest) = kind_of(value, "storage")?;
    Ok(match kind.as_str() {
        "io.l5d.inMemory" => {
            let c: InMemoryConfig = typed(rest, "storage")?;
            let mut namespaces = BTreeMap::new();
            for (name, text) in c.namespaces {
                let field = format!("storage.namespaces.{name}");
                let ns = Namespace::new(&name).map_err(|e| ConfigError::new(&field, e))?;
                let dtab = Dtab::read(&text).map_err(|e| ConfigError::new(&field, e))?;
                namespaces.insert(ns, dtab);
            }
            StorageConfig::InMemory { namespaces }
        }
        "io.l5d.sqlite" => {
            let c: SqliteConfig = typed(rest, "storage")?;
            StorageConfig::Sqlite {
                path: c.path,
                poll_interval: poll_interval(c.poll_interval_ms)?,
            }
        }
        "io.l5d.postgres" => {
            let c: PostgresConfig = typed(rest, "storage")?;
            StorageConfig::Postgres {
                url: c.url,
                poll_interval: poll_interval(c.poll_interval_ms)?,
            }
        }
        other => {
            return Err(ConfigError::new(
                "storage.kind",
                format!(
                    "unsupported storage kind {other:?}; supported: io.l5d.sqlite, io.l5d.postgres, io.l5d.inMemory"
                ),
            ));
        }
    })
}

fn poll_interval(ms: u64) -> Result<Duration, ConfigError> {
    if ms == 0 {
        return Err(ConfigError::new(
            "storage.pollIntervalMs",
            "must be at least 1",
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn interfaces(value: Value) -> Result<Vec<InterfaceConfig>, ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("interfaces", "expected a list"));
    };
    if items.is_empty() {
        return Err(ConfigError::new(
            "interfaces",
            "One or more interfaces must be specified",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("interfaces[{i}]");
        let (kind, rest) = kind_of(item, &field)?;
        match kind.as_str() {
            "io.l5d.httpController" => {
                out.push(InterfaceConfig::HttpController(typed(rest, &field)?))
            }
            "io.l5d.mesh" => {
                return Err(ConfigError::new(
                    format!("{field}.kind"),
                    "io.l5d.mesh is not served yet (it arrives with binding); remove it",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    format!("{field}.kind"),
                    format!(
                        "unsupported interface kind {other:?}; supported: io.l5d.httpController"
                    ),
                ));
            }
        }
    }
    if out.len() > 1 {
        return Err(ConfigError::new(
            "interfaces",
            "at most one io.l5d.httpController is supported",
        ));
    }
    Ok(out)
}

/// Refuses every entry of a list of `kind`ed objects (a feature that does
/// not exist yet), naming the first kind.
fn refuse_kinds(value: &Value, field: &str, what: &str, why: &str) -> Result<(), ConfigError> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) if items.is_empty() => Ok(()),
        Value::Array(items) => {
            let kind = items[0]
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("(no kind)");
            Err(ConfigError::new(
                format!("{field}[0].kind"),
                format!("unsupported {what} kind {kind:?}: {why}"),
            ))
        }
        _ => Err(ConfigError::new(field, "expected a list")),
    }
}

/// `io.l5d.prometheus` is accepted (metrics are always served at
/// `/admin/metrics/prometheus`); other telemeters are refused.
fn telemetry_kinds(value: &Value) -> Result<(), ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("telemetry", "expected a list"));
    };
    for (i, item) in items.iter().enumerate() {
        match item.get("kind").and_then(Value::as_str) {
            Some("io.l5d.prometheus") => {}
            Some(other) => {
                return Err(ConfigError::new(
                    format!("telemetry[{i}].kind"),
                    format!("unsupported telemeter kind {other:?}; supported: io.l5d.prometheus"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namerd_shaped_config() {
        let cfg = NamerdConfig::parse(
            "admin: {port: 9000}\n\
             storage:\n  kind: io.l5d.inMemory\n  namespaces:\n    internal: /svc => /host\n\
             interfaces:\n- kind: io.l5d.httpController\n  port: 4181\n",
        )
        .unwrap();
        assert_eq!(cfg.admin.port, 9000);
        let StorageConfig::InMemory { namespaces } = &cfg.storage else {
            panic!("expected in-memory storage");
        };
        let internal = Namespace::new("internal").unwrap();
        assert_eq!(namespaces[&internal].show(), "/svc=>/host");
        assert_eq!(cfg.http_controller().unwrap().port, 4181);
        assert_eq!(cfg.http_controller().unwrap().ip, LOOPBACK);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "interfaces: [{kind: io.l5d.httpController}]",
                "storage: missing; it is required",
            ),
            (
                "storage: {kind: io.l5d.zk}\ninterfaces: [{kind: io.l5d.httpController}]",
                "storage.kind: unsupported storage kind \"io.l5d.zk\"",
            ),
            (
                "storage: {kind: io.l5d.inMemory}",
                "interfaces: One or more interfaces must be specified",
            ),
            (
                "storage: {kind: io.l5d.inMemory}\ninterfaces: []",
                "interfaces: One or more interfaces must be specified",
            ),
            (
                "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, port: 70000}]",
                "interfaces[0].port:",
            ),
            (
                "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, prot: 1}]",
                "interfaces[0].prot: unknown field",
            ),
            (
                "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.thriftNameInterpreter}]",
                "interfaces[0].kind: unsupported interface kind \"io.l5d.thriftNameInterpreter\"",
            ),
            (
                "storage: {kind: io.l5d.postgres}\ninterfaces: [{kind: io.l5d.httpController}]",
                "storage: missing field `url`",
            ),
            (
                "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]\nnamers: [{kind: io.l5d.fs}]",
                "namers[0].kind: unsupported namer kind \"io.l5d.fs\"",
            ),
            (
                "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]\nrouters: []",
                "routers: unknown field",
            ),
            (
                "admin: {ip: not-an-ip}\nstorage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]",
                "admin.ip:",
            ),
            ("- a list", "(document): expected a mapping"),
            (
                "storage: {kind: io.l5d.inMemory, namespaces: {internal: \"/svc => \"}}\ninterfaces: [{kind: io.l5d.httpController}]",
                "storage.namespaces.internal: simple expected but end of input",
            ),
            (
                "storage: {kind: io.l5d.inMemory, namespaces: {\"a b\": /a=>/b}}\ninterfaces: [{kind: io.l5d.httpController}]",
                "storage.namespaces.a b: invalid dtab namespace",
            ),
        ];
        for (text, want) in cases {
            let err = NamerdConfig::parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{text:?}: got {err:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn json_is_accepted() {
        let cfg = NamerdConfig::parse(
            r#"{"storage": {"kind": "io.l5d.sqlite", "path": "/tmp/x.db"}, "interfaces": [{"kind": "io.l5d.httpController"}]}"#,
        )
        .unwrap();
        assert!(
            matches!(cfg.storage, StorageConfig::Sqlite { ref path, .. } if path == &PathBuf::from("/tmp/x.db"))
        );
    }

    /// The configuration reference in docs/namerd.md cannot drift: its
    /// example parses, and every field the parser reads has a row.
    #[test]
    fn the_reference_documents_every_field() {
        let doc = include_str!("../../docs/namerd.md");
        let example = doc
            .split("Example with every field:\n\n```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/namerd.md has the full example");
        NamerdConfig::parse(example).expect("the documented example parses");
        let fields = [
            "admin.ip",
            "admin.port",
            "storage",
            "storage.kind",
            "storage.path",
            "storage.url",
            "storage.pollIntervalMs",
            "storage.namespaces",
            "storage.experimental",
            "namers",
            "interfaces",
            "interfaces[].kind",
            "interfaces[].ip",
            "interfaces[].port",
            "interfaces[].maxBodyBytes",
            "telemetry",
        ];
        for field in fields {
            assert!(
                doc.contains(&format!("| `{field}` |")),
                "docs/namerd.md has no row for {field}"
            );
        }
    }
}
