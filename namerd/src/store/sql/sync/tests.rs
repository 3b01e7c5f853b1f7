//! The re-read and failure race, on a backend the test holds still.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::Shared;
use crate::store::sql::backend::{Backend, Cas, CurrentRow, HistoryRow, Stamp};

/// A database whose `versions` answers (empty) only when let go; nothing
/// else is called by a re-read of an empty store.
#[derive(Debug, Default)]
struct Held {
    reading: Notify,
    release: Notify,
}

#[async_trait]
impl Backend for Held {
    fn name(&self) -> &'static str {
        "held"
    }
    async fn versions(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.reading.notify_one();
        self.release.notified().await;
        Ok(Vec::new())
    }
    async fn names(&self) -> Result<Vec<String>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn all_current(&self) -> Result<Vec<CurrentRow>, sqlx::Error> {
        unreachable!("not part of a re-read of an empty store")
    }
    async fn current(&self, _: &str) -> Result<Option<CurrentRow>, sqlx::Error> {
        unreachable!("not part of a re-read of an empty store")
    }
    async fn history(&self, _: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn history_at(&self, _: &str, _: i64) -> Result<Option<HistoryRow>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn history_page(&self, _: &str, _: i64, _: i64) -> Result<Vec<HistoryRow>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn latest_history(&self, _: &str) -> Result<Option<HistoryRow>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn create(&self, _: &Stamp<'_>, _: &str) -> Result<Option<i64>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn update(&self, _: &Stamp<'_>, _: &str, _: i64) -> Result<Cas, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn put(&self, _: &Stamp<'_>, _: &str) -> Result<i64, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
    async fn delete(&self, _: &Stamp<'_>) -> Result<Option<i64>, sqlx::Error> {
        unreachable!("not part of a re-read")
    }
}

/// A re-read that read before storage failed and finished after a call
/// failed must not report storage healthy; the next one does.
#[tokio::test]
async fn a_reread_older_than_a_failure_leaves_the_store_stale() {
    let db = Arc::new(Held::default());
    let shared = Arc::new(Shared::new(db.clone()));
    let reread = tokio::spawn({
        let shared = shared.clone();
        async move { shared.resync().await }
    });
    db.reading.notified().await;
    shared.failed("read", &sqlx::Error::PoolTimedOut);
    db.release.notify_one();
    reread.await.unwrap().unwrap();
    assert!(shared.health().stale, "{:?}", shared.health());

    let reread = tokio::spawn({
        let shared = shared.clone();
        async move { shared.resync().await }
    });
    db.reading.notified().await;
    db.release.notify_one();
    reread.await.unwrap().unwrap();
    assert!(!shared.health().stale, "{:?}", shared.health());
}
