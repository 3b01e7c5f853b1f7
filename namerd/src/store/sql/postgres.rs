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

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::dialect::Dialect;
use super::sync::{Backoff, Hint, valid_name};
use super::{OpenError, SqlOptions};

/// The notification channel; namerd replicas sharing a database share it.
pub(super) const CHANNEL: &str = "l5d_dtabs";

/// Notifications waiting for the synchronisation task; beyond this the
/// listener waits (the server buffers for it meanwhile).
const HINT_BUFFER: usize = 256;

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
            .map_err(Self::connect_error)?;
        MIGRATOR.run(&pool).await.map_err(Self::migrate_error)?;
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
}

/// Writes run at the default READ COMMITTED level and notify in their
/// transaction.
impl Dialect for PgBackend {
    type Db = Postgres;

    const NAME: &'static str = "postgres";

    fn readers(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    async fn announce(conn: &mut PgConnection, ns: &str, version: i64) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{ns}:{version}"))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The listener task: subscribes, forwards notifications as hints, and
/// after any loss of its session subscribes again and asks for a re-read.
/// It ends only when aborted or when the store is gone.
async fn listen(pool: PgPool, hints: mpsc::Sender<Hint>, max_backoff: Duration) {
    let mut backoff = Backoff::new(crate::RETRY_BASE, max_backoff);
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
