//! The configuration files of namerd and the proxy, as their binaries
//! read them (YAML or JSON text; the files a config names are not read
//! here, nor by these parsers).

use linkerd_proxy::config::ProxyConfig;
use namerd::config::NamerdConfig;

/// `NamerdConfig::parse`: a document is accepted or refused, never a
/// panic or a stack overflow.
pub fn namerd_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = NamerdConfig::parse(text);
    }
}

/// `ProxyConfig::from_yaml`, likewise.
pub fn proxy_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ProxyConfig::from_yaml(text);
    }
}
