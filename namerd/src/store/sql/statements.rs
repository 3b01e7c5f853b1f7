//! The SQL both databases share, and the code that runs it on one
//! connection, written once over sqlx's traits.
//!
//! [`Statements`] is implemented for every sqlx connection whose driver can
//! bind and decode the store's columns (text and 64-bit integers); only
//! PostgreSQL and SQLite are compiled in. A statement runs where the caller
//! says: on a pooled connection for reads, in the caller's transaction for
//! writes, so that `sql/dialect.rs` alone decides how a write transaction
//! starts and what it adds. Must not depend on a particular database driver,
//! nor on anything outside `store`.

use sqlx::{ColumnIndex, Connection, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{CurrentRow, HistoryRow, Prune, Stamp};
use crate::store::Op;

// Both databases accept `$n` placeholders. Each conditional write is one
// single-row statement, which is what makes it a compare-and-set under
// PostgreSQL's READ COMMITTED: a concurrent writer waits for the row lock
// and then re-checks its `WHERE` against the winner's row.

const SELECT_NAMES: &str = "SELECT namespace FROM dtabs";
const SELECT_VERSIONS: &str = "SELECT namespace, version FROM dtabs";
const SELECT_ALL: &str = "SELECT namespace, dtab, version FROM dtabs";
const SELECT_ONE: &str = "SELECT namespace, dtab, version FROM dtabs WHERE namespace = $1";
const SELECT_VERSION: &str = "SELECT version FROM dtabs WHERE namespace = $1";
const SELECT_HISTORY: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 ORDER BY version";
const SELECT_HISTORY_AT: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 AND version = $2";
const SELECT_LATEST_HISTORY: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 ORDER BY version DESC LIMIT 1";

/// Creates a namespace if absent. A re-created namespace continues after
/// its highest history version, so its versions are never reused.
const INSERT_DTAB: &str = "\
    INSERT INTO dtabs (namespace, dtab, version, updated_at, updated_by) \
    VALUES ($1, $2, \
        (SELECT COALESCE(MAX(version), 0) + 1 FROM dtab_history WHERE namespace = $1), \
        $3, $4) \
    ON CONFLICT (namespace) DO NOTHING RETURNING version";
/// The compare-and-set.
const CAS_DTAB: &str = "\
    UPDATE dtabs SET dtab = $1, version = version + 1, updated_at = $4, updated_by = $5 \
    WHERE namespace = $2 AND version = $3 RETURNING version";
/// The unconditional update of `put`.
const OVERWRITE_DTAB: &str = "\
    UPDATE dtabs SET dtab = $1, version = version + 1, updated_at = $3, updated_by = $4 \
    WHERE namespace = $2 RETURNING version";
const DELETE_DTAB: &str = "DELETE FROM dtabs WHERE namespace = $1 RETURNING version";
const INSERT_HISTORY: &str = "\
    INSERT INTO dtab_history (namespace, version, op, dtab, author, committed_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";
/// One page of history, newest first, through the primary key.
const SELECT_HISTORY_PAGE: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 AND version < $2 ORDER BY version DESC LIMIT $3";
/// Retention: deletes versions older than the one just written ($2, the
/// newest, never deleted) that are too old ($3, Unix milliseconds) or not
/// among the newest $4 + 1. Counting by OFFSET rather than by version
/// arithmetic keeps it right whatever the gaps between versions.
const PRUNE_HISTORY: &str = "\
    DELETE FROM dtab_history WHERE namespace = $1 AND version < $2 AND ( \
        committed_at < $3 OR version < ( \
            SELECT version FROM dtab_history WHERE namespace = $1 \
            ORDER BY version DESC LIMIT 1 OFFSET $4))";

/// The store's statements on one connection, as raw rows.
pub(super) trait Statements: Send {
    fn names(&mut self) -> impl Future<Output = Result<Vec<String>, sqlx::Error>> + Send;
    fn versions(&mut self) -> impl Future<Output = Result<Vec<(String, i64)>, sqlx::Error>> + Send;
    fn all_current(&mut self) -> impl Future<Output = Result<Vec<CurrentRow>, sqlx::Error>> + Send;
    fn current(
        &mut self,
        ns: &str,
    ) -> impl Future<Output = Result<Option<CurrentRow>, sqlx::Error>> + Send;
    /// The current version of `ns`, if it exists.
    fn version(
        &mut self,
        ns: &str,
    ) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
    fn history(
        &mut self,
        ns: &str,
    ) -> impl Future<Output = Result<Vec<HistoryRow>, sqlx::Error>> + Send;
    fn history_at(
        &mut self,
        ns: &str,
        version: i64,
    ) -> impl Future<Output = Result<Option<HistoryRow>, sqlx::Error>> + Send;
    /// At most `limit` history rows of `ns` below version `before`, newest
    /// first.
    fn history_page(
        &mut self,
        ns: &str,
        before: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<HistoryRow>, sqlx::Error>> + Send;
    fn latest_history(
        &mut self,
        ns: &str,
    ) -> impl Future<Output = Result<Option<HistoryRow>, sqlx::Error>> + Send;
    /// Inserts the row of a new namespace: its version, or `None` if it exists.
    fn insert(
        &mut self,
        stamp: &Stamp<'_>,
        dtab: &str,
    ) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
    /// The compare-and-set: the new version, or `None` if no row of `ns`
    /// is at `expected`.
    fn compare_and_set(
        &mut self,
        stamp: &Stamp<'_>,
        dtab: &str,
        expected: i64,
    ) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
    /// Replaces the dtab whatever its version: the new version, or `None`
    /// if `ns` does not exist.
    fn overwrite(
        &mut self,
        stamp: &Stamp<'_>,
        dtab: &str,
    ) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
    /// Removes the row of `ns`: the version it had, or `None` if absent.
    fn remove(&mut self, ns: &str)
    -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
    /// Appends the history row of a committed change.
    fn record(
        &mut self,
        stamp: &Stamp<'_>,
        version: i64,
        op: Op,
        dtab: Option<&str>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Deletes the history rows of `stamp.ns` older than `version` that
    /// its retention no longer keeps.
    fn prune(
        &mut self,
        stamp: &Stamp<'_>,
        version: i64,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

// === impl Statements ===

// sqlx implements its executor, argument and column traits per driver, so
// what the statements need of a driver is spelled out here, once; the
// bounds hold for PostgreSQL and SQLite.
impl<C, DB> Statements for C
where
    C: Connection<Database = DB>,
    DB: Database,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn names(&mut self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(SELECT_NAMES).fetch_all(self).await
    }

    async fn versions(&mut self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query_as(SELECT_VERSIONS).fetch_all(self).await
    }

    async fn all_current(&mut self) -> Result<Vec<CurrentRow>, sqlx::Error> {
        sqlx::query_as(SELECT_ALL).fetch_all(self).await
    }

    async fn current(&mut self, ns: &str) -> Result<Option<CurrentRow>, sqlx::Error> {
        sqlx::query_as(SELECT_ONE)
            .bind(ns)
            .fetch_optional(self)
            .await
    }

    async fn version(&mut self, ns: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(SELECT_VERSION)
            .bind(ns)
            .fetch_optional(self)
            .await
    }

    async fn history(&mut self, ns: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY)
            .bind(ns)
            .fetch_all(self)
            .await
    }

    async fn history_at(
        &mut self,
        ns: &str,
        version: i64,
    ) -> Result<Option<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY_AT)
            .bind(ns)
            .bind(version)
            .fetch_optional(self)
            .await
    }

    async fn history_page(
        &mut self,
        ns: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY_PAGE)
            .bind(ns)
            .bind(before)
            .bind(limit)
            .fetch_all(self)
            .await
    }

    async fn latest_history(&mut self, ns: &str) -> Result<Option<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_LATEST_HISTORY)
            .bind(ns)
            .fetch_optional(self)
            .await
    }

    async fn insert(&mut self, stamp: &Stamp<'_>, dtab: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(INSERT_DTAB)
            .bind(stamp.ns)
            .bind(dtab)
            .bind(stamp.at_ms)
            .bind(stamp.author)
            .fetch_optional(self)
            .await
    }

    async fn compare_and_set(
        &mut self,
        stamp: &Stamp<'_>,
        dtab: &str,
        expected: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(CAS_DTAB)
            .bind(dtab)
            .bind(stamp.ns)
            .bind(expected)
            .bind(stamp.at_ms)
            .bind(stamp.author)
            .fetch_optional(self)
            .await
    }

    async fn overwrite(
        &mut self,
        stamp: &Stamp<'_>,
        dtab: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(OVERWRITE_DTAB)
            .bind(dtab)
            .bind(stamp.ns)
            .bind(stamp.at_ms)
            .bind(stamp.author)
            .fetch_optional(self)
            .await
    }

    async fn remove(&mut self, ns: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(DELETE_DTAB)
            .bind(ns)
            .fetch_optional(self)
            .await
    }

    async fn record(
        &mut self,
        stamp: &Stamp<'_>,
        version: i64,
        op: Op,
        dtab: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(INSERT_HISTORY)
            .bind(stamp.ns)
            .bind(version)
            .bind(op.as_str())
            .bind(dtab)
            .bind(stamp.author)
            .bind(stamp.at_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn prune(&mut self, stamp: &Stamp<'_>, version: i64) -> Result<(), sqlx::Error> {
        let Prune { keep, before_ms } = stamp.prune;
        sqlx::query(PRUNE_HISTORY)
            .bind(stamp.ns)
            .bind(version)
            .bind(before_ms)
            .bind(keep - 1)
            .execute(self)
            .await?;
        Ok(())
    }
}
