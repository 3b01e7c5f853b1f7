//! What the proxy answers with: an upstream's body as it streams, a body
//! the proxy made (an error), or an upstream's body whose class is in its
//! trailers (gRPC). The last is read through [`Classifying`], which stamps
//! `l5d-success-class` in the trailers (appending a trailers frame if the
//! stream has none) and reports the class to the router's and the name's
//! metrics and to the endpoint's failure accrual when the stream ends.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

use super::policy::Policy;
use super::routes::Route;
use crate::balance::Outcome;
use crate::classify::ResponseClass;
use crate::client::PooledBody;
use crate::headers::{L5D_SUCCESS_CLASS, remove_l5d};
use crate::metrics::RequestMetrics;

#[derive(Debug)]
pub enum ResponseBody {
    Upstream(PooledBody),
    Generated(Full<Bytes>),
    Classifying(Box<Classifying>),
    /// A body leaving through an untrusting edge: `l5d-*` trailers removed.
    Edge(Box<ResponseBody>),
}

impl ResponseBody {
    /// This body as it may leave an untrusting edge (`clearContext`). A
    /// body the proxy made has no trailers and stays as it is.
    pub fn edge(self) -> ResponseBody {
        match self {
            ResponseBody::Generated(_) | ResponseBody::Edge(_) => self,
            other => ResponseBody::Edge(Box::new(other)),
        }
    }
}

/// An upstream body whose class comes at its end.
#[derive(Debug)]
pub struct Classifying {
    /// Frames read while the router waited for the class (to decide on a
    /// retry), sent first.
    held: VecDeque<Frame<Bytes>>,
    /// The rest of the stream; `None` once it ended (or `held` is all).
    inner: Option<PooledBody>,
    report: Option<Report>,
}

/// Where a class found at the end of a stream is reported.
#[derive(Debug)]
pub struct Report {
    pub policy: Arc<Policy>,
    pub outcome: Option<Outcome>,
    pub router: RequestMetrics,
    pub route: Arc<Route>,
    pub start: Instant,
}

impl Report {
    /// Records `class`; `accrual` false for a stream the client abandoned,
    /// which says nothing about the endpoint.
    fn record(mut self, class: ResponseClass, accrual: bool) {
        let elapsed = self.start.elapsed();
        self.router.response(class.is_success(), elapsed);
        self.route.metrics.response(class.is_success(), elapsed);
        if accrual && let Some(outcome) = self.outcome.take() {
            outcome.record(class);
        }
    }
}

impl Classifying {
    pub fn new(held: VecDeque<Frame<Bytes>>, inner: Option<PooledBody>, report: Report) -> Self {
        Classifying {
            held,
            inner,
            report: Some(report),
        }
    }

    /// The class from `trailers` (`None`: the stream had none), stamped in
    /// them and reported; the trailers to send.
    fn finish(&mut self, trailers: Option<HeaderMap>) -> HeaderMap {
        let report = self.report.take();
        let class = report.as_ref().map_or(ResponseClass::Success, |r| {
            r.policy.classifier.classify_trailers(trailers.as_ref())
        });
        let mut trailers = trailers.unwrap_or_default();
        trailers.insert(L5D_SUCCESS_CLASS, class.header_value());
        if let Some(report) = report {
            report.record(class, true);
        }
        trailers
    }
}

impl Drop for Classifying {
    /// A stream dropped before its end: a failure in the metrics, nothing
    /// for failure accrual.
    fn drop(&mut self) {
        if let Some(report) = self.report.take() {
            report.record(ResponseClass::NonRetryableFailure, false);
        }
    }
}

impl Body for Classifying {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(frame) = this.held.pop_front() {
            return Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(trailers) => Frame::trailers(this.finish(Some(trailers))),
                Err(frame) => frame,
            })));
        }
        let Some(inner) = this.inner.as_mut() else {
            if this.report.is_some() {
                return Poll::Ready(Some(Ok(Frame::trailers(this.finish(None)))));
            }
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(trailers) => {
                    this.inner = None;
                    Poll::Ready(Some(Ok(Frame::trailers(this.finish(Some(trailers))))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Ready(None) => {
                this.inner = None;
                if this.report.is_some() {
                    return Poll::Ready(Some(Ok(Frame::trailers(this.finish(None)))));
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                if let Some(report) = this.report.take() {
                    report.record(ResponseClass::NonRetryableFailure, true);
                }
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.inner.is_none() && self.report.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Generated(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|f| Ok(f.unwrap_or_else(|never| match never {})))),
            ResponseBody::Classifying(b) => Pin::new(&mut **b).poll_frame(cx),
            ResponseBody::Edge(b) => Pin::new(&mut **b).poll_frame(cx).map(|frame| {
                frame.map(|frame| {
                    frame.map(|frame| match frame.into_trailers() {
                        Ok(mut trailers) => {
                            remove_l5d(&mut trailers, &[]);
                            Frame::trailers(trailers)
                        }
                        Err(frame) => frame,
                    })
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(b) => b.is_end_stream(),
            ResponseBody::Generated(b) => b.is_end_stream(),
            ResponseBody::Classifying(b) => b.is_end_stream(),
            ResponseBody::Edge(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(b) => b.size_hint(),
            ResponseBody::Generated(b) => b.size_hint(),
            ResponseBody::Classifying(b) => b.size_hint(),
            ResponseBody::Edge(b) => b.size_hint(),
        }
    }
}
