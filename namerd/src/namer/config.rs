//! The `namers:` section of namerd's configuration, with each namer's
//! `transformers:`, in Linkerd's shape: a list of objects with a `kind`,
//! an optional `prefix` (default `/<kind>`, served under `/#`), an accepted
//! `experimental` flag, and kind-specific keys.
//!
//! Parsing is synchronous and checks everything that can be checked
//! without I/O (transformer entries are read by `transformer::config`); [`NamerConfig::build`] then starts the namer (reading the
//! directory of an `io.l5d.fs` namer, resolving a `specificHost`, reading
//! the kubeconfig of an `io.l5d.k8s` namer). Every
//! error names the field it is about (`namers[0].rootDir`). Kinds we do not
//! support are refused by name. This module does not know the rest of
//! namerd's configuration file.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::Path;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Namer;
use super::fs::{FsNamer, FsOptions};
use super::inet::HostResolver;
use super::k8s::{K8sNamer, K8sNamerOptions};
use super::rewrite::{RewriteError, RewriteNamer};
use crate::k8s::{Connection, ConnectionKeys};
use crate::transformer::TransformedNamer;
use crate::transformer::config::parse_transformers;
pub use crate::transformer::config::{TransformerConfig, TransformerKind};

/// A namer or transformer configuration that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct NamerConfigError {
    /// E.g. `namers[0].rootDir` or `namers[1].transformers[0].port`.
    pub field: String,
    pub message: String,
}

impl NamerConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl ToString) -> Self {
        NamerConfigError {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// One configured namer, checked but not started.
#[derive(Clone, Debug, PartialEq)]
pub struct NamerConfig {
    /// Where it was configured (`namers[2]`), for errors at build time.
    pub field: String,
    /// The complete prefix, e.g. `/#/io.l5d.fs`.
    pub prefix: Path,
    pub kind: NamerKind,
    pub transformers: Vec<TransformerConfig>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NamerKind {
    Fs {
        root_dir: PathBuf,
        rescan_interval: Duration,
    },
    Rewrite {
        pattern: String,
        name: String,
    },
    K8s {
        connection: Connection,
        /// A label key (Linkerd's `labelSelector`).
        label_selector: Option<String>,
    },
}

/// What building may need from outside: the resolver for host names and,
/// for tests, this host's IPs (otherwise discovered once).
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    pub resolver: HostResolver,
    pub local_ips: Option<BTreeSet<IpAddr>>,
}

/// Why the other Kubernetes namers and transformers are refused.
pub(crate) const KUBERNETES: &str =
    "supported Kubernetes kinds: the io.l5d.k8s namer and the io.l5d.k8s.daemonset transformer";

// === parsing ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FsKeys {
    root_dir: PathBuf,
    #[serde(default = "default_rescan_ms")]
    rescan_interval_ms: u64,
}

fn default_rescan_ms() -> u64 {
    FsOptions::DEFAULT_RESCAN.as_millis() as u64
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RewriteKeys {
    pattern: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct K8sKeys {
    host: Option<String>,
    port: Option<u16>,
    kubeconfig: Option<PathBuf>,
    label_selector: Option<String>,
}

/// Reads the `namers` list (`null` is none), checking every field and that
/// no two prefixes overlap. The error is `(field, message)`, e.g.
/// `("namers[0].rootDir", "missing; it is required")`, for the caller's
/// own configuration error type.
pub fn parse_namers(value: Value) -> Result<Vec<NamerConfig>, (String, String)> {
    parse_namer_list(value).map_err(|e| (e.field, e.message))
}

fn parse_namer_list(value: Value) -> Result<Vec<NamerConfig>, NamerConfigError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(NamerConfigError::new("namers", "expected a list")),
    };
    let mut out: Vec<NamerConfig> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("namers[{i}]");
        let namer = parse_namer(item, field)?;
        // As namerd: a path under two prefixes would be ambiguous.
        if let Some(other) = out
            .iter()
            .find(|o| o.prefix.starts_with(&namer.prefix) || namer.prefix.starts_with(&o.prefix))
        {
            return Err(NamerConfigError::new(
                format!("{}.prefix", namer.field),
                format!(
                    "Namers must not have overlapping prefixes: {} & {}",
                    other.prefix, namer.prefix
                ),
            ));
        }
        out.push(namer);
    }
    Ok(out)
}

fn parse_namer(item: Value, field: String) -> Result<NamerConfig, NamerConfigError> {
    let (kind, mut obj) = kind_of(item, &field)?;
    let prefix: Option<String> = take(&mut obj, "prefix", &field)?;
    let _experimental: Option<bool> = take(&mut obj, "experimental", &field)?;
    let transformers: Option<Value> = take(&mut obj, "transformers", &field)?;
    let rest = Value::Object(obj);
    let prefix = match prefix {
        Some(text) => Some(
            Path::read(&text).map_err(|e| NamerConfigError::new(format!("{field}.prefix"), e))?,
        ),
        None => None,
    };
    let namer_kind = match kind.as_str() {
        "io.l5d.fs" => {
            let keys: FsKeys = typed(rest, &field)?;
            if keys.rescan_interval_ms == 0 {
                return Err(NamerConfigError::new(
                    format!("{field}.rescanIntervalMs"),
                    "must be at least 1",
                ));
            }
            NamerKind::Fs {
                root_dir: keys.root_dir,
                rescan_interval: Duration::from_millis(keys.rescan_interval_ms),
            }
        }
        "io.l5d.rewrite" => {
            let keys: RewriteKeys = typed(rest, &field)?;
            if prefix.is_none() {
                return Err(NamerConfigError::new(
                    format!("{field}.prefix"),
                    "The 'prefix' property is required for the io.l5d.rewrite namer.",
                ));
            }
            // Check pattern and name now, so that errors come at startup.
            RewriteNamer::new(Path::empty(), &keys.pattern, &keys.name).map_err(|e| {
                let key = match e {
                    RewriteError::EmptySegment { .. } => "pattern",
                    _ => "name",
                };
                NamerConfigError::new(format!("{field}.{key}"), e)
            })?;
            NamerKind::Rewrite {
                pattern: keys.pattern,
                name: keys.name,
            }
        }
        "io.l5d.k8s" => k8s_kind(typed(rest, &field)?, &field)?,
        k if k.starts_with("io.l5d.k8s") => {
            return Err(unsupported(&field, "namer", k, KUBERNETES));
        }
        other => {
            return Err(unsupported(
                &field,
                "namer",
                other,
                "supported: io.l5d.fs, io.l5d.rewrite, io.l5d.k8s",
            ));
        }
    };
    let prefix = Path::utf8(["#"]).concat(&prefix.unwrap_or_else(|| Path::utf8([&kind])));
    let transformers = parse_transformers(transformers, &format!("{field}.transformers"))?;
    Ok(NamerConfig {
        field,
        prefix,
        kind: namer_kind,
        transformers,
    })
}

fn k8s_kind(keys: K8sKeys, field: &str) -> Result<NamerKind, NamerConfigError> {
    let connection = ConnectionKeys {
        host: keys.host,
        port: keys.port,
        kubeconfig: keys.kubeconfig,
    }
    .connection()
    .map_err(|(key, message)| NamerConfigError::new(format!("{field}.{key}"), message))?;
    if let Some(key) = &keys.label_selector {
        // A label key, not a selector: names carry the value.
        if key.is_empty() || key.contains(['=', ',', '!', ' ']) {
            return Err(NamerConfigError::new(
                format!("{field}.labelSelector"),
                "expected a label key (names then carry its value: /<namespace>/<port>/<service>/<value>)",
            ));
        }
    }
    Ok(NamerKind::K8s {
        connection,
        label_selector: keys.label_selector,
    })
}

pub(crate) fn unsupported(field: &str, what: &str, kind: &str, why: &str) -> NamerConfigError {
    NamerConfigError::new(
        format!("{field}.kind"),
        format!("unsupported {what} kind {kind:?}; {why}"),
    )
}

/// The `kind` of the object at `field`, and the object's other keys.
pub(crate) fn kind_of(
    value: Value,
    field: &str,
) -> Result<(String, Map<String, Value>), NamerConfigError> {
    let Value::Object(mut obj) = value else {
        return Err(NamerConfigError::new(
            field,
            "expected a mapping with a `kind`",
        ));
    };
    match obj.remove("kind") {
        Some(Value::String(kind)) => Ok((kind, obj)),
        Some(_) => Err(NamerConfigError::new(
            format!("{field}.kind"),
            "expected a string",
        )),
        None => Err(NamerConfigError::new(
            format!("{field}.kind"),
            "missing; it is required",
        )),
    }
}

/// Removes `key` from `obj` and reads it as `T`.
pub(crate) fn take<T: DeserializeOwned>(
    obj: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<T>, NamerConfigError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => typed(v, &format!("{field}.{key}")).map(Some),
    }
}

/// Deserialises `value` as `T`, naming the field of any error (a missing
/// required key is named as that key).
pub(crate) fn typed<T: DeserializeOwned>(value: Value, field: &str) -> Result<T, NamerConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let message = e.into_inner().to_string();
        if let Some(key) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            return NamerConfigError::new(format!("{field}.{key}"), "missing; it is required");
        }
        let path = if inner == "." || inner.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{inner}")
        };
        NamerConfigError::new(path, message)
    })
}

// === building ===

impl NamerConfig {
    /// Starts the namer with the system resolver. Must run inside a tokio
    /// runtime.
    pub async fn build(&self) -> Result<Arc<dyn Namer>, NamerConfigError> {
        self.build_with(&BuildContext::default()).await
    }

    pub async fn build_with(&self, ctx: &BuildContext) -> Result<Arc<dyn Namer>, NamerConfigError> {
        let namer: Arc<dyn Namer> = match &self.kind {
            NamerKind::Fs {
                root_dir,
                rescan_interval,
            } => {
                let opts = FsOptions {
                    prefix: self.prefix.clone(),
                    rescan_interval: *rescan_interval,
                    resolver: ctx.resolver.clone(),
                    ..FsOptions::new(root_dir)
                };
                let namer = FsNamer::new(opts)
                    .await
                    .map_err(|e| NamerConfigError::new(format!("{}.rootDir", self.field), e))?;
                Arc::new(namer)
            }
            NamerKind::Rewrite { pattern, name } => Arc::new(
                RewriteNamer::new(self.prefix.clone(), pattern, name)
                    .map_err(|e| NamerConfigError::new(&self.field, e))?,
            ),
            NamerKind::K8s {
                connection,
                label_selector,
            } => {
                let opts = K8sNamerOptions {
                    prefix: self.prefix.clone(),
                    label_selector: label_selector.clone(),
                    ..K8sNamerOptions::new(connection.clone())
                };
                Arc::new(
                    K8sNamer::new(opts)
                        .await
                        .map_err(|e| NamerConfigError::new(&self.field, e))?,
                )
            }
        };
        if self.transformers.is_empty() {
            return Ok(namer);
        }
        let mut transformers = Vec::with_capacity(self.transformers.len());
        for t in &self.transformers {
            transformers.push(t.build(ctx).await?);
        }
        Ok(Arc::new(TransformedNamer::new(namer, transformers)))
    }
}

/// Starts every namer, in configuration order (Linkerd prefers the last
/// one: reverse before handing them to the binder).
pub async fn build_namers(
    configs: &[NamerConfig],
    ctx: &BuildContext,
) -> Result<Vec<Arc<dyn Namer>>, NamerConfigError> {
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        out.push(config.build_with(ctx).await?);
    }
    Ok(out)
}
