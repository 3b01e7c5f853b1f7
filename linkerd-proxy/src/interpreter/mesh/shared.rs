//! What the interpreter and its stream tasks share: the settings, the
//! connection to namerd and the counters. Its own module so that the stream
//! tasks depend on it, not on the interpreter that spawns them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use l5d_dtab::Path;
use l5d_runtime::tls::{ClientTls, HANDSHAKE_FAILURE_REASONS, handshake_failure_reason};
use tonic::transport::Channel;

use super::conn::Conn;
use super::dst::Dst;

/// The `io.l5d.mesh` interpreter's settings.
#[derive(Clone, Debug)]
pub struct MeshOptions {
    /// namerd's gRPC address (Linkerd's `dst`).
    pub dst: Dst,
    /// The namerd namespace, a one-segment path (Linkerd's `root`).
    pub root: Path,
    /// The first reconnect delay (Linkerd's `retry.baseSeconds`).
    pub retry_base: Duration,
    /// The longest reconnect delay (Linkerd's `retry.maxSeconds`). Linkerd
    /// defaults to 600 s; ours is 10 s because a proxy that waits ten
    /// minutes to notice namerd is back serves stale routes for that long,
    /// and a reconnect is one HTTP/2 stream on a connection that is
    /// usually still there, so retrying often costs little.
    pub retry_max: Duration,
    /// HTTP/2 PING interval, also while idle: detects a blackholed
    /// connection (R4) within `keepalive_interval + keepalive_timeout`.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub connect_timeout: Duration,
    /// While namerd is unreachable, how often one cheap call checks whether
    /// it is back, so that streams in backoff reconnect right away (R2, R8)
    /// instead of each waiting out its delay.
    pub probe_interval: Duration,
    /// The bound on a delegation request.
    pub delegate_timeout: Duration,
    /// A binding or address set nobody held for this long is dropped and
    /// its stream cancelled.
    pub idle_ttl: Duration,
    /// TLS to namerd (Linkerd's `tls`), the server verified as its
    /// `commonName` or else the `dst` host; `None` for plaintext.
    pub tls: Option<ClientTls>,
}

/// What every stream task needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(super) opts: MeshOptions,
    pub(super) channel: Channel,
    pub(super) conn: Arc<Conn>,
    pub(super) counters: Counters,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) streams_open: AtomicU64,
    pub(super) updates: AtomicU64,
    pub(super) rejected: AtomicU64,
    /// Shared with the channel's connector, which counts into it.
    pub(super) tls_failures: Arc<TlsFailures>,
}

/// Failed TLS handshakes with namerd, one count per reason of
/// [`HANDSHAKE_FAILURE_REASONS`].
#[derive(Debug, Default)]
pub(super) struct TlsFailures([AtomicU64; HANDSHAKE_FAILURE_REASONS.len()]);

// === impl TlsFailures ===

impl TlsFailures {
    /// Counts a handshake that failed with `e`; the reason.
    pub(super) fn count(&self, e: &std::io::Error) -> &'static str {
        let reason = handshake_failure_reason(e);
        if let Some(i) = HANDSHAKE_FAILURE_REASONS.iter().position(|r| *r == reason) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
        reason
    }

    /// The counts, in the order of [`HANDSHAKE_FAILURE_REASONS`].
    pub(super) fn snapshot(&self) -> [u64; HANDSHAKE_FAILURE_REASONS.len()] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

// === impl MeshOptions ===

impl MeshOptions {
    /// Linkerd's defaults (root `/default`) with our shorter cap.
    pub fn new(dst: Dst) -> Self {
        MeshOptions {
            dst,
            root: Path::utf8(["default"]),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            // namerd runs in the same cluster; a connect that takes longer
            // is treated as a failure, so that a new name fails fast.
            connect_timeout: Duration::from_secs(1),
            probe_interval: Duration::from_millis(500),
            delegate_timeout: Duration::from_secs(10),
            idle_ttl: Duration::from_secs(600),
            tls: None,
        }
    }
}
