//! What a connection is doing, as its timeouts need to know it: requests
//! in flight, when it went idle, whether a new request has begun arriving,
//! whether a write is stuck. The IO wrapper ([`Watched`]) and the request
//! and body wrappers record; the connection's task reads
//! [`Activity::deadline`] and closes the connection when it passes.
//!
//! This is on the path of every read, write and request, so it records
//! into atomics (no lock) and wakes nobody: a read or write that changes
//! nothing costs a load. The connection's task is not told of changes.
//! Instead it keeps one timer armed at [`Activity::next_check`]: the
//! deadline that applies now, but never later than the shorter of the
//! header and idle timeouts from now. Every deadline an event can set
//! later is at least that far from the event (a header deadline from a
//! first byte, an idle one from a request's end, a write one from a
//! stuck write), so the armed timer fires at or before whatever deadline
//! applies, and the task then reads the state again. The price is one
//! wake-up per that shorter timeout on a connection that is busy or idle
//! for long, instead of one per request.
//!
//! Times are kept as whole milliseconds after accept, rounded up: a
//! deadline may pass up to 1 ms late, never early.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::HttpLimits;

/// Which timeout closed a connection (the `timeout` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    /// The request head did not arrive in time (slowloris), counting from
    /// accept for the first request and from its first byte for later
    /// HTTP/1.1 requests.
    Header,
    /// Nothing in flight and nothing begun for the idle timeout.
    Idle,
    /// A write made no progress for the idle timeout: the client reads
    /// nothing.
    Write,
}

#[derive(Debug)]
pub(super) struct Activity {
    accepted_at: Instant,
    /// Requests in flight (the low bits), whether any request has begun
    /// ([`STARTED`]) and whether it was HTTP/2 ([`HTTP2`]): one word, so
    /// that a request's start changes them at once.
    requests: AtomicU64,
    /// When the connection last went idle (milliseconds after accept).
    /// Written before the request count drops to zero, so whoever sees
    /// zero sees this time or a later one.
    idle_since: AtomicU64,
    /// When the first byte arrived since the connection went idle, or
    /// [`NEVER`].
    read_while_idle: AtomicU64,
    /// When a write began to make no progress, or [`NEVER`].
    write_blocked_since: AtomicU64,
}

const STARTED: u64 = 1 << 62;
const HTTP2: u64 = 1 << 63;
const IN_FLIGHT: u64 = STARTED - 1;
const NEVER: u64 = u64::MAX;

/// A request in flight: the connection is not idle until it is dropped
/// (with the response body, once sent).
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Expired {
    pub(super) fn label(self) -> &'static str {
        match self {
            Expired::Header => "header",
            Expired::Idle => "idle",
            Expired::Write => "write",
        }
    }
}

impl Activity {
    pub(super) fn new(accepted_at: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            accepted_at,
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            read_while_idle: AtomicU64::new(NEVER),
            write_blocked_since: AtomicU64::new(NEVER),
        })
    }

    /// Now, in milliseconds after accept, rounded up.
    fn now(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.accepted_at);
        let millis = u64::from(elapsed.subsec_nanos().div_ceil(1_000_000));
        elapsed
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(millis)
    }

    fn at(&self, millis: u64) -> Instant {
        self.accepted_at + Duration::from_millis(millis)
    }

    /// A request has arrived (its head is complete).
    pub(super) fn start(self: &Arc<Self>, http2: bool) -> InFlight {
        let flags = STARTED | if http2 { HTTP2 } else { 0 };
        // One request more and the flags, in one step; the count cannot
        // reach the flag bits (2^62 requests in flight).
        let _ = self
            .requests
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |r| {
                Some((r + 1) | flags)
            });
        self.read_while_idle.store(NEVER, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// The deadline that applies now, if any, and what it is for.
    pub(super) fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Expired)> {
        let requests = self.requests.load(Ordering::Acquire);
        let mut deadline = None;
        if requests & IN_FLIGHT == 0 {
            deadline = Some(if requests & STARTED == 0 {
                (
                    self.accepted_at + limits.header_read_timeout,
                    Expired::Header,
                )
            } else {
                match self.read_while_idle.load(Ordering::Relaxed) {
                    // HTTP/2 pings and window updates arrive while idle:
                    // only HTTP/1.1 bytes begin a request.
                    at if at != NEVER && requests & HTTP2 == 0 => {
                        (self.at(at) + limits.header_read_timeout, Expired::Header)
                    }
                    _ => {
                        let since = self.idle_since.load(Ordering::Relaxed);
                        (self.at(since) + limits.idle_timeout, Expired::Idle)
                    }
                }
            });
        }
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != NEVER {
            let write = (self.at(blocked) + limits.idle_timeout, Expired::Write);
            deadline = Some(deadline.map_or(
                write,
                |d: (Instant, Expired)| if write.0 < d.0 { write } else { d },
            ));
        }
        deadline
    }

    /// When the connection's task must look at [`Activity::deadline`]
    /// next, given that it is `now`: at the deadline, or sooner (see the
    /// module's documentation for why this bound makes notifications
    /// unnecessary).
    pub(super) fn next_check(&self, now: Instant, limits: &HttpLimits) -> Instant {
        let bound = now + limits.header_read_timeout.min(limits.idle_timeout);
        match self.deadline(limits) {
            Some((at, _)) => at.min(bound),
            None => bound,
        }
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let requests = self.requests.load(Ordering::Relaxed);
        // Only the first byte of an HTTP/1.1 connection's next request
        // counts.
        if requests & (IN_FLIGHT | HTTP2) == 0
            && requests & STARTED != 0
            && self.read_while_idle.load(Ordering::Relaxed) == NEVER
        {
            self.read_while_idle.store(self.now(), Ordering::Relaxed);
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let since = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked && since == NEVER {
            self.write_blocked_since
                .store(self.now(), Ordering::Relaxed);
        } else if !blocked && since != NEVER {
            self.write_blocked_since.store(NEVER, Ordering::Relaxed);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // Recorded by every request's end, so that the one that leaves
        // nothing in flight has stored its time before the count shows it
        // (`fetch_max`: a concurrent, earlier end does not move it back).
        activity
            .idle_since
            .fetch_max(activity.now(), Ordering::Relaxed);
        activity.read_while_idle.store(NEVER, Ordering::Relaxed);
        activity.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An IO that tells its connection's [`Activity`] about reads and stuck
/// writes.
#[derive(Debug)]
pub(super) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.activity.read(buf.filled().len() - before);
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.activity.write_blocked(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.activity.write_blocked(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.activity.write_blocked(polled.is_pending());
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
