//! Connections for tonic from `l5d-runtime`'s listener: handshakes in
//! their own tasks (never in the loop that tonic polls), the IO wrapped so
//! that the HTTP/2 preface must arrive in time and tonic hands every
//! request the connection's [`Peer`], and request bodies timed.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use http::Request;
use l5d_runtime::Peer;
use l5d_runtime::listen::{FirstBytesDeadline, Listener, ServerIo};
use l5d_runtime::serve::TimedBody;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tonic::transport::server::Connected;

/// The 24 bytes an HTTP/2 client sends first.
const PREFACE_BYTES: usize = 24;

/// A mesh connection: its IO, and its peer for tonic's `ConnectInfo`
/// (read with `request.extensions().get::<Peer>()`).
#[derive(Debug)]
pub(super) struct MeshIo {
    io: FirstBytesDeadline<ServerIo>,
    peer: Peer,
}

/// Accepts on `listener` until `shutdown`, yielding connections whose
/// handshakes completed.
pub(super) fn incoming(
    listener: Listener,
    preface_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<MeshIo, Infallible>> {
    // Unbounded, but bounded in fact: every connection in it holds a place
    // under the listener's cap.
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = super::stream::shutdown_signal(&mut shutdown) => return,
            };
            let tx = tx.clone();
            let name = listener.name().to_string();
            tokio::spawn(async move {
                match accepted.handshake().await {
                    Ok(conn) => {
                        let deadline = conn.accepted_at + preface_timeout;
                        let io = FirstBytesDeadline::new(
                            conn.io,
                            PREFACE_BYTES,
                            deadline,
                            preface_timeout,
                        );
                        let _ = tx.send(Ok(MeshIo {
                            io,
                            peer: conn.peer,
                        }));
                    }
                    Err(e) => tracing::debug!(listener = %name, error = %e, "handshake failed"),
                }
            });
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl Connected for MeshIo {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for MeshIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for MeshIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Times every request body: a stream whose client stops sending its
/// request fails instead of holding its slot.
#[derive(Clone, Debug)]
pub(super) struct TimedBodyLayer {
    timeout: Duration,
    listener: Arc<str>,
}

impl TimedBodyLayer {
    pub(super) fn new(timeout: Duration, listener: Arc<str>) -> Self {
        TimedBodyLayer { timeout, listener }
    }
}

impl<S> tower::Layer<S> for TimedBodyLayer {
    type Service = TimedBodies<S>;

    fn layer(&self, inner: S) -> TimedBodies<S> {
        TimedBodies {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`TimedBodyLayer`] makes.
#[derive(Clone, Debug)]
pub(super) struct TimedBodies<S> {
    inner: S,
    layer: TimedBodyLayer,
}

impl<S> tower::Service<Request<tonic::body::Body>> for TimedBodies<S>
where
    S: tower::Service<Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> S::Future {
        let (timeout, listener) = (self.layer.timeout, self.layer.listener.clone());
        self.inner
            .call(req.map(|body| tonic::body::Body::new(TimedBody::new(body, timeout, listener))))
    }
}
