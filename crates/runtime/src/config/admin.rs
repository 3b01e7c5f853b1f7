//! The `admin` block both binaries serve their admin pages on: `ip`
//! (loopback unless configured), `port` (each binary has its default), and,
//! for a binary that serves admin through [`crate::listen`], the shared
//! server keys ([`ServerSettings`]: `tls`, timeouts, caps).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;
use serde_json::Value;

use super::{ConfigError, ServerSettings, present, typed};

/// Where the admin server listens, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    pub ip: IpAddr,
    pub port: u16,
    /// TLS, timeouts and caps ([`AdminConfig::SERVER`] unless read by
    /// [`AdminConfig::parse_serving`]).
    pub server: ServerSettings,
}

/// Named as the section's type was before the default port became the
/// binary's, so that errors read `expected struct AdminConfig` as they did.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "struct AdminConfig"
)]
struct AdminKeys {
    #[serde(default, deserialize_with = "present")]
    ip: Option<IpAddr>,
    #[serde(default, deserialize_with = "present")]
    port: Option<u16>,
}

// === impl AdminConfig ===

impl AdminConfig {
    /// The default: loopback only, so that an unconfigured process does not
    /// expose its admin pages.
    pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// The block's fields, for the configuration references.
    pub const FIELDS: [&str; 2] = ["admin.ip", "admin.port"];

    /// The admin server's default settings: probes and scrapers need few
    /// connections, so fewer are allowed than on an API.
    pub fn default_server() -> ServerSettings {
        ServerSettings {
            max_connections: 100,
            max_connections_per_peer: 50,
            ..ServerSettings::default()
        }
    }

    /// `port` on loopback.
    pub fn loopback(port: u16) -> Self {
        AdminConfig {
            ip: Self::LOOPBACK,
            port,
            server: Self::default_server(),
        }
    }

    /// The `admin` section (`None` when absent), with the binary's
    /// `default_port`; the server keys are refused (the binary does not
    /// serve them).
    pub fn parse(value: Option<Value>, default_port: u16) -> Result<Self, ConfigError> {
        let Some(value) = value else {
            return Ok(Self::loopback(default_port));
        };
        Self::parse_keys(value, default_port, Self::default_server())
    }

    /// The `admin` section with the shared server keys
    /// ([`ServerSettings::KEYS`] under `admin.`), for a binary that serves
    /// admin through [`crate::serve`].
    pub fn parse_serving(value: Option<Value>, default_port: u16) -> Result<Self, ConfigError> {
        let Some(value) = value else {
            return Ok(Self::loopback(default_port));
        };
        let Value::Object(mut obj) = value else {
            // Refused by the struct, in its words.
            return Self::parse_keys(value, default_port, Self::default_server());
        };
        let server = ServerSettings::take(&mut obj, "admin", &Self::default_server())?;
        Self::parse_keys(Value::Object(obj), default_port, server)
    }

    fn parse_keys(
        value: Value,
        default_port: u16,
        server: ServerSettings,
    ) -> Result<Self, ConfigError> {
        let keys: AdminKeys = typed(value, "admin")?;
        Ok(AdminConfig {
            ip: keys.ip.unwrap_or(Self::LOOPBACK),
            port: keys.port.unwrap_or(default_port),
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn loopback_and_the_binarys_port_by_default() {
        assert_eq!(
            AdminConfig::parse(None, 9990).unwrap().addr().to_string(),
            "127.0.0.1:9990"
        );
        let set = AdminConfig::parse(Some(json!({"ip": "0.0.0.0", "port": 1})), 9990).unwrap();
        assert_eq!(set.addr().to_string(), "0.0.0.0:1");
        let port_only = AdminConfig::parse(Some(json!({"port": 1})), 9990).unwrap();
        assert_eq!(port_only.addr().to_string(), "127.0.0.1:1");
    }

    #[test]
    fn server_keys_only_where_served() {
        let v = json!({"port": 1, "idleTimeoutMs": 5});
        assert_eq!(
            AdminConfig::parse(Some(v.clone()), 9990).unwrap_err().field,
            "admin.idleTimeoutMs"
        );
        let admin = AdminConfig::parse_serving(Some(v), 9990).unwrap();
        assert_eq!(admin.server.idle_timeout.as_millis(), 5);
        assert_eq!(admin.server.max_connections, 100);
        assert_eq!(
            AdminConfig::parse_serving(Some(json!({"prot": 1})), 1)
                .unwrap_err()
                .field,
            "admin.prot"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = |v: Value| AdminConfig::parse(Some(v), 1).unwrap_err().field;
        assert_eq!(err(json!({"ip": "not-an-ip"})), "admin.ip");
        assert_eq!(err(json!({"port": 70000})), "admin.port");
        assert_eq!(err(json!({"prot": 1})), "admin.prot");
        assert_eq!(err(json!({"port": null})), "admin.port");
        assert_eq!(
            AdminConfig::parse(Some(Value::Null), 1)
                .unwrap_err()
                .to_string(),
            "admin: invalid type: null, expected struct AdminConfig"
        );
    }
}
