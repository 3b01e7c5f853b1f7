//! Serving an HTTP service (an axum router or any tower service) on a
//! [`Listener`], with the limits every server needs: HTTP/1.1 and HTTP/2
//! (chosen by ALPN on TLS or by a server that serves one protocol only
//! (`http1_only`, `http2_only` in its [`Tune`]), detected from the
//! preface otherwise), a header
//! read timeout (the first request's head, TLS included, counts from
//! accept; a later HTTP/1.1 request's from its first byte), an idle
//! timeout, a body read timeout (a request body that stops sending is cut
//! off), a stuck-write timeout (a client that reads nothing), HTTP/2
//! keep-alive pings, a cap on concurrent streams, and graceful shutdown on
//! a watch channel.
//!
//! hyper's own HTTP/1.1 header timeout is not used: it starts when a
//! connection goes idle, so it cannot be shorter than the idle timeout, and
//! HTTP/2 has none. One watchdog per connection ([`activity`]) enforces
//! all of them for both protocols instead.
//!
//! Every request carries the connection's [`Peer`](crate::Peer) and axum's
//! `ConnectInfo<SocketAddr>` in its extensions. Closures by a timeout are
//! counted in `listener_timeouts_total{listener, timeout}` (`header`,
//! `idle`, `write`, `body`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{Request, Response, Version};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::listen::{Connection, Listener};

mod activity;
mod body;

use activity::{Activity, Watched};
pub use body::{BodyError, Counted, TimedBody};

/// The error type services and bodies may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Settings a server adds to hyper's builder for each connection, after
/// those of [`HttpLimits`] and the protocol ALPN chose: for a server with
/// limits of its own (the proxy's routers: header counts, flow-control
/// windows, one protocol only).
pub type Tune =
    Arc<dyn Fn(auto::Builder<TokioExecutor>) -> auto::Builder<TokioExecutor> + Send + Sync>;

/// The HTTP limits of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a request head may take to arrive (slowloris).
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with nothing in flight, and how
    /// long a write may make no progress.
    pub idle_timeout: Duration,
    /// How long a request body may send nothing while the server waits.
    pub body_read_timeout: Duration,
    /// HTTP/2 keep-alive: ping interval (`None`: no pings) and how long an
    /// answer may take.
    pub h2_keep_alive_interval: Option<Duration>,
    pub h2_keep_alive_timeout: Duration,
    /// HTTP/2 streams one connection may hold at once.
    pub max_concurrent_streams: u32,
    /// The largest HTTP/2 header list accepted.
    pub max_header_list_bytes: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            h2_keep_alive_interval: Some(Duration::from_secs(20)),
            h2_keep_alive_timeout: Duration::from_secs(20),
            max_concurrent_streams: 100,
            max_header_list_bytes: 16 * 1024,
        }
    }
}

/// Serves `service` on `listener` until `shutdown` becomes true, then
/// stops accepting, lets each connection finish what is in flight
/// (timeouts still apply), and returns when all are closed.
pub async fn serve<S, B>(
    listener: Listener,
    service: S,
    limits: HttpLimits,
    shutdown: watch::Receiver<bool>,
) where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    serve_tuned(listener, service, limits, Arc::new(|b| b), shutdown).await;
}

/// [`serve`], with `tune` applied to every connection's builder.
pub async fn serve_tuned<S, B>(
    listener: Listener,
    service: S,
    limits: HttpLimits,
    tune: Tune,
    shutdown: watch::Receiver<bool>,
) where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let name: Arc<str> = Arc::from(listener.name());
    // Every connection task holds a sender; when the last is gone, all
    // connections are closed.
    let (open_tx, mut open_rx) = mpsc::channel::<Infallible>(1);
    let mut stop = pin!(stopped_owned(shutdown.clone()));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.as_mut() => break,
        };
        let service = service.clone();
        let shutdown = shutdown.clone();
        let name = name.clone();
        let open = open_tx.clone();
        let tune = tune.clone();
        tokio::spawn(async move {
            let _open = open;
            match accepted.handshake().await {
                Ok(conn) => connection(conn, service, limits, tune, name, shutdown).await,
                Err(e) => tracing::debug!(listener = %name, error = %e, "handshake failed"),
            }
        });
    }
    drop(listener);
    drop(open_tx);
    let _ = open_rx.recv().await;
}

async fn connection<S, B>(
    conn: Connection,
    service: S,
    limits: HttpLimits,
    tune: Tune,
    name: Arc<str>,
    shutdown: watch::Receiver<bool>,
) where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Connection {
        io,
        peer,
        alpn,
        accepted_at,
    } = conn;
    let activity = Activity::new(accepted_at);
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let svc = {
        let activity = activity.clone();
        let name = name.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_flight = activity.start(req.version() == Version::HTTP_2);
            let mut req = req.map(|b| TimedBody::new(b, limits.body_read_timeout, name.clone()));
            req.extensions_mut().insert(peer.clone());
            req.extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer.addr));
            let call = service.clone().oneshot(req);
            async move {
                let rsp = call.await?;
                Ok::<_, S::Error>(rsp.map(|b| Counted::new(b, in_flight)))
            }
        })
    };
    let builder = tune(builder(alpn.as_deref(), &limits));
    // Not `serve_connection_with_upgrades`: it detects the protocol even
    // when it is known (hyper-util ignores `http1_only` there), and
    // nothing served here takes an upgraded connection.
    let conn = builder.serve_connection(io, svc);
    let mut conn = pin!(conn);
    // One shutdown future and one timer for the connection's life: the
    // timer is reset only when it fires (see activity.rs for why nothing
    // else needs to move it).
    let mut stop = pin!(stopped_owned(shutdown));
    let mut timer = pin!(tokio::time::sleep_until(
        activity.next_check(Instant::now(), &limits)
    ));
    let mut draining = false;
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(listener = %name, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.as_mut(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = timer.as_mut() => {
                let now = Instant::now();
                if let Some((at, why)) = activity.deadline(&limits)
                    && at <= now
                {
                    tracing::debug!(listener = %name, timeout = why.label(), "closing a connection");
                    metrics::counter!(
                        "listener_timeouts_total",
                        "listener" => name.to_string(),
                        "timeout" => why.label()
                    )
                    .increment(1);
                    return;
                }
                timer.as_mut().reset(activity.next_check(now, &limits));
            }
        }
    }
}

/// hyper's builder for one connection: the protocol ALPN chose, or either
/// (detected from the preface) without ALPN.
fn builder(alpn: Option<&[u8]>, limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.h2_keep_alive_interval)
        .keep_alive_timeout(limits.h2_keep_alive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_bytes)
        // h2's Rapid Reset guards at their defaults, set so that a change
        // of defaults upstream does not silently turn them off.
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(1024));
    match alpn {
        Some(b"h2") => builder.http2_only(),
        Some(b"http/1.1") => builder.http1_only(),
        _ => builder,
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// [`stopped`], owning its receiver.
async fn stopped_owned(mut shutdown: watch::Receiver<bool>) {
    stopped(&mut shutdown).await;
}

#[cfg(test)]
mod tests;
