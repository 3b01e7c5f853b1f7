//! The SQLite side of the SQL store: the embedded default, one database
//! file that other namerd processes on the host may share.
//!
//! SQLite allows one writer at a time. Writes go through a pool of one
//! connection, so this process queues its own writers in order instead of
//! racing for the lock, and each write transaction starts with `BEGIN
//! IMMEDIATE`: it takes the write lock before reading, so a writer in
//! another process makes it wait (`busy_timeout`) rather than fail with
//! `SQLITE_BUSY` when it tries to upgrade a read lock. Reads use their own
//! pool; in WAL mode they never wait for the writer. There are no
//! notifications: watches follow other processes' writes by polling.
//!
//! Must not depend on the HTTP API or configuration; nothing outside
//! `store::sql` uses this module.

use std::path::Path;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use super::backend::{
    Backend, CAS_DTAB, Cas, Change, CurrentRow, DELETE_DTAB, HistoryRow, INSERT_DTAB,
    INSERT_HISTORY, OVERWRITE_DTAB, SELECT_ALL, SELECT_HISTORY, SELECT_HISTORY_AT,
    SELECT_LATEST_HISTORY, SELECT_NAMES, SELECT_ONE, SELECT_VERSION, SELECT_VERSIONS,
};
use super::{OpenError, SqlOptions};
use crate::store::Op;

pub(super) const NAME: &str = "sqlite";

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug)]
pub(super) struct SqliteBackend {
    reader: SqlitePool,
    writer: SqlitePool,
}

// === impl SqliteBackend ===

impl SqliteBackend {
    pub(super) async fn open(path: &Path, opts: &SqlOptions) -> Result<Self, OpenError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Dtab writes are rare and each is a routing change someone
            // was told succeeded: make it survive a power loss too.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(opts.acquire_timeout)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|source| OpenError::Connect {
                backend: NAME,
                source,
            })?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|source| OpenError::Migrate {
                backend: NAME,
                source,
            })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|source| OpenError::Connect {
                backend: NAME,
                source,
            })?;
        Ok(SqliteBackend { reader, writer })
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn names(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(SELECT_NAMES)
            .fetch_all(&self.reader)
            .await
    }

    async fn versions(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query_as(SELECT_VERSIONS)
            .fetch_all(&self.reader)
            .await
    }

    async fn all_current(&self) -> Result<Vec<CurrentRow>, sqlx::Error> {
        sqlx::query_as(SELECT_ALL).fetch_all(&self.reader).await
    }

    async fn current(&self, ns: &str) -> Result<Option<CurrentRow>, sqlx::Error> {
        sqlx::query_as(SELECT_ONE)
            .bind(ns)
            .fetch_optional(&self.reader)
            .await
    }

    async fn history(&self, ns: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY)
            .bind(ns)
            .fetch_all(&self.reader)
            .await
    }

    async fn history_at(&self, ns: &str, version: i64) -> Result<Option<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY_AT)
            .bind(ns)
            .bind(version)
            .fetch_optional(&self.reader)
            .await
    }

    async fn latest_history(&self, ns: &str) -> Result<Option<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_LATEST_HISTORY)
            .bind(ns)
            .fetch_optional(&self.reader)
            .await
    }

    async fn create(&self, change: &Change<'_>, dtab: &str) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.begin().await?;
        let Some(version) = insert(&mut tx, change, dtab).await? else {
            return Ok(None);
        };
        record(&mut tx, change, version, Op::Create, Some(dtab)).await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    async fn update(
        &self,
        change: &Change<'_>,
        dtab: &str,
        expected: i64,
    ) -> Result<Cas, sqlx::Error> {
        let mut tx = self.begin().await?;
        let committed: Option<i64> = sqlx::query_scalar(CAS_DTAB)
            .bind(dtab)
            .bind(change.ns)
            .bind(expected)
            .bind(change.at_ms)
            .bind(change.author)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(version) = committed {
            record(&mut tx, change, version, Op::Update, Some(dtab)).await?;
            tx.commit().await?;
            return Ok(Cas::Committed(version));
        }
        // The write lock is ours, so this is the row the update missed.
        let current: Option<i64> = sqlx::query_scalar(SELECT_VERSION)
            .bind(change.ns)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(match current {
            Some(current) => Cas::Mismatch(current),
            None => Cas::Absent,
        })
    }

    async fn put(&self, change: &Change<'_>, dtab: &str) -> Result<i64, sqlx::Error> {
        let mut tx = self.begin().await?;
        let updated: Option<i64> = sqlx::query_scalar(OVERWRITE_DTAB)
            .bind(dtab)
            .bind(change.ns)
            .bind(change.at_ms)
            .bind(change.author)
            .fetch_optional(&mut *tx)
            .await?;
        let (version, op) = match updated {
            Some(version) => (version, Op::Update),
            None => {
                // Nobody can create it in between: the write lock is ours.
                let created = insert(&mut tx, change, dtab).await?;
                (created.ok_or(sqlx::Error::RowNotFound)?, Op::Create)
            }
        };
        record(&mut tx, change, version, op, Some(dtab)).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn delete(&self, change: &Change<'_>) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.begin().await?;
        let deleted: Option<i64> = sqlx::query_scalar(DELETE_DTAB)
            .bind(change.ns)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(last) = deleted else { return Ok(None) };
        let version = last + 1;
        record(&mut tx, change, version, Op::Delete, None).await?;
        tx.commit().await?;
        Ok(Some(version))
    }
}

async fn insert(
    conn: &mut SqliteConnection,
    change: &Change<'_>,
    dtab: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(INSERT_DTAB)
        .bind(change.ns)
        .bind(dtab)
        .bind(change.at_ms)
        .bind(change.author)
        .fetch_optional(conn)
        .await
}

/// Appends the history row, in the caller's transaction.
async fn record(
    conn: &mut SqliteConnection,
    change: &Change<'_>,
    version: i64,
    op: Op,
    dtab: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT_HISTORY)
        .bind(change.ns)
        .bind(version)
        .bind(op.as_str())
        .bind(dtab)
        .bind(change.author)
        .bind(change.at_ms)
        .execute(conn)
        .await?;
    Ok(())
}
