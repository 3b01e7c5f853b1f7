//! `identifier`: how a router names a request (`io.l5d.header.token`,
//! `io.l5d.methodAndHost`, `io.l5d.path`, `io.l5d.header`,
//! `io.l5d.header.path`, `io.l5d.static`, `io.l5d.ingress`), one or a
//! list, each selected by `kind`; which kinds a router accepts depends on
//! its protocol.

use http::HeaderName;
use l5d_dtab::Path;
use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

use super::protocol::Protocol;

/// How a request is named (`identifier`).
#[derive(Clone, Debug, PartialEq)]
pub enum IdentifierConfig {
    /// `io.l5d.header.token`: `dstPrefix/<header value>` (one segment).
    HeaderToken { header: HeaderSource },
    /// `io.l5d.methodAndHost`: `dstPrefix/1.1/<METHOD>/<host>[/uri...]`.
    MethodAndHost { http_uri_in_dst: bool },
    /// `io.l5d.path`: `dstPrefix/<first N path segments>`, optionally
    /// removed from the forwarded request.
    Path { segments: usize, consume: bool },
    /// `io.l5d.header`: `dstPrefix` + the header's value read as a path.
    Header { header: HeaderSource },
    /// `io.l5d.header.path`: `dstPrefix/<segments of the header's path>`;
    /// with `:path` this is the gRPC identifier (`/pkg.Service/Method`).
    HeaderPath {
        header: HeaderSource,
        segments: Option<usize>,
    },
    /// `io.l5d.static`: always `dstPrefix` + `path`.
    Static { path: Path },
    /// `io.l5d.ingress`: `dstPrefix/<host>/<path segments...>` (host lower
    /// case without its port, the query dropped), for namerd's
    /// `io.l5d.k8s.ingress` namer to match against Ingress rules.
    Ingress,
}

/// The keys of Linkerd 1.x's `io.l5d.ingress` identifier. They select and
/// fetch Ingresses, which here is namerd's work (its `io.l5d.k8s.ingress`
/// namer has the same settings); the proxy, holding no Kubernetes
/// credentials, accepts them so a Linkerd 1.x configuration starts, and
/// says once at startup where each belongs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IngressKeys {
    namespace: Option<String>,
    ingress_class_annotation: Option<String>,
    ignore_default_backends: Option<bool>,
    host: Option<String>,
    port: Option<u16>,
}

impl IngressKeys {
    /// `(key, where it belongs in namerd)` for each key that was set.
    fn moved(&self) -> Vec<(&'static str, &'static str)> {
        let set = [
            (self.namespace.is_some(), "namespace", "namespace"),
            (
                self.ingress_class_annotation.is_some(),
                "ingressClassAnnotation",
                "ingressClass",
            ),
            (
                self.ignore_default_backends.is_some(),
                "ignoreDefaultBackends",
                "ignoreDefaultBackends",
            ),
            (self.host.is_some(), "host", "host"),
            (self.port.is_some(), "port", "port"),
        ];
        set.into_iter()
            .filter(|(on, ..)| *on)
            .map(|(_, key, namerd)| (key, namerd))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HeaderKeys {
    header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MethodAndHostKeys {
    #[serde(default)]
    http_uri_in_dst: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PathKeys {
    #[serde(default = "one")]
    segments: usize,
    #[serde(default)]
    consume: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HeaderPathKeys {
    header: Option<String>,
    segments: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StaticKeys {
    path: String,
}

fn one() -> usize {
    1
}

pub(super) fn parse_identifiers(
    value: Option<Value>,
    protocol: Protocol,
    router: &str,
) -> Result<Vec<IdentifierConfig>, ConfigError> {
    let field = format!("{router}.identifier");
    let items = match value {
        None | Some(Value::Null) => {
            let header = match protocol {
                Protocol::Http => HeaderSource::Named(http::header::HOST),
                Protocol::H2 => HeaderSource::Authority,
            };
            return Ok(vec![IdentifierConfig::HeaderToken { header }]);
        }
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{field}[{i}]"), v))
            .collect::<Vec<_>>(),
        Some(v) => vec![(field.clone(), v)],
    };
    if items.is_empty() {
        return Err(ConfigError::new(
            field,
            "at least one identifier is required",
        ));
    }
    items
        .into_iter()
        .map(|(f, v)| parse_identifier(v, &f, protocol))
        .collect()
}

fn parse_identifier(
    value: Value,
    field: &str,
    protocol: Protocol,
) -> Result<IdentifierConfig, ConfigError> {
    let (kind, rest) = kind_of(value, field)?;
    let default_token = match protocol {
        Protocol::Http => "host",
        Protocol::H2 => ":authority",
    };
    Ok(match (kind.as_str(), protocol) {
        ("io.l5d.header.token", _) => {
            let k: HeaderKeys = typed(rest, field)?;
            IdentifierConfig::HeaderToken {
                header: header_name(k.header.as_deref().unwrap_or(default_token), field)?,
            }
        }
        ("io.l5d.methodAndHost", Protocol::Http) => {
            let k: MethodAndHostKeys = typed(rest, field)?;
            IdentifierConfig::MethodAndHost {
                http_uri_in_dst: k.http_uri_in_dst,
            }
        }
        ("io.l5d.path", Protocol::Http) => {
            let k: PathKeys = typed(rest, field)?;
            check(
                k.segments != 0,
                format!("{field}.segments"),
                "must be at least 1",
            )?;
            IdentifierConfig::Path {
                segments: k.segments,
                consume: k.consume,
            }
        }
        ("io.l5d.header", Protocol::Http) => {
            let k: HeaderKeys = typed(rest, field)?;
            IdentifierConfig::Header {
                header: header_name(k.header.as_deref().unwrap_or("l5d-name"), field)?,
            }
        }
        ("io.l5d.header.path" | "io.l5d.headerPath", _) => {
            let k: HeaderPathKeys = typed(rest, field)?;
            check(
                k.segments != Some(0),
                format!("{field}.segments"),
                "must be at least 1",
            )?;
            IdentifierConfig::HeaderPath {
                header: header_name(k.header.as_deref().unwrap_or(":path"), field)?,
                segments: k.segments,
            }
        }
        ("io.l5d.static", _) => {
            let k: StaticKeys = typed(rest, field)?;
            IdentifierConfig::Static {
                path: Path::read(&k.path)
                    .map_err(|e| ConfigError::new(format!("{field}.path"), e))?,
            }
        }
        ("io.l5d.ingress", _) => {
            let k: IngressKeys = typed(rest, field)?;
            for (key, namerd) in k.moved() {
                tracing::warn!(
                    "{field}.{key} is read by namerd here: set `{namerd}` on its \
                     io.l5d.k8s.ingress namer (the proxy holds no Kubernetes credentials \
                     and does not read Ingresses)"
                );
            }
            IdentifierConfig::Ingress
        }
        ("io.l5d.k8s.istio", _) => {
            return Err(ConfigError::new(
                format!("{field}.kind"),
                format!("identifier {kind:?} is not supported by this proxy"),
            ));
        }
        ("io.l5d.methodAndHost" | "io.l5d.path" | "io.l5d.header", Protocol::H2) => {
            return Err(ConfigError::new(
                format!("{field}.kind"),
                format!(
                    "identifier {kind:?} is for HTTP/1.1 routers; h2 routers support \
                     io.l5d.header.token, io.l5d.header.path, io.l5d.static and io.l5d.ingress"
                ),
            ));
        }
        _ => {
            return Err(ConfigError::new(
                format!("{field}.kind"),
                format!(
                    "unknown identifier {kind:?}; expected one of io.l5d.header.token, \
                     io.l5d.methodAndHost, io.l5d.path, io.l5d.header, io.l5d.header.path, \
                     io.l5d.static, io.l5d.ingress"
                ),
            ));
        }
    })
}

/// Header names are matched lower-case; `:authority` and `:path` name the
/// HTTP/2 pseudo-headers, which on HTTP/1.1 are the `Host` header (or the
/// absolute URI's authority) and the request target.
fn header_name(name: &str, field: &str) -> Result<HeaderSource, ConfigError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        ":authority" => Ok(HeaderSource::Authority),
        ":path" => Ok(HeaderSource::Path),
        _ => HeaderName::from_bytes(lower.as_bytes())
            .map(HeaderSource::Named)
            .map_err(|e| {
                ConfigError::new(
                    format!("{field}.header"),
                    format!("{name:?} is not a valid header name: {e}"),
                )
            }),
    }
}

/// Where an identifier reads its value.
#[derive(Clone, Debug, PartialEq)]
pub enum HeaderSource {
    /// `:authority`: the URI's authority, else the `Host` header.
    Authority,
    /// `:path`: the request target's path.
    Path,
    Named(HeaderName),
}
