//! What each database of the SQL store must do, the rows it returns, and
//! the SQL both databases share.
//!
//! The two differ only in how a write transaction starts (SQLite takes the
//! write lock up front) and whether it notifies (PostgreSQL), so the
//! statements are written once here. Must not depend on a particular
//! database driver, nor on anything outside `store`.

use std::fmt;

use async_trait::async_trait;

/// One database, seen as raw rows; `store::sql` turns them into dtabs,
/// versions and errors.
#[async_trait]
pub(super) trait Backend: fmt::Debug + Send + Sync + 'static {
    /// The `backend` label of metrics and logs.
    fn name(&self) -> &'static str;
    async fn names(&self) -> Result<Vec<String>, sqlx::Error>;
    async fn versions(&self) -> Result<Vec<(String, i64)>, sqlx::Error>;
    async fn all_current(&self) -> Result<Vec<CurrentRow>, sqlx::Error>;
    async fn current(&self, ns: &str) -> Result<Option<CurrentRow>, sqlx::Error>;
    async fn history(&self, ns: &str) -> Result<Vec<HistoryRow>, sqlx::Error>;
    async fn history_at(&self, ns: &str, version: i64) -> Result<Option<HistoryRow>, sqlx::Error>;
    async fn latest_history(&self, ns: &str) -> Result<Option<HistoryRow>, sqlx::Error>;
    /// The new version, or `None` if the namespace exists.
    async fn create(&self, change: &Change<'_>, dtab: &str) -> Result<Option<i64>, sqlx::Error>;
    async fn update(
        &self,
        change: &Change<'_>,
        dtab: &str,
        expected: i64,
    ) -> Result<Cas, sqlx::Error>;
    async fn put(&self, change: &Change<'_>, dtab: &str) -> Result<i64, sqlx::Error>;
    /// The version of the deletion, or `None` if the namespace is absent.
    async fn delete(&self, change: &Change<'_>) -> Result<Option<i64>, sqlx::Error>;
}

/// Who writes which namespace when.
#[derive(Debug)]
pub(super) struct Change<'a> {
    pub(super) ns: &'a str,
    pub(super) author: Option<&'a str>,
    /// Unix milliseconds, from this replica's clock: only shown to people,
    /// never used to order anything (versions do that).
    pub(super) at_ms: i64,
}

/// The outcome of a compare-and-set.
#[derive(Debug)]
pub(super) enum Cas {
    Committed(i64),
    /// The namespace is at this other version.
    Mismatch(i64),
    Absent,
}

/// A `dtabs` row.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CurrentRow {
    pub(super) namespace: String,
    pub(super) dtab: String,
    pub(super) version: i64,
}

/// A `dtab_history` row of a known namespace.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct HistoryRow {
    pub(super) version: i64,
    pub(super) op: String,
    pub(super) dtab: Option<String>,
    pub(super) author: Option<String>,
    pub(super) committed_at: i64,
}

// Both databases accept `$n` placeholders. Each conditional write is one
// single-row statement, which is what makes it a compare-and-set under
// PostgreSQL's READ COMMITTED: a concurrent writer waits for the row lock
// and then re-checks its `WHERE` against the winner's row.

pub(super) const SELECT_NAMES: &str = "SELECT namespace FROM dtabs";
pub(super) const SELECT_VERSIONS: &str = "SELECT namespace, version FROM dtabs";
pub(super) const SELECT_ALL: &str = "SELECT namespace, dtab, version FROM dtabs";
pub(super) const SELECT_ONE: &str =
    "SELECT namespace, dtab, version FROM dtabs WHERE namespace = $1";
pub(super) const SELECT_VERSION: &str = "SELECT version FROM dtabs WHERE namespace = $1";
pub(super) const SELECT_HISTORY: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 ORDER BY version";
pub(super) const SELECT_HISTORY_AT: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 AND version = $2";
pub(super) const SELECT_LATEST_HISTORY: &str = "\
    SELECT version, op, dtab, author, committed_at FROM dtab_history \
    WHERE namespace = $1 ORDER BY version DESC LIMIT 1";

/// Creates a namespace if absent. A re-created namespace continues after
/// its highest history version, so its versions are never reused.
pub(super) const INSERT_DTAB: &str = "\
    INSERT INTO dtabs (namespace, dtab, version, updated_at, updated_by) \
    VALUES ($1, $2, \
        (SELECT COALESCE(MAX(version), 0) + 1 FROM dtab_history WHERE namespace = $1), \
        $3, $4) \
    ON CONFLICT (namespace) DO NOTHING RETURNING version";
/// The compare-and-set.
pub(super) const CAS_DTAB: &str = "\
    UPDATE dtabs SET dtab = $1, version = version + 1, updated_at = $4, updated_by = $5 \
    WHERE namespace = $2 AND version = $3 RETURNING version";
/// The unconditional update of `put`.
pub(super) const OVERWRITE_DTAB: &str = "\
    UPDATE dtabs SET dtab = $1, version = version + 1, updated_at = $3, updated_by = $4 \
    WHERE namespace = $2 RETURNING version";
pub(super) const DELETE_DTAB: &str = "DELETE FROM dtabs WHERE namespace = $1 RETURNING version";
pub(super) const INSERT_HISTORY: &str = "\
    INSERT INTO dtab_history (namespace, version, op, dtab, author, committed_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";
