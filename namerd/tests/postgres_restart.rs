//! PostgreSQL restarts under write load, on a cluster this test owns (P1
//! and P2 of the reliability spec), and an outage (R6).
//!
//! 20 writers each make 100 compare-and-set updates of one namespace while
//! the server is restarted twice with `pg_ctl restart -m fast`. Afterwards
//! every acknowledged update must be in `dtab_history` at exactly the
//! version it was acknowledged with and with its content, and the history
//! must be exactly 1..=N. Unacknowledged attempts may or may not have been
//! committed; the writer saw an error for them, never success.
//!
//! Needs root and the PostgreSQL server binaries; without them the tests
//! print `SKIPPED: ...` and pass, except under `CI=true`, where they fail.

#[path = "support/pg_cluster.rs"]
mod pg_cluster;
#[path = "support/wait.rs"]
mod wait;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use l5d_dtab::Dtab;
use namerd::store::sql::{SqlOptions, SqlStore};
use namerd::store::{DtabStore, Namespace, Op, Retention, StoreError, Version, WriteMeta};
use pg_cluster::PgCluster;
use tokio::sync::watch;
use wait::{wait_for, wait_until};

const WRITERS: usize = 20;
const UPDATES: usize = 100;
/// The whole run, restarts included, must end within this.
const DEADLINE: Duration = Duration::from_secs(120);
/// A writer's pause after storage failed, before it tries again.
const WRITER_BACKOFF: Duration = Duration::from_millis(50);

fn options() -> SqlOptions {
    SqlOptions {
        acquire_timeout: Duration::from_secs(2),
        max_backoff: Duration::from_millis(500),
        // Every acknowledged write is looked up in the history, and the
        // run writes more versions than the default retention keeps.
        retention: Retention::UNBOUNDED,
        ..SqlOptions::default()
    }
}

/// What the writers were told.
#[derive(Debug, Default)]
struct Tally {
    /// (version, dtab text) of every update acknowledged as Ok.
    acked: Mutex<Vec<(u64, String)>>,
    /// Attempts that failed with `Unavailable` (outcome unknown to them).
    unacknowledged: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_postgres_restarts() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    tokio::time::timeout(DEADLINE, restarts_under_load(&cluster))
        .await
        .unwrap_or_else(|_| panic!("the run did not finish within {DEADLINE:?}"));
}

async fn restarts_under_load(cluster: &PgCluster) {
    let started = Instant::now();
    let store = Arc::new(
        SqlStore::open_postgres_with(cluster.connect_options(), options())
            .await
            .unwrap(),
    );
    let ns = Namespace::new("restarts").unwrap();
    store
        .create(
            &ns,
            &Dtab::read("/w=>/start").unwrap(),
            &WriteMeta::default(),
        )
        .await
        .unwrap();
    let mut watcher = store.watch(&ns);

    let tally = Arc::new(Tally::default());
    let (progress, mut acked_count) = watch::channel(0usize);
    let progress = Arc::new(progress);
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            tokio::spawn(writer(
                i,
                store.clone(),
                ns.clone(),
                tally.clone(),
                progress.clone(),
            ))
        })
        .collect();

    // Restart while writes are in flight: after a fifth of them, and again
    // after more have been acknowledged since the first restart.
    let total = WRITERS * UPDATES;
    for at in [total / 5, total / 2] {
        wait_for(&mut acked_count, DEADLINE, "write progress", |n| *n >= at).await;
        cluster.restart().await;
        eprintln!(
            "restarted PostgreSQL after {at} acknowledged writes ({:?})",
            started.elapsed()
        );
    }
    for w in writers {
        w.await.expect("writer");
    }
    let writes_done = Instant::now();

    let acked = std::mem::take(&mut *tally.acked.lock().unwrap());
    assert_eq!(acked.len(), total);
    let distinct: HashSet<u64> = acked.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        distinct.len(),
        acked.len(),
        "two writes acknowledged with one version"
    );

    let history = store.history(&ns).await.unwrap();
    let versions: Vec<u64> = history
        .iter()
        .map(|e| e.version.counter().unwrap())
        .collect();
    let n = versions.len() as u64;
    assert_eq!(
        versions,
        (1..=n).collect::<Vec<_>>(),
        "history versions must be exactly 1..=N"
    );
    for (version, text) in &acked {
        let entry = &history[(*version - 1) as usize];
        assert_eq!(entry.op, Op::Update, "acknowledged version {version}");
        assert_eq!(
            entry.dtab.as_ref(),
            Some(&Dtab::read(text).unwrap()),
            "content at {version}"
        );
    }

    // P2: the store's watchers are on the final version within 2 s, and the
    // store is no longer stale.
    let last = Version::from_counter(n);
    wait_for(
        &mut watcher,
        Duration::from_secs(2),
        "the final version",
        |value| value.as_ref().map(|d| &d.version) == Some(&last),
    )
    .await;
    wait_until(Duration::from_secs(5), "a fresh store", || {
        !store.health().stale
    })
    .await;
    eprintln!(
        "{} acknowledged, {} unacknowledged attempts, history 1..={n}; \
         writes took {:?}, checks {:?}",
        acked.len(),
        tally.unacknowledged.load(Ordering::Relaxed),
        writes_done - started,
        writes_done.elapsed()
    );
}

/// Makes `UPDATES` acknowledged compare-and-set updates, each with content
/// unique to the attempt (`/w=>/writer/<i>/<j>/<attempt>`).
async fn writer(
    i: usize,
    store: Arc<SqlStore>,
    ns: Namespace,
    tally: Arc<Tally>,
    progress: Arc<watch::Sender<usize>>,
) {
    let meta = WriteMeta {
        author: Some(format!("writer-{i}")),
    };
    for j in 0..UPDATES {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = match store.get(&ns).await {
                Ok(Some(current)) => current.version,
                Ok(None) => panic!("{ns} vanished"),
                Err(e) => {
                    unavailable(&tally, e).await;
                    continue;
                }
            };
            let text = format!("/w=>/writer/{i}/{j}/{attempt}");
            match store
                .update(&ns, &Dtab::read(&text).unwrap(), &current, &meta)
                .await
            {
                Ok(version) => {
                    tally
                        .acked
                        .lock()
                        .unwrap()
                        .push((version.counter().unwrap(), text));
                    progress.send_modify(|n| *n += 1);
                    break;
                }
                Err(StoreError::VersionMismatch { .. }) => {}
                Err(e) => unavailable(&tally, e).await,
            }
        }
    }
}

async fn unavailable(tally: &Tally, e: StoreError) {
    assert!(
        matches!(e, StoreError::Unavailable { .. }),
        "unexpected error {e:?}"
    );
    tally.unacknowledged.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(WRITER_BACKOFF).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_the_last_good_dtabs_and_recovers() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    tokio::time::timeout(DEADLINE, outage(&cluster))
        .await
        .unwrap_or_else(|_| panic!("the run did not finish within {DEADLINE:?}"));
}

async fn outage(cluster: &PgCluster) {
    let store = SqlStore::open_postgres_with(cluster.connect_options(), options())
        .await
        .unwrap();
    let ns = Namespace::new("steady").unwrap();
    let meta = WriteMeta::default();
    let good = Dtab::read("/s=>/good").unwrap();
    let v1 = store.create(&ns, &good, &meta).await.unwrap();
    let mut rx = store.watch(&ns);

    cluster.stop().await;
    let got = store.get(&ns).await;
    assert!(
        matches!(got, Err(StoreError::Unavailable { .. })),
        "{got:?}"
    );
    let update = store
        .update(&ns, &Dtab::read("/s=>/new").unwrap(), &v1, &meta)
        .await;
    assert!(
        matches!(update, Err(StoreError::Unavailable { .. })),
        "{update:?}"
    );
    wait_until(Duration::from_secs(5), "a stale store", || {
        store.health().stale
    })
    .await;
    let health = store.health();
    assert!(health.ready && health.last_error.is_some(), "{health:?}");
    // Never an empty value because of an error: old and new watchers alike
    // still see the last good dtab.
    for value in [rx.borrow().clone(), store.watch(&ns).borrow().clone()] {
        assert_eq!(
            value.map(|d| (d.dtab, d.version)),
            Some((good.clone(), v1.clone()))
        );
    }
    assert_eq!(*store.watch_list().borrow(), vec![ns.clone()]);

    cluster.start_again().await;
    wait_until(Duration::from_secs(10), "recovery", || {
        !store.health().stale
    })
    .await;
    assert!(store.health().last_sync.is_some());
    let v2 = store
        .update(&ns, &Dtab::read("/s=>/new").unwrap(), &v1, &meta)
        .await
        .unwrap();
    wait_for(
        &mut rx,
        Duration::from_secs(1),
        "the update after recovery",
        |value| value.as_ref().map(|d| &d.version) == Some(&v2),
    )
    .await;
}
