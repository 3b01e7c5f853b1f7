//! `routers[]`: one router per protocol and label, with its servers and
//! limits.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use l5d_dtab::{Dtab, Path, Prefix, PrefixElem};
use l5d_runtime::config::{AdminConfig, ConfigError, ServerSettings, check, or_default, typed};
use serde::Deserialize;
use serde_json::Value;

use super::binding_cache::{BindingCacheConfig, parse_binding_cache};
use super::client::{ClientConfigs, parse_client};
use super::identifier::{self, IdentifierConfig};
use super::interpreter::{InterpreterConfig, parse_interpreter};
use super::protocol::Protocol;
use super::service::{ServiceConfigs, parse_service};
use super::tls;
use crate::overrides::AddressOverrides;

/// One router.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    pub protocol: Protocol,
    /// The router's name in metrics and admin pages; unique.
    pub label: String,
    pub servers: Vec<ServerConfig>,
    /// Tried in order; the first that names the request wins.
    pub identifiers: Vec<IdentifierConfig>,
    pub dst_prefix: Path,
    /// The router's own dtab (used by the `default` interpreter; with
    /// `io.l5d.mesh` it is sent to namerd as part of every local dtab).
    pub dtab: Dtab,
    pub interpreter: InterpreterConfig,
    /// How long a request waits for a name's first binding.
    pub binding_timeout: Duration,
    /// The routes kept (`bindingCache`).
    pub binding_cache: BindingCacheConfig,
    pub client: ClientConfigs,
    pub service: ServiceConfigs,
    /// Request bodies held for retries, summed over the router's requests
    /// in flight, at most; beyond it requests are streamed, not retried.
    pub retry_buffer_total_bytes: usize,
    /// HTTP/1.1: the largest request head (request line and headers).
    pub max_head_bytes: usize,
}

/// One listener of a router.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub ip: IpAddr,
    pub port: u16,
    /// An untrusting edge: strip (and ignore) every `l5d-*` request header
    /// and `dtab-local`, and let no `l5d-*` header out in responses but the
    /// proxy's own `l5d-err`/`l5d-retryable`: for servers that face
    /// untrusted clients.
    pub clear_context: bool,
    /// Which addresses (`/$/...`) an override may send requests to.
    pub allow_override_to_addresses: AddressOverrides,
    /// Requests in flight on this server at most; more get 503.
    pub max_concurrent_requests: Option<usize>,
    /// The keys every server shares: `tls`, `headerReadTimeoutMs` (the
    /// TLS handshake, the HTTP/2 preface and the first request head count
    /// from accept), `idleTimeoutMs`, `bodyReadTimeoutMs`,
    /// `maxConnections`, `maxConnectionsPerPeer`.
    pub settings: ServerSettings,
    /// HTTP/1.1: headers per request at most.
    pub max_headers: usize,
    /// HTTP/2: concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2: streams a client may reset before the connection is closed
    /// (Rapid Reset, CVE-2023-44487).
    pub max_pending_resets: usize,
    /// HTTP/2: the largest header list.
    pub max_header_list_bytes: u32,
    /// Requests that already passed this many proxies (`Via`) are refused.
    pub max_call_depth: usize,
}

impl ServerConfig {
    /// Linkerd's `Via`-based loop detection, for HTTP/1.1 and h2 alike.
    /// Linkerd 1.x defaults to 1000 (h2: 10); 20 is far beyond any real
    /// path (a DaemonSet mesh has two proxies) and stops a routing loop
    /// long before it fills the header limit (~95 hops) or the process's
    /// descriptors (each hop holds two sockets in the looping proxy).
    pub const DEFAULT_MAX_CALL_DEPTH: usize = 20;

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RouterKeys {
    label: Option<String>,
    servers: Option<Vec<Value>>,
    #[serde(default)]
    identifier: Option<Value>,
    dst_prefix: Option<String>,
    #[serde(default)]
    dtab: String,
    interpreter: Option<Value>,
    #[serde(default = "binding_timeout_ms")]
    binding_timeout_ms: u64,
    binding_cache: Option<Value>,
    client: Option<Value>,
    service: Option<Value>,
    #[serde(default = "max_headers_kb", rename = "maxHeadersKB")]
    max_headers_kb: usize,
    #[serde(default = "max_initial_line_kb", rename = "maxInitialLineKB")]
    max_initial_line_kb: usize,
    #[serde(default = "retry_buffer_total_bytes")]
    retry_buffer_total_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServerKeys {
    #[serde(default = "loopback")]
    ip: IpAddr,
    port: Option<u16>,
    #[serde(default)]
    clear_context: bool,
    allow_override_to_addresses: Option<Value>,
    max_concurrent_requests: Option<usize>,
    #[serde(default = "max_headers")]
    max_headers: usize,
    #[serde(default = "max_concurrent_streams")]
    max_concurrent_streams_per_connection: u32,
    #[serde(default = "max_pending_resets")]
    max_pending_resets: usize,
    #[serde(default = "max_header_list_bytes")]
    max_header_list_bytes: u32,
    max_call_depth: Option<usize>,
}

/// Like the admin block, servers listen on loopback unless configured.
fn loopback() -> IpAddr {
    AdminConfig::LOOPBACK
}
fn binding_timeout_ms() -> u64 {
    10_000
}
fn max_headers_kb() -> usize {
    8
}
fn max_initial_line_kb() -> usize {
    4
}
fn retry_buffer_total_bytes() -> usize {
    32 * 1024 * 1024
}
/// The defaults of the shared server keys on a router's servers. Their
/// clients are the applications of a node, or other nodes' proxies
/// (whose pools hold up to 128 idle connections per endpoint, for up to
/// 60 s: the idle timeout is longer, so a pooled connection is closed by
/// its owner first), so they allow more connections than an API. On h2
/// routers a request body may rest far longer: a gRPC client stream (or
/// the client side of a bidirectional one) can stay open with nothing to
/// send, and a stream costs a slot under the per-connection stream cap,
/// not a connection.
pub(super) fn server_defaults(protocol: Protocol) -> ServerSettings {
    ServerSettings {
        idle_timeout: Duration::from_secs(120),
        body_read_timeout: match protocol {
            Protocol::Http => Duration::from_secs(10),
            Protocol::H2 => Duration::from_secs(3600),
        },
        max_connections: 10_000,
        max_connections_per_peer: 2_000,
        ..ServerSettings::default()
    }
}
fn max_headers() -> usize {
    100
}
fn max_concurrent_streams() -> u32 {
    1000
}
fn max_pending_resets() -> usize {
    20
}
fn max_header_list_bytes() -> u32 {
    16 * 1024
}

pub(super) fn parse_routers(value: Value) -> Result<Vec<RouterConfig>, ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("routers", "expected a list of routers"));
    };
    if items.is_empty() {
        return Err(ConfigError::new(
            "routers",
            "at least one router is required",
        ));
    }
    let mut labels = BTreeSet::new();
    let mut routers = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("routers[{i}]");
        let router = parse_router(item, &field)?;
        if !labels.insert(router.label.clone()) {
            return Err(ConfigError::new(
                format!("{field}.label"),
                format!(
                    "duplicate router label {:?}; labels must be unique",
                    router.label
                ),
            ));
        }
        routers.push(router);
    }
    Ok(routers)
}

fn parse_router(value: Value, field: &str) -> Result<RouterConfig, ConfigError> {
    let Value::Object(mut obj) = value else {
        return Err(ConfigError::new(field, "expected a mapping"));
    };
    let protocol = Protocol::parse(obj.remove("protocol"), field)?;
    let raw: RouterKeys = typed(Value::Object(obj), field)?;
    let label = raw.label.unwrap_or_else(|| protocol.name().to_string());
    if label.is_empty() || label.contains(['/', ' ']) {
        return Err(ConfigError::new(
            format!("{field}.label"),
            "expected a non-empty name without '/' or spaces",
        ));
    }
    let servers = raw
        .servers
        .ok_or_else(|| ConfigError::missing(format!("{field}.servers")))?;
    if servers.is_empty() {
        return Err(ConfigError::new(
            format!("{field}.servers"),
            "at least one server is required",
        ));
    }
    let servers = servers
        .into_iter()
        .enumerate()
        .map(|(s, v)| parse_server(v, &format!("{field}.servers[{s}]"), protocol))
        .collect::<Result<Vec<_>, _>>()?;
    let identifiers = identifier::parse_identifiers(raw.identifier, protocol, field)?;
    let dst_prefix = match raw.dst_prefix {
        None => Path::utf8(["svc"]),
        Some(text) => {
            Path::read(&text).map_err(|e| ConfigError::new(format!("{field}.dstPrefix"), e))?
        }
    };
    let dtab = Dtab::read(&raw.dtab).map_err(|e| ConfigError::new(format!("{field}.dtab"), e))?;
    let at = |key: &str| format!("{field}.{key}");
    let interpreter = or_default(raw.interpreter, &at("interpreter"), parse_interpreter)?;
    let client = or_default(raw.client, &at("client"), parse_client)?;
    let service = or_default(raw.service, &at("service"), |v, f| {
        parse_service(v, f, protocol)
    })?;
    let binding_cache = or_default(raw.binding_cache, &at("bindingCache"), parse_binding_cache)?;
    check(
        raw.binding_timeout_ms != 0,
        format!("{field}.bindingTimeoutMs"),
        "must be greater than 0",
    )?;
    Ok(RouterConfig {
        protocol,
        label,
        servers,
        identifiers,
        dst_prefix,
        dtab,
        interpreter,
        binding_timeout: Duration::from_millis(raw.binding_timeout_ms),
        binding_cache,
        client,
        service,
        retry_buffer_total_bytes: raw.retry_buffer_total_bytes,
        max_head_bytes: (raw.max_headers_kb + raw.max_initial_line_kb) * 1024,
    })
}

fn parse_server(
    value: Value,
    field: &str,
    protocol: Protocol,
) -> Result<ServerConfig, ConfigError> {
    let Value::Object(mut obj) = value else {
        return Err(ConfigError::new(field, "expected a mapping"));
    };
    let explicit = tls::sets_protocols(obj.get("tls"));
    let mut settings = ServerSettings::take(&mut obj, field, &server_defaults(protocol))?;
    if let Some(tls) = &mut settings.tls {
        tls::server_rules(tls, explicit);
    }
    let raw: ServerKeys = typed(Value::Object(obj), field)?;
    check(
        raw.max_concurrent_requests != Some(0),
        format!("{field}.maxConcurrentRequests"),
        "must be greater than 0",
    )?;
    let allow_override_to_addresses = match raw.allow_override_to_addresses {
        None => AddressOverrides::Refused,
        Some(value) => {
            let field = format!("{field}.allowOverrideToAddresses");
            check(
                !raw.clear_context,
                &field,
                "has no effect with clearContext: true (overrides are ignored there)",
            )?;
            parse_address_overrides(value, &field)?
        }
    };
    Ok(ServerConfig {
        ip: raw.ip,
        port: raw.port.unwrap_or(protocol.default_port()),
        clear_context: raw.clear_context,
        allow_override_to_addresses,
        max_concurrent_requests: raw.max_concurrent_requests,
        settings,
        max_headers: raw.max_headers,
        max_concurrent_streams: raw.max_concurrent_streams_per_connection,
        max_pending_resets: raw.max_pending_resets,
        max_header_list_bytes: raw.max_header_list_bytes,
        max_call_depth: raw
            .max_call_depth
            .unwrap_or(ServerConfig::DEFAULT_MAX_CALL_DEPTH),
    })
}

/// `allowOverrideToAddresses`: `false`, `true`, or a list of `/$/...`
/// prefixes (`*` matches one label).
fn parse_address_overrides(value: Value, field: &str) -> Result<AddressOverrides, ConfigError> {
    let expected = "expected true, false or a list of /$/... prefixes";
    let items = match value {
        Value::Bool(false) => return Ok(AddressOverrides::Refused),
        Value::Bool(true) => return Ok(AddressOverrides::Any),
        Value::Array(items) if !items.is_empty() => items,
        _ => return Err(ConfigError::new(field, expected)),
    };
    let mut prefixes = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::String(text) = item else {
            return Err(ConfigError::new(at, expected));
        };
        let prefix = Prefix::read(&text).map_err(|e| ConfigError::new(&at, e))?;
        // Any path without `$` is allowed anyway; a prefix that could only
        // match such paths is a mistake worth saying.
        check(
            prefix.elems().any(|e| e == PrefixElem::Label(b"$")),
            at,
            "expected a /$/... prefix (only addresses need allowing)",
        )?;
        prefixes.push(prefix);
    }
    Ok(AddressOverrides::Prefixes(prefixes.into()))
}
