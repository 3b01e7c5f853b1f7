//! Counting refused connections and accept errors, and logging them and
//! failed TLS handshakes at a bounded rate: a flood of refusals must not
//! become a flood of log lines.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// At most one line per interval, saying how many were not logged.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Refusals {
    listener: Arc<str>,
    last: Mutex<(Option<Instant>, u64)>,
}

impl Refusals {
    pub(super) fn new(listener: Arc<str>) -> Self {
        Refusals {
            listener,
            last: Mutex::new((None, 0)),
        }
    }

    /// Counts a connection closed over a cap (`reason`) and logs it at
    /// debug, rate-limited.
    pub(super) fn refused(&self, reason: &'static str, ip: IpAddr) {
        metrics::counter!(
            "listener_connections_refused_total",
            "listener" => self.listener.to_string(),
            "reason" => reason
        )
        .increment(1);
        if let Some(suppressed) = self.due() {
            tracing::debug!(listener = %self.listener, %ip, reason, suppressed, "connection refused over a cap");
        }
    }

    /// Logs an accept error (rate-limited) that will be retried after
    /// `delay`.
    pub(super) fn accept_error(&self, e: &io::Error, delay: Duration) {
        if let Some(suppressed) = self.due() {
            tracing::warn!(listener = %self.listener, error = %e, retry_in = ?delay, suppressed, "cannot accept connections");
        }
    }

    /// Logs a failed TLS handshake: at warn, rate-limited, when it says
    /// something about a certificate or a client's TLS (an expired or
    /// foreign certificate, none where one is required, an old protocol);
    /// at debug when the connection just went away (`io`), which port
    /// scanners and health checks do all day.
    pub(super) fn handshake_failed(&self, reason: &'static str, peer: SocketAddr, e: &io::Error) {
        if reason == "io" {
            tracing::debug!(listener = %self.listener, %peer, error = %e, "TLS handshake failed");
            return;
        }
        if let Some(suppressed) = self.due() {
            tracing::warn!(listener = %self.listener, %peer, reason, error = %e, suppressed, "TLS handshake refused");
        }
    }

    /// `Some(lines suppressed since the last one)` when a line may be
    /// logged now.
    fn due(&self) -> Option<u64> {
        let mut last = self.last.lock().expect("never poisoned");
        let now = Instant::now();
        match last.0 {
            Some(at) if now.duration_since(at) < LOG_INTERVAL => {
                last.1 += 1;
                None
            }
            _ => {
                let suppressed = last.1;
                *last = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}
