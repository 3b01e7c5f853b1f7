//! Connections to endpoints: a pool of reused HTTP/1.1 connections per
//! endpoint ([`h1`]), or one multiplexed HTTP/2 connection per endpoint
//! ([`h2`]).
//!
//! An [`EndpointClient`] is the tower service the balancer chooses among:
//! it sends a request to one address and classifies connection failures
//! (never delivered, safe to retry) apart from failures after delivery.
//! (An endpoint itself, the address and what discovery says of it, is the
//! naming core's `l5d_dtab::Endpoint`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;

use crate::config::{ClientConfig, Protocol};
use crate::error::ProxyError;
use crate::metrics::EndpointMetrics;

mod h1;
mod h2;
mod tcp;

pub use h1::{H1Pool, PooledBody};
pub use h2::H2Connection;
pub(crate) use h2::{CONNECTION_WINDOW, STREAM_WINDOW};

/// Makes endpoint clients for one router.
#[derive(Clone, Debug)]
pub struct Connector {
    kind: ConnectorKind,
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

impl Connector {
    pub fn new(protocol: Protocol, config: &ClientConfig) -> Self {
        let kind = match protocol {
            Protocol::Http => ConnectorKind::Http1 {
                connect_timeout: config.connect_timeout,
                idle_timeout: config.pool_idle_timeout,
                max_idle: config.pool_max_idle,
            },
            Protocol::H2 => ConnectorKind::H2 {
                connect_timeout: config.connect_timeout,
            },
        };
        Connector { kind }
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
                )),
                host: HeaderValue::from_str(&addr.to_string())
                    .expect("a socket address is a valid header value"),
            },
            ConnectorKind::H2 { connect_timeout } => {
                Target::H2(Arc::new(H2Connection::new(addr, *connect_timeout)))
            }
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
}

impl tower::Service<Request<Incoming>> for EndpointClient {
    type Response = Response<PooledBody>;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<Response<PooledBody>, ProxyError>>;

    /// Always ready: the pool (or the HTTP/2 connection) queues requests
    /// while it connects, and a connection failure fails the request.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
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

fn record(
    metrics: &EndpointMetrics,
    result: &Result<Response<PooledBody>, ProxyError>,
    start: Instant,
) {
    let success = matches!(result, Ok(rsp) if !rsp.status().is_server_error());
    metrics.response(success, start.elapsed());
}
