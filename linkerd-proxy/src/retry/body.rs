//! The request body of one attempt, and what makes a later attempt
//! possible: a body the client sends is copied as it streams to the first
//! endpoint (not read ahead, so a streaming client is never held), up to
//! the service's `retryBufferSize.requestBytes` and the router's
//! `retryBufferTotalBytes`; once the client has sent all of it within
//! those bounds, a retry replays the copy. A body that outgrows either
//! bound drops its copy and is never replayed. A body the client never
//! sends (a GET) costs nothing: its retries send an empty one.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};
use l5d_runtime::serve::BodyError;
use metrics::{Counter, Gauge};

use crate::client::RequestBody;

/// The request body an endpoint is sent.
#[derive(Debug)]
pub enum AttemptBody {
    /// The client's body as it arrives: the only attempt that will ever
    /// carry it (or an empty body, which retries replace with `Empty`).
    Streaming(RequestBody),
    /// The client's body as it arrives, copied for later attempts.
    Copying {
        inner: RequestBody,
        copy: Arc<Mutex<Copy>>,
    },
    /// A later attempt's body: the copy, replayed.
    Replay {
        copy: Arc<Mutex<Copy>>,
        next: usize,
        trailers_sent: bool,
    },
    Empty,
}

/// What a router's requests hold for their retries, summed.
#[derive(Debug)]
pub struct BufferPool {
    used: AtomicUsize,
    capacity: usize,
    gauge: Gauge,
    exhausted: Counter,
}

/// A copy of a request body, and the part of the router's
/// [`BufferPool`] it holds (given back when the copy goes).
#[derive(Debug)]
pub struct Copy {
    frames: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    bytes: usize,
    limit: usize,
    pool: Arc<BufferPool>,
    /// The client sent the whole body, and all of it was copied.
    complete: bool,
    /// The body outgrew a bound (or failed): it will not be replayed.
    abandoned: bool,
}

impl BufferPool {
    pub fn new(capacity: usize, gauge: Gauge, exhausted: Counter) -> Self {
        BufferPool {
            used: AtomicUsize::new(0),
            capacity,
            gauge,
            exhausted,
        }
    }

    fn reserve(&self, n: usize) -> bool {
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let after = used.checked_add(n)?;
                (after <= self.capacity).then_some(after)
            })
            .is_ok();
        if reserved {
            self.gauge.increment(n as f64);
        } else {
            self.exhausted.increment(1);
        }
        reserved
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        self.gauge.decrement(n as f64);
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

impl Copy {
    pub fn new(limit: usize, pool: Arc<BufferPool>) -> Arc<Mutex<Copy>> {
        Arc::new(Mutex::new(Copy {
            frames: Vec::new(),
            trailers: None,
            bytes: 0,
            limit,
            pool,
            complete: false,
            abandoned: false,
        }))
    }

    fn push(&mut self, frame: &Frame<Bytes>) {
        if self.abandoned {
            return;
        }
        if let Some(data) = frame.data_ref() {
            let n = data.len();
            if self.bytes + n > self.limit || !self.pool.reserve(n) {
                self.abandon();
                return;
            }
            self.bytes += n;
            self.frames.push(data.clone());
        } else if let Some(trailers) = frame.trailers_ref() {
            self.trailers = Some(trailers.clone());
        }
    }

    fn abandon(&mut self) {
        self.abandoned = true;
        self.frames = Vec::new();
        self.trailers = None;
        self.pool.release(std::mem::take(&mut self.bytes));
    }

    /// Whether a later attempt can replay the body.
    pub fn replayable(&self) -> bool {
        self.complete && !self.abandoned
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        self.pool.release(self.bytes);
    }
}

/// How later attempts of one request get their body.
#[derive(Debug)]
pub enum Replay {
    /// The client sent no body: later attempts send none.
    Empty,
    /// Later attempts replay the copy, if it is complete.
    Copy(Arc<Mutex<Copy>>),
    /// The body streams to the first attempt only.
    Never,
}

impl AttemptBody {
    /// The first attempt's body: `body`, copied up to `limit` bytes from
    /// `pool` when `copy` (the request may be retried), and how later
    /// attempts get theirs.
    pub fn first(
        body: RequestBody,
        copy: Option<(usize, &Arc<BufferPool>)>,
    ) -> (AttemptBody, Replay) {
        if body.is_end_stream() {
            return (AttemptBody::Streaming(body), Replay::Empty);
        }
        let fits = |limit: usize| body.size_hint().upper().is_none_or(|n| n <= limit as u64);
        match copy {
            Some((limit, pool)) if fits(limit) => {
                let copy = Copy::new(limit, pool.clone());
                let replay = Replay::Copy(copy.clone());
                (AttemptBody::Copying { inner: body, copy }, replay)
            }
            _ => (AttemptBody::Streaming(body), Replay::Never),
        }
    }
}

impl Replay {
    /// A later attempt's body, if there can be one.
    pub fn body(&self) -> Option<AttemptBody> {
        match self {
            Replay::Empty => Some(AttemptBody::Empty),
            Replay::Never => None,
            Replay::Copy(copy) => {
                let replayable = copy.lock().expect("not poisoned").replayable();
                replayable.then(|| AttemptBody::Replay {
                    copy: copy.clone(),
                    next: 0,
                    trailers_sent: false,
                })
            }
        }
    }
}

impl Body for AttemptBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            AttemptBody::Streaming(inner) => Pin::new(inner).poll_frame(cx),
            AttemptBody::Copying { inner, copy } => {
                let polled = Pin::new(&mut *inner).poll_frame(cx);
                let mut copy = copy.lock().expect("not poisoned");
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        copy.push(frame);
                        if inner.is_end_stream() {
                            copy.complete = true;
                        }
                    }
                    Poll::Ready(None) => copy.complete = true,
                    Poll::Ready(Some(Err(_))) => copy.abandon(),
                    Poll::Pending => {}
                }
                polled
            }
            AttemptBody::Replay {
                copy,
                next,
                trailers_sent,
            } => {
                let copy = copy.lock().expect("not poisoned");
                if let Some(data) = copy.frames.get(*next) {
                    *next += 1;
                    return Poll::Ready(Some(Ok(Frame::data(data.clone()))));
                }
                match &copy.trailers {
                    Some(t) if !*trailers_sent => {
                        *trailers_sent = true;
                        Poll::Ready(Some(Ok(Frame::trailers(t.clone()))))
                    }
                    _ => Poll::Ready(None),
                }
            }
            AttemptBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AttemptBody::Streaming(inner) | AttemptBody::Copying { inner, .. } => {
                inner.is_end_stream()
            }
            AttemptBody::Replay {
                copy,
                next,
                trailers_sent,
            } => {
                let copy = copy.lock().expect("not poisoned");
                *next >= copy.frames.len() && (copy.trailers.is_none() || *trailers_sent)
            }
            AttemptBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AttemptBody::Streaming(inner) | AttemptBody::Copying { inner, .. } => inner.size_hint(),
            AttemptBody::Replay { copy, next, .. } => {
                let copy = copy.lock().expect("not poisoned");
                let left: usize = copy.frames.iter().skip(*next).map(Bytes::len).sum();
                SizeHint::with_exact(left as u64)
            }
            AttemptBody::Empty => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    fn pool(capacity: usize) -> Arc<BufferPool> {
        Arc::new(BufferPool::new(
            capacity,
            metrics::Gauge::noop(),
            metrics::Counter::noop(),
        ))
    }

    fn copy_of(chunks: &[&'static str], limit: usize, pool: &Arc<BufferPool>) -> Arc<Mutex<Copy>> {
        let copy = Copy::new(limit, pool.clone());
        let mut c = copy.lock().unwrap();
        for chunk in chunks {
            c.push(&Frame::data(Bytes::from_static(chunk.as_bytes())));
        }
        c.complete = true;
        drop(c);
        copy
    }

    #[tokio::test]
    async fn a_complete_copy_replays_the_body_and_its_trailers() {
        let pool = pool(1024);
        let copy = copy_of(&["hello ", "world"], 64, &pool);
        {
            let mut c = copy.lock().unwrap();
            let mut t = HeaderMap::new();
            t.insert("grpc-status", "0".parse().unwrap());
            c.push(&Frame::trailers(t));
        }
        assert_eq!(pool.used(), 11);
        for _ in 0..2 {
            let body = Replay::Copy(copy.clone()).body().expect("replayable");
            assert_eq!(body.size_hint().exact(), Some(11));
            let collected = body.collect().await.unwrap();
            assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
            assert_eq!(collected.to_bytes(), "hello world");
        }
        drop(copy);
        assert_eq!(pool.used(), 0, "the copy gives its bytes back");
    }

    #[test]
    fn a_body_over_the_request_limit_is_not_replayed() {
        let pool = pool(1024);
        let copy = copy_of(&["0123456789", "0123456789"], 15, &pool);
        assert!(Replay::Copy(copy).body().is_none());
        assert_eq!(pool.used(), 0, "an abandoned copy holds nothing");
    }

    #[test]
    fn the_routers_pool_caps_every_copy_together() {
        let pool = pool(25);
        let first = copy_of(&["0123456789", "0123456789"], 64, &pool);
        assert_eq!(pool.used(), 20);
        let second = copy_of(&["0123456789"], 64, &pool);
        assert!(
            Replay::Copy(second).body().is_none(),
            "over the router's cap"
        );
        assert!(Replay::Copy(first.clone()).body().is_some());
        drop(first);
        assert_eq!(pool.used(), 0);
        let third = copy_of(&["0123456789"], 64, &pool);
        assert!(Replay::Copy(third).body().is_some(), "room again");
    }

    #[test]
    fn a_copy_still_arriving_is_not_replayed() {
        let pool = pool(1024);
        let copy = Copy::new(64, pool.clone());
        copy.lock()
            .unwrap()
            .push(&Frame::data(Bytes::from_static(b"part")));
        assert!(Replay::Copy(copy).body().is_none());
        assert!(Replay::Never.body().is_none());
        assert!(matches!(Replay::Empty.body(), Some(AttemptBody::Empty)));
    }
}
