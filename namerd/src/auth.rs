//! Who may read and write dtabs, decided in one place for every request
//! of the HTTP API ([`Access::decide`]).
//!
//! Identities come from a bearer token (checked against the token file,
//! which holds only hashes: `tokens.rs`) or from a verified client
//! certificate whose name is mapped to an identity. Each identity has
//! `read` and `write` permissions per namespace (`permissions.rs`).
//!
//! With no authentication configured, reads are open and writes are taken
//! only from callers on loopback, or from anyone when the operator set
//! `allowUnauthenticatedWrites` (the configuration refuses a non-loopback
//! listener with neither). Once authentication is configured, every write
//! needs an identity with `write` on its namespace, and reads need `read`
//! (or `write`) when `reads: restricted`; credentials that are sent must be
//! valid, even where none are needed.
//!
//! Knows nothing of HTTP but the value of an `Authorization` header; the
//! API turns a [`Refusal`] into 401 or 403.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use l5d_runtime::ClientIdentity;
use l5d_runtime::config::ConfigError;
use serde::Deserialize;
use tokio::sync::watch;

mod config;
mod permissions;
mod tokens;

pub use config::{AuthConfig, EVERY_NAMESPACE, Reads, Scope};
pub use permissions::{Grants, Member, Permissions};
pub use tokens::{TokenFileError, TokenTable, hashed};

/// How often the token file is re-read for a rotation or a revocation.
pub const TOKEN_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// A name namerd authenticates, such as `deployer`: letters, digits and
/// `-_.@:/`, at most 128 of them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Identity(Arc<str>);

/// The longest identity name accepted.
pub const MAX_IDENTITY_LEN: usize = 128;

impl Identity {
    pub fn new(name: &str) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_IDENTITY_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@:/".contains(&b));
        if valid {
            Ok(Identity(name.into()))
        } else {
            Err(format!(
                "invalid identity {name:?}: letters, digits and -_.@:/, 1 to {MAX_IDENTITY_LEN} of them"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Identity {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Identity::new(&name)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.0)
    }
}

/// What a request does to a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The other end of a request, as its connection saw it.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// `None` when the server did not say (a router called in-process).
    pub addr: Option<SocketAddr>,
    /// The verified client certificate, on a TLS connection that had one.
    pub certificate: Option<Arc<ClientIdentity>>,
}

impl Caller {
    /// On this host: a loopback address, IPv4-mapped ones included.
    pub fn is_loopback(&self) -> bool {
        self.addr
            .is_some_and(|a| a.ip().to_canonical().is_loopback())
    }
}

/// Why a request was refused. The message is the response body: it says
/// what was missing without echoing any credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "authentication required: send a bearer token (Authorization: Bearer <token>; \
         namerctl --token-file) or a client certificate that namerd maps to an identity"
    )]
    NoCredentials,
    #[error(
        "authentication required: the client certificate's names ({}) map to no identity",
        names.join(", ")
    )]
    UnknownCertificate { names: Vec<String> },
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedCredentials,
    #[error("the bearer token is not valid")]
    InvalidToken,
    #[error("{identity} may not {permission} {}", target(ns.as_deref()))]
    Forbidden {
        identity: Identity,
        /// `None` for routes that name no namespace (they need `*`).
        ns: Option<String>,
        permission: Permission,
    },
    #[error(
        "writes are accepted only from loopback: this namerd has no authentication configured \
         (io.l5d.httpController auth)"
    )]
    NotLoopback,
}

fn target(ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("dtab namespace {ns}"),
        None => "every namespace (this route names none; it needs a permission on `*`)".into(),
    }
}

impl Refusal {
    /// 401 rather than 403: other credentials could succeed.
    pub fn is_unauthenticated(&self) -> bool {
        !matches!(self, Refusal::Forbidden { .. } | Refusal::NotLoopback)
    }

    /// The `reason` label of the refusal metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoCredentials => "no_credentials",
            Refusal::UnknownCertificate { .. } => "unknown_certificate",
            Refusal::MalformedCredentials => "malformed_credentials",
            Refusal::InvalidToken => "invalid_token",
            Refusal::Forbidden { .. } => "forbidden",
            Refusal::NotLoopback => "not_loopback",
        }
    }
}

/// The access rules of one HTTP API listener.
#[derive(Debug)]
pub struct Access {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// No authentication: reads open; writes from loopback callers, or
    /// from anyone when `remote_writes`.
    Open {
        remote_writes: bool,
    },
    Authenticated(Box<Policy>),
}

#[derive(Debug)]
struct Policy {
    tokens: Option<watch::Receiver<Arc<TokenTable>>>,
    certificates: BTreeMap<String, Identity>,
    permissions: Permissions,
    reads: Reads,
}

// === impl Access ===

impl Access {
    /// No authentication: writes from loopback only, unless
    /// `remote_writes`.
    pub fn open(remote_writes: bool) -> Access {
        Access {
            mode: Mode::Open { remote_writes },
        }
    }

    /// The rules of `auth` (or [`Access::open`] without it), loading the
    /// token file now and watching it for changes from then on. `field` is
    /// the `auth` block's path, for errors. Must be called within a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// When the token file cannot be read or is invalid.
    pub fn new(
        auth: Option<&AuthConfig>,
        allow_unauthenticated_writes: bool,
        field: &str,
    ) -> Result<Access, ConfigError> {
        let Some(auth) = auth else {
            return Ok(Access::open(allow_unauthenticated_writes));
        };
        let tokens = match &auth.token_file {
            Some(path) => Some(
                l5d_runtime::reload::watch_file(path, TOKEN_RELOAD_INTERVAL, TokenTable::parse)
                    .map_err(|e| ConfigError::new(format!("{field}.tokenFile"), e))?,
            ),
            None => None,
        };
        Ok(Access {
            mode: Mode::Authenticated(Box::new(Policy {
                tokens,
                certificates: auth.client_certificates.clone(),
                permissions: Permissions::new(&auth.permissions),
                reads: auth.reads,
            })),
        })
    }

    /// Whether `caller`, sending `authorization` (the `Authorization`
    /// header's value, if any), may do `need` to `ns` (`None`: a route
    /// that names no namespace). `Ok` carries the authenticated identity,
    /// if there is one.
    ///
    /// # Errors
    ///
    /// The refusal, which says why.
    pub fn decide(
        &self,
        caller: &Caller,
        authorization: Option<&[u8]>,
        ns: Option<&str>,
        need: Permission,
    ) -> Result<Option<Identity>, Refusal> {
        let policy = match &self.mode {
            Mode::Open { remote_writes } => {
                let allowed = need == Permission::Read || *remote_writes || caller.is_loopback();
                return if allowed {
                    Ok(None)
                } else {
                    Err(Refusal::NotLoopback)
                };
            }
            Mode::Authenticated(policy) => policy,
        };
        let identity = policy.identify(caller, authorization)?;
        if need == Permission::Read && policy.reads == Reads::Open {
            return Ok(identity);
        }
        let identity = match (identity, &caller.certificate) {
            (Some(identity), _) => identity,
            (None, Some(cert)) if authorization.is_none() => {
                return Err(Refusal::UnknownCertificate {
                    names: cert.names.clone(),
                });
            }
            (None, _) => return Err(Refusal::NoCredentials),
        };
        if policy.permissions.allows(&identity, ns, need) {
            Ok(Some(identity))
        } else {
            Err(Refusal::Forbidden {
                identity,
                ns: ns.map(str::to_string),
                permission: need,
            })
        }
    }

    /// The permissions entry that governs `ns`: its own name if it has
    /// one, else `*`. A bounded metric label, unlike the names clients
    /// send.
    pub fn scope<'a>(&'a self, ns: Option<&'a str>) -> &'a str {
        match &self.mode {
            Mode::Authenticated(policy) => policy.permissions.scope(ns),
            Mode::Open { .. } => EVERY_NAMESPACE,
        }
    }
}

// === impl Policy ===

impl Policy {
    /// The identity the credentials prove: a bearer token when one is
    /// sent (it must be valid), else a mapped client certificate.
    fn identify(
        &self,
        caller: &Caller,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Identity>, Refusal> {
        if let Some(header) = authorization {
            let token = bearer(header).ok_or(Refusal::MalformedCredentials)?;
            let tokens = self.tokens.as_ref().ok_or(Refusal::InvalidToken)?;
            let table = tokens.borrow().clone();
            return table
                .identify(token)
                .cloned()
                .map(Some)
                .ok_or(Refusal::InvalidToken);
        }
        Ok(caller.certificate.as_ref().and_then(|cert| {
            cert.names
                .iter()
                .find_map(|name| self.certificates.get(name))
                .cloned()
        }))
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC
/// 9110), if the header has that shape.
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty() && !token.contains(&b' ')).then_some(token)
}

#[cfg(test)]
mod tests;
