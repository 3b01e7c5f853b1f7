//! The `kind`-selected parts of a router: identifiers, the interpreter and
//! its transformers, the client (balancer, pool, timeouts) and the service
//! (total timeout).

use std::time::Duration;

use http::HeaderName;
use l5d_dtab::Path;
use serde::Deserialize;
use serde_json::Value;

use super::router::Protocol;
use super::{ConfigError, kind_of, typed};

/// How a request is named (`identifier`).
#[derive(Clone, Debug, PartialEq)]
pub enum IdentifierConfig {
    /// `io.l5d.header.token`: `dstPrefix/<header value>` (one segment).
    HeaderToken { header: HeaderSource },
    /// `io.l5d.methodAndHost`: `dstPrefix/1.1/<METHOD>/<host>[/uri...]`.
    MethodAndHost { http_uri_in_dst: bool },
    /// `io.l5d.path`: `dstPrefix/<first N path segments>`, optionally
    /// removed from the forwarded request.
    Path { segments: usize, consume: bool },
    /// `io.l5d.header`: `dstPrefix` + the header's value read as a path.
    Header { header: HeaderSource },
    /// `io.l5d.header.path`: `dstPrefix/<segments of the header's path>`;
    /// with `:path` this is the gRPC identifier (`/pkg.Service/Method`).
    HeaderPath {
        header: HeaderSource,
        segments: Option<usize>,
    },
    /// `io.l5d.static`: always `dstPrefix` + `path`.
    Static { path: Path },
}

/// Where bindings come from.
#[derive(Clone, Debug, PartialEq)]
pub enum InterpreterConfig {
    /// `default`: the router's `dtab`, bound locally with the `/$` namers.
    Default {
        transformers: Vec<TransformerConfig>,
    },
    /// `io.l5d.mesh`: namerd's gRPC streams.
    Mesh {
        /// `/$/inet/<host>/<port>`.
        dst: String,
        /// The namerd namespace, a one-segment path (`/internal`).
        root: Path,
        retry_base: Duration,
        retry_max: Duration,
        transformers: Vec<TransformerConfig>,
    },
}

impl InterpreterConfig {
    pub fn transformers(&self) -> &[TransformerConfig] {
        match self {
            InterpreterConfig::Default { transformers }
            | InterpreterConfig::Mesh { transformers, .. } => transformers,
        }
    }
}

/// Address filters applied in the proxy (the rest run in namerd).
#[derive(Clone, Debug, PartialEq)]
pub enum TransformerConfig {
    /// `io.l5d.k8s.localnode`: keep endpoints on this node (by `NODE_NAME`
    /// when `hostNetwork`, else by the /24 of `POD_IP`).
    LocalNode { host_network: bool },
}

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

// === identifiers ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HeaderKeys {
    header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MethodAndHostKeys {
    #[serde(default)]
    http_uri_in_dst: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PathKeys {
    #[serde(default = "one")]
    segments: usize,
    #[serde(default)]
    consume: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HeaderPathKeys {
    header: Option<String>,
    segments: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StaticKeys {
    path: String,
}

fn one() -> usize {
    1
}

pub(super) fn parse_identifiers(
    value: Option<Value>,
    protocol: Protocol,
    router: &str,
) -> Result<Vec<IdentifierConfig>, ConfigError> {
    let field = format!("{router}.identifier");
    let items = match value {
        None | Some(Value::Null) => {
            let header = match protocol {
                Protocol::Http => HeaderSource::Named(http::header::HOST),
                Protocol::H2 => HeaderSource::Authority,
            };
            return Ok(vec![IdentifierConfig::HeaderToken { header }]);
        }
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{field}[{i}]"), v))
            .collect::<Vec<_>>(),
        Some(v) => vec![(field.clone(), v)],
    };
    if items.is_empty() {
        return Err(ConfigError::new(
            field,
            "at least one identifier is required",
        ));
    }
    items
        .into_iter()
        .map(|(f, v)| parse_identifier(v, &f, protocol))
        .collect()
}

fn parse_identifier(
    value: Value,
    field: &str,
    protocol: Protocol,
) -> Result<IdentifierConfig, ConfigError> {
    let (kind, rest) = kind_of(value, field)?;
    let default_token = match protocol {
        Protocol::Http => "host",
        Protocol::H2 => ":authority",
    };
    Ok(match (kind.as_str(), protocol) {
        ("io.l5d.header.token", _) => {
            let k: HeaderKeys = typed(rest, field)?;
            IdentifierConfig::HeaderToken {
                header: header_name(k.header.as_deref().unwrap_or(default_token), field)?,
            }
        }
        ("io.l5d.methodAndHost", Protocol::Http) => {
            let k: MethodAndHostKeys = typed(rest, field)?;
            IdentifierConfig::MethodAndHost {
                http_uri_in_dst: k.http_uri_in_dst,
            }
        }
        ("io.l5d.path", Protocol::Http) => {
            let k: PathKeys = typed(rest, field)?;
            if k.segments == 0 {
                return Err(ConfigError::new(
                    format!("{field}.segments"),
                    "must be at least 1",
                ));
            }
            IdentifierConfig::Path {
                segments: k.segments,
                consume: k.consume,
            }
        }
        ("io.l5d.header", Protocol::Http) => {
            let k: HeaderKeys = typed(rest, field)?;
            IdentifierConfig::Header {
                header: header_name(k.header.as_deref().unwrap_or("l5d-name"), field)?,
            }
        }
        ("io.l5d.header.path" | "io.l5d.headerPath", _) => {
            let k: HeaderPathKeys = typed(rest, field)?;
            if k.segments == Some(0) {
                return Err(ConfigError::new(
                    format!("{field}.segments"),
                    "must be at least 1",
                ));
            }
            IdentifierConfig::HeaderPath {
                header: header_name(k.header.as_deref().unwrap_or(":path"), field)?,
                segments: k.segments,
            }
        }
        ("io.l5d.static", _) => {
            let k: StaticKeys = typed(rest, field)?;
            IdentifierConfig::Static {
                path: Path::read(&k.path)
                    .map_err(|e| ConfigError::new(format!("{field}.path"), e))?,
            }
        }
        ("io.l5d.ingress" | "io.l5d.k8s.istio", _) => {
            return Err(ConfigError::new(
                format!("{field}.kind"),
                format!("identifier {kind:?} is not supported by this proxy"),
            ));
        }
        ("io.l5d.methodAndHost" | "io.l5d.path" | "io.l5d.header", Protocol::H2) => {
            return Err(ConfigError::new(
                format!("{field}.kind"),
                format!(
                    "identifier {kind:?} is for HTTP/1.1 routers; h2 routers support \
                     io.l5d.header.token, io.l5d.header.path and io.l5d.static"
                ),
            ));
        }
        _ => {
            return Err(ConfigError::new(
                format!("{field}.kind"),
                format!(
                    "unknown identifier {kind:?}; expected one of io.l5d.header.token, \
                     io.l5d.methodAndHost, io.l5d.path, io.l5d.header, io.l5d.header.path, io.l5d.static"
                ),
            ));
        }
    })
}

/// Header names are matched lower-case; `:authority` and `:path` name the
/// HTTP/2 pseudo-headers, which on HTTP/1.1 are the `Host` header (or the
/// absolute URI's authority) and the request target.
fn header_name(name: &str, field: &str) -> Result<HeaderSource, ConfigError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        ":authority" => Ok(HeaderSource::Authority),
        ":path" => Ok(HeaderSource::Path),
        _ => HeaderName::from_bytes(lower.as_bytes())
            .map(HeaderSource::Named)
            .map_err(|e| {
                ConfigError::new(
                    format!("{field}.header"),
                    format!("{name:?} is not a valid header name: {e}"),
                )
            }),
    }
}

/// Where an identifier reads its value.
#[derive(Clone, Debug, PartialEq)]
pub enum HeaderSource {
    /// `:authority`: the URI's authority, else the `Host` header.
    Authority,
    /// `:path`: the request target's path.
    Path,
    Named(HeaderName),
}

// === interpreter ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MeshKeys {
    dst: String,
    #[serde(default = "default_root")]
    root: String,
    #[serde(default)]
    retry: Option<RetryKeys>,
    #[serde(default)]
    transformers: Option<Value>,
    #[serde(default, rename = "experimental")]
    _experimental: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RetryKeys {
    #[serde(default = "retry_base")]
    base_seconds: u64,
    #[serde(default = "retry_max")]
    max_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DefaultKeys {
    #[serde(default)]
    transformers: Option<Value>,
}

fn default_root() -> String {
    "/default".to_string()
}
fn retry_base() -> u64 {
    1
}
fn retry_max() -> u64 {
    10
}

pub(super) fn parse_interpreter(
    value: Option<Value>,
    router: &str,
) -> Result<InterpreterConfig, ConfigError> {
    let field = format!("{router}.interpreter");
    let Some(value) = value else {
        return Ok(InterpreterConfig::Default {
            transformers: Vec::new(),
        });
    };
    let (kind, rest) = kind_of(value, &field)?;
    match kind.as_str() {
        "default" => {
            let k: DefaultKeys = typed(rest, &field)?;
            Ok(InterpreterConfig::Default {
                transformers: parse_transformers(k.transformers, &field)?,
            })
        }
        "io.l5d.mesh" => {
            let k: MeshKeys = typed(rest, &field)?;
            let root =
                Path::read(&k.root).map_err(|e| ConfigError::new(format!("{field}.root"), e))?;
            if root.len() != 1 {
                return Err(ConfigError::new(
                    format!("{field}.root"),
                    "must be a single-segment path naming the namerd namespace, e.g. /internal",
                ));
            }
            check_dst(&k.dst).map_err(|m| ConfigError::new(format!("{field}.dst"), m))?;
            let retry = k.retry.unwrap_or(RetryKeys {
                base_seconds: retry_base(),
                max_seconds: retry_max(),
            });
            if retry.base_seconds == 0 || retry.max_seconds < retry.base_seconds {
                return Err(ConfigError::new(
                    format!("{field}.retry"),
                    "expected 0 < baseSeconds <= maxSeconds",
                ));
            }
            Ok(InterpreterConfig::Mesh {
                dst: k.dst,
                root,
                retry_base: Duration::from_secs(retry.base_seconds),
                retry_max: Duration::from_secs(retry.max_seconds),
                transformers: parse_transformers(k.transformers, &field)?,
            })
        }
        "io.l5d.namerd"
        | "io.l5d.namerd.http"
        | "io.l5d.fs"
        | "io.l5d.k8s.configMap"
        | "io.l5d.consul.interpreter" => Err(ConfigError::new(
            format!("{field}.kind"),
            format!(
                "interpreter {kind:?} is not supported by this proxy; use io.l5d.mesh (namerd's gRPC API) or default"
            ),
        )),
        _ => Err(ConfigError::new(
            format!("{field}.kind"),
            format!("unknown interpreter {kind:?}; expected default or io.l5d.mesh"),
        )),
    }
}

/// `dst` is Linkerd's `/$/inet/<host>/<port>`.
fn check_dst(dst: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "expected /$/inet/<host>/<port> (e.g. /$/inet/namerd.linkerd.svc.cluster.local/4321), got {dst}"
        )
    };
    let path = Path::read(dst).map_err(|e| format!("{}: {e}", expected()))?;
    let labels: Vec<&[u8]> = path.labels().collect();
    match labels.as_slice() {
        [b"$", b"inet", host, port]
            if !host.is_empty()
                && std::str::from_utf8(port)
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_some_and(|p| p != 0) =>
        {
            Ok(())
        }
        _ => Err(expected()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LocalNodeKeys {
    #[serde(default)]
    host_network: bool,
}

fn parse_transformers(
    value: Option<Value>,
    interpreter: &str,
) -> Result<Vec<TransformerConfig>, ConfigError> {
    let field = format!("{interpreter}.transformers");
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ConfigError::new(field, "expected a list")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let f = format!("{field}[{i}]");
            let (kind, rest) = kind_of(v, &f)?;
            match kind.as_str() {
                "io.l5d.k8s.localnode" => {
                    let k: LocalNodeKeys = typed(rest, &f)?;
                    Ok(TransformerConfig::LocalNode {
                        host_network: k.host_network,
                    })
                }
                _ => Err(ConfigError::new(
                    format!("{f}.kind"),
                    format!(
                        "transformer {kind:?} is not supported in the proxy; supported: \
                         io.l5d.k8s.localnode (the others run in namerd, on its namers)"
                    ),
                )),
            }
        })
        .collect()
}

// === client and service ===

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

pub(super) fn parse_client(
    value: Option<Value>,
    router: &str,
) -> Result<ClientConfig, ConfigError> {
    let field = format!("{router}.client");
    let Some(mut value) = value else {
        return Ok(ClientConfig::default());
    };
    if let Some(obj) = value.as_object_mut()
        && let Some(kind) = obj.remove("kind")
        && kind.as_str() != Some("io.l5d.global")
    {
        return Err(ConfigError::new(
            format!("{field}.kind"),
            format!("client kind {kind} is not supported; supported: io.l5d.global"),
        ));
    }
    let k: ClientKeys = typed(value, &field)?;
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
    if k.connect_timeout_ms == 0 {
        return Err(ConfigError::new(
            format!("{field}.connectTimeoutMs"),
            "must be greater than 0",
        ));
    }
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

pub(super) fn parse_service(
    value: Option<Value>,
    router: &str,
) -> Result<ServiceConfig, ConfigError> {
    let field = format!("{router}.service");
    let Some(mut value) = value else {
        return Ok(ServiceConfig::default());
    };
    if let Some(obj) = value.as_object_mut()
        && let Some(kind) = obj.remove("kind")
        && kind.as_str() != Some("io.l5d.global")
    {
        return Err(ConfigError::new(
            format!("{field}.kind"),
            format!("service kind {kind} is not supported; supported: io.l5d.global"),
        ));
    }
    let k: ServiceKeys = typed(value, &field)?;
    if k.total_timeout_ms == Some(0) {
        return Err(ConfigError::new(
            format!("{field}.totalTimeoutMs"),
            "must be greater than 0",
        ));
    }
    Ok(ServiceConfig {
        total_timeout: k.total_timeout_ms.map(Duration::from_millis),
    })
}
