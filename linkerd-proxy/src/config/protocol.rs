//! `protocol`: what a router speaks on both sides. Its own module because
//! the router's other sections (identifiers, server defaults) depend on it.

use l5d_runtime::config::ConfigError;
use serde_json::Value;

/// The application protocol a router speaks on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (and 1.0): origin-form with `Host`, and absolute-form from
    /// clients using `http_proxy`.
    Http,
    /// HTTP/2 with prior knowledge, which carries gRPC.
    H2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::H2 => "h2",
        }
    }

    /// Linkerd's default server port for the protocol.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 4140,
            Protocol::H2 => 4142,
        }
    }
}

// === impl Protocol ===

impl Protocol {
    /// Reads the `protocol` key of the router at `router`.
    pub(super) fn parse(value: Option<Value>, router: &str) -> Result<Self, ConfigError> {
        let field = format!("{router}.protocol");
        match value {
            Some(Value::String(p)) => match p.as_str() {
                "http" => Ok(Protocol::Http),
                "h2" => Ok(Protocol::H2),
                other @ ("thrift" | "mux" | "thriftmux") => Err(ConfigError::new(
                    field,
                    format!(
                        "protocol {other:?} is not supported by this proxy; supported: http, h2"
                    ),
                )),
                other => Err(ConfigError::new(
                    field,
                    format!("unknown protocol {other:?}; expected http or h2"),
                )),
            },
            Some(_) => Err(ConfigError::new(field, "expected a string")),
            None => Err(ConfigError::missing(field)),
        }
    }
}
