//! PostgreSQL stopped for 10 s under 100 watchers: no watcher receives an
//! empty or failed tree; after PostgreSQL returns, a new dtab reaches all
//! of them within 2 s.
//!
//! namerd runs in-process on a PostgreSQL cluster this test owns
//! (`support/pg_cluster.rs`). 100 `StreamBoundTree` watchers of `/svc/web`
//! in `/internal`, spread over four HTTP/2 connections, record every
//! message they receive. PostgreSQL is stopped (`pg_ctl stop -m fast`) for
//! 10 s: meanwhile no watcher may receive anything but the tree it already
//! has (no `neg`, `empty`, `fail` or other tree) and no stream may end, and
//! the dtab API answers reads from the last good value marked
//! `l5d-stale: true`. Once PostgreSQL is back, the first write that
//! succeeds must reach every watcher within 2 s of its `204`.
//!
//! Needs root and the PostgreSQL server binaries; without them the test
//! prints `SKIPPED: ...` and passes, except under `CI=true`, where it fails.

#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;
#[path = "support/pg_cluster.rs"]
#[allow(
    dead_code,
    reason = "shared with postgres_restart.rs; the outage stops and starts, never restarts"
)]
mod pg_cluster;

use std::time::Duration;

use http::StatusCode;
use l5d_proto::mesh as pb;
use namerd::config::StorageConfig;
use namerd::testing::{self, TestNamerd};
use namerd_client::{
    CALL_LIMIT, NamerdHttp, connect, inet_id, leaf_tree, next, show, svc_dtab, watch_tree,
};
use pg_cluster::PgCluster;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::Streaming;

const WATCHERS: usize = 100;
const CONNECTIONS: usize = 4;
/// The ports `/svc` points at before and after the outage.
const OLD: u16 = 1111;
const NEW: u16 = 2222;
/// The scenario: how long PostgreSQL is down.
const OUTAGE: Duration = Duration::from_secs(10);
/// The promise: a write after recovery reaches every watcher within this.
const PROPAGATION: Duration = Duration::from_secs(2);
/// How long to wait for the first successful write after recovery.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// The whole scenario must end within this.
const DEADLINE: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_keep_their_tree_through_an_outage_and_follow_the_next_write() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // `cluster` is dropped (and the server stopped) however this ends.
    tokio::time::timeout(DEADLINE, outage_under_watchers(&cluster))
        .await
        .unwrap_or_else(|_| panic!("the scenario did not finish within {DEADLINE:?}"));
}

async fn outage_under_watchers(cluster: &PgCluster) {
    let namerd = start_namerd(cluster).await;
    let api = NamerdHttp::new(namerd.http_addr().expect("the dtab API is configured"));
    let admin = NamerdHttp::new(namerd.admin_addr());
    let created = api.create("internal", &svc_dtab(OLD)).await;
    assert_eq!(created.status, StatusCode::NO_CONTENT, "{created:?}");
    let version = created.etag.expect("a write answers with its version");

    let old_tree = leaf_tree(&inet_id(OLD));
    let new_tree = leaf_tree(&inet_id(NEW));
    let logs = open_watchers(&namerd, &old_tree).await;

    // The outage.
    cluster.stop().await;
    let outage_start = Instant::now();
    stale_reads_answer_from_the_last_good_value(&api, &admin).await;
    eprintln!(
        "the stale read and /admin/store.json answered {:?} into the outage",
        outage_start.elapsed()
    );
    // The scenario needs the outage to last; the sleep is bounded by it.
    tokio::time::sleep_until(outage_start + OUTAGE).await;
    let mut repeats = 0;
    for (i, log) in logs.iter().enumerate() {
        let log = log.borrow();
        for received in &log[1..] {
            match &received.item {
                Item::Tree(tree) if *tree == old_tree => repeats += 1,
                other => panic!(
                    "watcher {i} received {} by the end of the outage ({:?} after PostgreSQL stopped, 0 if before)",
                    other.show(),
                    received.at.saturating_duration_since(outage_start)
                ),
            }
        }
    }
    eprintln!(
        "PostgreSQL down for {:?}: no watcher saw a change or an error ({repeats} repeats of its tree)",
        outage_start.elapsed()
    );

    // Recovery: retry the write until storage takes it; the clock starts
    // at its 204.
    cluster.start_again().await;
    let (acked, attempts) = write_after_recovery(&api, &version).await;
    let mut latencies = Vec::with_capacity(WATCHERS);
    for (i, log) in logs.iter().enumerate() {
        let mut log = log.clone();
        let arrived = tokio::time::timeout(
            5 * PROPAGATION,
            log.wait_for(|log| log.iter().any(|r| r.item == Item::Tree(new_tree.clone()))),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "watcher {i} did not get the new tree within {:?} of the 204",
                5 * PROPAGATION
            )
        })
        .expect("the watcher's log is kept");
        let at = arrived
            .iter()
            .find(|r| r.item == Item::Tree(new_tree.clone()))
            .map(|r| r.at)
            .expect("found by wait_for");
        latencies.push(at.saturating_duration_since(acked));
    }
    latencies.sort();
    let slowest = *latencies.last().expect("watchers");
    eprintln!(
        "PROPAGATION after recovery (204 of the write, attempts: {attempts}, to all {WATCHERS} watchers \
         having {}): median {:?}, slowest {slowest:?}",
        show(&new_tree),
        latencies[WATCHERS / 2]
    );
    assert!(
        slowest <= PROPAGATION,
        "the write took {slowest:?} to reach every watcher (limit {PROPAGATION:?})"
    );

    // Over the whole run each watcher saw its tree, then the new one, and
    // nothing else: no error, no end, no other tree.
    for (i, log) in logs.iter().enumerate() {
        let log = log.borrow();
        let changed = log
            .iter()
            .position(|r| r.item == Item::Tree(new_tree.clone()))
            .expect("checked above");
        let unexpected = log.iter().enumerate().find(|(n, r)| {
            let want = if *n < changed { &old_tree } else { &new_tree };
            r.item != Item::Tree(want.clone())
        });
        if let Some((n, r)) = unexpected {
            panic!("watcher {i}'s message {n} was {}", r.item.show());
        }
    }

    tokio::time::timeout(CALL_LIMIT, namerd.shutdown())
        .await
        .expect("namerd shuts down");
}

/// namerd on the cluster, polling it every second, with the dtab API and
/// the mesh API on ports the OS picks.
async fn start_namerd(cluster: &PgCluster) -> TestNamerd {
    let opts = cluster.connect_options();
    let url = format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("postgres")
    );
    let storage = StorageConfig::Postgres {
        url,
        poll_interval: Duration::from_secs(1),
    };
    testing::start(storage).await
}

/// Opens the watchers, checks that each gets `first`, and records what
/// each receives from then on.
async fn open_watchers(namerd: &TestNamerd, first: &pb::BoundTreeRsp) -> Vec<watch::Receiver<Log>> {
    let mesh = namerd.mesh_addr().expect("the mesh API is configured");
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        channels.push(connect(mesh).await.expect("connect to the mesh API"));
    }
    let mut logs = Vec::with_capacity(WATCHERS);
    for i in 0..WATCHERS {
        let mut stream = watch_tree(&channels[i % CONNECTIONS])
            .await
            .expect("StreamBoundTree opens");
        let tree = next(&mut stream)
            .await
            .expect("a tree")
            .expect("an open stream");
        assert_eq!(tree, *first, "watcher {i} began with {}", show(&tree));
        let (log, rx) = watch::channel(vec![Received {
            at: Instant::now(),
            item: Item::Tree(tree),
        }]);
        tokio::spawn(record(stream, log));
        logs.push(rx);
    }
    logs
}

/// Everything one watcher received, in order.
type Log = Vec<Received>;

#[derive(Debug)]
struct Received {
    at: Instant,
    item: Item,
}

#[derive(Debug, PartialEq)]
enum Item {
    Tree(pb::BoundTreeRsp),
    /// The stream ended: `None` cleanly, else with this status.
    Ended(Option<(tonic::Code, String)>),
}

impl Item {
    fn show(&self) -> String {
        match self {
            Item::Tree(tree) => format!("the tree {}", show(tree)),
            Item::Ended(None) => "the end of the stream".to_string(),
            Item::Ended(Some((code, message))) => format!("the error {code:?} {message:?}"),
        }
    }
}

/// Appends every message of `stream` to `log`, and how it ended.
async fn record(mut stream: Streaming<pb::BoundTreeRsp>, log: watch::Sender<Log>) {
    loop {
        let item = match stream.message().await {
            Ok(Some(tree)) => Item::Tree(tree),
            Ok(None) => Item::Ended(None),
            Err(status) => Item::Ended(Some((status.code(), status.message().to_string()))),
        };
        let ended = matches!(item, Item::Ended(_));
        let at = Instant::now();
        log.send_modify(|log| log.push(Received { at, item }));
        if ended {
            return;
        }
    }
}

/// While storage is down, reads of the dtab answer the last good value
/// marked stale, and the admin page says the store is stale.
async fn stale_reads_answer_from_the_last_good_value(api: &NamerdHttp, admin: &NamerdHttp) {
    let read = api.get("/api/1/dtabs/internal").await;
    assert_eq!(
        (read.status, read.stale),
        (StatusCode::OK, true),
        "{read:?}"
    );
    assert!(read.body.contains(&inet_id(OLD)), "{read:?}");
    let store = admin.get("/admin/store.json").await;
    let store: serde_json::Value = serde_json::from_str(&store.body)
        .unwrap_or_else(|e| panic!("/admin/store.json: {e}: {store:?}"));
    assert_eq!(
        (&store["open"], &store["stale"]),
        (&serde_json::json!(true), &serde_json::json!(true)),
        "{store}"
    );
}

/// Retries the compare-and-set write of the new dtab until it is taken
/// (each attempt bounded by the client); returns when its `204` arrived and
/// how many attempts it took. Only "unavailable" is retried: any other
/// answer means the write's outcome is not what the scenario expects.
async fn write_after_recovery(api: &NamerdHttp, version: &str) -> (Instant, u32) {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let rsp = api.update("internal", &svc_dtab(NEW), version).await;
        match rsp.status {
            StatusCode::NO_CONTENT => return (Instant::now(), attempts),
            StatusCode::SERVICE_UNAVAILABLE => assert!(
                Instant::now() < deadline,
                "no write succeeded within {RECOVERY_LIMIT:?} of PostgreSQL's restart: {rsp:?}"
            ),
            _ => panic!("attempt {attempts} at the write after recovery: {rsp:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
