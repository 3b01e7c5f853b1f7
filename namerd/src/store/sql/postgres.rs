//! The PostgreSQL side of the SQL store: its pools, its write transactions
//! and the `LISTEN l5d_dtabs` task that turns notifications into hints.
//!
//! Writes run at the default READ COMMITTED level: each conditional write
//! is one single-row statement, so the row lock serialises concurrent
//! writers of a namespace and the loser re-checks its `WHERE` against the
//! winner's row. Each write also calls `pg_notify` in its transaction; the
//! payload is `namespace:version` only (payloads must stay under 8000
//! bytes), and notifications are hints: a listener that reconnects has
//! lost some, so it asks for a full re-read.
//!
//! Must not depend on the HTTP API or configuration; nothing outside
//! `store::sql` uses this module.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::backend::{
    Backend, CAS_DTAB, Cas, Change, CurrentRow, DELETE_DTAB, HistoryRow, INSERT_DTAB,
    INSERT_HISTORY, OVERWRITE_DTAB, SELECT_ALL, SELECT_HISTORY, SELECT_HISTORY_AT,
    SELECT_LATEST_HISTORY, SELECT_NAMES, SELECT_ONE, SELECT_VERSION, SELECT_VERSIONS,
};
use super::sync::{Backoff, Hint, valid_name};
use super::{OpenError, SqlOptions};
use crate::store::Op;

pub(super) const NAME: &str = "postgres";

/// The notification channel; namerd replicas sharing a database share it.
pub(super) const CHANNEL: &str = "l5d_dtabs";

/// Notifications waiting for the synchronisation task; beyond this the
/// listener waits (the server buffers for it meanwhile).
const HINT_BUFFER: usize = 256;

/// How often a write retries after losing a version race to a concurrent
/// delete of the same namespace (see `retry_on_unique_violation`).
const UNIQUE_RETRIES: usize = 3;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug)]
pub(super) struct PgBackend {
    pool: PgPool,
    /// One connection for LISTEN, named `<application_name>-listener` so
    /// that operators can tell it apart in `pg_stat_activity`.
    listener_pool: PgPool,
}

// === impl PgBackend ===

impl PgBackend {
    pub(super) async fn open(
        connect: PgConnectOptions,
        opts: &SqlOptions,
    ) -> Result<Self, OpenError> {
        let app = connect
            .get_application_name()
            .unwrap_or("namerd")
            .to_string();
        let connect = connect.application_name(&app);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|source| OpenError::Connect {
                backend: NAME,
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| OpenError::Migrate {
                backend: NAME,
                source,
            })?;
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            // The listening session must live as long as it can: a new one
            // has missed notifications and costs a full re-read.
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(connect.application_name(&format!("{app}-listener")));
        Ok(PgBackend {
            pool,
            listener_pool,
        })
    }

    /// Starts the listener task; its hints go to the returned receiver.
    pub(super) fn spawn_listener(&self, opts: &SqlOptions) -> (mpsc::Receiver<Hint>, AbortHandle) {
        let (tx, rx) = mpsc::channel(HINT_BUFFER);
        let task = tokio::spawn(listen(self.listener_pool.clone(), tx, opts.max_backoff));
        (rx, task.abort_handle())
    }

    async fn try_create(
        &self,
        change: &Change<'_>,
        dtab: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let Some(version) = insert(&mut tx, change, dtab).await? else {
            return Ok(None);
        };
        record(&mut tx, change, version, Op::Create, Some(dtab)).await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    async fn try_put(&self, change: &Change<'_>, dtab: &str) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Each statement sees the latest committed rows, so when the insert
        // loses to a concurrent create the next update finds its row.
        let (version, op) = loop {
            let updated: Option<i64> = sqlx::query_scalar(OVERWRITE_DTAB)
                .bind(dtab)
                .bind(change.ns)
                .bind(change.at_ms)
                .bind(change.author)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(version) = updated {
                break (version, Op::Update);
            }
            if let Some(version) = insert(&mut tx, change, dtab).await? {
                break (version, Op::Create);
            }
        };
        record(&mut tx, change, version, op, Some(dtab)).await?;
        tx.commit().await?;
        Ok(version)
    }
}

#[async_trait]
impl Backend for PgBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn names(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(SELECT_NAMES).fetch_all(&self.pool).await
    }

    async fn versions(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query_as(SELECT_VERSIONS).fetch_all(&self.pool).await
    }

    async fn all_current(&self) -> Result<Vec<CurrentRow>, sqlx::Error> {
        sqlx::query_as(SELECT_ALL).fetch_all(&self.pool).await
    }

    async fn current(&self, ns: &str) -> Result<Option<CurrentRow>, sqlx::Error> {
        sqlx::query_as(SELECT_ONE)
            .bind(ns)
            .fetch_optional(&self.pool)
            .await
    }

    async fn history(&self, ns: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY)
            .bind(ns)
            .fetch_all(&self.pool)
            .await
    }

    async fn history_at(&self, ns: &str, version: i64) -> Result<Option<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_HISTORY_AT)
            .bind(ns)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
    }

    async fn latest_history(&self, ns: &str) -> Result<Option<HistoryRow>, sqlx::Error> {
        sqlx::query_as(SELECT_LATEST_HISTORY)
            .bind(ns)
            .fetch_optional(&self.pool)
            .await
    }

    async fn create(&self, change: &Change<'_>, dtab: &str) -> Result<Option<i64>, sqlx::Error> {
        retry_on_unique_violation(move || self.try_create(change, dtab)).await
    }

    async fn update(
        &self,
        change: &Change<'_>,
        dtab: &str,
        expected: i64,
    ) -> Result<Cas, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        loop {
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
            // No row matched: tell a missing namespace from a newer version
            // by reading the row as committed now.
            let current: Option<i64> = sqlx::query_scalar(SELECT_VERSION)
                .bind(change.ns)
                .fetch_optional(&mut *tx)
                .await?;
            match current {
                None => return Ok(Cas::Absent),
                Some(current) if current != expected => return Ok(Cas::Mismatch(current)),
                // Created at `expected` between the two statements: try again.
                Some(_) => continue,
            }
        }
    }

    async fn put(&self, change: &Change<'_>, dtab: &str) -> Result<i64, sqlx::Error> {
        retry_on_unique_violation(move || self.try_put(change, dtab)).await
    }

    async fn delete(&self, change: &Change<'_>) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
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
    conn: &mut PgConnection,
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

/// Appends the history row and the notification, in the caller's transaction.
async fn record(
    conn: &mut PgConnection,
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
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{}:{version}", change.ns))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A create racing a delete of the same namespace can pick the version the
/// delete is taking (both read the history before either committed). The
/// history's primary key rejects it and the transaction rolls back; running
/// it again reads the delete. Nothing was committed, so this is no retry of
/// the caller's change behind its back, only of our own transaction.
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

/// The listener task: subscribes, forwards notifications as hints, and
/// after any loss of its session subscribes again and asks for a re-read.
/// It ends only when aborted or when the store is gone.
async fn listen(pool: PgPool, hints: mpsc::Sender<Hint>, max_backoff: Duration) {
    let mut backoff = Backoff::new(max_backoff);
    loop {
        let mut listener = match subscribe(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                if hints.send(Hint::Lost(e)).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        // Subscribed before the re-read starts, so every change is either
        // in the re-read or notified after it.
        if hints.send(Hint::Connected).await.is_err() {
            return;
        }
        let error = loop {
            let hint = match listener.try_recv().await {
                Ok(Some(notification)) => match parse_payload(notification.payload()) {
                    Some(hint) => hint,
                    None => continue,
                },
                // sqlx reconnected and subscribed again (eager reconnect);
                // notifications sent in between are lost.
                Ok(None) => {
                    info!("PostgreSQL listener reconnected; re-reading dtabs");
                    Hint::Connected
                }
                Err(e) => break e,
            };
            if hints.send(hint).await.is_err() {
                return;
            }
        };
        // Start from a fresh listener rather than trust one that failed in
        // a way sqlx does not treat as a lost connection.
        warn!(%error, "PostgreSQL listener failed; subscribing again");
        drop(listener);
        if hints.send(Hint::Lost(error)).await.is_err() {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

fn parse_payload(payload: &str) -> Option<Hint> {
    let hint = payload.split_once(':').and_then(|(ns, version)| {
        let ns = valid_name(ns)?;
        let version = version.parse().ok()?;
        Some(Hint::Changed { ns, version })
    });
    if hint.is_none() {
        debug!(
            payload,
            "ignoring a notification that is not namespace:version"
        );
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::{Hint, parse_payload};

    #[test]
    fn payloads_are_namespace_and_version() {
        let hint = parse_payload("default:42");
        assert!(
            matches!(hint, Some(Hint::Changed { ref ns, version: 42 }) if ns.as_str() == "default")
        );
        for bad in [
            "",
            "default",
            "default:",
            ":1",
            "bad name:1",
            "default:x",
            "a:1:2",
        ] {
            assert!(parse_payload(bad).is_none(), "{bad:?}");
        }
    }
}
