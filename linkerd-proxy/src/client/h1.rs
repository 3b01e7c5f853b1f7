//! A pool of HTTP/1.1 connections to one endpoint.
//!
//! hyper-util's pool serves any number of hosts: every request hashes and
//! compares its key, and every response spawns a task that waits for the
//! connection to be reusable. A balancer endpoint is one address, so this
//! pool is a stack of idle connections: a request takes the most recently
//! used one (or connects), and the response body puts it back when it
//! ends. In callgrind it cost about a quarter of hyper-util's per request.
//!
//! A connection whose response body is dropped before its end is closed,
//! as HTTP/1.1 requires. A request written to an idle connection that the
//! endpoint had just closed is never lost: hyper hands the unsent request
//! back and it goes out on another connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::SendFailure;
use super::transport::{self, EndpointTls};
use crate::error::{ProxyError, error_chain};
use crate::retry::AttemptBody;

/// How long a connection taken from the pool may take to become ready for
/// its next request (hyper flips it once the previous exchange is done).
const READY_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct H1Pool {
    addr: SocketAddr,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    tls: Option<Arc<EndpointTls>>,
    idle: Mutex<Vec<(SendRequest<AttemptBody>, Instant)>>,
}

impl H1Pool {
    pub fn new(
        addr: SocketAddr,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
        tls: Option<Arc<EndpointTls>>,
    ) -> Self {
        H1Pool {
            addr,
            connect_timeout,
            idle_timeout,
            max_idle,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `req` (origin-form, with a `Host`) on a pooled or new
    /// connection. A request that was never written comes back with the
    /// failure, for another endpoint.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<AttemptBody>,
    ) -> Result<Response<PooledBody>, SendFailure> {
        loop {
            let (mut sender, reused) = match self.checkout().await {
                Some(sender) => (sender, true),
                None => match self.connect().await {
                    Ok(sender) => (sender, false),
                    Err(error) => return Err(SendFailure::unsent(error, req)),
                },
            };
            match sender.try_send_request(req).await {
                Ok(rsp) => {
                    let pool = self.clone();
                    return Ok(rsp.map(|body| PooledBody::pooled(body, sender, pool)));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: the idle connection was closed under us.
                    Some(unsent) if reused => req = unsent,
                    Some(unsent) => {
                        let error = ProxyError::Connect {
                            addr: self.addr.to_string(),
                            message: error_chain(e.error()),
                        };
                        return Err(SendFailure::unsent(error, unsent));
                    }
                    None => {
                        return Err(SendFailure::sent(ProxyError::Upstream {
                            addr: self.addr.to_string(),
                            message: error_chain(e.error()),
                        }));
                    }
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and
    /// becomes ready, if any.
    async fn checkout(&self) -> Option<SendRequest<AttemptBody>> {
        loop {
            let (mut sender, since) = self.idle.lock().expect("not poisoned").pop()?;
            if sender.is_closed() || since.elapsed() > self.idle_timeout {
                continue;
            }
            if sender.is_ready() {
                return Some(sender);
            }
            if let Ok(Ok(())) = tokio::time::timeout(READY_TIMEOUT, sender.ready()).await {
                return Some(sender);
            }
        }
    }

    fn checkin(&self, sender: SendRequest<AttemptBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().expect("not poisoned");
        if idle.len() < self.max_idle {
            idle.push((sender, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<SendRequest<AttemptBody>, ProxyError> {
        let connect_error = |message: String| ProxyError::Connect {
            addr: self.addr.to_string(),
            message,
        };
        let stream =
            transport::connect(self.addr, self.connect_timeout, self.tls.as_deref()).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(error_chain(&e)))?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%addr, error = %e, "HTTP/1.1 connection to an endpoint ended");
            }
        });
        Ok(sender)
    }
}

/// A response body from an endpoint. For HTTP/1.1 it returns its
/// connection to the pool when it has been read to the end.
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    checkin: Option<(SendRequest<AttemptBody>, Arc<H1Pool>)>,
}

impl PooledBody {
    fn pooled(inner: Incoming, sender: SendRequest<AttemptBody>, pool: Arc<H1Pool>) -> Self {
        PooledBody {
            inner,
            checkin: Some((sender, pool)),
        }
    }

    /// A body with no connection to return (HTTP/2 streams).
    pub fn unpooled(inner: Incoming) -> Self {
        PooledBody {
            inner,
            checkin: None,
        }
    }

    fn finished(&mut self) {
        if let Some((sender, pool)) = self.checkin.take() {
            pool.checkin(sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finished(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.finished(),
            // An error: the connection is not reusable; dropping the
            // sender closes it.
            Poll::Ready(Some(Err(_))) => self.checkin = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    /// A body nobody polls because it is empty (`Content-Length: 0`, HEAD)
    /// is complete: its connection is reusable. One dropped before its end
    /// is not, and closes with its sender.
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.finished();
        }
    }
}
