//! Versioned dtab storage: one trait, several backends, one semantics.
//!
//! A store keeps one dtab per namespace with an opaque [`Version`]. Every
//! write but [`DtabStore::put`] is conditional: `create` only if absent,
//! `update` only if the caller's version is still current. Every committed
//! version goes into a history, so a bad change can be rolled back; the
//! history is bounded by a [`Retention`] (count and age, never the current
//! version) and read a [`HistoryPage`] at a time.
//!
//! Watches are `tokio::sync::watch` channels: a receiver starts with the
//! current value and then sees every committed change, except that a slow
//! receiver may skip intermediate values; it always ends on the latest. A
//! backend that loses its storage keeps its last good values and reports
//! itself stale ([`StoreHealth`]); it never publishes an empty value because
//! of an error.
//!
//! This module knows nothing of SQL, Kubernetes or HTTP.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use l5d_dtab::Dtab;
use tokio::sync::watch;

pub mod k8s;
pub mod memory;
mod retention;
pub mod sql;
mod watch_hub;

pub use retention::{HistoryPage, Retention};
pub use watch_hub::WatchHub;

/// A dtab namespace name such as `internal`: letters, digits, `_` and `-`,
/// at most 128 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace(Arc<str>);

/// The longest namespace name accepted.
pub const MAX_NAMESPACE_LEN: usize = 128;

impl Namespace {
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAMESPACE_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(StoreError::InvalidNamespace {
                name: name.to_string(),
            });
        }
        Ok(Namespace(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({})", self.0)
    }
}

/// An opaque version, compared for equality only. On the HTTP API it is
/// the standard, padded base64 of its bytes (the `ETag`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(Arc<[u8]>);

impl Version {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Version(bytes.into())
    }

    /// The 8-byte big-endian form of a counter, as namerd's in-memory store
    /// and our SQL stores write versions (`1` is `AAAAAAAAAAE=`).
    pub fn from_counter(n: u64) -> Self {
        Version::from_bytes(&n.to_be_bytes())
    }

    /// The counter this version encodes, if it is an 8-byte counter.
    pub fn counter(&self) -> Option<u64> {
        Some(u64::from_be_bytes(self.0.as_ref().try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_etag(&self) -> String {
        BASE64.encode(&self.0)
    }

    /// Decodes an `ETag`/`If-Match` value (base64, no quotes).
    pub fn from_etag(etag: &str) -> Result<Self, StoreError> {
        BASE64
            .decode(etag.trim())
            .map(|b| Version::from_bytes(&b))
            .map_err(|_| StoreError::InvalidVersion {
                value: etag.to_string(),
            })
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.to_etag())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_etag())
    }
}

/// A dtab and the version it was stored at.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionedDtab {
    pub dtab: Dtab,
    pub version: Version,
}

/// Who is writing, recorded in the history where known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteMeta {
    pub author: Option<String>,
}

/// One write to a store: which namespace, what changes, who asked.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    pub ns: &'a Namespace,
    pub change: Change<'a>,
    pub meta: &'a WriteMeta,
}

/// What a [`Write`] does. Every change but `Put` is conditional.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// Creates the namespace; fails with `AlreadyExists` if it is present.
    Create(&'a Dtab),
    /// Replaces the dtab if its version is still `expected`; fails with
    /// `VersionMismatch` (carrying the current version) or `NotFound`.
    Update {
        dtab: &'a Dtab,
        expected: &'a Version,
    },
    /// Creates or replaces the dtab unconditionally (namerd's `PUT` without
    /// `If-Match`).
    Put(&'a Dtab),
    /// Deletes the namespace; fails with `NotFound` if it is absent.
    Delete,
}

impl Change<'_> {
    /// The change's name, in spans.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Create(_) => "create",
            Change::Update { .. } => "update",
            Change::Put(_) => "put",
            Change::Delete => "delete",
        }
    }
}

/// What a committed version did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(Op::Create),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// One committed version of a namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub version: Version,
    pub op: Op,
    /// The dtab as of this version; `None` for a deletion.
    pub dtab: Option<Dtab>,
    pub committed_at: SystemTime,
    pub author: Option<String>,
}

/// Why a store operation failed. Conflicts are distinct from failures of the
/// storage itself, so callers can map them to 404/409/412 and retry only the
/// latter.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid dtab namespace {name}: namespace must contain only letter, number, '_' or '-' characters (at most 128)"
    )]
    InvalidNamespace { name: String },
    #[error("invalid version {value:?}: expected the base64 ETag of a version")]
    InvalidVersion { value: String },
    #[error("The dtab namespace {ns} already exists")]
    AlreadyExists { ns: Namespace },
    #[error("The dtab namespace {ns} does not exist")]
    NotFound { ns: Namespace },
    #[error("Could not update dtab: current version does not match provided version")]
    VersionMismatch { ns: Namespace, current: Version },
    #[error("dtab storage is unavailable: {message}")]
    Unavailable { message: Arc<str> },
    #[error("dtab storage holds an invalid dtab for {ns}: {message}")]
    Corrupt { ns: Namespace, message: Arc<str> },
    /// The dtab cannot be stored at all, whatever the version: the caller
    /// must shrink it, so it is neither retryable nor the store's failure.
    #[error("the dtab of {ns} is too large for {storage}: {size} bytes, at most {limit}")]
    TooLarge {
        ns: Namespace,
        /// What refused it, e.g. "a Kubernetes ConfigMap".
        storage: &'static str,
        size: usize,
        limit: usize,
    },
}

impl StoreError {
    pub fn unavailable(e: impl fmt::Display) -> Self {
        StoreError::Unavailable {
            message: e.to_string().into(),
        }
    }
}

/// Whether a store's view is current.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// The initial load succeeded and the store can serve reads.
    pub ready: bool,
    /// The last attempt to reach storage failed; values are the last good ones.
    pub stale: bool,
    pub last_error: Option<String>,
    /// When the view was last confirmed current.
    pub last_sync: Option<SystemTime>,
}

/// `store.write(write)` in a `namerd.store.write` span (when tracing is
/// on and the write is sampled): namespace, change, resulting version or
/// error. Every named write goes through here.
async fn traced_write<S: DtabStore + ?Sized>(
    store: &S,
    write: Write<'_>,
) -> Result<Version, StoreError> {
    let mut span = l5d_trace::global_span("namerd.store.write", None);
    if span.is_sampled() {
        span.set("l5d.namespace", write.ns.to_string());
        span.set("l5d.change", write.change.kind());
    }
    let result = store.write(write).await;
    if span.is_sampled() {
        match &result {
            Ok(version) => span.set("l5d.version", version.to_string()),
            Err(e) => span.fail(e.to_string()),
        }
    }
    result
}

/// Versioned dtab storage, whatever holds it.
#[async_trait]
pub trait DtabStore: Send + Sync + 'static {
    /// Namespace names, sorted.
    async fn list(&self) -> Result<Vec<Namespace>, StoreError>;

    /// The current dtab, read from storage (read-your-writes).
    async fn get(&self, ns: &Namespace) -> Result<Option<VersionedDtab>, StoreError>;

    /// Commits `write` together with its history entry: the new version
    /// (for a deletion, the version it was recorded at, or an empty one
    /// where the storage has none). Backends implement this; callers use
    /// the named writes below.
    async fn write(&self, write: Write<'_>) -> Result<Version, StoreError>;

    /// Creates `ns`; fails with `AlreadyExists` if it is present.
    async fn create(
        &self,
        ns: &Namespace,
        dtab: &Dtab,
        meta: &WriteMeta,
    ) -> Result<Version, StoreError> {
        let change = Change::Create(dtab);
        traced_write(self, Write { ns, change, meta }).await
    }

    /// Replaces the dtab if its version is still `expected`; fails with
    /// `VersionMismatch` (carrying the current version) or `NotFound`.
    async fn update(
        &self,
        ns: &Namespace,
        dtab: &Dtab,
        expected: &Version,
        meta: &WriteMeta,
    ) -> Result<Version, StoreError> {
        let change = Change::Update { dtab, expected };
        traced_write(self, Write { ns, change, meta }).await
    }

    /// Creates or replaces the dtab unconditionally (namerd's `PUT` without
    /// `If-Match`). Callers should prefer `update`.
    async fn put(
        &self,
        ns: &Namespace,
        dtab: &Dtab,
        meta: &WriteMeta,
    ) -> Result<Version, StoreError> {
        let change = Change::Put(dtab);
        traced_write(self, Write { ns, change, meta }).await
    }

    /// Deletes `ns`; fails with `NotFound` if it is absent.
    async fn delete(&self, ns: &Namespace, meta: &WriteMeta) -> Result<(), StoreError> {
        let change = Change::Delete;
        traced_write(self, Write { ns, change, meta })
            .await
            .map(drop)
    }

    /// Every retained version of `ns`, oldest first (including deletions).
    async fn history(&self, ns: &Namespace) -> Result<Vec<HistoryEntry>, StoreError>;

    /// One page of the retained versions of `ns`, newest first. Backends
    /// whose history is small or in memory page the whole of it; the SQL
    /// store reads only the page.
    async fn history_page(
        &self,
        ns: &Namespace,
        page: &HistoryPage,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(page.select(self.history(ns).await?))
    }

    /// One committed version of `ns`.
    async fn version(
        &self,
        ns: &Namespace,
        version: &Version,
    ) -> Result<Option<HistoryEntry>, StoreError>;

    /// The dtab of `ns` now and after every change (`None` while absent).
    fn watch(&self, ns: &Namespace) -> watch::Receiver<Option<VersionedDtab>>;

    /// The sorted namespace names now and after every change.
    fn watch_list(&self) -> watch::Receiver<Vec<Namespace>>;

    fn health(&self) -> StoreHealth;
}
