//! The `transformers:` list of a namer's configuration: each entry has a
//! `kind`, an optional `prefix` (without the `/%`) and kind-specific keys.
//! Parsing checks what needs no I/O (binding a `replace`/`const` path is
//! pure); building resolves `specificHost`, finds this host's IPs for
//! `io.l5d.localhost` and starts the Kubernetes watch of
//! `io.l5d.k8s.daemonset`. Errors name their field
//! (`namers[0].transformers[1].port`). The namers' parser reads each
//! namer's list through this module and shares its [`BuildContext`]; this
//! module knows nothing of namers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use l5d_dtab::Path;
use l5d_runtime::config::{ConfigError, check, kind_of, take, typed};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::connection::connection;
use crate::namer::inet::HostResolver;
use crate::transformer::{DaemonSetOptions, Transformer, local_ips};

/// What building may need from outside: the resolver for host names and,
/// for tests, this host's IPs (otherwise discovered once).
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    pub resolver: HostResolver,
    pub local_ips: Option<BTreeSet<IpAddr>>,
}

/// Why the other Kubernetes namers and transformers are refused.
pub(super) const KUBERNETES: &str = "supported Kubernetes kinds: the io.l5d.k8s and io.l5d.k8s.ingress namers and the io.l5d.k8s.daemonset transformer";

/// One configured transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerConfig {
    pub field: String,
    /// The configured `prefix` (without `/%`), if any.
    pub prefix: Option<Path>,
    pub kind: TransformerKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TransformerKind {
    Port(u16),
    Localhost,
    SpecificHost(String),
    Replace(Path),
    Const(Path),
    DaemonSet(DaemonSetOptions),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortKeys {
    port: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostKeys {
    host: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathKeys {
    #[serde(deserialize_with = "path")]
    path: Path,
}

/// `io.l5d.k8s.daemonset`: Linkerd's keys. `port` is the proxies' port
/// name, so the `kubectl proxy` is `k8sHost`/`k8sPort`, as in Linkerd.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DaemonSetKeys {
    namespace: String,
    service: String,
    port: String,
    #[serde(default)]
    host_network: bool,
    k8s_host: Option<String>,
    k8s_port: Option<u16>,
    kubeconfig: Option<std::path::PathBuf>,
}

fn path<'de, D: Deserializer<'de>>(d: D) -> Result<Path, D::Error> {
    let text = String::deserialize(d)?;
    Path::read(&text).map_err(D::Error::custom)
}

/// Reads a namer's `transformers` list (absent or `null` is none).
pub(super) fn parse_transformers(
    value: Option<Value>,
    field: &str,
) -> Result<Vec<TransformerConfig>, ConfigError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ConfigError::new(field, "expected a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.into_iter().enumerate() {
        let field = format!("{field}[{j}]");
        let (kind, mut obj) = kind_of(item, &field)?;
        let prefix = match take::<String>(&mut obj, "prefix", &field)? {
            Some(text) => Some(
                Path::read(&text).map_err(|e| ConfigError::new(format!("{field}.prefix"), e))?,
            ),
            None => None,
        };
        let rest = Value::Object(obj);
        let kind = match kind.as_str() {
            "io.l5d.port" => {
                let keys: PortKeys = typed(rest, &field)?;
                check(keys.port != 0, format!("{field}.port"), "must be 1-65535")?;
                TransformerKind::Port(keys.port)
            }
            "io.l5d.localhost" => {
                typed::<NoKeys>(rest, &field)?;
                TransformerKind::Localhost
            }
            "io.l5d.specificHost" => {
                TransformerKind::SpecificHost(typed::<HostKeys>(rest, &field)?.host)
            }
            "io.l5d.replace" | "io.l5d.const" => {
                let keys: PathKeys = typed(rest, &field)?;
                // Binding through the global namer is pure: check it now.
                let check = if kind == "io.l5d.replace" {
                    Transformer::replace(&keys.path)
                } else {
                    Transformer::constant(&keys.path)
                };
                check.map_err(|e| ConfigError::new(format!("{field}.path"), e))?;
                if kind == "io.l5d.replace" {
                    TransformerKind::Replace(keys.path)
                } else {
                    TransformerKind::Const(keys.path)
                }
            }
            "io.l5d.k8s.daemonset" => TransformerKind::DaemonSet(daemonset(rest, &field)?),
            k if k.starts_with("io.l5d.k8s") => {
                return Err(ConfigError::unsupported_kind(
                    &field,
                    "transformer",
                    k,
                    KUBERNETES,
                ));
            }
            other => {
                return Err(ConfigError::unsupported_kind(
                    &field,
                    "transformer",
                    other,
                    "supported: io.l5d.port, io.l5d.localhost, io.l5d.specificHost, io.l5d.replace, io.l5d.const, io.l5d.k8s.daemonset",
                ));
            }
        };
        out.push(TransformerConfig {
            field,
            prefix,
            kind,
        });
    }
    Ok(out)
}

fn daemonset(rest: Value, field: &str) -> Result<DaemonSetOptions, ConfigError> {
    let keys: DaemonSetKeys = typed(rest, field)?;
    for (key, value) in [
        ("namespace", &keys.namespace),
        ("service", &keys.service),
        ("port", &keys.port),
    ] {
        // Each becomes a label of the prefix, and must name something.
        if value.is_empty() || value.contains('/') {
            return Err(ConfigError::new(
                format!("{field}.{key}"),
                "must be a non-empty Kubernetes name",
            ));
        }
    }
    let connection = connection(keys.k8s_host, keys.k8s_port, keys.kubeconfig, field)?;
    Ok(DaemonSetOptions {
        namespace: keys.namespace,
        service: keys.service,
        port: keys.port,
        host_network: keys.host_network,
        connection,
    })
}

impl TransformerConfig {
    pub async fn build(&self, ctx: &BuildContext) -> Result<Transformer, ConfigError> {
        let at = |key: &str| format!("{}.{key}", self.field);
        let transformer = match &self.kind {
            TransformerKind::Port(port) => Transformer::port(*port),
            TransformerKind::Localhost => match &ctx.local_ips {
                Some(ips) => Transformer::localhost(ips.iter().copied()),
                None => Transformer::localhost(local_ips(&ctx.resolver).await),
            },
            TransformerKind::SpecificHost(host) => Transformer::specific_host(host, &ctx.resolver)
                .await
                .map_err(|e| ConfigError::new(at("host"), e))?,
            TransformerKind::Replace(path) => {
                Transformer::replace(path).map_err(|e| ConfigError::new(at("path"), e))?
            }
            TransformerKind::Const(path) => {
                Transformer::constant(path).map_err(|e| ConfigError::new(at("path"), e))?
            }
            TransformerKind::DaemonSet(opts) => Transformer::daemonset(opts)
                .await
                .map_err(|e| ConfigError::new(&self.field, e))?,
        };
        Ok(match &self.prefix {
            Some(prefix) => transformer.with_prefix(prefix),
            None => transformer,
        })
    }
}
