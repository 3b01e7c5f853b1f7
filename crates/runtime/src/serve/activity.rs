//! What a connection is doing, as its timeouts need to know it: requests
//! in flight, when it went idle, whether a new request has begun arriving,
//! whether a write is stuck. The IO wrapper ([`Watched`]) and the request
//! and body wrappers record; the connection's task reads [`Activity::deadline`]
//! and closes the connection when it passes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
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
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    accepted_at: Instant,
    in_flight: usize,
    requests: u64,
    http2: bool,
    idle_since: Instant,
    /// When the first byte arrived since the connection went idle.
    read_while_idle: Option<Instant>,
    write_blocked_since: Option<Instant>,
}

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
            state: Mutex::new(State {
                accepted_at,
                in_flight: 0,
                requests: 0,
                http2: false,
                idle_since: accepted_at,
                read_while_idle: None,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("connection activity is never poisoned")
    }

    /// A request has arrived (its head is complete).
    pub(super) fn start(self: &Arc<Self>, http2: bool) -> InFlight {
        let mut s = self.state();
        s.in_flight += 1;
        s.requests += 1;
        s.http2 |= http2;
        s.read_while_idle = None;
        InFlight(self.clone())
    }

    /// The deadline that applies now, if any, and what it is for.
    pub(super) fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Expired)> {
        let s = self.state();
        let mut deadline = None;
        if s.in_flight == 0 {
            deadline = Some(if s.requests == 0 {
                (s.accepted_at + limits.header_read_timeout, Expired::Header)
            } else {
                match s.read_while_idle {
                    // HTTP/2 pings and window updates arrive while idle:
                    // only HTTP/1.1 bytes begin a request.
                    Some(at) if !s.http2 => (at + limits.header_read_timeout, Expired::Header),
                    _ => (s.idle_since + limits.idle_timeout, Expired::Idle),
                }
            });
        }
        if let Some(at) = s.write_blocked_since {
            let write = (at + limits.idle_timeout, Expired::Write);
            deadline = Some(deadline.map_or(
                write,
                |d: (Instant, Expired)| if write.0 < d.0 { write } else { d },
            ));
        }
        deadline
    }

    /// Waits until something that may change the deadline happens.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut s = self.state();
        if s.in_flight == 0 && s.read_while_idle.is_none() && s.requests > 0 {
            s.read_while_idle = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let mut s = self.state();
        match (blocked, s.write_blocked_since) {
            (true, None) => {
                s.write_blocked_since = Some(Instant::now());
                drop(s);
                self.changed.notify_one();
            }
            (false, Some(_)) => s.write_blocked_since = None,
            _ => {}
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.read_while_idle = None;
            drop(s);
            self.0.changed.notify_one();
        }
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
