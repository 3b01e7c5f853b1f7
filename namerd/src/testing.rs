//! namerd in-process for tests, this crate's and those of the crates that
//! run against it: a store, the dtab and mesh APIs on ephemeral loopback
//! ports, and PostgreSQL schemas to run it on. Behind the `testing`
//! feature, which only dev-dependencies enable; the binary never has it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use l5d_runtime::config::AdminConfig;
use sqlx::Executor as _;

use crate::config::{
    HttpControllerConfig, InterfaceConfig, InterpreterConfig, MeshConfig, NamerConfig,
    NamerdConfig, StorageConfig, parse_namers,
};
use crate::server::Namerd;
use crate::store::Retention;

/// A namerd for a test; shut it down at the end.
#[derive(Debug)]
pub struct TestNamerd {
    namerd: Namerd,
}

/// Starts namerd with an in-memory store on 127.0.0.1 ports the OS picks.
pub async fn start_in_memory() -> TestNamerd {
    start(StorageConfig::InMemory {
        namespaces: BTreeMap::new(),
    })
    .await
}

/// Starts namerd on SQLite in `dir`.
pub async fn start_sqlite(dir: &Path) -> TestNamerd {
    start(StorageConfig::Sqlite {
        path: dir.join("namerd.db"),
        poll_interval: Duration::from_secs(5),
    })
    .await
}

/// Starts namerd with `storage` on 127.0.0.1 ports the OS picks, and waits
/// until its store is open.
pub async fn start(storage: StorageConfig) -> TestNamerd {
    start_with_namers(storage, Vec::new()).await
}

/// Starts namerd with `storage` and the namers of `namers_yaml` (the
/// `namers:` list of a configuration file, e.g.
/// `[{kind: io.l5d.fs, rootDir: /tmp/disco}]`).
pub async fn start_with_namers_yaml(storage: StorageConfig, namers_yaml: &str) -> TestNamerd {
    let value: serde_json::Value =
        serde_saphyr::from_str(namers_yaml).expect("the namers are valid YAML");
    let namers = parse_namers(value).unwrap_or_else(|e| panic!("namers: {e}"));
    start_with_namers(storage, namers).await
}

/// Starts namerd with `storage` and `namers`.
pub async fn start_with_namers(storage: StorageConfig, namers: Vec<NamerConfig>) -> TestNamerd {
    start_config(loopback_config(storage, namers)).await
}

/// The configuration the `start*` functions run: `storage` and `namers`,
/// admin, the dtab API and the mesh API on 127.0.0.1 ports the OS picks.
/// Change it (TLS, limits) and start it with [`start_config`].
pub fn loopback_config(storage: StorageConfig, namers: Vec<NamerConfig>) -> NamerdConfig {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    NamerdConfig {
        admin: AdminConfig::loopback(0),
        storage,
        history: Retention::default(),
        namers,
        interpreter: InterpreterConfig::default(),
        interfaces: vec![
            InterfaceConfig::HttpController(HttpControllerConfig {
                ip: loopback,
                port: 0,
                ..HttpControllerConfig::default()
            }),
            InterfaceConfig::Mesh(MeshConfig {
                ip: loopback,
                port: 0,
                ..MeshConfig::default()
            }),
        ],
        tracing: None,
    }
}

/// Starts namerd with `config` and waits until its store is open.
pub async fn start_config(config: NamerdConfig) -> TestNamerd {
    let namerd = Namerd::start(config)
        .await
        .expect("namerd starts on loopback");
    tokio::time::timeout(Duration::from_secs(30), namerd.ready())
        .await
        .expect("the store opens within 30 s");
    TestNamerd { namerd }
}

/// The running namerd: its addresses, its store, its shutdown.
impl std::ops::Deref for TestNamerd {
    type Target = Namerd;

    fn deref(&self) -> &Namerd {
        &self.namerd
    }
}

impl TestNamerd {
    /// `http://127.0.0.1:<port>`, the dtab API.
    pub fn base_url(&self) -> String {
        format!(
            "http://{}",
            self.namerd.http_addr().expect("the dtab API is configured")
        )
    }

    /// `https://localhost:<port>`, the dtab API when it serves TLS (the
    /// test PKI's server certificate names `localhost`).
    pub fn https_url(&self) -> String {
        let addr = self.namerd.http_addr().expect("the dtab API is configured");
        format!("https://localhost:{}", addr.port())
    }

    /// `http://127.0.0.1:<port>`, the `io.linkerd.mesh` gRPC API.
    pub fn mesh_url(&self) -> String {
        format!(
            "http://{}",
            self.namerd.mesh_addr().expect("the mesh API is configured")
        )
    }

    /// `http://127.0.0.1:<port>`, the admin server.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.namerd.admin_addr())
    }

    pub fn namerd(&self) -> &Namerd {
        &self.namerd
    }

    pub async fn shutdown(self) {
        self.namerd.shutdown().await;
    }
}

/// A PostgreSQL schema of its own for one test, so tests run in parallel.
#[derive(Debug)]
pub struct PgSchema {
    pool: sqlx::PgPool,
    name: String,
    url: String,
}

/// The server at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl PgSchema {
    /// Creates a fresh schema. When PostgreSQL is unreachable: panics under
    /// `CI=true`, else says `SKIPPED` on stderr and returns `None`.
    pub async fn create(label: &str) -> Option<PgSchema> {
        let base = database_url();
        let pool = match sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&base)
            .await
        {
            Ok(pool) => pool,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("PostgreSQL unreachable at {base}: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL unreachable at {base}: {e}");
                return None;
            }
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("t_{label}_{}_{n}", std::process::id());
        pool.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        )))
        .await
        .expect("create a test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}&application_name={name}");
        Some(PgSchema { pool, name, url })
    }

    /// A pool on the server (not limited to the schema), for assertions.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// A URL whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn storage(&self) -> StorageConfig {
        StorageConfig::Postgres {
            url: self.url.clone(),
            poll_interval: Duration::from_secs(5),
        }
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        let _ = self
            .pool
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.name
            )))
            .await;
    }
}
