//! Body wrappers: a request body that fails when the client stops sending
//! ([`TimedBody`]), and a response body that keeps its request counted as
//! in flight until it is sent or dropped ([`Counted`]).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use super::BoxError;
use super::activity::InFlight;

pin_project_lite::pin_project! {
    /// A request body whose next frame must arrive within the body read
    /// timeout each time the server waits for one.
    pub struct TimedBody<B = Incoming> {
        #[pin]
        inner: B,
        timeout: Duration,
        listener: Arc<str>,
        waiting: Option<Pin<Box<Sleep>>>,
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body stalled: nothing arrived for {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Http(BoxError),
}

impl<B> TimedBody<B> {
    /// `inner`, timed; a timeout is counted under `listener`.
    pub fn new(inner: B, timeout: Duration, listener: Arc<str>) -> Self {
        TimedBody {
            inner,
            timeout,
            listener,
            waiting: None,
        }
    }
}

impl<B> fmt::Debug for TimedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedBody")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                // The clock restarts with the next wait.
                *this.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(|e| BodyError::Http(e.into()))))
            }
            Poll::Pending => {
                let timeout = *this.timeout;
                let sleep = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    metrics::counter!(
                        "listener_timeouts_total",
                        "listener" => this.listener.to_string(),
                        "timeout" => "body"
                    )
                    .increment(1);
                    return Poll::Ready(Some(Err(BodyError::Timeout(timeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its request's [`InFlight`] mark.
    pub struct Counted<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B> Counted<B> {
    pub(super) fn new(inner: B, in_flight: InFlight) -> Self {
        Counted {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl<B> fmt::Debug for Counted<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counted").finish_non_exhaustive()
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // Sent: the request is over even if hyper keeps the body.
            this.in_flight.take();
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
