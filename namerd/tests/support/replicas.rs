//! Two namerd replicas on one storage. On PostgreSQL a write through one
//! must reach the other's watchers through NOTIFY and, when the other's
//! listener session is killed, through the re-read that follows its
//! reconnect; those stores poll every 10 minutes, so polling cannot be what
//! delivers anything. On SQLite (two processes sharing a file) polling is
//! the only way, and their writers race for the file's lock. Depends on
//! namerd's public API and sqlx.

use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::Dtab;
use namerd::store::sql::{SqlOptions, SqlStore};
use namerd::store::{DtabStore, Namespace, StoreError, Version, VersionedDtab, WriteMeta};
use sqlx::Executor as _;

use crate::backends::TestSchema;
use crate::wait::{wait_for, wait_until};

const SECOND: Duration = Duration::from_secs(1);

/// Two replicas, `a` and `b`; `b`'s listener is `<b_app>-listener`.
struct Replicas {
    a: SqlStore,
    b: SqlStore,
    b_app: String,
    /// A namespace no other test uses: notifications are database-wide and
    /// tests in other schemas must not wake `b` for it.
    ns: Namespace,
}

async fn replicas(schema: &TestSchema) -> Replicas {
    let opts = SqlOptions {
        poll_interval: Duration::from_secs(600),
        ..SqlOptions::default()
    };
    let open = |app: &str| {
        let connect = schema.connect.clone().application_name(app);
        SqlStore::open_postgres_with(connect, opts.clone())
    };
    let a = open(&format!("{}-a", schema.name))
        .await
        .expect("open replica a");
    let b_app = format!("{}-b", schema.name);
    let b = open(&b_app).await.expect("open replica b");
    // Ready means subscribed and re-read after subscribing (the initial
    // load plus one): from here on `b` learns of writes only by NOTIFY.
    wait_until(5 * SECOND, "listener subscription", || {
        let stats = b.stats();
        stats.listener_connects >= 1 && stats.resyncs >= 2
    })
    .await;
    let ns = Namespace::new(&schema.name).expect("namespace");
    Replicas { a, b, b_app, ns }
}

/// Terminates a replica's listening session, as an operator or a failover
/// would.
async fn kill_listener(schema: &TestSchema, app: &str) {
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(format!("{app}-listener"))
    .fetch_one(&schema.pool)
    .await
    .expect("pg_terminate_backend");
    assert_eq!(killed, 1, "exactly one listener session to kill");
}

fn at(version: &Version) -> impl Fn(&Option<VersionedDtab>) -> bool + '_ {
    move |value| value.as_ref().map(|d| &d.version) == Some(version)
}

pub(crate) async fn notify_then_listener_loss(schema: TestSchema) {
    let r = replicas(&schema).await;
    let meta = WriteMeta::default();
    let mut rx = r.b.watch(&r.ns);

    let v1 =
        r.a.create(&r.ns, &Dtab::read("/a=>/one").unwrap(), &meta)
            .await
            .unwrap();
    wait_for(&mut rx, SECOND, "a's create on b (NOTIFY)", at(&v1)).await;

    // A change whose notification is lost, as happens while a listener is
    // disconnected: committed by hand, without NOTIFY.
    let silent = format!(
        "UPDATE dtabs SET dtab = '/a=>/silent', version = 2 WHERE namespace = '{ns}'; \
         INSERT INTO dtab_history (namespace, version, op, dtab, committed_at) \
         VALUES ('{ns}', 2, 'update', '/a=>/silent', 0)",
        ns = r.ns
    );
    schema
        .pool
        .execute(sqlx::AssertSqlSafe(silent))
        .await
        .expect("silent write");
    assert_eq!(
        version_of(&rx.borrow()),
        Some(v1),
        "nothing should have told b yet"
    );

    let connects = r.b.stats().listener_connects;
    kill_listener(&schema, &r.b_app).await;
    let v2 = Version::from_counter(2);
    let seen = wait_for(&mut rx, SECOND, "the silent write on b (re-read)", at(&v2)).await;
    assert_eq!(seen.unwrap().dtab, Dtab::read("/a=>/silent").unwrap());
    assert!(
        r.b.stats().listener_connects > connects,
        "b's listener reconnected"
    );

    // The new session receives notifications again.
    let v3 =
        r.a.update(&r.ns, &Dtab::read("/a=>/three").unwrap(), &v2, &meta)
            .await
            .unwrap();
    wait_for(&mut rx, SECOND, "a's update on b after reconnect", at(&v3)).await;
    assert!(!r.b.health().stale, "{:?}", r.b.health());
}

pub(crate) async fn listener_loss_during_updates(schema: TestSchema) {
    let r = replicas(&schema).await;
    let meta = WriteMeta::default();
    let mut rx_b = r.b.watch(&r.ns);
    let mut rx_a = r.a.watch(&r.ns);
    let mut version =
        r.a.create(&r.ns, &Dtab::read("/u=>/0").unwrap(), &meta)
            .await
            .unwrap();

    let writer = {
        let (a, ns) = (r.a, r.ns.clone());
        tokio::spawn(async move {
            for i in 1..=50 {
                let text = format!("/u=>/{i}");
                version = a
                    .update(&ns, &Dtab::read(&text).unwrap(), &version, &meta)
                    .await
                    .unwrap();
            }
            (a, version)
        })
    };
    let tenth = Version::from_counter(10);
    wait_for(&mut rx_a, 5 * SECOND, "the tenth update", at(&tenth)).await;
    kill_listener(&schema, &r.b_app).await;
    let (_a, last) = writer.await.expect("writer");
    assert_eq!(last, Version::from_counter(51));

    let seen = wait_for(&mut rx_b, 2 * SECOND, "the last update on b", at(&last)).await;
    assert_eq!(seen.unwrap().dtab, Dtab::read("/u=>/50").unwrap());
    let versions: Vec<Option<u64>> =
        r.b.history(&r.ns)
            .await
            .unwrap()
            .iter()
            .map(|e| e.version.counter())
            .collect();
    assert_eq!(
        versions,
        (1..=51).map(Some).collect::<Vec<_>>(),
        "no version lost"
    );
}

pub(crate) async fn sqlite_processes_share_a_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("shared.db");
    let opts = SqlOptions {
        poll_interval: Duration::from_millis(50),
        ..SqlOptions::default()
    };
    let a = Arc::new(SqlStore::open_sqlite(&path, opts.clone()).await.unwrap());
    let b = Arc::new(SqlStore::open_sqlite(&path, opts).await.unwrap());
    let ns = Namespace::new("shared").unwrap();
    let mut rx = b.watch(&ns);
    let v1 = a
        .create(&ns, &Dtab::read("/a=>/one").unwrap(), &WriteMeta::default())
        .await
        .unwrap();
    wait_for(&mut rx, 2 * SECOND, "a's create on b (polling)", at(&v1)).await;

    // Each store queues its own writers; across the two, BEGIN IMMEDIATE
    // and the busy timeout must turn lock contention into waiting.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (ns, v1) = (ns.clone(), v1.clone());
            tokio::spawn(async move {
                let text = format!("/a=>/racer/{i}");
                let dtab = Dtab::read(&text).unwrap();
                store.update(&ns, &dtab, &v1, &WriteMeta::default()).await
            })
        })
        .collect();
    let (mut winners, mut mismatches) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(StoreError::VersionMismatch { .. }) => mismatches += 1,
            Err(e) => panic!("no storage error under contention, got {e:?}"),
        }
    }
    assert_eq!((winners, mismatches), (1, 49));
    let v2 = Version::from_counter(2);
    wait_for(&mut rx, 2 * SECOND, "the winner on b", at(&v2)).await;
}

fn version_of(value: &Option<VersionedDtab>) -> Option<Version> {
    value.as_ref().map(|d| d.version.clone())
}
