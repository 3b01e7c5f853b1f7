//! `interpreter`: where a router's bindings come from (`default` or
//! `io.l5d.mesh`, selected by `kind`), with the transformers applied in the
//! proxy.

use std::time::Duration;

use l5d_dtab::Path;
use l5d_runtime::config::{ConfigError, kind_of, typed};
use l5d_runtime::tls::ClientTlsConfig;
use serde::Deserialize;
use serde_json::Value;

use super::tls::client_tls;

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
        /// TLS to namerd (boxed: the block is large, the enum is not).
        tls: Option<Box<ClientTlsConfig>>,
        transformers: Vec<TransformerConfig>,
    },
}

/// The `default` interpreter with no transformers: what a router without
/// an `interpreter` section uses.
impl Default for InterpreterConfig {
    fn default() -> Self {
        InterpreterConfig::Default {
            transformers: Vec::new(),
        }
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MeshKeys {
    dst: String,
    #[serde(default = "default_root")]
    root: String,
    #[serde(default)]
    retry: Option<RetryKeys>,
    #[serde(default)]
    tls: Option<Value>,
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

/// Reads the `interpreter` section at `field`.
pub(super) fn parse_interpreter(
    value: Value,
    field: &str,
) -> Result<InterpreterConfig, ConfigError> {
    let (kind, rest) = kind_of(value, field)?;
    match kind.as_str() {
        "default" => {
            let k: DefaultKeys = typed(rest, field)?;
            Ok(InterpreterConfig::Default {
                transformers: parse_transformers(k.transformers, field)?,
            })
        }
        "io.l5d.mesh" => {
            let k: MeshKeys = typed(rest, field)?;
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
                tls: match k.tls {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(Box::new(client_tls(v, &format!("{field}.tls"), false)?)),
                },
                transformers: parse_transformers(k.transformers, field)?,
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
