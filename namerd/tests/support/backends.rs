//! The four dtab store backends behind one harness, so that the
//! conformance suite runs the same case against each: memory, SQLite in a
//! temporary file, PostgreSQL in a schema of its own per test (so tests
//! run in parallel on one server), and Kubernetes ConfigMaps on a test API
//! server of its own per test. Depends only on namerd's public API.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use l5d_k8s_api_server::ApiServer;
use namerd::store::k8s::K8sStore;
use namerd::store::memory::MemoryStore;
use namerd::store::sql::{SqlOptions, SqlStore};
use namerd::store::{DtabStore, Retention, Version};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _};
use tempfile::TempDir;
use tokio::sync::OnceCell;

use crate::k8s_api::k8s_options;

/// Where the shared test server is, unless `DATABASE_URL` says otherwise.
pub(crate) const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Memory,
    Sqlite,
    Postgres,
    K8s,
}

/// A store under test and a side door to its storage.
#[derive(Clone)]
pub(crate) struct Harness {
    pub(crate) store: Arc<dyn DtabStore>,
    raw: Raw,
    /// Keeps the SQLite file alive for the test.
    _dir: Option<Arc<TempDir>>,
}

#[derive(Clone)]
enum Raw {
    Memory,
    Sqlite(SqlitePool, std::path::PathBuf),
    Postgres(Box<TestSchema>),
    K8s(Arc<ApiServer>),
}

impl Harness {
    /// Opens a fresh, empty store; `None` if PostgreSQL is unreachable and
    /// the run is not CI (the skip is printed).
    pub(crate) async fn open(kind: Kind) -> Option<Harness> {
        Some(match kind {
            Kind::Memory => Harness {
                store: Arc::new(MemoryStore::new(Default::default())),
                raw: Raw::Memory,
                _dir: None,
            },
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path = dir.path().join("dtabs.db");
                let store = SqlStore::open_sqlite(&path, SqlOptions::default())
                    .await
                    .expect("open SQLite store");
                let raw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
                    .await
                    .expect("raw SQLite connection");
                Harness {
                    store: Arc::new(store),
                    raw: Raw::Sqlite(raw, path),
                    _dir: Some(Arc::new(dir)),
                }
            }
            Kind::K8s => {
                let server = ApiServer::start().await.expect("start the test API server");
                let store = K8sStore::open(k8s_options(&server))
                    .await
                    .expect("open the Kubernetes store");
                Harness {
                    store: Arc::new(store),
                    raw: Raw::K8s(Arc::new(server)),
                    _dir: None,
                }
            }
            Kind::Postgres => {
                let schema = TestSchema::create().await?;
                let store =
                    SqlStore::open_postgres_with(schema.connect.clone(), SqlOptions::default())
                        .await
                        .expect("open PostgreSQL store");
                Harness {
                    store: Arc::new(store),
                    raw: Raw::Postgres(Box::new(schema)),
                    _dir: None,
                }
            }
        })
    }

    pub(crate) fn is_sql(&self) -> bool {
        matches!(self.raw, Raw::Sqlite(..) | Raw::Postgres(_))
    }

    /// A second store keeping the history `retention` allows: over the same
    /// storage for SQL and Kubernetes (another replica), a new one for
    /// memory.
    pub(crate) async fn reopen(&self, retention: Retention) -> Arc<dyn DtabStore> {
        let sql = SqlOptions {
            retention,
            ..SqlOptions::default()
        };
        match &self.raw {
            Raw::Memory => Arc::new(MemoryStore::with_retention(Default::default(), retention)),
            Raw::Sqlite(_, path) => Arc::new(SqlStore::open_sqlite(path, sql).await.unwrap()),
            Raw::Postgres(schema) => Arc::new(
                SqlStore::open_postgres_with(schema.connect.clone(), sql)
                    .await
                    .unwrap(),
            ),
            Raw::K8s(server) => {
                let opts = k8s_options(server);
                Arc::new(
                    K8sStore::open(namerd::store::k8s::K8sOptions { retention, ..opts })
                        .await
                        .unwrap(),
                )
            }
        }
    }

    /// Whether versions are our 8-byte counters from 1 (Kubernetes'
    /// resource versions are the API server's, opaque).
    pub(crate) fn counter_versions(&self) -> bool {
        !matches!(self.raw, Raw::K8s(_))
    }

    /// The test API server behind a Kubernetes store.
    pub(crate) fn k8s_server(&self) -> Option<&ApiServer> {
        match &self.raw {
            Raw::K8s(server) => Some(server),
            _ => None,
        }
    }

    /// Checks that `version` is counter `n` on backends that write counters.
    pub(crate) fn check_counter(&self, version: &Version, n: u64) {
        if self.counter_versions() {
            assert_eq!(*version, Version::from_counter(n));
        }
    }

    /// Whether the history of a namespace outlives its deletion (in
    /// Kubernetes it lives in the ConfigMap and goes with it).
    pub(crate) fn history_survives_delete(&self) -> bool {
        !matches!(self.raw, Raw::K8s(_))
    }

    /// Runs SQL on the store's tables behind its back.
    pub(crate) async fn execute(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Memory | Raw::K8s(_) => panic!("this store has no SQL"),
            Raw::Sqlite(pool, _) => pool.execute(sql).await.map(drop),
            Raw::Postgres(schema) => schema.pool.execute(sql).await.map(drop),
        }
        .expect("raw SQL");
    }

    async fn cleanup(self) {
        if let Raw::Postgres(schema) = self.raw {
            schema.remove().await;
        }
    }
}

/// Runs one conformance case against one backend, cleaning up after it
/// even when it fails.
pub(crate) async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(harness) = Harness::open(kind).await else {
        return;
    };
    let result = AssertUnwindSafe(case(harness.clone())).catch_unwind().await;
    harness.cleanup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A PostgreSQL schema private to one test, reached through `search_path`.
#[derive(Clone, Debug)]
pub(crate) struct TestSchema {
    pub(crate) name: String,
    /// Options that put the schema first on the `search_path`.
    pub(crate) connect: PgConnectOptions,
    /// A small pool on the schema, for SQL behind the store's back.
    pub(crate) pool: PgPool,
}

impl TestSchema {
    /// `None` (after printing why) if the server is unreachable outside CI;
    /// under `CI=true` an unreachable server fails the test.
    pub(crate) async fn create() -> Option<TestSchema> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        let base: PgConnectOptions = url.parse().expect("DATABASE_URL");
        // One probe per test binary: every test skips (or fails) alike,
        // and an unreachable server costs the connect timeout only once.
        static PROBE: OnceCell<Result<(), String>> = OnceCell::const_new();
        let probe = PROBE
            .get_or_init(|| async {
                let connect = PgConnection::connect_with(&base);
                match tokio::time::timeout(Duration::from_secs(5), connect).await {
                    Ok(Ok(conn)) => conn.close().await.map_err(|e| e.to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 5 s".to_string()),
                }
            })
            .await;
        if let Err(e) = probe {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL unreachable at {url} (CI=true): {e}");
            }
            skipped(&format!("PostgreSQL unreachable at {url}: {e}"));
            return None;
        }
        let mut admin = PgConnection::connect_with(&base)
            .await
            .expect("connect to PostgreSQL");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!(
            "l5d_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .expect("create test schema");
        let _ = admin.close().await;
        let connect = base.options([("search_path", name.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect.clone())
            .await
            .expect("connect to test schema");
        Some(TestSchema {
            name,
            connect,
            pool,
        })
    }

    pub(crate) async fn remove(self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = self.pool.execute(AssertSqlSafe(sql)).await {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
        self.pool.close().await;
    }
}

/// Runs `f` with a fresh schema and drops the schema afterwards, even when
/// `f` fails; does nothing if PostgreSQL is unreachable outside CI.
pub(crate) async fn with_schema<F, Fut>(f: F)
where
    F: FnOnce(TestSchema) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let result = AssertUnwindSafe(f(schema.clone())).catch_unwind().await;
    schema.remove().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Prints a skip straight to stderr: the test harness captures `eprintln!`
/// of passing tests, and a skip must not pass unnoticed.
fn skipped(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}
