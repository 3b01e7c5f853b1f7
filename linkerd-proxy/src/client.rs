//! Connections to endpoints: a pool of reused HTTP/1.1 connections per
//! endpoint (hyper-util's pool), or one multiplexed HTTP/2 connection per
//! endpoint ([`h2`]).
//!
//! An [`Endpoint`] is the tower service the balancer chooses among: it
//! sends a request to one address and classifies connection failures
//! (never delivered, safe to retry) apart from failures after delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{ClientConfig, Protocol};
use crate::error::ProxyError;
use crate::metrics::EndpointMetrics;

mod h2;

pub use h2::H2Connection;
pub(crate) use h2::{CONNECTION_WINDOW, STREAM_WINDOW};

/// Makes endpoint services for one router.
#[derive(Clone, Debug)]
pub struct Connector {
    kind: ConnectorKind,
}

#[derive(Clone, Debug)]
enum ConnectorKind {
    // Boxed: hyper-util's client is a few hundred bytes, and every
    // endpoint holds one (sharing the pool inside).
    Http1(Arc<legacy::Client<HttpConnector, Incoming>>),
    H2 { connect_timeout: Duration },
}

impl Connector {
    pub fn new(protocol: Protocol, config: &ClientConfig) -> Self {
        let kind = match protocol {
            Protocol::Http => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(config.connect_timeout));
                connector.set_nodelay(true);
                let client = legacy::Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(config.pool_idle_timeout)
                    .pool_max_idle_per_host(config.pool_max_idle)
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    // Keep the client's `Host`; set one only when missing.
                    .set_host(true)
                    .build(connector);
                ConnectorKind::Http1(Arc::new(client))
            }
            Protocol::H2 => ConnectorKind::H2 {
                connect_timeout: config.connect_timeout,
            },
        };
        Connector { kind }
    }

    /// The service that sends requests to `addr`.
    pub fn endpoint(&self, addr: SocketAddr, metrics: EndpointMetrics) -> Endpoint {
        let target = match &self.kind {
            ConnectorKind::Http1(client) => Target::Http1 {
                client: client.clone(),
                authority: Authority::try_from(addr.to_string())
                    .expect("a socket address is a valid authority"),
            },
            ConnectorKind::H2 { connect_timeout } => {
                Target::H2(Arc::new(H2Connection::new(addr, *connect_timeout)))
            }
        };
        Endpoint {
            addr,
            target,
            metrics,
        }
    }
}

/// One endpoint, as a tower service. Cloning shares the pool or the
/// HTTP/2 connection.
#[derive(Clone, Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    target: Target,
    metrics: EndpointMetrics,
}

#[derive(Clone, Debug)]
enum Target {
    Http1 {
        client: Arc<legacy::Client<HttpConnector, Incoming>>,
        authority: Authority,
    },
    H2(Arc<H2Connection>),
}

impl Endpoint {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> &EndpointMetrics {
        &self.metrics
    }
}

impl tower::Service<Request<Incoming>> for Endpoint {
    type Response = Response<Incoming>;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<Response<Incoming>, ProxyError>>;

    /// Always ready: the pool (or the HTTP/2 connection) queues requests
    /// while it connects, and a connection failure fails the request.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
        let metrics = self.metrics.clone();
        metrics.request();
        let start = Instant::now();
        let addr = self.addr;
        // One boxed future per request, whichever the protocol.
        match &self.target {
            Target::Http1 { client, authority } => {
                // The pool is keyed by the URI's authority: point it at the
                // endpoint; the `Host` header keeps the logical host.
                let mut parts = std::mem::take(req.uri_mut()).into_parts();
                parts.scheme = Some(Scheme::HTTP);
                parts.authority = Some(authority.clone());
                if parts.path_and_query.is_none() {
                    parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
                }
                *req.uri_mut() = Uri::from_parts(parts).expect("scheme, authority and path");
                let sent = client.request(req);
                Box::pin(async move {
                    let result = sent.await.map_err(|e| classify(addr, &e));
                    record(&metrics, &result, start);
                    result
                })
            }
            Target::H2(conn) => {
                let conn = conn.clone();
                Box::pin(async move {
                    let result = conn.send(req).await;
                    record(&metrics, &result, start);
                    result
                })
            }
        }
    }
}

fn record(
    metrics: &EndpointMetrics,
    result: &Result<Response<Incoming>, ProxyError>,
    start: Instant,
) {
    let success = matches!(result, Ok(rsp) if !rsp.status().is_server_error());
    metrics.response(success, start.elapsed());
}

/// A failure to connect never reached the endpoint; anything else may have.
fn classify(addr: SocketAddr, e: &legacy::Error) -> ProxyError {
    if e.is_connect() {
        ProxyError::Connect {
            addr: addr.to_string(),
            message: error_chain(e),
        }
    } else {
        ProxyError::Upstream {
            addr: addr.to_string(),
            message: error_chain(e),
        }
    }
}

/// An error and its sources, on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
