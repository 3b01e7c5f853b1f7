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

use crate::k8s::ConnectionKeys;
use crate::namer::config::{NamerConfig, parse_namers};
use crate::store::Namespace;
use crate::store::k8s::{K8sOptions, selector_labels};

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
    /// Service discovery, in configuration order.
    pub namers: Vec<NamerConfig>,
    pub interpreter: InterpreterConfig,
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
    /// `io.l5d.k8s`: ConfigMaps in a Kubernetes namespace, shared by
    /// several namerd replicas.
    Kubernetes(K8sOptions),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct K8sStorageConfig {
    host: Option<String>,
    port: Option<u16>,
    kubeconfig: Option<PathBuf>,
    #[serde(default = "default_k8s_namespace")]
    namespace: String,
    #[serde(default = "default_name_prefix")]
    name_prefix: String,
    #[serde(default = "default_label_selector")]
    label_selector: String,
    #[serde(default = "default_data_key")]
    data_key: String,
    #[serde(default = "default_idle_timeout_secs")]
    idle_timeout_secs: u64,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as in namerd; the k8s store is not experimental here"
    )]
    experimental: bool,
}

fn default_k8s_namespace() -> String {
    K8sOptions::default().namespace
}
fn default_name_prefix() -> String {
    K8sOptions::default().name_prefix
}
fn default_label_selector() -> String {
    K8sOptions::default().label_selector
}
fn default_data_key() -> String {
    K8sOptions::default().data_key
}
fn default_idle_timeout_secs() -> u64 {
    K8sOptions::default().idle_timeout.as_secs()
}

/// A served interface.
#[derive(Clone, Debug, PartialEq)]
pub enum InterfaceConfig {
    /// `io.l5d.httpController`: the dtab and interpreter HTTP API.
    HttpController(HttpControllerConfig),
    /// `io.l5d.mesh`: the `io.linkerd.mesh` gRPC API.
    Mesh(MeshConfig),
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MeshConfig {
    #[serde(default = "loopback")]
    pub ip: IpAddr,
    #[serde(default = "mesh_port")]
    pub port: u16,
    /// HTTP/2 keep-alive ping interval, to detect dead peers.
    #[serde(default = "keepalive_ms")]
    pub keep_alive_interval_ms: u64,
    /// How long a ping may go unanswered before the connection is closed.
    #[serde(default = "keepalive_ms")]
    pub keep_alive_timeout_ms: u64,
    /// Concurrent streams per connection (a proxy holds one per name and id).
    #[serde(default = "max_streams")]
    pub max_concurrent_streams: u32,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            ip: LOOPBACK,
            port: MESH_PORT,
            keep_alive_interval_ms: keepalive_ms(),
            keep_alive_timeout_ms: keepalive_ms(),
            max_concurrent_streams: max_streams(),
        }
    }
}

impl MeshConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

fn mesh_port() -> u16 {
    MESH_PORT
}
fn keepalive_ms() -> u64 {
    10_000
}
fn max_streams() -> u32 {
    10_000
}

/// Limits of the interpreter (`interpreter:` in our configuration).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InterpreterConfig {
    /// Live bindings at most; more distinct names are refused until idle
    /// ones are evicted.
    #[serde(default = "max_bindings")]
    pub max_bindings: usize,
    /// A binding nobody watches is stopped after this long.
    #[serde(default = "idle_ttl_secs")]
    pub idle_ttl_secs: u64,
}

impl Default for InterpreterConfig {
    fn default() -> Self {
        InterpreterConfig {
            max_bindings: max_bindings(),
            idle_ttl_secs: idle_ttl_secs(),
        }
    }
}

fn max_bindings() -> usize {
    10_000
}
fn idle_ttl_secs() -> u64 {
    600
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
            namers: Vec::new(),
            interpreter: InterpreterConfig::default(),
            interfaces: vec![
                InterfaceConfig::HttpController(HttpControllerConfig::default()),
                InterfaceConfig::Mesh(MeshConfig::default()),
            ],
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
        const KNOWN: &[&str] = &[
            "admin",
            "storage",
            "namers",
            "interpreter",
            "interfaces",
            "telemetry",
        ];
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
        let namers = match top.remove("namers") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => {
                parse_namers(v).map_err(|(field, message)| ConfigError::new(field, message))?
            }
        };
        let interpreter = match top.remove("interpreter") {
            Some(v) => typed::<InterpreterConfig>(v, "interpreter")?,
            None => InterpreterConfig::default(),
        };
        if let Some(telemetry) = top.remove("telemetry") {
            telemetry_kinds(&telemetry)?;
        }
        let interfaces = interfaces(top.remove("interfaces").ok_or_else(|| {
            ConfigError::new("interfaces", "One or more interfaces must be specified")
        })?)?;
        Ok(NamerdConfig {
            admin,
            storage,
            namers,
            interpreter,
            interfaces,
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
        "io.l5d.k8s" => StorageConfig::Kubernetes(k8s_storage(typed(rest, "storage")?)?),
        other => {
            return Err(ConfigError::new(
                "storage.kind",
                format!(
                    "unsupported storage kind {other:?}; supported: io.l5d.sqlite, io.l5d.postgres, io.l5d.inMemory, io.l5d.k8s"
                ),
            ));
        }
    })
}

fn k8s_storage(c: K8sStorageConfig) -> Result<K8sOptions, ConfigError> {
    let keys = ConnectionKeys {
        host: c.host,
        port: c.port,
        kubeconfig: c.kubeconfig,
    };
    let connection = keys
        .connection()
        .map_err(|(key, message)| ConfigError::new(format!("storage.{key}"), message))?;
    if selector_labels(&c.label_selector).is_none() {
        return Err(ConfigError::new(
            "storage.labelSelector",
            "expected key=value pairs separated by commas (the store labels its ConfigMaps with them)",
        ));
    }
    let name_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if c.name_prefix.is_empty() || !name_ok(&c.name_prefix) || c.name_prefix.len() > 100 {
        return Err(ConfigError::new(
            "storage.namePrefix",
            "must be 1-100 lowercase letters, digits, '-' or '.'",
        ));
    }
    let key_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if c.data_key.is_empty() || !key_ok(&c.data_key) {
        return Err(ConfigError::new(
            "storage.dataKey",
            "must be letters, digits, '-', '_' or '.'",
        ));
    }
    if c.idle_timeout_secs < 6 {
        return Err(ConfigError::new(
            "storage.idleTimeoutSecs",
            "must be at least 6 (the server ends each watch 5 s earlier)",
        ));
    }
    Ok(K8sOptions {
        connection,
        namespace: c.namespace,
        name_prefix: c.name_prefix,
        label_selector: c.label_selector,
        data_key: c.data_key,
        idle_timeout: Duration::from_secs(c.idle_timeout_secs),
        ..K8sOptions::default()
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
            "io.l5d.mesh" => out.push(InterfaceConfig::Mesh(typed(rest, &field)?)),
            other => {
                return Err(ConfigError::new(
                    format!("{field}.kind"),
                    format!(
                        "unsupported interface kind {other:?}; supported: io.l5d.httpController, io.l5d.mesh"
                    ),
                ));
            }
        }
    }
    let http = out
        .iter()
        .filter(|i| matches!(i, InterfaceConfig::HttpController(_)))
        .count();
    let mesh = out.len() - http;
    if http > 1 || mesh > 1 {
        return Err(ConfigError::new(
            "interfaces",
            "at most one io.l5d.httpController and one io.l5d.mesh are supported",
        ));
    }
    Ok(out)
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
                "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]\nnamers: [{kind: io.l5d.consul}]",
                "namers[0].kind:",
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
    fn k8s_storage_keys_and_defaults() {
        let parse = |storage: &str| {
            NamerdConfig::parse(&format!(
                "storage: {storage}\ninterfaces: [{{kind: io.l5d.httpController}}]"
            ))
        };
        let cfg = parse("{kind: io.l5d.k8s}").unwrap();
        let StorageConfig::Kubernetes(opts) = cfg.storage else {
            panic!("expected k8s storage");
        };
        assert_eq!(opts, K8sOptions::default());
        let cfg = parse("{kind: io.l5d.k8s, port: 8002, namespace: linkerd, idleTimeoutSecs: 30}")
            .unwrap();
        let StorageConfig::Kubernetes(opts) = cfg.storage else {
            panic!("expected k8s storage");
        };
        assert_eq!(
            opts.connection,
            crate::k8s::Connection::Proxy {
                host: "localhost".into(),
                port: 8002
            }
        );
        assert_eq!(
            (opts.namespace.as_str(), opts.idle_timeout.as_secs()),
            ("linkerd", 30)
        );
        let cases = [
            (
                "{kind: io.l5d.k8s, host: h, kubeconfig: /k}",
                "storage.kubeconfig:",
            ),
            (
                "{kind: io.l5d.k8s, labelSelector: \"a!=b\"}",
                "storage.labelSelector:",
            ),
            (
                "{kind: io.l5d.k8s, namePrefix: Dtab-}",
                "storage.namePrefix:",
            ),
            ("{kind: io.l5d.k8s, dataKey: \"a/b\"}", "storage.dataKey:"),
            (
                "{kind: io.l5d.k8s, idleTimeoutSecs: 2}",
                "storage.idleTimeoutSecs:",
            ),
            ("{kind: io.l5d.k8s, hots: x}", "storage.hots: unknown field"),
        ];
        for (storage, want) in cases {
            let err = parse(storage).unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{storage}: got {err:?}, want {want:?}"
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
            "storage.host",
            "storage.port",
            "storage.kubeconfig",
            "storage.namespace",
            "storage.namePrefix",
            "storage.labelSelector",
            "storage.dataKey",
            "storage.idleTimeoutSecs",
            "namers",
            "namers[].kind",
            "namers[].prefix",
            "namers[].experimental",
            "namers[].rootDir",
            "namers[].rescanIntervalMs",
            "namers[].pattern",
            "namers[].name",
            "namers[].host",
            "namers[].port",
            "namers[].kubeconfig",
            "namers[].labelSelector",
            "namers[].transformers",
            "namers[].transformers[].kind",
            "namers[].transformers[].prefix",
            "namers[].transformers[].namespace",
            "namers[].transformers[].service",
            "namers[].transformers[].port",
            "namers[].transformers[].hostNetwork",
            "namers[].transformers[].k8sHost",
            "namers[].transformers[].k8sPort",
            "namers[].transformers[].kubeconfig",
            "interpreter.maxBindings",
            "interpreter.idleTtlSecs",
            "interfaces",
            "interfaces[].kind",
            "interfaces[].ip",
            "interfaces[].port",
            "interfaces[].maxBodyBytes",
            "interfaces[].keepAliveIntervalMs",
            "interfaces[].keepAliveTimeoutMs",
            "interfaces[].maxConcurrentStreams",
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
