//! The `transformers:` list of a namer's configuration: each entry has a
//! `kind`, an optional `prefix` (without the `/%`) and kind-specific keys.
//! Parsing checks what needs no I/O (binding a `replace`/`const` path is
//! pure); building resolves `specificHost` and finds this host's IPs for
//! `io.l5d.localhost`. Errors name their field (`namers[0].transformers[1]
//! .port`), with the helpers of `namer::config`, which calls this.

use l5d_dtab::Path;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{Transformer, local_ips};
use crate::namer::config::{
    BuildContext, KUBERNETES, NamerConfigError, kind_of, take, typed, unsupported,
};

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

fn path<'de, D: Deserializer<'de>>(d: D) -> Result<Path, D::Error> {
    let text = String::deserialize(d)?;
    Path::read(&text).map_err(D::Error::custom)
}

/// Reads a namer's `transformers` list (absent or `null` is none).
pub(crate) fn parse_transformers(
    value: Option<Value>,
    field: &str,
) -> Result<Vec<TransformerConfig>, NamerConfigError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(NamerConfigError::new(field, "expected a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.into_iter().enumerate() {
        let field = format!("{field}[{j}]");
        let (kind, mut obj) = kind_of(item, &field)?;
        let prefix = match take::<String>(&mut obj, "prefix", &field)? {
            Some(text) => Some(
                Path::read(&text)
                    .map_err(|e| NamerConfigError::new(format!("{field}.prefix"), e))?,
            ),
            None => None,
        };
        let rest = Value::Object(obj);
        let kind = match kind.as_str() {
            "io.l5d.port" => {
                let keys: PortKeys = typed(rest, &field)?;
                if keys.port == 0 {
                    return Err(NamerConfigError::new(
                        format!("{field}.port"),
                        "must be 1-65535",
                    ));
                }
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
                check.map_err(|e| NamerConfigError::new(format!("{field}.path"), e))?;
                if kind == "io.l5d.replace" {
                    TransformerKind::Replace(keys.path)
                } else {
                    TransformerKind::Const(keys.path)
                }
            }
            k if k.starts_with("io.l5d.k8s") => {
                return Err(unsupported(&field, "transformer", k, KUBERNETES));
            }
            other => {
                return Err(unsupported(
                    &field,
                    "transformer",
                    other,
                    "supported: io.l5d.port, io.l5d.localhost, io.l5d.specificHost, io.l5d.replace, io.l5d.const",
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

impl TransformerConfig {
    pub async fn build(&self, ctx: &BuildContext) -> Result<Transformer, NamerConfigError> {
        let at = |key: &str| format!("{}.{key}", self.field);
        let transformer = match &self.kind {
            TransformerKind::Port(port) => Transformer::port(*port),
            TransformerKind::Localhost => match &ctx.local_ips {
                Some(ips) => Transformer::localhost(ips.iter().copied()),
                None => Transformer::localhost(local_ips(&ctx.resolver).await),
            },
            TransformerKind::SpecificHost(host) => Transformer::specific_host(host, &ctx.resolver)
                .await
                .map_err(|e| NamerConfigError::new(at("host"), e))?,
            TransformerKind::Replace(path) => {
                Transformer::replace(path).map_err(|e| NamerConfigError::new(at("path"), e))?
            }
            TransformerKind::Const(path) => {
                Transformer::constant(path).map_err(|e| NamerConfigError::new(at("path"), e))?
            }
        };
        Ok(match &self.prefix {
            Some(prefix) => transformer.with_prefix(prefix),
            None => transformer,
        })
    }
}
