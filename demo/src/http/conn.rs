//! One accepted HTTP connection, which a fault can make end with a TCP
//! reset instead of an orderly close.
//!
//! `reset=before_head` on HTTP/1.1 must close the connection without a
//! byte of response. hyper closes it when the service fails, but the
//! service never sees the socket; so the socket is wrapped, the service
//! flags the connection, and the wrapper sets `SO_LINGER` to 0 as hyper
//! drops it, which makes the kernel send RST rather than FIN. Setting it
//! on every connection up front would not do: a normal close would then
//! discard unsent bytes too.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::HttpBackend;

/// What a connection's requests share: the backend and the reset flag, in
/// one allocation per connection, so a request clones one `Arc` as before.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) backend: HttpBackend,
    reset: AtomicBool,
}

/// A TCP stream that closes with RST once its connection is flagged.
#[derive(Debug)]
pub(super) struct ResetOnClose {
    stream: TcpStream,
    shared: Arc<Shared>,
}

// === impl Shared ===

impl Shared {
    pub(super) fn new(backend: HttpBackend) -> Shared {
        Shared {
            backend,
            reset: AtomicBool::new(false),
        }
    }

    /// Makes the connection close with RST when hyper drops it.
    pub(super) fn reset_on_close(&self) {
        self.reset.store(true, Ordering::Relaxed);
    }
}

// === impl ResetOnClose ===

impl ResetOnClose {
    pub(super) fn new(stream: TcpStream, shared: Arc<Shared>) -> ResetOnClose {
        ResetOnClose { stream, shared }
    }
}

impl Drop for ResetOnClose {
    fn drop(&mut self) {
        if self.shared.reset.load(Ordering::Relaxed)
            && let Err(error) = self.stream.set_zero_linger()
        {
            tracing::debug!(%error, "cannot set SO_LINGER 0; the connection closes with FIN");
        }
    }
}

impl AsyncRead for ResetOnClose {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnClose {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
