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

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::dialect::Dialect;
use super::{OpenError, SqlOptions};

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
            .map_err(Self::connect_error)?;
        MIGRATOR.run(&writer).await.map_err(Self::migrate_error)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(Self::connect_error)?;
        Ok(SqliteBackend { reader, writer })
    }
}

/// Reads use their own pool; writes go through the one writer connection,
/// each transaction holding the write lock from its start.
impl Dialect for SqliteBackend {
    type Db = Sqlite;

    const NAME: &'static str = "sqlite";

    fn readers(&self) -> &SqlitePool {
        &self.reader
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// SQLite has no notifications: other processes poll.
    async fn announce(_: &mut SqliteConnection, _: &str, _: i64) -> Result<(), sqlx::Error> {
        Ok(())
    }
}
