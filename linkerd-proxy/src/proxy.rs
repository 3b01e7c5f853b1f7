//! Starting and stopping a whole proxy: an interpreter and a router per
//! configured router, its servers, the admin server, and the background
//! upkeep (metrics histograms, idle routes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use l5d_runtime::config::{ConfigError, ServerSettings};
use l5d_runtime::listen::Listener;
use l5d_runtime::serve::{self, HttpLimits};
use l5d_runtime::tls::{ALPN_H2, ALPN_HTTP, ClientTls, ServerTls};
use l5d_trace::Tracer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminState};
use crate::client::Clients;
use crate::config::{InterpreterConfig, ProxyConfig, RouterConfig, TransformerConfig};
use crate::interpreter::Interpreter;
use crate::interpreter::fixed::FixedInterpreter;
use crate::interpreter::localnode::{LocalFilter, LocalNode};
use crate::interpreter::mesh::{Dst, MeshInterpreter, MeshOptions};
use crate::metrics::Metrics;
use crate::recent::RecentRequests;
use crate::router::Router;
use crate::router::handle::RouterHandle;
use crate::server::Server;

/// How often a `/$/inet` name is looked up again by the default
/// interpreter.
const DNS_REFRESH: Duration = Duration::from_secs(5);

/// How long a stopping proxy waits to send the spans it still holds.
const TRACE_FLUSH: Duration = Duration::from_secs(2);

/// A filtered address set nobody asked for this long is dropped.
const LOCAL_NODE_IDLE_TTL: Duration = Duration::from_secs(600);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: String,
        source: std::io::Error,
    },
    #[error("{field}: {message}")]
    Config { field: String, message: String },
}

impl From<ConfigError> for StartError {
    /// A file named by the configuration (a certificate, a key) that cannot
    /// be used is a configuration error: exit 64, naming the field.
    fn from(e: ConfigError) -> Self {
        StartError::Config {
            field: e.field,
            message: e.message,
        }
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    admin_addr: SocketAddr,
    servers: BTreeMap<String, Vec<SocketAddr>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    routers: Arc<Vec<RouterHandle>>,
    /// `io.l5d.opentelemetry`, flushed at shutdown.
    tracer: Option<Tracer>,
}

impl Proxy {
    /// Binds every listener (so a port conflict fails here, naming it),
    /// then serves in the background, with a metrics registry of its own.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, StartError> {
        Self::start_with(config, Metrics::new()).await
    }

    /// [`Proxy::start`] recording into `metrics` (the binary's, installed
    /// as the process-wide recorder so that the listeners' and TLS
    /// metrics of `l5d-runtime` are on the same page).
    pub async fn start_with(config: ProxyConfig, metrics: Metrics) -> Result<Proxy, StartError> {
        let (shutdown, stop) = watch::channel(false);
        let mut handles = Vec::new();
        let mut pending_servers = Vec::new();
        let mut servers = BTreeMap::new();
        let recent = config
            .recent_requests
            .map(|c| Arc::new(RecentRequests::new(c)));
        let tracer = match &config.tracing {
            None => None,
            Some(c) => Some(Tracer::start(c).map_err(|message| StartError::Config {
                field: "telemetry".into(),
                message,
            })?),
        };
        for (r, rc) in config.routers.iter().enumerate() {
            let (interpreter, mesh) = build_interpreter(rc, r)?;
            let clients = Clients::new(&rc.label, rc.protocol, rc.client.clone(), &metrics)?;
            let router = Arc::new(
                Router::new(rc, interpreter, clients, &metrics)
                    .with_recent(recent.clone())
                    .with_tracer(tracer.clone()),
            );
            for (s, sc) in rc.servers.iter().enumerate() {
                let field = format!("routers[{r}].servers[{s}]");
                let tls = load_tls(&sc.settings, Server::alpn(rc.protocol), &field)?;
                let tcp = bind(sc.addr(), &field).await?;
                let addr = local_addr(&tcp, sc.addr(), &field)?;
                let name = format!("{}/{addr}", rc.label);
                let listener = Listener::from_tcp(tcp, &name, tls, sc.settings.listener_limits())
                    .map_err(|source| StartError::Bind {
                    addr,
                    what: field.clone(),
                    source,
                })?;
                servers
                    .entry(rc.label.clone())
                    .or_insert_with(Vec::new)
                    .push(addr);
                let server = Server {
                    router: router.clone(),
                    config: sc.clone(),
                    protocol: rc.protocol,
                    max_head_bytes: rc.max_head_bytes,
                };
                pending_servers.push((server, listener));
            }
            handles.push(RouterHandle { router, mesh });
        }
        let admin_settings = &config.admin.server;
        let admin_tls = load_tls(admin_settings, ALPN_HTTP, "admin")?;
        let admin_tcp = bind(config.admin.addr(), "admin").await?;
        let admin_addr = local_addr(&admin_tcp, config.admin.addr(), "admin")?;
        let admin_listener = Listener::from_tcp(
            admin_tcp,
            "admin",
            admin_tls,
            admin_settings.listener_limits(),
        )
        .map_err(|source| StartError::Bind {
            addr: admin_addr,
            what: "admin".into(),
            source,
        })?;
        let admin_limits = admin_settings.http_limits(HttpLimits::default());
        let routers = Arc::new(handles);

        let mut tasks = Vec::new();
        for (server, listener) in pending_servers {
            tasks.push(tokio::spawn(server.serve(listener, stop.clone())));
        }
        let app = admin::routes(AdminState {
            routers: routers.clone(),
            metrics: metrics.clone(),
            recent,
        });
        tasks.push(tokio::spawn(serve::serve(
            admin_listener,
            app,
            admin_limits,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(upkeep(routers.clone(), metrics, stop)));
        Ok(Proxy {
            admin_addr,
            servers,
            shutdown,
            tasks,
            routers,
            tracer,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The bound addresses of a router's servers, by router label.
    pub fn server_addrs(&self, label: &str) -> &[SocketAddr] {
        self.servers.get(label).map_or(&[], Vec::as_slice)
    }

    pub fn servers(&self) -> &BTreeMap<String, Vec<SocketAddr>> {
        &self.servers
    }

    pub fn routers(&self) -> &[RouterHandle] {
        &self.routers
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`),
    /// then stops.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(?grace, "connections still open after the grace period");
        }
        if let Some(tracer) = &self.tracer {
            tracer.shutdown(TRACE_FLUSH).await;
        }
    }
}

/// The server TLS of `settings`, offering `alpn`; an unusable file is a
/// configuration error naming `{field}.tls...`.
fn load_tls(
    settings: &ServerSettings,
    alpn: &[&[u8]],
    field: &str,
) -> Result<Option<ServerTls>, StartError> {
    match &settings.tls {
        None => Ok(None),
        Some(tls) => Ok(Some(ServerTls::load(tls, alpn, &format!("{field}.tls"))?)),
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr,
            what: what.to_string(),
            source,
        })
}

fn local_addr(tcp: &TcpListener, addr: SocketAddr, what: &str) -> Result<SocketAddr, StartError> {
    tcp.local_addr().map_err(|source| StartError::Bind {
        addr,
        what: what.to_string(),
        source,
    })
}

/// A router's interpreter, and the mesh client inside it if any.
type BuiltInterpreter = (Arc<dyn Interpreter>, Option<Arc<MeshInterpreter>>);

fn build_interpreter(rc: &RouterConfig, r: usize) -> Result<BuiltInterpreter, StartError> {
    let (mut interpreter, mesh): (Arc<dyn Interpreter>, _) = match &rc.interpreter {
        InterpreterConfig::Default { .. } => (
            FixedInterpreter::new(rc.dtab.clone(), DNS_REFRESH) as Arc<dyn Interpreter>,
            None,
        ),
        InterpreterConfig::Mesh {
            dst,
            root,
            retry_base,
            retry_max,
            tls,
            ..
        } => {
            let dst = Dst::parse(dst).map_err(|message| StartError::Config {
                field: format!("routers[{r}].interpreter.dst"),
                message,
            })?;
            let mut opts = MeshOptions::new(dst);
            opts.root = root.clone();
            opts.retry_base = *retry_base;
            opts.retry_max = *retry_max;
            let field = format!("routers[{r}].interpreter.tls");
            opts.tls = match tls {
                None => None,
                Some(tls) => Some(ClientTls::load(tls, ALPN_H2, &field)?),
            };
            let mesh = MeshInterpreter::new(opts);
            (mesh.clone() as Arc<dyn Interpreter>, Some(mesh))
        }
    };
    for (t, transformer) in rc.interpreter.transformers().iter().enumerate() {
        match transformer {
            TransformerConfig::LocalNode { host_network } => {
                let filter =
                    LocalFilter::from_env(*host_network).map_err(|e| StartError::Config {
                        field: format!("routers[{r}].interpreter.transformers[{t}]"),
                        message: e.to_string(),
                    })?;
                interpreter = LocalNode::new(interpreter, filter, LOCAL_NODE_IDLE_TTL);
            }
        }
    }
    Ok((interpreter, mesh))
}

/// Drains histogram samples, sweeps idle routes and drops idle metric
/// series until shutdown.
async fn upkeep(
    routers: Arc<Vec<RouterHandle>>,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut sweeps = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        metrics.upkeep();
        sweeps = sweeps.wrapping_add(1);
        if sweeps.is_multiple_of(12) {
            for handle in routers.iter() {
                handle.router.sweep();
            }
            metrics.expire_idle();
        }
    }
}
