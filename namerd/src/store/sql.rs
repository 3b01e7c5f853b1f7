//! SQL dtab storage through sqlx: SQLite, the embedded default, and
//! PostgreSQL, for namerd replicas that share one database.
//!
//! The database is the source of truth. Reads go to it (read-your-writes
//! across replicas), and every conditional write is a compare-and-set in
//! one statement, with its `dtab_history` row (and on PostgreSQL its
//! NOTIFY) and the pruning of older history by the store's [`Retention`]
//! in the same transaction. Watches are served from a local
//! [`WatchHub`] that a background task keeps in step with storage
//! (`sql/sync.rs`); NOTIFY is only a hint, so every listener (re)connect and
//! a periodic timer re-read the table.
//!
//! This file holds the public type and turns rows into domain values and
//! errors; `sql/statements.rs` has the SQL and `sql/dialect.rs` the
//! transactions, written once for both databases; `sql/postgres.rs` and
//! `sql/sqlite.rs` hold only what differs (pools, locking, NOTIFY).
//! It must not depend on namerd's configuration, HTTP API or binary.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use l5d_dtab::Dtab;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::{
    Change, DtabStore, HistoryEntry, HistoryPage, Namespace, Op, Retention, StoreError,
    StoreHealth, Version, VersionedDtab, Write,
};

mod backend;
mod dialect;
mod postgres;
mod sqlite;
mod statements;
mod sync;

use backend::{Backend, Cas, HistoryRow, Prune, Stamp};
use dialect::Dialect as _;
use sync::Shared;

/// Tuning of a [`SqlStore`].
#[derive(Clone, Debug)]
pub struct SqlOptions {
    /// How often storage is re-read without any hint: the longest a change
    /// made by another process can go unseen by watchers if its
    /// notification is lost (SQLite has no notifications at all).
    pub poll_interval: Duration,
    /// How long an operation waits for a connection (and, on SQLite, for
    /// the write lock) before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// Pooled connections: for everything on PostgreSQL, for reads on
    /// SQLite (which writes through one connection).
    pub max_connections: u32,
    /// The longest pause between attempts to reach storage again; the
    /// attempts themselves never stop.
    pub max_backoff: Duration,
    /// The history each write keeps of its namespace.
    pub retention: Retention,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            poll_interval: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 8,
            max_backoff: Duration::from_secs(5),
            retention: Retention::default(),
        }
    }
}

/// Why a [`SqlStore`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid {backend} connection settings: {source}")]
    Config {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot reach {backend} dtab storage: {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the {backend} dtab schema: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("cannot load dtabs from {backend}: {source}")]
    Load {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// For callers that handle every store failure alike (namerd retries
/// opening until it succeeds): the database is unavailable to them.
impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::unavailable(e)
    }
}

impl OpenError {
    /// Whether opening again later may succeed (the database was
    /// unreachable), as opposed to a setting or schema that needs a human.
    pub fn is_retryable(&self) -> bool {
        match self {
            OpenError::Config { .. } => false,
            OpenError::Connect { .. } | OpenError::Load { .. } => true,
            OpenError::Migrate { source, .. } => {
                matches!(source, sqlx::migrate::MigrateError::Execute(_))
            }
        }
    }
}

/// How the background synchronisation has gone, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Completed full re-reads of storage, the initial load included.
    pub resyncs: u64,
    /// Times the PostgreSQL listener was (re)connected and subscribed.
    pub listener_connects: u64,
}

/// Dtab storage in SQLite or PostgreSQL.
#[derive(Debug)]
pub struct SqlStore {
    shared: Arc<Shared>,
    retention: Retention,
    /// The background tasks; only held, so that dropping the store stops them.
    _tasks: Tasks,
}

/// Aborts its tasks on drop, so that neither a dropped store nor a failed
/// open leaves a task polling the database forever.
#[derive(Debug, Default)]
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

// === impl SqlStore ===

impl SqlStore {
    /// Opens (creating it if missing) and migrates the SQLite database at
    /// `path`, and loads it.
    pub async fn open_sqlite(path: &Path, opts: SqlOptions) -> Result<Self, OpenError> {
        let backend = sqlite::SqliteBackend::open(path, &opts).await?;
        Self::start(Arc::new(backend), None, Tasks::default(), opts).await
    }

    /// Connects to and migrates the PostgreSQL database at a `postgres://`
    /// URL, subscribes to its notifications and loads it. Fails if the
    /// database is unreachable.
    pub async fn open_postgres(url: &str, opts: SqlOptions) -> Result<Self, OpenError> {
        let connect: PgConnectOptions = url.parse().map_err(|source| OpenError::Config {
            backend: postgres::PgBackend::NAME,
            source,
        })?;
        Self::open_postgres_with(connect, opts).await
    }

    /// [`SqlStore::open_postgres`] with connection options, for settings a
    /// URL does not carry well (a `search_path`, an `application_name`).
    pub async fn open_postgres_with(
        connect: PgConnectOptions,
        opts: SqlOptions,
    ) -> Result<Self, OpenError> {
        let backend = postgres::PgBackend::open(connect, &opts).await?;
        let (hints, listener) = backend.spawn_listener(&opts);
        Self::start(Arc::new(backend), Some(hints), Tasks(vec![listener]), opts).await
    }

    async fn start(
        backend: Arc<dyn Backend>,
        hints: Option<tokio::sync::mpsc::Receiver<sync::Hint>>,
        mut tasks: Tasks,
        opts: SqlOptions,
    ) -> Result<Self, OpenError> {
        let shared = Arc::new(Shared::new(backend));
        shared.resync().await.map_err(|source| OpenError::Load {
            backend: shared.backend.name(),
            source,
        })?;
        let retention = opts.retention;
        let sync = tokio::spawn(sync::run(shared.clone(), hints, opts));
        tasks.0.push(sync.abort_handle());
        Ok(SqlStore {
            shared,
            retention,
            _tasks: tasks,
        })
    }

    /// `"sqlite"` or `"postgres"`, as in metric labels.
    pub fn backend(&self) -> &'static str {
        self.shared.backend.name()
    }

    /// Counts of re-reads and listener connections so far.
    pub fn stats(&self) -> SyncStats {
        self.shared.stats()
    }

    /// Runs one call of `op` on storage. A failure is mapped to
    /// `Unavailable` and reported, which also asks the background task to
    /// re-read once storage is back.
    async fn run<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        call.await.map_err(|e| {
            self.shared.failed(op, &e);
            StoreError::unavailable(e)
        })
    }
}

#[async_trait]
impl DtabStore for SqlStore {
    async fn list(&self) -> Result<Vec<Namespace>, StoreError> {
        let names = self.run("list", self.shared.backend.names()).await?;
        let mut names: Vec<Namespace> = names.iter().filter_map(|n| sync::valid_name(n)).collect();
        // Sorted here rather than by SQL, whose order depends on the collation.
        names.sort();
        Ok(names)
    }

    async fn get(&self, ns: &Namespace) -> Result<Option<VersionedDtab>, StoreError> {
        let row = self
            .run("get", self.shared.backend.current(ns.as_str()))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let dtab = parse_dtab(ns, &row.dtab)?;
        // A read is as good a sign of the current state as a notification.
        self.shared.offer(ns, row.version, Some(dtab.clone()));
        Ok(Some(VersionedDtab {
            dtab,
            version: Version::from_counter(counter(row.version)),
        }))
    }

    async fn write(&self, write: Write<'_>) -> Result<Version, StoreError> {
        let ns = write.ns;
        let now = SystemTime::now();
        let stamp = Stamp {
            ns: ns.as_str(),
            author: write.meta.author.as_deref(),
            at_ms: unix_millis(now),
            prune: Prune {
                keep: i64::try_from(self.retention.versions()).unwrap_or(i64::MAX),
                before_ms: unix_millis(self.retention.cutoff(now)),
            },
        };
        let backend = &self.shared.backend;
        let (version, dtab) = match write.change {
            Change::Create(dtab) => {
                let text = dtab.show();
                let created = self.run("create", backend.create(&stamp, &text)).await?;
                let version =
                    created.ok_or_else(|| StoreError::AlreadyExists { ns: ns.clone() })?;
                (version, Some(dtab))
            }
            Change::Update { dtab, expected } => {
                // A version that is no counter of ours can match no row: 0
                // never does, and the mismatch then reports the current one.
                let expected = expected
                    .counter()
                    .and_then(|c| i64::try_from(c).ok())
                    .unwrap_or(0);
                let text = dtab.show();
                match self
                    .run("update", backend.update(&stamp, &text, expected))
                    .await?
                {
                    Cas::Committed(version) => (version, Some(dtab)),
                    Cas::Mismatch(current) => {
                        return Err(StoreError::VersionMismatch {
                            ns: ns.clone(),
                            current: Version::from_counter(counter(current)),
                        });
                    }
                    Cas::Absent => return Err(StoreError::NotFound { ns: ns.clone() }),
                }
            }
            Change::Put(dtab) => {
                let text = dtab.show();
                (
                    self.run("put", backend.put(&stamp, &text)).await?,
                    Some(dtab),
                )
            }
            Change::Delete => {
                let deleted = self.run("delete", backend.delete(&stamp)).await?;
                let version = deleted.ok_or_else(|| StoreError::NotFound { ns: ns.clone() })?;
                (version, None)
            }
        };
        Ok(self.shared.offer(ns, version, dtab.cloned()))
    }

    async fn history(&self, ns: &Namespace) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = self
            .run("history", self.shared.backend.history(ns.as_str()))
            .await?;
        rows.into_iter().map(|row| history_entry(ns, row)).collect()
    }

    /// Reads only the page: `version < before` through the primary key.
    /// Versions are our counters, so a cursor no longer retained still
    /// finds what is older (nothing, as pruning goes oldest first).
    async fn history_page(
        &self,
        ns: &Namespace,
        page: &HistoryPage,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let before = match &page.before {
            None => i64::MAX,
            // A version that is no counter of ours has nothing before it.
            Some(v) => match v.counter().and_then(|c| i64::try_from(c).ok()) {
                Some(before) => before,
                None => return Ok(Vec::new()),
            },
        };
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let rows = self
            .run(
                "history",
                self.shared.backend.history_page(ns.as_str(), before, limit),
            )
            .await?;
        rows.into_iter().map(|row| history_entry(ns, row)).collect()
    }

    async fn version(
        &self,
        ns: &Namespace,
        version: &Version,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let Some(v) = version.counter().and_then(|c| i64::try_from(c).ok()) else {
            return Ok(None);
        };
        let row = self
            .run("version", self.shared.backend.history_at(ns.as_str(), v))
            .await?;
        row.map(|row| history_entry(ns, row)).transpose()
    }

    fn watch(&self, ns: &Namespace) -> watch::Receiver<Option<VersionedDtab>> {
        self.shared.hub().watch(ns)
    }

    fn watch_list(&self) -> watch::Receiver<Vec<Namespace>> {
        self.shared.hub().watch_list()
    }

    fn health(&self) -> StoreHealth {
        self.shared.health()
    }
}

// === Conversions ===

/// Stored versions are positive (a `CHECK` says so).
fn counter(version: i64) -> u64 {
    u64::try_from(version).unwrap_or(0)
}

fn unix_millis(t: SystemTime) -> i64 {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn parse_dtab(ns: &Namespace, text: &str) -> Result<Dtab, StoreError> {
    Dtab::read(text).map_err(|e| StoreError::Corrupt {
        ns: ns.clone(),
        message: e.to_string().into(),
    })
}

fn history_entry(ns: &Namespace, row: HistoryRow) -> Result<HistoryEntry, StoreError> {
    let op = Op::parse(&row.op).ok_or_else(|| StoreError::Corrupt {
        ns: ns.clone(),
        message: format!("unknown operation {:?} at version {}", row.op, row.version).into(),
    })?;
    let dtab = row
        .dtab
        .as_deref()
        .map(|text| parse_dtab(ns, text))
        .transpose()?;
    Ok(HistoryEntry {
        version: Version::from_counter(counter(row.version)),
        op,
        dtab,
        committed_at: UNIX_EPOCH + Duration::from_millis(counter(row.committed_at)),
        author: row.author,
    })
}
