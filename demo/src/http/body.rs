//! The HTTP backend's response body: the usual bytes, a gRPC message with
//! its trailers, or a few bytes and then an error (`reset=after_head`).

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// How long an aborted body waits after its bytes before failing. HTTP/2
/// drops the frames of a stream still queued when it is reset, so this
/// gives the connection's task time to write the head and the bytes: the
/// reset then comes after them on the wire, as a truncated body should.
const ABORT_AFTER: Duration = Duration::from_millis(100);

/// A response body. `ReplyBody::full` is as cheap as `Full<Bytes>`: what
/// every request without a fault gets.
#[derive(Debug)]
pub struct ReplyBody {
    data: Option<Bytes>,
    end: End,
}

#[derive(Debug)]
enum End {
    Done,
    Trailers(Option<HeaderMap>),
    /// Waits, then fails; `None` once failed.
    Abort(Option<Pin<Box<Sleep>>>),
}

/// The error that ends an aborted body: hyper closes the HTTP/1.1
/// connection mid-body, or resets the HTTP/2 stream.
#[derive(Debug)]
pub struct Aborted;

// === impl ReplyBody ===

impl ReplyBody {
    /// `data`, then the end of the stream.
    pub fn full(data: Bytes) -> ReplyBody {
        ReplyBody {
            data: Some(data).filter(|d| !d.is_empty()),
            end: End::Done,
        }
    }

    /// `data` (if any), then `trailers`.
    pub(crate) fn with_trailers(data: Bytes, trailers: HeaderMap) -> ReplyBody {
        ReplyBody {
            data: Some(data).filter(|d| !d.is_empty()),
            end: End::Trailers(Some(trailers)),
        }
    }

    /// `data`, then an error instead of the end of the stream.
    pub(crate) fn aborted(data: Bytes) -> ReplyBody {
        ReplyBody {
            data: Some(data).filter(|d| !d.is_empty()),
            end: End::Abort(Some(Box::pin(tokio::time::sleep(ABORT_AFTER)))),
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match &mut self.end {
            End::Done => Poll::Ready(None),
            End::Trailers(trailers) => Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t)))),
            End::Abort(None) => Poll::Ready(None),
            End::Abort(Some(pause)) => {
                ready!(pause.as_mut().poll(cx));
                self.end = End::Abort(None);
                Poll::Ready(Some(Err(Aborted)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
            && matches!(self.end, End::Done | End::Trailers(None) | End::Abort(None))
    }

    /// Exact for a plain body (HTTP/1.1 sends `content-length`). The
    /// others have none: gRPC answers carry no `content-length`, as tonic's
    /// do not, and an aborted body goes chunked over HTTP/1.1, so the client
    /// sees the last chunk missing.
    fn size_hint(&self) -> SizeHint {
        let len = self.data.as_ref().map_or(0, |d| d.len() as u64);
        if let End::Done = self.end {
            return SizeHint::with_exact(len);
        }
        let mut hint = SizeHint::new();
        hint.set_lower(len);
        hint
    }
}

// === impl Aborted ===

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the body was aborted by the fault reset=after_head")
    }
}

impl std::error::Error for Aborted {}
