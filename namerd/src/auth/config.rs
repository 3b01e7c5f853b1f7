//! The shape of the `auth` block of `io.l5d.httpController`, checked
//! field by field as it is read (namespace names, identity names, known
//! keys only); the checks across fields are the interface's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Grants, Identity};

/// The `auth` block of `io.l5d.httpController`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    /// Identities and the SHA-256 of their bearer tokens (`tokens.rs`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A verified client certificate's name (DNS or URI SAN) to the
    /// identity it authenticates.
    #[serde(default)]
    pub client_certificates: BTreeMap<String, Identity>,
    /// Whether reads need an identity with `read` permission.
    #[serde(default)]
    pub reads: Reads,
    /// Namespace (or `*`, every namespace) to who may read and write it.
    pub permissions: BTreeMap<Scope, Grants>,
}

/// Whether reading dtabs and bindings needs an identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reads {
    /// Anyone may read, as in Linkerd.
    #[default]
    Open,
    /// A read needs an identity with `read` or `write` on the namespace.
    Restricted,
}

/// A key of the permissions table: a namespace name, or `*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Scope(String);

/// The scope that applies to every namespace.
pub const EVERY_NAMESPACE: &str = "*";

impl TryFrom<String> for Scope {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        if name != EVERY_NAMESPACE {
            crate::store::Namespace::new(&name).map_err(|e| e.to_string())?;
        }
        Ok(Scope(name))
    }
}

impl Scope {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
