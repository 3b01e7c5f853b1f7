//! The `tls` blocks of the configuration, with Linkerd 1.x's field names:
//! a server's (`certPath`, `keyPath`, `caCertPath`, `requireClientAuth`,
//! `protocols`, `ciphers`, `reloadIntervalSecs`) and a client's
//! (`commonName`, `trustCerts`, `clientAuth`, `disableValidation`,
//! `protocols`, `reloadIntervalSecs`). Reading one checks only its shape; the files are read when
//! a listener or client is built from it.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A TLS protocol version that may be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsProtocol {
    /// `TLSv1.2`
    Tls12,
    /// `TLSv1.3`
    Tls13,
}

/// The `tls` block of a server (a listener that terminates TLS).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerTlsConfig {
    /// The certificate chain served, PEM, leaf first.
    pub cert_path: PathBuf,
    /// The private key of the leaf certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// CA certificates (PEM) that client certificates are verified against.
    /// Without it, client certificates are neither asked for nor accepted.
    #[serde(default)]
    pub ca_cert_path: Option<PathBuf>,
    /// Refuse clients that present no certificate signed by `caCertPath`.
    /// When false, a client may present one (and is then identified by it)
    /// or none.
    #[serde(default)]
    pub require_client_auth: bool,
    /// The protocol versions offered.
    #[serde(default = "default_protocols")]
    pub protocols: Vec<TlsProtocol>,
    /// The cipher suites offered, by rustls name (e.g.
    /// `TLS13_AES_256_GCM_SHA384`); all of the ring provider's by default.
    #[serde(default)]
    pub ciphers: Option<Vec<String>>,
    /// How often the certificate, key and CA files are read again; a change
    /// is served to new connections. 0 turns reloading off.
    #[serde(default = "default_reload_interval_secs")]
    pub reload_interval_secs: u64,
}

/// The `tls` block of a client (a connection that dials TLS).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTlsConfig {
    /// The name the server's certificate must carry, also sent as SNI;
    /// without it, the host the client dials.
    #[serde(default)]
    pub common_name: Option<String>,
    /// CA certificates (PEM files) the server's certificate is verified
    /// against.
    #[serde(default)]
    pub trust_certs: Vec<PathBuf>,
    /// A client certificate to present.
    #[serde(default)]
    pub client_auth: Option<ClientAuthConfig>,
    /// Accept any server certificate: for debugging only, it gives up all
    /// protection against an attacker in the path.
    #[serde(default)]
    pub disable_validation: bool,
    /// The protocol versions offered; TLS 1.2 and 1.3 by default.
    #[serde(default)]
    pub protocols: Option<Vec<TlsProtocol>>,
    /// How often a long-lived client reads `trustCerts` and `clientAuth`
    /// again; a change is used by new connections. 0 turns reloading off.
    #[serde(default = "default_reload_interval_secs")]
    pub reload_interval_secs: u64,
}

impl Default for ClientTlsConfig {
    /// Nothing trusted yet, no client certificate, files followed every
    /// 10 s (as the block's defaults).
    fn default() -> Self {
        ClientTlsConfig {
            common_name: None,
            trust_certs: Vec::new(),
            client_auth: None,
            disable_validation: false,
            protocols: None,
            reload_interval_secs: default_reload_interval_secs(),
        }
    }
}

/// A client certificate and its key.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientAuthConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// TLS 1.2 and 1.3.
pub fn default_protocols() -> Vec<TlsProtocol> {
    vec![TlsProtocol::Tls12, TlsProtocol::Tls13]
}

fn default_reload_interval_secs() -> u64 {
    10
}

// === impl TlsProtocol ===

impl TlsProtocol {
    /// The names accepted in `protocols`.
    pub const NAMES: [&str; 2] = ["TLSv1.2", "TLSv1.3"];

    pub fn name(self) -> &'static str {
        match self {
            TlsProtocol::Tls12 => "TLSv1.2",
            TlsProtocol::Tls13 => "TLSv1.3",
        }
    }

    pub(super) fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsProtocol::Tls12 => &rustls::version::TLS12,
            TlsProtocol::Tls13 => &rustls::version::TLS13,
        }
    }

    /// The versions of `protocols` for a rustls builder.
    pub(super) fn versions(
        protocols: &[TlsProtocol],
    ) -> Vec<&'static rustls::SupportedProtocolVersion> {
        protocols.iter().map(|p| p.rustls()).collect()
    }
}

impl fmt::Display for TlsProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TlsProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "TLSv1.2" => Ok(TlsProtocol::Tls12),
            "TLSv1.3" => Ok(TlsProtocol::Tls13),
            // Named, so that a configuration carried over from Linkerd 1.x
            // that still offers them is refused rather than silently
            // upgraded.
            "TLSv1" | "TLSv1.1" | "SSLv3" => Err(de::Error::custom(format!(
                "{name} is refused: it is broken (RFC 8996); use TLSv1.2 or TLSv1.3"
            ))),
            other => Err(de::Error::custom(format!(
                "unknown protocol {other:?}; supported: {}",
                TlsProtocol::NAMES.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::typed;

    #[test]
    fn defaults_and_linkerd_names() {
        let server: ServerTlsConfig =
            typed(json!({"certPath": "c.pem", "keyPath": "k.pem"}), "tls").unwrap();
        assert_eq!(server.protocols, default_protocols());
        assert!(!server.require_client_auth);
        assert_eq!(server.reload_interval_secs, 10);
        let client: ClientTlsConfig = typed(
            json!({"commonName": "namerd", "trustCerts": ["ca.pem"],
                   "clientAuth": {"certPath": "c", "keyPath": "k"}}),
            "tls",
        )
        .unwrap();
        assert_eq!(client.common_name.as_deref(), Some("namerd"));
        assert!(!client.disable_validation);
    }

    #[test]
    fn old_protocols_are_refused_by_name() {
        let err = typed::<ServerTlsConfig>(
            json!({"certPath": "c", "keyPath": "k", "protocols": ["TLSv1.2", "TLSv1.1"]}),
            "interfaces[0].tls",
        )
        .unwrap_err();
        assert_eq!(err.field, "interfaces[0].tls.protocols[1]");
        assert!(err.message.contains("TLSv1.1 is refused"), "{err}");
        let err = typed::<ClientTlsConfig>(json!({"protocols": ["TLSv1"]}), "tls").unwrap_err();
        assert_eq!(err.field, "tls.protocols[0]");
        let err = typed::<ServerTlsConfig>(json!({"certPath": "c"}), "tls").unwrap_err();
        assert_eq!(err.to_string(), "tls.keyPath: missing; it is required");
    }
}
