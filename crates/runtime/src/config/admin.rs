//! The `admin` block both binaries serve their admin pages on: `ip`
//! (loopback unless configured) and `port` (each binary has its default).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;
use serde_json::Value;

use super::{ConfigError, present, typed};

/// Where the admin server listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    pub ip: IpAddr,
    pub port: u16,
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

    /// `port` on loopback.
    pub fn loopback(port: u16) -> Self {
        AdminConfig {
            ip: Self::LOOPBACK,
            port,
        }
    }

    /// The `admin` section (`None` when absent), with the binary's
    /// `default_port`.
    pub fn parse(value: Option<Value>, default_port: u16) -> Result<Self, ConfigError> {
        let Some(value) = value else {
            return Ok(Self::loopback(default_port));
        };
        let keys: AdminKeys = typed(value, "admin")?;
        Ok(AdminConfig {
            ip: keys.ip.unwrap_or(Self::LOOPBACK),
            port: keys.port.unwrap_or(default_port),
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
