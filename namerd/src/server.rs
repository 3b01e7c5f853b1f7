//! Starting and stopping namerd: load TLS, bind the listeners, open the
//! store, serve the admin and dtab APIs, and drain on shutdown.
//!
//! Every listener is `l5d-runtime`'s (caps, TLS, timeouts). Admin runs on
//! a thread of its own with a current-thread runtime, so that
//! `/admin/ping`, readiness and metrics answer while the API runtime is
//! saturated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use l5d_runtime::Backoff;
use l5d_runtime::config::{ConfigError, ServerSettings};
use l5d_runtime::listen::Listener;
use l5d_runtime::serve::{self, HttpLimits};
use l5d_runtime::tls::{ALPN_H2, ALPN_HTTP, ServerTls};
use l5d_trace::Tracer;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::admin;
use crate::api::{self, ApiState};
use crate::auth::Access;
use crate::config::{InterfaceConfig, MeshConfig, NamerdConfig, StorageConfig};
use crate::interpreter::Interpreter;
use crate::mesh;
use crate::namer::Namer;
use crate::namer::inet::InetResolver;
use crate::store::k8s::{K8sOptions, K8sStore};
use crate::store::memory::MemoryStore;
use crate::store::sql::{SqlOptions, SqlStore};
use crate::store::{DtabStore, Retention, StoreError};

/// A running namerd.
pub struct Namerd {
    admin_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    mesh_addr: Option<SocketAddr>,
    store: watch::Receiver<Option<Arc<dyn DtabStore>>>,
    interpreter: watch::Receiver<Option<Arc<Interpreter>>>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Resolves when the admin thread has stopped.
    admin_done: oneshot::Receiver<()>,
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
        // Certificates and the token file first, before any listener binds:
        // one that cannot be used is a configuration error (the binary exits
        // 64 on a `ConfigError`), not a server that refuses everyone.
        let admin_tls = load_tls(&config.admin.server, ALPN_HTTP, "admin.tls")?;
        // Binds and store writes reach the tracer through the process's
        // global (as they reach the metrics recorder): the first namerd
        // started in a process with `io.l5d.opentelemetry` sets it.
        if let Some(tracing) = &config.tracing {
            let tracer =
                Tracer::start(tracing).map_err(|message| ConfigError::new("telemetry", message))?;
            Tracer::set_global(tracer);
        }
        let mut http = None;
        let mut mesh = None;
        for (i, interface) in config.interfaces.iter().enumerate() {
            let field = format!("interfaces[{i}]");
            match interface {
                InterfaceConfig::HttpController(c) => {
                    let tls = load_tls(&c.server, ALPN_HTTP, &format!("{field}.tls"))?;
                    let access = Access::new(
                        c.auth.as_ref(),
                        c.allow_unauthenticated_writes,
                        &format!("{field}.auth"),
                    )?;
                    http = Some((c, tls, Arc::new(access)));
                }
                InterfaceConfig::Mesh(c) => {
                    mesh = Some((c, load_tls(&c.server, ALPN_H2, &format!("{field}.tls"))?));
                }
            }
        }
        let admin_listener = std::net::TcpListener::bind(config.admin.addr())
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .with_context(|| format!("cannot listen for admin on {}", config.admin.addr()))?;
        let http = match http {
            Some((c, tls, access)) => Some((
                bind(c.addr(), HTTP_CONTROLLER, tls, &c.server).await?,
                c.clone(),
                access,
            )),
            None => None,
        };
        let mesh = match mesh {
            Some((c, tls)) => Some((bind(c.addr(), MESH, tls, &c.server).await?, c.clone())),
            None => None,
        };
        let admin_addr = admin_listener.local_addr()?;
        let http_addr = http.as_ref().map(|(l, ..)| l.local_addr());
        let mesh_addr = mesh.as_ref().map(|(l, _)| l.local_addr());
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
        let opts = config.interpreter.options();

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (store_tx, store) = watch::channel(None);
        let (interpreter_tx, interpreter) = watch::channel(None);
        let (api_tx, api_slot) = watch::channel(None);
        let mut tasks = JoinSet::new();
        let admin_done = spawn_admin(
            admin_listener,
            admin_tls,
            config.admin.server.clone(),
            admin::router(store.clone(), interpreter.clone(), api_slot),
            shutdown_rx.clone(),
        )?;

        let opened = match &config.storage {
            StorageConfig::Postgres { .. } | StorageConfig::Kubernetes(_) => None,
            embedded => Some(
                open_store(embedded, config.history)
                    .await
                    .context("cannot open the dtab store")?,
            ),
        };
        let storage = config.storage.clone();
        let history = config.history;
        let mut stop = shutdown_rx.clone();
        tasks.spawn(async move {
            let store = match opened {
                Some(store) => store,
                None => match open_with_retry(&storage, history, &mut stop).await {
                    Some(store) => store,
                    None => return,
                },
            };
            store_tx.send_replace(Some(store.clone()));
            let interpreter = Interpreter::new(store.clone(), namers, inet, opts);
            interpreter_tx.send_replace(Some(interpreter.clone()));
            let mut servers = JoinSet::new();
            if let Some((listener, config, access)) = http {
                let state = ApiState {
                    store,
                    interpreter: interpreter.clone(),
                    max_body_bytes: config.max_body_bytes,
                    shutdown: stop.clone(),
                    access,
                };
                let limits = config.server.http_limits(HttpLimits::default());
                // The admin dashboard's editor writes through the same routes
                // and authorisation.
                api_tx.send_replace(Some(api::router(state.clone())));
                servers.spawn(serve::serve(
                    listener,
                    api::router(state),
                    limits,
                    stop.clone(),
                ));
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
            admin_done,
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
        let _ = self.admin_done.await;
        if let Some(tracer) = Tracer::global() {
            tracer.shutdown(TRACE_FLUSH).await;
        }
    }
}

/// How long a stopping namerd waits to send the spans it still holds.
const TRACE_FLUSH: Duration = Duration::from_secs(2);

/// The names of the listeners, in metrics and logs.
const HTTP_CONTROLLER: &str = "io.l5d.httpController";
const MESH: &str = "io.l5d.mesh";

/// The server TLS of `settings`, offering `alpn`, or a configuration error
/// naming the field under `field`.
fn load_tls(
    settings: &ServerSettings,
    alpn: &[&[u8]],
    field: &str,
) -> anyhow::Result<Option<ServerTls>> {
    match &settings.tls {
        None => Ok(None),
        Some(tls) => Ok(Some(ServerTls::load(tls, alpn, field)?)),
    }
}

async fn bind(
    addr: SocketAddr,
    what: &str,
    tls: Option<ServerTls>,
    settings: &ServerSettings,
) -> anyhow::Result<Listener> {
    Listener::bind(addr, what, tls, settings.listener_limits())
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// Serves admin on a thread of its own, with a current-thread runtime,
/// until `shutdown`; the receiver resolves when the thread is done.
fn spawn_admin(
    listener: std::net::TcpListener,
    tls: Option<ServerTls>,
    settings: ServerSettings,
    router: axum::Router,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("namerd-admin")
        .build()
        .context("cannot start the admin runtime")?;
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name("namerd-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .and_then(|l| Listener::from_tcp(l, "admin", tls, settings.listener_limits()));
                match listener {
                    Ok(listener) => {
                        let limits = settings.http_limits(HttpLimits::default());
                        serve::serve(listener, router, limits, shutdown).await;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot serve admin"),
                }
            });
            let _ = done_tx.send(());
        })
        .context("cannot start the admin thread")?;
    Ok(done)
}

async fn serve_mesh(
    listener: Listener,
    interpreter: Arc<Interpreter>,
    config: MeshConfig,
    stop: watch::Receiver<bool>,
) {
    let opts = mesh::MeshOptions {
        keep_alive_interval: Duration::from_millis(config.keep_alive_interval_ms),
        keep_alive_timeout: Duration::from_millis(config.keep_alive_timeout_ms),
        max_concurrent_streams: config.max_concurrent_streams,
        preface_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        ..mesh::MeshOptions::default()
    };
    if let Err(e) = mesh::serve(listener, interpreter, stop, opts).await {
        tracing::error!(error = %e, "the io.l5d.mesh server failed");
    }
}

/// Opens the configured store once, keeping the history `retention` allows.
pub async fn open_store(
    storage: &StorageConfig,
    retention: Retention,
) -> Result<Arc<dyn DtabStore>, StoreError> {
    Ok(match storage {
        StorageConfig::InMemory { namespaces } => {
            Arc::new(MemoryStore::with_retention(namespaces.clone(), retention))
        }
        StorageConfig::Sqlite {
            path,
            poll_interval,
        } => Arc::new(
            SqlStore::open_sqlite(
                path,
                SqlOptions {
                    poll_interval: *poll_interval,
                    retention,
                    ..SqlOptions::default()
                },
            )
            .await?,
        ),
        StorageConfig::Kubernetes(opts) => Arc::new(
            K8sStore::open(K8sOptions {
                retention,
                ..opts.clone()
            })
            .await?,
        ),
        StorageConfig::Postgres { url, poll_interval } => Arc::new(
            SqlStore::open_postgres(
                url,
                SqlOptions {
                    poll_interval: *poll_interval,
                    retention,
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
    retention: Retention,
    stop: &mut watch::Receiver<bool>,
) -> Option<Arc<dyn DtabStore>> {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    loop {
        match open_store(storage, retention).await {
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
