//! Servers: accept connections for a router and speak HTTP/1.1 or HTTP/2
//! (prior knowledge) on them, with every limit set explicitly: header
//! count and size and the header read timeout on HTTP/1.1; concurrent
//! streams, pending resets (Rapid Reset) and header list size on HTTP/2;
//! requests in flight per server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use metrics::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::client::{CONNECTION_WINDOW, STREAM_WINDOW};
use crate::config::{Protocol, ServerConfig};
use crate::error::ProxyError;
use crate::router::{Router, ServerPolicy};

/// One listening server of a router.
#[derive(Debug)]
pub struct Server {
    pub router: Arc<Router>,
    pub config: ServerConfig,
    pub protocol: Protocol,
    /// For HTTP/1.1: the request head size limit.
    pub max_head_bytes: usize,
    pub open_connections: Gauge,
}

impl Server {
    /// Accepts until `shutdown` turns true, then lets open connections
    /// finish their requests.
    pub async fn serve(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let limit = this
            .config
            .max_concurrent_requests
            .map(|n| Arc::new(Semaphore::new(n)));
        let mut stop = shutdown.clone();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped(&mut stop) => return,
            };
            let _ = stream.set_nodelay(true);
            let this = this.clone();
            let limit = limit.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                this.open_connections.increment(1.0);
                this.connection(stream, peer, limit, shutdown).await;
                this.open_connections.decrement(1.0);
            });
        }
    }

    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        limit: Option<Arc<Semaphore>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let router = self.router.clone();
        let policy = Arc::new(ServerPolicy::new(&self.config));
        let service = service_fn(move |req| {
            let router = router.clone();
            let policy = policy.clone();
            let permit = match &limit {
                None => Ok(None),
                Some(s) => s.clone().try_acquire_owned().map(Some),
            };
            async move {
                let rsp = match permit {
                    Ok(_permit) => router.route(req, &policy).await,
                    Err(_) => ProxyError::Overloaded.to_response().map(Either::Right),
                };
                Ok::<_, Infallible>(rsp)
            }
        });
        let io = TokioIo::new(stream);
        let result = match self.protocol {
            Protocol::Http => {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(self.config.header_read_timeout)
                    .max_headers(self.config.max_headers)
                    // hyper's floor is 8 KiB.
                    .max_buf_size(self.max_head_bytes.max(8192))
                    .keep_alive(true)
                    .serve_connection(io, service);
                until_shutdown(conn, &mut shutdown).await
            }
            Protocol::H2 => {
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(self.config.max_concurrent_streams)
                    .max_pending_accept_reset_streams(self.config.max_pending_resets)
                    .max_local_error_reset_streams(Some(self.config.max_pending_resets))
                    .max_header_list_size(self.config.max_header_list_bytes)
                    .keep_alive_interval(Some(Duration::from_secs(20)))
                    .keep_alive_timeout(Duration::from_secs(20))
                    // See client/h2.rs: fixed windows large enough that
                    // many concurrent small gRPC messages do not trip h2's
                    // small-frame flood protection.
                    .initial_stream_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .serve_connection(io, service);
                until_shutdown(conn, &mut shutdown).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Serves a connection; when shutdown begins, lets it finish the requests
/// it has (HTTP/2: GOAWAY) and close.
async fn until_shutdown<C: GracefulConnection>(
    conn: C,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), C::Error> {
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Resolves once shutdown begins (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
