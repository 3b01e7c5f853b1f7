//! Starting and stopping namerd: bind the listeners, open the store, serve
//! the admin and dtab APIs, and drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use l5d_runtime::Backoff;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin;
use crate::api::{self, ApiState};
use crate::config::{MeshConfig, NamerdConfig, StorageConfig};
use crate::interpreter::{Interpreter, InterpreterOptions};
use crate::mesh;
use crate::namer::Namer;
use crate::namer::inet::InetResolver;
use crate::store::k8s::K8sStore;
use crate::store::memory::MemoryStore;
use crate::store::sql::{SqlOptions, SqlStore};
use crate::store::{DtabStore, StoreError};

/// A running namerd.
pub struct Namerd {
    admin_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    mesh_addr: Option<SocketAddr>,
    store: watch::Receiver<Option<Arc<dyn DtabStore>>>,
    interpreter: watch::Receiver<Option<Arc<Interpreter>>>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Namerd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namerd")
            .field("admin_addr", &self.admin_addr)
            .field("http_addr", &self.http_addr)
            .field("mesh_addr", &self.mesh_addr)
            .finish_non_exhaustive()
    }
}

impl Namerd {
    /// Binds every listener (so a port conflict fails at once), opens the
    /// store, and serves. An embedded store (memory, SQLite) must open now;
    /// PostgreSQL and Kubernetes are retried in the background, with `/admin/ready`
    /// answering 503 until it is open.
    pub async fn start(config: NamerdConfig) -> anyhow::Result<Namerd> {
        let admin_listener = bind(config.admin.addr(), "admin").await?;
        let http = match config.http_controller() {
            Some(c) => Some((
                bind(c.addr(), "io.l5d.httpController").await?,
                c.max_body_bytes,
            )),
            None => None,
        };
        let mesh = match config.mesh() {
            Some(c) => Some((bind(c.addr(), "io.l5d.mesh").await?, c.clone())),
            None => None,
        };
        let admin_addr = admin_listener.local_addr()?;
        let http_addr = http.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        let mesh_addr = mesh.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        // Linkerd tries the namer configured last first.
        let mut namers = Vec::with_capacity(config.namers.len());
        for namer in &config.namers {
            let built: Arc<dyn Namer> = namer
                .build()
                .await
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
            namers.push(built);
        }
        namers.reverse();
        let inet = Arc::new(InetResolver::new());
        let opts = InterpreterOptions {
            max_bindings: config.interpreter.max_bindings,
            idle_ttl: Duration::from_secs(config.interpreter.idle_ttl_secs),
        };

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (store_tx, store) = watch::channel(None);
        let (interpreter_tx, interpreter) = watch::channel(None);
        let mut tasks = JoinSet::new();
        tasks.spawn(serve(
            admin_listener,
            admin::router(store.clone(), interpreter.clone()),
            shutdown_rx.clone(),
        ));

        let opened = match &config.storage {
            StorageConfig::Postgres { .. } | StorageConfig::Kubernetes(_) => None,
            embedded => Some(
                open_store(embedded)
                    .await
                    .context("cannot open the dtab store")?,
            ),
        };
        let storage = config.storage.clone();
        let mut stop = shutdown_rx.clone();
        tasks.spawn(async move {
            let store = match opened {
                Some(store) => store,
                None => match open_with_retry(&storage, &mut stop).await {
                    Some(store) => store,
                    None => return,
                },
            };
            store_tx.send_replace(Some(store.clone()));
            let interpreter = Interpreter::new(store.clone(), namers, inet, opts);
            interpreter_tx.send_replace(Some(interpreter.clone()));
            let mut servers = JoinSet::new();
            if let Some((listener, max_body_bytes)) = http {
                let state = ApiState {
                    store,
                    interpreter: interpreter.clone(),
                    max_body_bytes,
                    shutdown: stop.clone(),
                };
                servers.spawn(serve(listener, api::router(state), stop.clone()));
            }
            if let Some((listener, config)) = mesh {
                servers.spawn(serve_mesh(listener, interpreter, config, stop));
            }
            while servers.join_next().await.is_some() {}
        });
        Ok(Namerd {
            admin_addr,
            http_addr,
            mesh_addr,
            store,
            interpreter,
            shutdown,
            tasks,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The dtab API's address, if `io.l5d.httpController` is configured.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The gRPC API's address, if `io.l5d.mesh` is configured.
    pub fn mesh_addr(&self) -> Option<SocketAddr> {
        self.mesh_addr
    }

    /// The interpreter, once the store is open.
    pub fn interpreter(&self) -> Option<Arc<Interpreter>> {
        self.interpreter.borrow().clone()
    }

    /// Waits until the store is open (at once for embedded stores).
    pub async fn ready(&self) -> Arc<dyn DtabStore> {
        let mut store = self.store.clone();
        let open = store
            .wait_for(Option::is_some)
            .await
            .expect("namerd keeps its store slot");
        open.clone().expect("checked by wait_for")
    }

    /// Stops accepting, ends watch streams, and waits for the servers.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

async fn serve(listener: TcpListener, router: axum::Router, mut shutdown: watch::Receiver<bool>) {
    let addr = listener.local_addr().ok();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(?addr, error = %e, "server failed");
    }
}

async fn serve_mesh(
    listener: TcpListener,
    interpreter: Arc<Interpreter>,
    config: MeshConfig,
    stop: watch::Receiver<bool>,
) {
    let opts = mesh::MeshOptions {
        keep_alive_interval: Duration::from_millis(config.keep_alive_interval_ms),
        keep_alive_timeout: Duration::from_millis(config.keep_alive_timeout_ms),
        max_concurrent_streams: config.max_concurrent_streams,
        ..mesh::MeshOptions::default()
    };
    if let Err(e) = mesh::serve(listener, interpreter, stop, opts).await {
        tracing::error!(error = %e, "the io.l5d.mesh server failed");
    }
}

/// Opens the configured store once.
pub async fn open_store(storage: &StorageConfig) -> Result<Arc<dyn DtabStore>, StoreError> {
    Ok(match storage {
        StorageConfig::InMemory { namespaces } => Arc::new(MemoryStore::new(namespaces.clone())),
        StorageConfig::Sqlite {
            path,
            poll_interval,
        } => Arc::new(
            SqlStore::open_sqlite(
                path,
                SqlOptions {
                    poll_interval: *poll_interval,
                    ..SqlOptions::default()
                },
            )
            .await?,
        ),
        StorageConfig::Kubernetes(opts) => Arc::new(K8sStore::open(opts.clone()).await?),
        StorageConfig::Postgres { url, poll_interval } => Arc::new(
            SqlStore::open_postgres(
                url,
                SqlOptions {
                    poll_interval: *poll_interval,
                    ..SqlOptions::default()
                },
            )
            .await?,
        ),
    })
}

/// Opens the store, retrying with capped backoff until it opens or namerd
/// shuts down.
async fn open_with_retry(
    storage: &StorageConfig,
    stop: &mut watch::Receiver<bool>,
) -> Option<Arc<dyn DtabStore>> {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    loop {
        match open_store(storage).await {
            Ok(store) => {
                tracing::info!("dtab store is open");
                return Some(store);
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "cannot open the dtab store");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|stop| *stop) => return None,
                }
            }
        }
    }
}
