//! The configuration toolkit both binaries read their YAML or JSON files
//! with, so that they refuse the same mistakes in the same words.
//!
//! A file is read into a JSON [`Value`] ([`yaml`]), its top level into a
//! struct of sections ([`sections`]), and each section is checked in turn. Every error is a [`ConfigError`] naming the path of the
//! field it is about (`routers[0].servers[1].port`), and a binary exits
//! with [`EXIT_CONFIG`] on one. Two ways of reading a section:
//!
//! - A section with fixed fields is a serde struct with
//!   `#[serde(deny_unknown_fields)]`, read with [`typed`], which turns
//!   serde's errors into field paths.
//! - A section whose `kind:` selects a variant is dispatched explicitly:
//!   [`kind_of`] takes the kind out, the caller matches on it and reads the
//!   rest with [`typed`]; an unknown kind is refused by name
//!   ([`ConfigError::unsupported_kind`]), never ignored.
//!
//! Naming: a serde struct that mirrors a file section and is checked
//! before use is `*Keys` (private to its parser); the checked value the
//! program uses is `*Config`. A section that needs no checking beyond
//! its types is its own `*Config`.
//!
//! Shared sections live here too: the admin block ([`AdminConfig`]), the
//! keys every server block shares ([`ServerSettings`]: `tls`, timeouts,
//! connection caps) and the accepted telemetry kinds ([`telemetry`]). This module knows no section
//! of either binary.

use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

mod admin;
mod document;
pub mod reference;
mod server;
mod telemetry;

pub use admin::AdminConfig;
pub use document::{SourceError, read_source, sections, yaml};
pub use server::ServerSettings;
pub use telemetry::telemetry;

/// The exit status for a configuration that cannot be used (`EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;

/// The message of a required field that is absent.
pub const MISSING: &str = "missing; it is required";

/// A configuration that could not be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The path of the field, e.g. `storage.kind` or `interfaces[0].port`;
    /// `(document)` for the file as a whole.
    pub field: String,
    pub message: String,
}

// === impl ConfigError ===

impl ConfigError {
    pub fn new(field: impl fmt::Display, message: impl fmt::Display) -> Self {
        ConfigError {
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    /// `field` is required and absent.
    pub fn missing(field: impl fmt::Display) -> Self {
        Self::new(field, MISSING)
    }

    /// `{field}.kind: unsupported {what} kind "{kind}"; {supported}`, e.g.
    /// `supported: io.l5d.fs, io.l5d.rewrite`.
    pub fn unsupported_kind(field: &str, what: &str, kind: &str, supported: &str) -> Self {
        Self::new(
            format!("{field}.kind"),
            format!("unsupported {what} kind {kind:?}; {supported}"),
        )
    }
}

/// The optional section at `field` read by `parse`, or `T`'s default when
/// it is absent.
pub fn or_default<T: Default>(
    value: Option<Value>,
    field: &str,
    parse: impl FnOnce(Value, &str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    value.map_or_else(|| Ok(T::default()), |v| parse(v, field))
}

/// `Ok` if `ok`, else an error at `field` saying `message` (for checks
/// serde's types cannot express, such as a non-zero duration).
pub fn check(ok: bool, field: impl fmt::Display, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, message))
    }
}

/// `inner` (a path inside `field`, `.` for none) appended to `field`.
fn join(field: &str, inner: &str) -> String {
    match (field, inner) {
        (_, "" | ".") => field.to_string(),
        ("", _) => inner.to_string(),
        (_, i) if i.starts_with('[') => format!("{field}{inner}"),
        _ => format!("{field}.{inner}"),
    }
}

/// Deserialises `value` as `T`, naming the field of any error: `field`
/// plus the path inside it. A missing required key is named as that key
/// (`storage.url: missing; it is required`).
pub fn typed<T: DeserializeOwned>(value: impl Into<Value>, field: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value.into()).map_err(|e| {
        let at = join(field, &e.path().to_string());
        let message = e.into_inner().to_string();
        match message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            Some(key) => ConfigError::missing(join(&at, key)),
            None => ConfigError::new(at, message),
        }
    })
}

/// The `kind` of the mapping at `field`, and its other keys.
pub fn kind_of(value: Value, field: &str) -> Result<(String, Map<String, Value>), ConfigError> {
    let Value::Object(mut obj) = value else {
        return Err(ConfigError::new(field, "expected a mapping with a `kind`"));
    };
    match obj.remove("kind") {
        Some(Value::String(kind)) => Ok((kind, obj)),
        Some(_) => Err(ConfigError::new(
            format!("{field}.kind"),
            "expected a string",
        )),
        None => Err(ConfigError::missing(format!("{field}.kind"))),
    }
}

/// Removes `key` from the mapping at `field` and reads it as `T` (absent
/// or `null` is `None`).
pub fn take<T: DeserializeOwned>(
    obj: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<T>, ConfigError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => typed(v, &join(field, key)).map(Some),
    }
}

/// For `#[serde(default, deserialize_with = "present")]` on an `Option`:
/// absent is `None`, and a key written as `null` is read as a `T` (serde
/// would take it for `None`). So `null` is refused where a value is
/// required, and a `Value` section's own parser decides what it means.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct PoolKeys {
        #[allow(dead_code, reason = "read to check its type")]
        max_idle: u32,
        #[serde(default)]
        #[allow(dead_code, reason = "read to check its type")]
        nested: Option<Vec<PoolKeys>>,
    }

    fn err<T: DeserializeOwned + fmt::Debug>(value: Value) -> String {
        typed::<T>(value, "routers[0].pool")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn typed_errors_name_the_field_path() {
        assert_eq!(
            err::<PoolKeys>(json!({"maxIdle": 1, "prot": 1})),
            "routers[0].pool.prot: unknown field `prot`, expected `maxIdle` or `nested`"
        );
        assert_eq!(
            err::<PoolKeys>(json!({"maxIdle": "x"})),
            "routers[0].pool.maxIdle: invalid type: string \"x\", expected u32"
        );
        assert_eq!(
            err::<PoolKeys>(json!({})),
            "routers[0].pool.maxIdle: missing; it is required"
        );
        assert_eq!(
            err::<PoolKeys>(json!({"maxIdle": 1, "nested": [{}]})),
            "routers[0].pool.nested[0].maxIdle: missing; it is required"
        );
        assert_eq!(
            err::<PoolKeys>(json!("x")),
            "routers[0].pool: invalid type: string \"x\", expected struct PoolKeys"
        );
    }

    #[test]
    fn kinds_are_taken_out_or_refused() {
        let (kind, rest) =
            kind_of(json!({"kind": "io.l5d.fs", "rootDir": "/d"}), "namers[0]").unwrap();
        assert_eq!((kind.as_str(), rest.len()), ("io.l5d.fs", 1));
        let refused = |v: Value| kind_of(v, "namers[0]").unwrap_err().to_string();
        assert_eq!(
            refused(json!([])),
            "namers[0]: expected a mapping with a `kind`"
        );
        assert_eq!(
            refused(json!({"kind": 1})),
            "namers[0].kind: expected a string"
        );
        assert_eq!(
            refused(json!({})),
            "namers[0].kind: missing; it is required"
        );
        assert_eq!(
            ConfigError::unsupported_kind(
                "namers[0]",
                "namer",
                "io.l5d.zk",
                "supported: io.l5d.fs"
            )
            .to_string(),
            "namers[0].kind: unsupported namer kind \"io.l5d.zk\"; supported: io.l5d.fs"
        );
    }

    #[test]
    fn take_reads_one_key() {
        let mut obj = json!({"prefix": "/a", "port": "x", "none": null})
            .as_object()
            .unwrap()
            .clone();
        let prefix: Option<String> = take(&mut obj, "prefix", "namers[0]").unwrap();
        assert_eq!(prefix.as_deref(), Some("/a"));
        assert_eq!(take::<u16>(&mut obj, "none", "namers[0]").unwrap(), None);
        assert_eq!(take::<u16>(&mut obj, "absent", "namers[0]").unwrap(), None);
        assert_eq!(
            take::<u16>(&mut obj, "port", "namers[0]")
                .unwrap_err()
                .field,
            "namers[0].port"
        );
        assert!(!obj.contains_key("prefix"));
    }
}
