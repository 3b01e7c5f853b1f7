//! The SQL store's view of its database, as raw rows: what `store::sql`
//! and `sql/sync.rs` call, whichever database it is (`sql/dialect.rs`
//! implements it once for both). Must not depend on a particular database
//! driver, nor on anything outside `store`.

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
    /// At most `limit` rows below version `before`, newest first.
    async fn history_page(
        &self,
        ns: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<HistoryRow>, sqlx::Error>;
    async fn latest_history(&self, ns: &str) -> Result<Option<HistoryRow>, sqlx::Error>;
    /// The new version, or `None` if the namespace exists.
    async fn create(&self, stamp: &Stamp<'_>, dtab: &str) -> Result<Option<i64>, sqlx::Error>;
    async fn update(
        &self,
        stamp: &Stamp<'_>,
        dtab: &str,
        expected: i64,
    ) -> Result<Cas, sqlx::Error>;
    async fn put(&self, stamp: &Stamp<'_>, dtab: &str) -> Result<i64, sqlx::Error>;
    /// The version of the deletion, or `None` if the namespace is absent.
    async fn delete(&self, stamp: &Stamp<'_>) -> Result<Option<i64>, sqlx::Error>;
}

/// Who writes which namespace when.
#[derive(Debug)]
pub(super) struct Stamp<'a> {
    pub(super) ns: &'a str,
    pub(super) author: Option<&'a str>,
    /// Unix milliseconds, from this replica's clock: shown to people and
    /// compared with the retention's age limit, never used to order
    /// anything (versions do that).
    pub(super) at_ms: i64,
    /// What history the write's transaction keeps.
    pub(super) prune: Prune,
}

/// The store's retention, as the write's transaction applies it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Prune {
    /// Versions kept, the new one included (at least 1).
    pub(super) keep: i64,
    /// Versions committed before these Unix milliseconds go (the new one
    /// never does).
    pub(super) before_ms: i64,
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
