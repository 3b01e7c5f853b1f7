//! One conformance suite for every dtab store: the in-memory store, SQLite,
//! PostgreSQL and Kubernetes ConfigMaps (on the test API server) run the
//! same cases (`conformance!` makes one test per case
//! and backend), so the SQL stores are held to the in-memory semantics.
//!
//! PostgreSQL cases connect to `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each in a schema of its own.
//! When the server is unreachable they print `SKIPPED: ...` and pass, except
//! under `CI=true`, where they fail. The multi-replica cases (NOTIFY and
//! listener loss) are in `support/replicas.rs`; the cases on reads and
//! watches in `support/reads.rs`; history retention and pagination in
//! `support/history.rs`.

#[path = "support/backends.rs"]
mod backends;
#[path = "support/history.rs"]
mod history;
#[path = "support/k8s_api.rs"]
mod k8s_api;
#[path = "support/reads.rs"]
mod reads;
#[path = "support/replicas.rs"]
mod replicas;
#[path = "support/wait.rs"]
mod wait;

use std::time::Duration;

use backends::{Harness, Kind};
use history::{
    concurrent_writers_never_lose_the_current_version, pages_walk_every_retained_version_once,
    retention_keeps_the_newest_versions, retention_prunes_by_age,
};
use l5d_dtab::Dtab;
use namerd::store::{Namespace, Op, StoreError, Version, VersionedDtab, WriteMeta};
use reads::{
    corrupt_stored_dtab_is_reported, history_is_oldest_first, list_is_sorted,
    reads_and_watches_see_own_writes, watch_ends_on_the_latest_after_a_burst,
    watch_of_absent_sees_create_then_delete,
};
use wait::wait_for;

/// The bound of every wait for a watch on the store's own writes.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// One `#[tokio::test]` per case and backend, e.g. `sqlite::create_then_get`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::backends::run(crate::Kind::Memory, super::$case).await
            })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::backends::run(crate::Kind::Sqlite, super::$case).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::backends::run(crate::Kind::Postgres, super::$case).await
            })*
        }
        mod k8s {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::backends::run(crate::Kind::K8s, super::$case).await
            })*
        }
    };
}

conformance!(
    create_then_get,
    create_twice_is_already_exists,
    concurrent_creates_have_one_winner,
    concurrent_updates_of_one_version_have_one_winner,
    update_of_absent_is_not_found,
    put_creates_then_updates,
    delete_then_delete_again_is_not_found,
    recreate_never_reuses_a_version,
    list_is_sorted,
    history_is_oldest_first,
    watch_ends_on_the_latest_after_a_burst,
    watch_of_absent_sees_create_then_delete,
    reads_and_watches_see_own_writes,
    corrupt_stored_dtab_is_reported,
    large_dtab_round_trips,
    retention_keeps_the_newest_versions,
    retention_prunes_by_age,
    pages_walk_every_retained_version_once,
    concurrent_writers_never_lose_the_current_version,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_processes_sharing_a_file_follow_each_other() {
    replicas::sqlite_processes_share_a_file().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replica_follows_notify_and_rereads_after_listener_loss() {
    backends::with_schema(replicas::notify_then_listener_loss).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replica_converges_when_listener_dies_during_updates() {
    backends::with_schema(replicas::listener_loss_during_updates).await
}

pub(crate) fn ns(name: &str) -> Namespace {
    Namespace::new(name).expect("namespace")
}

pub(crate) fn dtab(text: &str) -> Dtab {
    Dtab::read(text).expect("dtab")
}

pub(crate) fn v(n: u64) -> Version {
    Version::from_counter(n)
}

pub(crate) fn by(author: &str) -> WriteMeta {
    WriteMeta {
        author: Some(author.to_string()),
    }
}

pub(crate) fn anyone() -> WriteMeta {
    WriteMeta::default()
}

pub(crate) fn version_of(value: &Option<VersionedDtab>) -> Option<Version> {
    value.as_ref().map(|d| d.version.clone())
}

async fn create_then_get(h: Harness) {
    let created = h
        .store
        .create(&ns("alpha"), &dtab("/a=>/b"), &anyone())
        .await
        .unwrap();
    h.check_counter(&created, 1);
    if h.counter_versions() {
        assert_eq!(created.to_etag(), "AAAAAAAAAAE=");
    }
    let got = h.store.get(&ns("alpha")).await.unwrap();
    let expected = VersionedDtab {
        dtab: dtab("/a=>/b"),
        version: created,
    };
    assert_eq!(got, Some(expected));
    assert_eq!(h.store.get(&ns("beta")).await.unwrap(), None);
    let health = h.store.health();
    assert!(
        health.ready && !health.stale && health.last_error.is_none(),
        "{health:?}"
    );
}

async fn create_twice_is_already_exists(h: Harness) {
    let first = h
        .store
        .create(&ns("twice"), &dtab("/a=>/first"), &anyone())
        .await
        .unwrap();
    let again = h
        .store
        .create(&ns("twice"), &dtab("/a=>/second"), &anyone())
        .await;
    assert!(
        matches!(&again, Err(StoreError::AlreadyExists { ns: n }) if *n == ns("twice")),
        "{again:?}"
    );
    let got = h.store.get(&ns("twice")).await.unwrap().unwrap();
    assert_eq!((got.dtab, got.version), (dtab("/a=>/first"), first));
}

async fn concurrent_creates_have_one_winner(h: Harness) {
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = h.store.clone();
            tokio::spawn(async move {
                let text = format!("/w=>/creator/{i}");
                let result = store.create(&ns("race"), &dtab(&text), &anyone()).await;
                (text, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (text, Ok(version)) => winners.push((text, version)),
            (_, Err(StoreError::AlreadyExists { .. })) => {}
            (_, Err(e)) => panic!("a losing create must be AlreadyExists, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (text, version) = winners.pop().unwrap();
    h.check_counter(&version, 1);
    let got = h.store.get(&ns("race")).await.unwrap().unwrap();
    assert_eq!((got.dtab, got.version), (dtab(&text), version));
}

async fn concurrent_updates_of_one_version_have_one_winner(h: Harness) {
    let base = h
        .store
        .create(&ns("cas"), &dtab("/a=>/base"), &anyone())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, base) = (h.store.clone(), base.clone());
            tokio::spawn(async move {
                let text = format!("/w=>/updater/{i}");
                let result = store
                    .update(&ns("cas"), &dtab(&text), &base, &anyone())
                    .await;
                (text, result)
            })
        })
        .collect();
    let (mut winners, mut mismatches) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (text, Ok(version)) => winners.push((text, version)),
            (_, Err(StoreError::VersionMismatch { current, .. })) => mismatches.push(current),
            (_, Err(e)) => panic!("a losing update must be VersionMismatch, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(mismatches.len(), 49);
    let (text, version) = winners.pop().unwrap();
    h.check_counter(&version, 2);
    assert!(
        mismatches.iter().all(|current| *current == version),
        "every loser is told the winner's version: {mismatches:?}"
    );
    let got = h.store.get(&ns("cas")).await.unwrap().unwrap();
    assert_eq!((got.dtab, got.version), (dtab(&text), version));
}

async fn update_of_absent_is_not_found(h: Harness) {
    let result = h
        .store
        .update(&ns("nowhere"), &dtab("/a=>/b"), &v(1), &anyone())
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );
    assert_eq!(h.store.get(&ns("nowhere")).await.unwrap(), None);
}

async fn put_creates_then_updates(h: Harness) {
    let first = h
        .store
        .put(&ns("put"), &dtab("/a=>/one"), &anyone())
        .await
        .unwrap();
    let second = h
        .store
        .put(&ns("put"), &dtab("/a=>/two"), &anyone())
        .await
        .unwrap();
    h.check_counter(&first, 1);
    h.check_counter(&second, 2);
    assert_ne!(first, second);
    let got = h.store.get(&ns("put")).await.unwrap().unwrap();
    assert_eq!((got.dtab, got.version), (dtab("/a=>/two"), second));
    let ops: Vec<Op> = h
        .store
        .history(&ns("put"))
        .await
        .unwrap()
        .iter()
        .map(|e| e.op)
        .collect();
    assert_eq!(ops, [Op::Create, Op::Update]);
}

async fn delete_then_delete_again_is_not_found(h: Harness) {
    h.store
        .create(&ns("doomed"), &dtab("/a=>/b"), &anyone())
        .await
        .unwrap();
    h.store.delete(&ns("doomed"), &anyone()).await.unwrap();
    assert_eq!(h.store.get(&ns("doomed")).await.unwrap(), None);
    assert!(!h.store.list().await.unwrap().contains(&ns("doomed")));
    let again = h.store.delete(&ns("doomed"), &anyone()).await;
    assert!(
        matches!(again, Err(StoreError::NotFound { .. })),
        "{again:?}"
    );
    let update = h
        .store
        .update(&ns("doomed"), &dtab("/a=>/c"), &v(1), &anyone())
        .await;
    assert!(
        matches!(update, Err(StoreError::NotFound { .. })),
        "{update:?}"
    );
}

async fn recreate_never_reuses_a_version(h: Harness) {
    let n = ns("phoenix");
    let v1 = h
        .store
        .create(&n, &dtab("/a=>/life/1"), &anyone())
        .await
        .unwrap();
    let v2 = h
        .store
        .update(&n, &dtab("/a=>/life/1b"), &v1, &anyone())
        .await
        .unwrap();
    h.store.delete(&n, &anyone()).await.unwrap();
    let v4 = h
        .store
        .create(&n, &dtab("/a=>/life/2"), &anyone())
        .await
        .unwrap();
    h.check_counter(&v1, 1);
    h.check_counter(&v2, 2);
    h.check_counter(&v4, 4);
    for old in [&v1, &v2, &v(3)] {
        let stale = h
            .store
            .update(&n, &dtab("/a=>/stale"), old, &anyone())
            .await;
        assert!(
            matches!(&stale, Err(StoreError::VersionMismatch { current, .. }) if *current == v4),
            "an ETag from an earlier life must not match: {stale:?}"
        );
    }
    let history = h.store.history(&n).await.unwrap();
    let steps: Vec<(Version, Op)> = history.iter().map(|e| (e.version.clone(), e.op)).collect();
    if !h.history_survives_delete() {
        assert_eq!(
            steps,
            [(v4, Op::Create)],
            "the history went with the object"
        );
        return;
    }
    assert_eq!(
        steps,
        [
            (v(1), Op::Create),
            (v(2), Op::Update),
            (v(3), Op::Delete),
            (v(4), Op::Create)
        ]
    );
}

/// A 200 KB dtab is stored and notified like any other (the notification
/// carries only `namespace:version`).
async fn large_dtab_round_trips(h: Harness) {
    let text: Vec<String> = (0..4000)
        .map(|i| format!("/svc/name-{i:04}=>/#/io.l5d.k8s/default/http/name-{i:04}"))
        .collect();
    let big = dtab(&text.join(";"));
    assert!(big.show().len() > 200_000);
    let n = ns("big");
    let mut rx = h.store.watch(&n);
    let version = h.store.create(&n, &big, &anyone()).await.unwrap();
    let got = h.store.get(&n).await.unwrap().unwrap();
    assert_eq!((got.dtab == big, got.version), (true, version.clone()));
    wait_for(&mut rx, WAIT, "the big dtab", |value| {
        version_of(value) == Some(version.clone())
    })
    .await;
}
