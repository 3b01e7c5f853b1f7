//! One multiplexed HTTP/2 connection per endpoint, made on first use and
//! remade when it closes. Concurrent requests during a connect share it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::SendFailure;
use super::transport::{self, EndpointTls};
use crate::error::{ProxyError, error_chain};
use crate::retry::AttemptBody;

/// Flow-control windows of the proxy's HTTP/2 connections (both sides).
pub(crate) const STREAM_WINDOW: u32 = 1024 * 1024;
pub(crate) const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

#[derive(Debug)]
pub struct H2Connection {
    addr: SocketAddr,
    connect_timeout: Duration,
    tls: Option<Arc<EndpointTls>>,
    current: Mutex<Option<SendRequest<AttemptBody>>>,
    /// Held while connecting, so one connect serves every waiting request.
    connecting: tokio::sync::Mutex<()>,
}

impl H2Connection {
    pub fn new(addr: SocketAddr, connect_timeout: Duration, tls: Option<Arc<EndpointTls>>) -> Self {
        H2Connection {
            addr,
            connect_timeout,
            tls,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends `req` on the endpoint's connection. A request that was never
    /// written (no connection, the connection closed first, the stream
    /// refused) comes back with the failure, for another endpoint.
    pub async fn send(&self, req: Request<AttemptBody>) -> Result<Response<Incoming>, SendFailure> {
        let mut sender = match self.sender().await {
            Ok(sender) => sender,
            Err(error) => return Err(SendFailure::unsent(error, req)),
        };
        if let Err(e) = sender.ready().await {
            return Err(SendFailure::unsent(self.connect_failure(&e), req));
        }
        sender
            .try_send_request(req)
            .await
            .map_err(|mut e| match e.take_message() {
                Some(unsent) => SendFailure::unsent(self.connect_failure(e.error()), unsent),
                None => SendFailure::sent(self.upstream(e.error())),
            })
    }

    fn connect_failure(&self, e: &hyper::Error) -> ProxyError {
        ProxyError::Connect {
            addr: self.addr.to_string(),
            message: error_chain(e),
        }
    }

    fn live(&self) -> Option<SendRequest<AttemptBody>> {
        let current = self.current.lock().expect("not poisoned");
        current.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn sender(&self) -> Result<SendRequest<AttemptBody>, ProxyError> {
        if let Some(s) = self.live() {
            return Ok(s);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(s) = self.live() {
            return Ok(s);
        }
        let sender = self.connect().await?;
        *self.current.lock().expect("not poisoned") = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> Result<SendRequest<AttemptBody>, ProxyError> {
        let connect_error = |message: String| ProxyError::Connect {
            addr: self.addr.to_string(),
            message,
        };
        let stream =
            transport::connect(self.addr, self.connect_timeout, self.tls.as_deref()).await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            // Fixed, generous windows rather than hyper's adaptive ones: h2
            // bounds the small DATA frames a connection may hold unread by
            // half the connection window (its flood protection), and a gRPC
            // response is a small DATA frame followed by trailers, so a
            // 64 KiB window let ~130 concurrent gRPC responses trip it and
            // close the connection (ENHANCE_YOUR_CALM).
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(error_chain(&e)))?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%addr, error = ?e, "HTTP/2 connection to an endpoint ended");
            }
        });
        Ok(sender)
    }

    fn upstream(&self, e: &hyper::Error) -> ProxyError {
        ProxyError::Upstream {
            addr: self.addr.to_string(),
            message: error_chain(e),
        }
    }
}
