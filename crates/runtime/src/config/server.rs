//! The keys every server block shares (`tls`, the timeouts and the
//! connection caps), read once here for every listener of both binaries.
//!
//! They sit beside each block's own keys (`ip`, `port`, ...), as Linkerd's
//! do, so a block is read in two steps: [`ServerSettings::take`] removes
//! these keys from the mapping, then the block's own struct, with
//! `deny_unknown_fields`, reads the rest. (serde's `flatten` cannot be
//! combined with `deny_unknown_fields`.)

use std::time::Duration;

use serde_json::{Map, Value};

use super::{ConfigError, check, take};
use crate::listen::ListenerLimits;
use crate::serve::HttpLimits;
use crate::tls::ServerTlsConfig;

/// The shared keys of one server block, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// `tls`: serve TLS with these files.
    pub tls: Option<ServerTlsConfig>,
    /// `headerReadTimeoutMs`: the TLS handshake and the first request head
    /// must arrive within it from accept; a later HTTP/1.1 head within it
    /// from its first byte. For gRPC, the HTTP/2 preface.
    pub header_read_timeout: Duration,
    /// `idleTimeoutMs`: a connection with nothing in flight is closed
    /// after it; so is one whose writes make no progress for it.
    pub idle_timeout: Duration,
    /// `bodyReadTimeoutMs`: a request body that sends nothing for it fails.
    pub body_read_timeout: Duration,
    /// `maxConnections`: open connections at once; more are closed at once.
    pub max_connections: usize,
    /// `maxConnectionsPerPeer`: open connections at once from one IP.
    pub max_connections_per_peer: usize,
}

// === impl ServerSettings ===

impl ServerSettings {
    /// The keys, for configuration references: `{block}.{key}`.
    pub const KEYS: [&str; 13] = [
        "tls.certPath",
        "tls.keyPath",
        "tls.caCertPath",
        "tls.requireClientAuth",
        "tls.protocols",
        "tls.ciphers",
        "tls.reloadIntervalSecs",
        "headerReadTimeoutMs",
        "idleTimeoutMs",
        "bodyReadTimeoutMs",
        "maxConnections",
        "maxConnectionsPerPeer",
        "tls",
    ];

    /// Removes the shared keys from the block at `field` and reads them,
    /// with `defaults` for the absent ones.
    pub fn take(
        obj: &mut Map<String, Value>,
        field: &str,
        defaults: &ServerSettings,
    ) -> Result<ServerSettings, ConfigError> {
        let ms = |obj: &mut Map<String, Value>, key: &str, default: Duration| {
            let value: Option<u64> = take(obj, key, field)?;
            let value = value.map_or(default, Duration::from_millis);
            check(
                !value.is_zero(),
                format!("{field}.{key}"),
                "must be positive",
            )?;
            Ok::<_, ConfigError>(value)
        };
        let count = |obj: &mut Map<String, Value>, key: &str, default: usize| {
            let value: usize = take(obj, key, field)?.unwrap_or(default);
            check(value > 0, format!("{field}.{key}"), "must be positive")?;
            Ok::<_, ConfigError>(value)
        };
        Ok(ServerSettings {
            tls: take(obj, "tls", field)?,
            header_read_timeout: ms(obj, "headerReadTimeoutMs", defaults.header_read_timeout)?,
            idle_timeout: ms(obj, "idleTimeoutMs", defaults.idle_timeout)?,
            body_read_timeout: ms(obj, "bodyReadTimeoutMs", defaults.body_read_timeout)?,
            max_connections: count(obj, "maxConnections", defaults.max_connections)?,
            max_connections_per_peer: count(
                obj,
                "maxConnectionsPerPeer",
                defaults.max_connections_per_peer,
            )?,
        })
    }

    /// The listener's caps; the TLS handshake is bounded by the header
    /// read timeout.
    pub fn listener_limits(&self) -> ListenerLimits {
        ListenerLimits {
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            handshake_timeout: self.header_read_timeout,
        }
    }

    /// The HTTP limits, with `base`'s HTTP/2 settings.
    pub fn http_limits(&self, base: HttpLimits) -> HttpLimits {
        HttpLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_read_timeout: self.body_read_timeout,
            ..base
        }
    }
}

impl Default for ServerSettings {
    /// Safe for an API served to a fleet: 10 s to send a head or a body
    /// chunk, a minute idle, 1,000 connections, 100 from one address.
    fn default() -> Self {
        ServerSettings {
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 1000,
            max_connections_per_peer: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn take_from(v: Value) -> Result<(ServerSettings, Map<String, Value>), ConfigError> {
        let mut obj = v.as_object().unwrap().clone();
        let s = ServerSettings::take(&mut obj, "interfaces[0]", &ServerSettings::default())?;
        Ok((s, obj))
    }

    #[test]
    fn the_shared_keys_are_taken_and_the_rest_left() {
        let (s, rest) = take_from(json!({
            "port": 1, "idleTimeoutMs": 5, "maxConnectionsPerPeer": 2,
            "tls": {"certPath": "c", "keyPath": "k"}
        }))
        .unwrap();
        assert_eq!(s.idle_timeout, Duration::from_millis(5));
        assert_eq!(s.max_connections_per_peer, 2);
        assert_eq!(s.max_connections, 1000);
        assert!(s.tls.is_some());
        assert_eq!(rest.keys().collect::<Vec<_>>(), ["port"]);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: Value| take_from(v).unwrap_err().field;
        assert_eq!(
            field(json!({"maxConnections": 0})),
            "interfaces[0].maxConnections"
        );
        assert_eq!(
            field(json!({"headerReadTimeoutMs": "x"})),
            "interfaces[0].headerReadTimeoutMs"
        );
        assert_eq!(
            field(json!({"tls": {"certPath": "c"}})),
            "interfaces[0].tls.keyPath"
        );
        assert_eq!(
            field(json!({"tls": {"certPath": "c", "keyPath": "k", "protocols": ["TLSv1"]}})),
            "interfaces[0].tls.protocols[0]"
        );
    }
}
