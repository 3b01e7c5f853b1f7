//! The `interfaces` section: the APIs namerd serves, selected by `kind`
//! (`io.l5d.httpController`, `io.l5d.mesh`), at most one of each, each
//! with the shared server keys (`tls`, timeouts, caps) of
//! [`ServerSettings`].
//!
//! The HTTP API is namerd's only write path, so it is refused on a
//! non-loopback address without `auth` unless the operator says
//! `allowUnauthenticatedWrites: true` ([`HttpControllerConfig::check`]).

use std::net::{IpAddr, SocketAddr};

use l5d_runtime::config::{AdminConfig, ConfigError, ServerSettings, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::AuthConfig;

/// The default port of the dtab HTTP API (`io.l5d.httpController`).
pub const HTTP_CONTROLLER_PORT: u16 = 4180;
/// The default port of the `io.linkerd.mesh` gRPC API.
pub const MESH_PORT: u16 = 4321;
/// The default limit on a dtab request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
pub struct HttpControllerConfig {
    #[serde(default = "loopback")]
    pub ip: IpAddr,
    #[serde(default = "http_controller_port")]
    pub port: u16,
    /// Larger dtab bodies are refused with 413.
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: usize,
    /// Who may read and write; without it, writes come from loopback only.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Without `auth`, accept writes from anyone who reaches the listener.
    #[serde(default)]
    pub allow_unauthenticated_writes: bool,
    /// TLS, timeouts and caps (read by [`ServerSettings::take`]).
    #[serde(skip)]
    pub server: ServerSettings,
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
    /// TLS, timeouts and caps (read by [`ServerSettings::take`]; no idle
    /// timeout: see [`MESH_IDLE`]).
    #[serde(skip)]
    pub server: ServerSettings,
}

/// Why `idleTimeoutMs` is refused on `io.l5d.mesh`.
pub const MESH_IDLE: &str = "not supported on io.l5d.mesh: a proxy keeps one connection open for its \
     lifetime; keepAliveTimeoutMs closes connections whose peer stopped answering";

/// Like the admin block, interfaces listen on loopback unless configured.
fn loopback() -> IpAddr {
    AdminConfig::LOOPBACK
}
fn http_controller_port() -> u16 {
    HTTP_CONTROLLER_PORT
}
fn max_body_bytes() -> usize {
    MAX_BODY_BYTES
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

// === impl InterfaceConfig ===

impl InterfaceConfig {
    /// Reads the `interfaces` list.
    pub(super) fn parse_list(value: Value) -> Result<Vec<Self>, ConfigError> {
        let Value::Array(items) = value else {
            return Err(ConfigError::new("interfaces", "expected a list"));
        };
        if items.is_empty() {
            return Err(ConfigError::new("interfaces", NONE));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let field = format!("interfaces[{i}]");
            let (kind, mut rest) = kind_of(item, &field)?;
            out.push(match kind.as_str() {
                "io.l5d.httpController" => {
                    let server =
                        ServerSettings::take(&mut rest, &field, &ServerSettings::default())?;
                    let config: HttpControllerConfig = typed(rest, &field)?;
                    let config = HttpControllerConfig { server, ..config };
                    config.check(&field)?;
                    InterfaceConfig::HttpController(config)
                }
                "io.l5d.mesh" => {
                    if rest.contains_key("idleTimeoutMs") {
                        return Err(ConfigError::new(
                            format!("{field}.idleTimeoutMs"),
                            MESH_IDLE,
                        ));
                    }
                    let server =
                        ServerSettings::take(&mut rest, &field, &ServerSettings::default())?;
                    let config: MeshConfig = typed(rest, &field)?;
                    InterfaceConfig::Mesh(MeshConfig { server, ..config })
                }
                other => {
                    return Err(ConfigError::unsupported_kind(
                        &field,
                        "interface",
                        other,
                        "supported: io.l5d.httpController, io.l5d.mesh",
                    ));
                }
            });
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
}

/// Why a configuration without interfaces is refused (namerd's words).
pub(super) const NONE: &str = "One or more interfaces must be specified";

// === impl HttpControllerConfig ===

impl Default for HttpControllerConfig {
    fn default() -> Self {
        HttpControllerConfig {
            ip: loopback(),
            port: HTTP_CONTROLLER_PORT,
            max_body_bytes: MAX_BODY_BYTES,
            auth: None,
            allow_unauthenticated_writes: false,
            server: ServerSettings::default(),
        }
    }
}

impl HttpControllerConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// Refuses open writes beyond loopback, and `auth` blocks that could
    /// authenticate no one. `field` is this interface's path.
    fn check(&self, field: &str) -> Result<(), ConfigError> {
        let Some(auth) = &self.auth else {
            return check(
                self.ip.to_canonical().is_loopback() || self.allow_unauthenticated_writes,
                format!("{field}.auth"),
                &format!(
                    "missing: io.l5d.httpController listens on {}, so anyone who reaches it \
                     could rewrite every dtab; configure auth (a tokenFile or \
                     clientCertificates), listen on a loopback address, or set \
                     allowUnauthenticatedWrites: true",
                    self.ip
                ),
            );
        };
        check(
            !self.allow_unauthenticated_writes,
            format!("{field}.allowUnauthenticatedWrites"),
            "cannot be true with auth: with auth configured every write is authenticated",
        )?;
        check(
            auth.token_file.is_some() || !auth.client_certificates.is_empty(),
            format!("{field}.auth"),
            "configure tokenFile or clientCertificates (or both): without either, no one \
             can authenticate",
        )?;
        let verifies_clients = self
            .server
            .tls
            .as_ref()
            .is_some_and(|tls| tls.ca_cert_path.is_some());
        check(
            auth.client_certificates.is_empty() || verifies_clients,
            format!("{field}.auth.clientCertificates"),
            "needs tls with caCertPath on this interface: without it no client presents a \
             verified certificate",
        )
    }
}

// === impl MeshConfig ===

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            ip: loopback(),
            port: MESH_PORT,
            keep_alive_interval_ms: keepalive_ms(),
            keep_alive_timeout_ms: keepalive_ms(),
            max_concurrent_streams: max_streams(),
            server: ServerSettings::default(),
        }
    }
}

impl MeshConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}
