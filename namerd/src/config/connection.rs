//! The Kubernetes connection keys of the `io.l5d.k8s` store and namer and
//! the `io.l5d.k8s.daemonset` transformer, as in Linkerd 1.x: a `kubectl
//! proxy` (`host` and `port`), a `kubeconfig` file, or neither (inferred).

use std::path::PathBuf;

use l5d_runtime::config::ConfigError;

use crate::k8s::{Connection, DEFAULT_PROXY_HOST, DEFAULT_PROXY_PORT};

/// The connection the keys of the section at `field` describe.
pub(super) fn connection(
    host: Option<String>,
    port: Option<u16>,
    kubeconfig: Option<PathBuf>,
    field: &str,
) -> Result<Connection, ConfigError> {
    match (host, port, kubeconfig) {
        (None, None, None) => Ok(Connection::Infer),
        (None, None, Some(path)) => Ok(Connection::Kubeconfig(path)),
        (host, port, None) => Ok(Connection::Proxy {
            host: host.unwrap_or_else(|| DEFAULT_PROXY_HOST.to_string()),
            port: port.unwrap_or(DEFAULT_PROXY_PORT),
        }),
        (_, _, Some(_)) => Err(ConfigError::new(
            format!("{field}.kubeconfig"),
            "set either host/port (a kubectl proxy) or kubeconfig, not both",
        )),
    }
}
