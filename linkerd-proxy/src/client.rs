//! Connections to endpoints: a pool of reused HTTP/1.1 connections per
//! endpoint ([`h1`]), or one multiplexed HTTP/2 connection per endpoint
//! ([`h2`]).
//!
//! [`Clients`] holds a router's `client` configurations (by prefix of the
//! bound id, with their TLS) and gives each bound id's balancer its
//! [`Connector`]; pools therefore belong to one id's balancer and one TLS
//! identity. An [`EndpointClient`] is the tower service the balancer
//! chooses among:
//! it sends a request to one address and classifies connection failures
//! (never delivered, safe to retry) apart from failures after delivery.
//! (An endpoint itself, the address and what discovery says of it, is the
//! naming core's `l5d_dtab::Endpoint`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use l5d_dtab::Path;
use l5d_runtime::config::ConfigError;
use l5d_runtime::tls::{ALPN_H2, ClientTls};

use crate::config::{BalancerConfig, ClientConfig, ClientConfigs, Protocol};
use crate::error::ProxyError;
use crate::metrics::{EndpointMetrics, Metrics};
use crate::retry::AttemptBody;

mod h1;
mod h2;
mod transport;

pub use h1::{H1Pool, PooledBody};
pub use h2::H2Connection;
pub(crate) use h2::{CONNECTION_WINDOW, STREAM_WINDOW};
pub use transport::EndpointTls;

/// A request on its way to an endpoint: the body as the server read it,
/// failing if the client stops sending (`l5d-runtime`'s body timeout).
pub type RequestBody = l5d_runtime::serve::TimedBody;

/// ALPN for the clients of an HTTP/1.1 router.
const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];

/// The clients of one router: for each bound id, the settings of the
/// `client` entries that match it, and the TLS of the last of them that
/// has a `tls` block. Cloning shares the loaded TLS configurations.
#[derive(Clone, Debug)]
pub struct Clients {
    protocol: Protocol,
    router: String,
    configs: Arc<ClientConfigs>,
    /// Per entry of `configs`, its TLS, loaded (and followed) once.
    tls: Arc<[Option<ClientTls>]>,
    metrics: Metrics,
}

/// Makes endpoint clients for one bound id.
#[derive(Clone, Debug)]
pub struct Connector {
    kind: ConnectorKind,
    tls: Option<Arc<EndpointTls>>,
}

#[derive(Clone, Debug)]
enum ConnectorKind {
    Http1 {
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
    },
    H2 {
        connect_timeout: Duration,
    },
}

impl Clients {
    /// Reads the TLS files of every entry (ALPN: the router's protocol),
    /// so that an unusable one stops the start naming its field. Must be
    /// called within a tokio runtime (the files are followed).
    pub fn new(
        router: &str,
        protocol: Protocol,
        configs: ClientConfigs,
        metrics: &Metrics,
    ) -> Result<Clients, ConfigError> {
        let alpn = match protocol {
            Protocol::Http => ALPN_HTTP1,
            Protocol::H2 => ALPN_H2,
        };
        let tls = configs
            .entries()
            .iter()
            .map(|entry| match &entry.value.tls {
                None => Ok(None),
                Some(tls) => ClientTls::load(tls, alpn, &format!("{}.tls", entry.field)).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Clients {
            protocol,
            router: router.to_string(),
            configs: Arc::new(configs),
            tls: tls.into(),
            metrics: metrics.clone(),
        })
    }

    /// The balancer's settings (kind, failure accrual), the connector for
    /// the endpoints of `id`, and the rest of its client settings.
    pub fn for_id(&self, id: &Path) -> (BalancerConfig, Connector, ClientConfig) {
        let config = self.configs.resolve(id);
        let tls = self.configs.tls_for(id).and_then(|tls| {
            let loaded = self.tls[tls.index].clone()?;
            Some(Arc::new(EndpointTls::new(
                loaded,
                tls.common_name.as_deref(),
                self.metrics.clone(),
                self.router.clone(),
                id.show(),
            )))
        });
        (
            config.balancer(),
            Connector::new(self.protocol, &config, tls),
            config,
        )
    }
}

impl Connector {
    pub fn new(protocol: Protocol, config: &ClientConfig, tls: Option<Arc<EndpointTls>>) -> Self {
        let kind = match protocol {
            Protocol::Http => ConnectorKind::Http1 {
                connect_timeout: config.connect_timeout,
                idle_timeout: config.pool.idle_timeout,
                max_idle: config.pool.max_idle,
            },
            Protocol::H2 => ConnectorKind::H2 {
                connect_timeout: config.connect_timeout,
            },
        };
        Connector { kind, tls }
    }

    /// The service that sends requests to `addr`.
    pub fn client(&self, addr: SocketAddr, metrics: EndpointMetrics) -> EndpointClient {
        let target = match &self.kind {
            ConnectorKind::Http1 {
                connect_timeout,
                idle_timeout,
                max_idle,
            } => Target::Http1 {
                pool: Arc::new(H1Pool::new(
                    addr,
                    *connect_timeout,
                    *idle_timeout,
                    *max_idle,
                    self.tls.clone(),
                )),
                host: HeaderValue::from_str(&addr.to_string())
                    .expect("a socket address is a valid header value"),
            },
            ConnectorKind::H2 { connect_timeout } => Target::H2(Arc::new(H2Connection::new(
                addr,
                *connect_timeout,
                self.tls.clone(),
            ))),
        };
        EndpointClient {
            addr,
            target,
            metrics,
        }
    }
}

/// The client of one endpoint, as a tower service. Cloning shares the
/// pool or the HTTP/2 connection.
#[derive(Clone, Debug)]
pub struct EndpointClient {
    addr: SocketAddr,
    target: Target,
    metrics: EndpointMetrics,
}

#[derive(Clone, Debug)]
enum Target {
    Http1 {
        pool: Arc<H1Pool>,
        /// `Host` for a request that has none (HTTP/1.0).
        host: HeaderValue,
    },
    H2(Arc<H2Connection>),
}

impl EndpointClient {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> &EndpointMetrics {
        &self.metrics
    }

    /// Sends `req` to the endpoint. The pool (or the HTTP/2 connection)
    /// queues requests while it connects; a connection failure fails the
    /// request and hands it back if it was never written.
    pub fn send(
        &self,
        mut req: Request<AttemptBody>,
    ) -> BoxFuture<'static, Result<Response<PooledBody>, SendFailure>> {
        let metrics = self.metrics.clone();
        metrics.request();
        let start = Instant::now();
        // One boxed future per request, whichever the protocol.
        match &self.target {
            Target::Http1 { pool, host } => {
                // Origin-form on the wire; the `Host` header keeps the
                // logical host (an absolute-form target's authority when
                // the client sent no `Host`).
                let uri = std::mem::take(req.uri_mut());
                if !req.headers().contains_key(http::header::HOST) {
                    let value = uri
                        .authority()
                        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                        .unwrap_or_else(|| host.clone());
                    req.headers_mut().insert(http::header::HOST, value);
                }
                let pq = uri
                    .into_parts()
                    .path_and_query
                    .unwrap_or_else(|| PathAndQuery::from_static("/"));
                *req.uri_mut() = Uri::from(pq);
                let pool = pool.clone();
                Box::pin(async move {
                    let result = pool.send(req).await;
                    record(&metrics, &result, start);
                    result
                })
            }
            Target::H2(conn) => {
                let conn = conn.clone();
                Box::pin(async move {
                    let result = conn.send(req).await.map(|r| r.map(PooledBody::unpooled));
                    record(&metrics, &result, start);
                    result
                })
            }
        }
    }
}

/// A failed attempt: why, and the request when it was never written (so
/// that it may be sent to another endpoint unchanged: a requeue).
#[derive(Debug)]
pub struct SendFailure {
    pub error: ProxyError,
    /// Boxed: a failure is rare, and a request is large to move about.
    pub unsent: Option<Box<Request<AttemptBody>>>,
}

impl SendFailure {
    pub fn unsent(error: ProxyError, req: Request<AttemptBody>) -> Self {
        SendFailure {
            error,
            unsent: Some(Box::new(req)),
        }
    }

    pub fn sent(error: ProxyError) -> Self {
        SendFailure {
            error,
            unsent: None,
        }
    }
}

fn record(
    metrics: &EndpointMetrics,
    result: &Result<Response<PooledBody>, SendFailure>,
    start: Instant,
) {
    let success = matches!(result, Ok(rsp) if !rsp.status().is_server_error());
    metrics.response(success, start.elapsed());
}
