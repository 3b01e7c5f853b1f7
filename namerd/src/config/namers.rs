//! The `namers:` section of namerd's configuration, with each namer's
//! `transformers:`, in Linkerd's shape: a list of objects with a `kind`,
//! an optional `prefix` (default `/<kind>`, served under `/#`), an accepted
//! `experimental` flag, and kind-specific keys.
//!
//! Parsing is synchronous and checks everything that can be checked
//! without I/O (transformer entries are read by [`super::transformers`]);
//! [`NamerConfig::build`] then starts the namer (reading the directory of
//! an `io.l5d.fs` namer, resolving a `specificHost`, reading the
//! kubeconfig of an `io.l5d.k8s` namer). Every error names the field it is
//! about (`namers[0].rootDir`, `namers[1].transformers[0].port`). Kinds we
//! do not support are refused by name. This module does not know the rest
//! of namerd's configuration file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::Path;
use l5d_runtime::config::{ConfigError, check, kind_of, take, typed};
use serde::Deserialize;
use serde_json::Value;

use super::connection::connection;
use super::transformers::{BuildContext, KUBERNETES, TransformerConfig, parse_transformers};
use crate::k8s::Connection;
use crate::namer::Namer;
use crate::namer::fs::{FsNamer, FsOptions};
use crate::namer::ingress::{IngressNamer, IngressNamerOptions};
use crate::namer::k8s::{K8sNamer, K8sNamerOptions};
use crate::namer::rewrite::{RewriteError, RewriteNamer};
use crate::transformer::TransformedNamer;

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
    /// `io.l5d.k8s.ingress`.
    Ingress {
        connection: Connection,
        class: String,
        namespace: Option<String>,
        ignore_default_backends: bool,
        dst: Path,
    },
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IngressKeys {
    host: Option<String>,
    port: Option<u16>,
    kubeconfig: Option<PathBuf>,
    ingress_class: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    ignore_default_backends: bool,
    dst: Option<String>,
}

/// Reads the `namers` list (`null` is none), checking every field and that
/// no two prefixes overlap.
pub fn parse_namers(value: Value) -> Result<Vec<NamerConfig>, ConfigError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(ConfigError::new("namers", "expected a list")),
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
            return Err(ConfigError::new(
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

fn parse_namer(item: Value, field: String) -> Result<NamerConfig, ConfigError> {
    let (kind, mut obj) = kind_of(item, &field)?;
    let prefix: Option<String> = take(&mut obj, "prefix", &field)?;
    let _experimental: Option<bool> = take(&mut obj, "experimental", &field)?;
    let transformers: Option<Value> = take(&mut obj, "transformers", &field)?;
    let rest = Value::Object(obj);
    let prefix = match prefix {
        Some(text) => {
            Some(Path::read(&text).map_err(|e| ConfigError::new(format!("{field}.prefix"), e))?)
        }
        None => None,
    };
    let namer_kind = match kind.as_str() {
        "io.l5d.fs" => {
            let keys: FsKeys = typed(rest, &field)?;
            check(
                keys.rescan_interval_ms != 0,
                format!("{field}.rescanIntervalMs"),
                "must be at least 1",
            )?;
            NamerKind::Fs {
                root_dir: keys.root_dir,
                rescan_interval: Duration::from_millis(keys.rescan_interval_ms),
            }
        }
        "io.l5d.rewrite" => {
            let keys: RewriteKeys = typed(rest, &field)?;
            if prefix.is_none() {
                return Err(ConfigError::new(
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
                ConfigError::new(format!("{field}.{key}"), e)
            })?;
            NamerKind::Rewrite {
                pattern: keys.pattern,
                name: keys.name,
            }
        }
        "io.l5d.k8s" => k8s_kind(typed(rest, &field)?, &field)?,
        "io.l5d.k8s.ingress" => ingress_kind(typed(rest, &field)?, &field)?,
        k if k.starts_with("io.l5d.k8s") => {
            return Err(ConfigError::unsupported_kind(
                &field, "namer", k, KUBERNETES,
            ));
        }
        other => {
            return Err(ConfigError::unsupported_kind(
                &field,
                "namer",
                other,
                "supported: io.l5d.fs, io.l5d.rewrite, io.l5d.k8s, io.l5d.k8s.ingress",
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

fn k8s_kind(keys: K8sKeys, field: &str) -> Result<NamerKind, ConfigError> {
    let connection = connection(keys.host, keys.port, keys.kubeconfig, field)?;
    if let Some(key) = &keys.label_selector {
        // A label key, not a selector: names carry the value.
        if key.is_empty() || key.contains(['=', ',', '!', ' ']) {
            return Err(ConfigError::new(
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

fn ingress_kind(keys: IngressKeys, field: &str) -> Result<NamerKind, ConfigError> {
    let connection = connection(keys.host, keys.port, keys.kubeconfig, field)?;
    let class = keys.ingress_class.unwrap_or_else(|| "linkerd".into());
    check(
        !class.is_empty(),
        format!("{field}.ingressClass"),
        "must not be empty",
    )?;
    check(
        keys.namespace.as_deref() != Some(""),
        format!("{field}.namespace"),
        "must not be empty (leave it out for every namespace)",
    )?;
    let dst = match keys.dst {
        Some(text) => Path::read(&text).map_err(|e| ConfigError::new(format!("{field}.dst"), e))?,
        None => Path::utf8(["#", "io.l5d.k8s"]),
    };
    check(!dst.is_empty(), format!("{field}.dst"), "must not be /")?;
    Ok(NamerKind::Ingress {
        connection,
        class,
        namespace: keys.namespace,
        ignore_default_backends: keys.ignore_default_backends,
        dst,
    })
}

// === building ===

impl NamerConfig {
    /// Starts the namer with the system resolver. Must run inside a tokio
    /// runtime.
    pub async fn build(&self) -> Result<Arc<dyn Namer>, ConfigError> {
        self.build_with(&BuildContext::default()).await
    }

    pub async fn build_with(&self, ctx: &BuildContext) -> Result<Arc<dyn Namer>, ConfigError> {
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
                    .map_err(|e| ConfigError::new(format!("{}.rootDir", self.field), e))?;
                Arc::new(namer)
            }
            NamerKind::Rewrite { pattern, name } => Arc::new(
                RewriteNamer::new(self.prefix.clone(), pattern, name)
                    .map_err(|e| ConfigError::new(&self.field, e))?,
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
                        .map_err(|e| ConfigError::new(&self.field, e))?,
                )
            }
            NamerKind::Ingress {
                connection,
                class,
                namespace,
                ignore_default_backends,
                dst,
            } => {
                let opts = IngressNamerOptions {
                    prefix: self.prefix.clone(),
                    class: class.clone(),
                    namespace: namespace.clone(),
                    ignore_default_backends: *ignore_default_backends,
                    dst: dst.clone(),
                    ..IngressNamerOptions::new(connection.clone())
                };
                Arc::new(
                    IngressNamer::new(opts)
                        .await
                        .map_err(|e| ConfigError::new(&self.field, e))?,
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
) -> Result<Vec<Arc<dyn Namer>>, ConfigError> {
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        out.push(config.build_with(ctx).await?);
    }
    Ok(out)
}
