//! What differs between the SQL store's databases, and the one body of
//! reads and write transactions that every database runs.
//!
//! A [`Dialect`] says which sqlx database it is, which pool serves reads,
//! how a write transaction starts (SQLite takes the write lock up front)
//! and what a write announces in its transaction (PostgreSQL's NOTIFY).
//! Everything else — the statements, the compare-and-set, the history row
//! in the same transaction, the retries — is written once here, as the
//! [`Backend`] of every dialect. Must not depend on a particular database
//! driver, nor on anything outside `store`.

use std::fmt;

use async_trait::async_trait;
use sqlx::{Database, Pool, Transaction};
use tracing::debug;

use super::OpenError;
use super::backend::{Backend, Cas, CurrentRow, HistoryRow, Stamp};
use super::statements::Statements;
use crate::store::Op;

/// How often a write runs again after losing a version race to a
/// concurrent delete of the same namespace (see `retry_on_unique_violation`).
const UNIQUE_RETRIES: usize = 3;

/// One database of the SQL store: only what really differs between them.
pub(super) trait Dialect: fmt::Debug + Send + Sync + 'static {
    /// The sqlx database; its connections run the shared statements.
    type Db: Database<Connection: Statements>;

    /// The `backend` label of metrics and logs.
    const NAME: &'static str;

    /// The pool that reads use.
    fn readers(&self) -> &Pool<Self::Db>;

    /// Starts a write transaction.
    fn begin(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;

    /// What a write adds to its transaction after its history row, so that
    /// other replicas hear of it when it commits.
    fn announce(
        conn: &mut <Self::Db as Database>::Connection,
        ns: &str,
        version: i64,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The errors of [`OpenError`] for this database, for `map_err`.
    fn connect_error(source: sqlx::Error) -> OpenError {
        OpenError::Connect {
            backend: Self::NAME,
            source,
        }
    }

    fn migrate_error(source: sqlx::migrate::MigrateError) -> OpenError {
        OpenError::Migrate {
            backend: Self::NAME,
            source,
        }
    }
}

// === impl Backend for every Dialect ===

#[async_trait]
impl<D: Dialect> Backend for D {
    fn name(&self) -> &'static str {
        D::NAME
    }

    async fn names(&self) -> Result<Vec<String>, sqlx::Error> {
        self.readers().acquire().await?.names().await
    }

    async fn versions(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.readers().acquire().await?.versions().await
    }

    async fn all_current(&self) -> Result<Vec<CurrentRow>, sqlx::Error> {
        self.readers().acquire().await?.all_current().await
    }

    async fn current(&self, ns: &str) -> Result<Option<CurrentRow>, sqlx::Error> {
        self.readers().acquire().await?.current(ns).await
    }

    async fn history(&self, ns: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
        self.readers().acquire().await?.history(ns).await
    }

    async fn history_at(&self, ns: &str, version: i64) -> Result<Option<HistoryRow>, sqlx::Error> {
        let mut conn = self.readers().acquire().await?;
        conn.history_at(ns, version).await
    }

    async fn history_page(
        &self,
        ns: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<HistoryRow>, sqlx::Error> {
        let mut conn = self.readers().acquire().await?;
        conn.history_page(ns, before, limit).await
    }

    async fn latest_history(&self, ns: &str) -> Result<Option<HistoryRow>, sqlx::Error> {
        self.readers().acquire().await?.latest_history(ns).await
    }

    async fn create(&self, stamp: &Stamp<'_>, dtab: &str) -> Result<Option<i64>, sqlx::Error> {
        retry_on_unique_violation(move || async move {
            let mut tx = self.begin().await?;
            let Some(version) = tx.insert(stamp, dtab).await? else {
                return Ok(None);
            };
            commit::<D>(tx, stamp, version, Op::Create, Some(dtab)).await?;
            Ok(Some(version))
        })
        .await
    }

    async fn update(
        &self,
        stamp: &Stamp<'_>,
        dtab: &str,
        expected: i64,
    ) -> Result<Cas, sqlx::Error> {
        let mut tx = self.begin().await?;
        loop {
            if let Some(version) = tx.compare_and_set(stamp, dtab, expected).await? {
                commit::<D>(tx, stamp, version, Op::Update, Some(dtab)).await?;
                return Ok(Cas::Committed(version));
            }
            // No row matched: tell a missing namespace from a newer version
            // by reading the row as committed now (under SQLite's write
            // lock, the very row the update missed).
            match tx.version(stamp.ns).await? {
                None => return Ok(Cas::Absent),
                Some(current) if current != expected => return Ok(Cas::Mismatch(current)),
                // Created at `expected` between the two statements (only
                // possible without a write lock): try again.
                Some(_) => continue,
            }
        }
    }

    async fn put(&self, stamp: &Stamp<'_>, dtab: &str) -> Result<i64, sqlx::Error> {
        retry_on_unique_violation(move || async move {
            let mut tx = self.begin().await?;
            // Each statement sees the latest committed rows, so when the
            // insert loses to a concurrent create the next update finds its
            // row. Under SQLite's write lock the first round always ends it.
            let (version, op) = loop {
                if let Some(version) = tx.overwrite(stamp, dtab).await? {
                    break (version, Op::Update);
                }
                if let Some(version) = tx.insert(stamp, dtab).await? {
                    break (version, Op::Create);
                }
            };
            commit::<D>(tx, stamp, version, op, Some(dtab)).await?;
            Ok(version)
        })
        .await
    }

    async fn delete(&self, stamp: &Stamp<'_>) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.begin().await?;
        let Some(last) = tx.remove(stamp.ns).await? else {
            return Ok(None);
        };
        let version = last + 1;
        commit::<D>(tx, stamp, version, Op::Delete, None).await?;
        Ok(Some(version))
    }
}

/// Appends the history row and the dialect's announcement to a write,
/// prunes the history, and commits it: the change, its history and its
/// notification are one transaction.
///
/// Pruning here rather than in a periodic sweep: the number of versions
/// grows only by writes, so the write that adds one is the one place it can
/// be exceeded; it runs under the lock that orders the namespace's writers
/// (PostgreSQL's row lock on `dtabs`, SQLite's write lock), deletes only
/// versions older than the one it writes, so no writer can prune the
/// current version of another; and it needs no task, timer or coordination
/// between replicas. A namespace nobody writes keeps its old versions until
/// its next write, but it does not grow meanwhile either.
async fn commit<D: Dialect>(
    mut tx: Transaction<'static, D::Db>,
    stamp: &Stamp<'_>,
    version: i64,
    op: Op,
    dtab: Option<&str>,
) -> Result<(), sqlx::Error> {
    tx.record(stamp, version, op, dtab).await?;
    tx.prune(stamp, version).await?;
    D::announce(&mut *tx, stamp.ns, version).await?;
    tx.commit().await
}

/// A create racing a delete of the same namespace can pick the version the
/// delete is taking (both read the history before either committed). The
/// history's primary key rejects it and the transaction rolls back; running
/// it again reads the delete. Nothing was committed, so this is no retry of
/// the caller's change behind its back, only of our own transaction. (Under
/// SQLite's write lock no two writes interleave, so it never happens there.)
async fn retry_on_unique_violation<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if retries < UNIQUE_RETRIES && is_unique_violation(&e) => {
                debug!(error = %e, "version race with a concurrent delete; trying again");
                retries += 1;
            }
            result => return result,
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}
