//! The connection under both the HTTP/1.1 pool and the HTTP/2 connection:
//! TCP, then TLS when the id's client configuration has a `tls` block. A
//! leaf beside them, so neither reaches back into its parent.
//!
//! One connect timeout covers both the TCP connect and the TLS handshake.
//! A refused handshake (the server's certificate expired, is for another
//! name or from an untrusted CA; the server refused ours) fails the
//! request as a connection failure, is counted in
//! `linkerd_client_tls_failures_total{router, client, reason}` (`reason`
//! from `l5d-runtime`'s `handshake_failure_reason`, or `invalid_name` for a
//! `commonName` that is no DNS name once its captures are substituted) and
//! logged at most once per [`LOG_INTERVAL`] per id, naming the endpoint
//! and the reason.
//!
//! With TLS 1.3 a client's handshake ends before the server has checked
//! its certificate: a server refusing ours fails the first request on the
//! connection instead (502, `l5d-err` naming the alert) and is counted by
//! the server, which knows why.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use l5d_runtime::tls::{ClientTls, ServerName, handshake_failure_reason};
use metrics::Label;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::error::ProxyError;
use crate::metrics::Metrics;

/// An endpoint connection's byte stream.
pub(crate) type ClientIo = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// At most one log line per id this often for failed handshakes.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// TLS towards the endpoints of one bound id.
#[derive(Debug)]
pub struct EndpointTls {
    tls: ClientTls,
    /// The name verified and sent as SNI: `commonName` with the id's
    /// captures substituted; `None` verifies the endpoint's IP address
    /// (with `disableValidation` and no `commonName`); an invalid
    /// substituted name fails every connection with its reason.
    name: Result<Option<ServerName<'static>>, String>,
    /// Where failures are counted, by reason on first use of each.
    metrics: Metrics,
    router: String,
    /// The id, for metrics and log lines.
    client: String,
    last_log: Mutex<Option<Instant>>,
}

impl EndpointTls {
    pub fn new(
        tls: ClientTls,
        common_name: Option<&str>,
        metrics: Metrics,
        router: String,
        client: String,
    ) -> Self {
        let name = match common_name {
            None => Ok(None),
            Some(n) => l5d_runtime::tls::server_name(n)
                .map(Some)
                .map_err(|e| e.to_string()),
        };
        EndpointTls {
            tls,
            name,
            metrics,
            router,
            client,
            last_log: Mutex::new(None),
        }
    }

    fn failed(&self, addr: SocketAddr, reason: &'static str, why: &str) {
        let labels = vec![
            Label::new("router", self.router.clone()),
            Label::new("client", self.client.clone()),
            Label::new("reason", reason),
        ];
        self.metrics
            .counter("linkerd_client_tls_failures_total", labels)
            .increment(1);
        let mut last = self.last_log.lock().expect("never poisoned");
        if last.is_none_or(|at| at.elapsed() >= LOG_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(client = %self.client, %addr, reason, error = why, "TLS handshake with an endpoint failed");
        }
    }
}

/// A connection to `addr` (TLS over it when `tls` is set), with Nagle off
/// (requests and responses are small and latency-bound), within `timeout`.
pub(super) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&EndpointTls>,
) -> Result<ClientIo, ProxyError> {
    let connect_error = |message: String| ProxyError::Connect {
        addr: addr.to_string(),
        message,
    };
    let connecting = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = tls else {
            return Ok(Either::Left(stream));
        };
        let name = match &tls.name {
            Ok(Some(name)) => name.clone(),
            Ok(None) => ServerName::IpAddress(addr.ip().into()),
            Err(why) => {
                tls.failed(addr, "invalid_name", why);
                return Err(connect_error(format!("TLS: {why}")));
            }
        };
        match tls.tls.connector().connect(name, stream).await {
            Ok(s) => Ok(Either::Right(Box::new(s))),
            Err(e) => {
                let why = format!("TLS handshake failed: {e}");
                tls.failed(addr, handshake_failure_reason(&e), &why);
                Err(connect_error(why))
            }
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| connect_error(format!("timed out after {timeout:?}")))?
}
