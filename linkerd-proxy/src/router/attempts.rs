//! The attempts of one request: pick a bound id and an endpoint, send,
//! classify, and maybe again.
//!
//! - A request that was never written (the connection failed) is sent to
//!   another endpoint of the same id at once: a *requeue*, within the id's
//!   `requeueBudget`.
//! - A response (or failure) the service's classifier calls retryable is
//!   retried from the top (a new pick by weight, a new endpoint) after the
//!   retry backoff, within the name's retry budget, if the request body
//!   can be replayed (see `retry/body.rs`).
//! - Everything happens before the request's deadline (the total timeout,
//!   or a stricter `l5d-ctx-deadline` or `grpc-timeout`): when it passes,
//!   the attempt in flight is dropped (which cancels it) and no retry is
//!   sent after it. Linkerd 1.x could send a retry after its total
//!   timeout; here the whole loop runs under one deadline timer.
//! - A gRPC response says its class in its trailers: when a retry is
//!   possible, the router holds it for up to `classificationTimeoutMs` and
//!   `retryBufferSize.responseBytes` to learn the class; otherwise it is
//!   forwarded at once and classified as it ends.
//!
//! A request that cannot be retried (the classifier never retries its
//! method) costs nothing of this but a requeue budget deposit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response};
use hyper::body::{Body, Frame};
use l5d_runtime::Backoff;

use super::Router;
use super::plan::{Leaf, Plan};
use super::policy::Policy;
use super::response::{Classifying, Report, ResponseBody};
use super::routes::Route;
use crate::balance::Outcome;
use crate::classify::{self, ResponseClass};
use crate::client::{PooledBody, RequestBody, SendFailure};
use crate::config::{BackoffConfig, Protocol};
use crate::deadline::{self, Deadline};
use crate::error::ProxyError;
use crate::headers::{self, Destination, L5D_SUCCESS_CLASS};
use crate::recent::Served;
use crate::retry::{AttemptBody, Replay};

/// What a request got: the response, and its class when the head told it
/// (`None`: the body reports the class as it ends).
pub(super) struct Forwarded {
    pub rsp: Response<ResponseBody>,
    pub class: Option<ResponseClass>,
}

/// The state of one request's attempts.
struct Attempts<'a> {
    router: &'a Router,
    route: &'a Arc<Route>,
    policy: &'a Policy,
    method: Method,
    replay: Replay,
    backoff: Option<Backoff>,
    deadline: Option<Deadline>,
    /// Retries so far.
    retries: u32,
    /// Whether responses carry [`Served`] (someone reads it).
    served: bool,
}

// === impl Router ===

impl Router {
    /// Sends the request (see the module documentation), within its
    /// deadline.
    pub(super) async fn forward(
        &self,
        route: &Arc<Route>,
        parts: Parts,
        body: RequestBody,
        start: Instant,
        deadline: Option<Deadline>,
        served: bool,
    ) -> Result<Forwarded, ProxyError> {
        let plan = self.current_plan(route).await?;
        let node = match &*plan {
            Plan::Ready(node) => node,
            Plan::Pending => unreachable!("current_plan waits for a binding"),
            Plan::Failed(message) => {
                return Err(ProxyError::NoRoute {
                    name: route.name.clone(),
                    why: message.to_string(),
                });
            }
            Plan::Unroutable(_) if self.ingress => {
                return Err(ProxyError::NoIngressRule {
                    name: route.name.clone(),
                });
            }
            Plan::Unroutable(why) => {
                return Err(ProxyError::NoRoute {
                    name: route.name.clone(),
                    why: why.to_string(),
                });
            }
        };
        let policy = &*route.policy;
        let may_retry = policy.classifier.may_retry(&parts.method);
        if may_retry {
            policy.budget.deposit(start);
        }
        let copy = may_retry.then_some((policy.retry_buffer.request_bytes, &self.buffers));
        let (first, replay) = AttemptBody::first(body, copy);
        let mut attempts = Attempts {
            router: self,
            route,
            policy,
            method: parts.method.clone(),
            replay,
            backoff: None,
            deadline,
            retries: 0,
            served,
        };
        let run = attempts.run(node, parts, first, start);
        match deadline {
            None => run.await,
            Some(d) => match tokio::time::timeout_at(d.at.into(), run).await {
                Ok(result) => result,
                Err(_) => Err(self.deadline_error(route, d)),
            },
        }
    }

    fn deadline_error(&self, route: &Route, d: Deadline) -> ProxyError {
        match (d.source, route.policy.total_timeout) {
            ("totalTimeoutMs", Some(timeout)) => ProxyError::Timeout {
                name: route.name.clone(),
                timeout,
            },
            (header, _) => ProxyError::DeadlineExceeded {
                name: route.name.clone(),
                header,
            },
        }
    }
}

/// What an attempt's outcome leads to.
enum Next {
    Done(Result<Forwarded, ProxyError>),
    Retry(AttemptBody),
}

// === impl Attempts ===

impl Attempts<'_> {
    async fn run(
        &mut self,
        node: &super::plan::RoutableTree,
        mut parts: Parts,
        first: AttemptBody,
        start: Instant,
    ) -> Result<Forwarded, ProxyError> {
        let grpc = self.router.protocol == Protocol::H2 && classify::is_grpc(&parts.headers);
        let client_id = headers::client_id(parts.extensions.get());
        let keep_head = self.replayable();
        let mut body = first;
        let mut first_attempt = true;
        loop {
            let leaf = node.pick();
            if first_attempt {
                leaf.client.requeues.deposit(start);
            }
            // The head of this attempt: the original, moved when no other
            // attempt can follow (a body that cannot be sent again).
            let mut head = if keep_head {
                copy_head(&parts)
            } else {
                std::mem::replace(&mut parts, Request::new(()).into_parts().0)
            };
            first_attempt = false;
            self.stamp(&mut head, leaf, client_id.clone(), grpc)?;
            let (result, outcome) = self.send(leaf, Request::from_parts(head, body)).await;
            let next = match result {
                Err(error) => self.after_error(error, outcome).await,
                Ok(rsp) => self.after_response(rsp, outcome, start).await,
            };
            match next {
                Next::Done(done) => return done,
                Next::Retry(next) => body = next,
            }
        }
    }

    /// Whether another attempt could follow the first: the body can be
    /// sent again (empty, or copied because the classifier retries the
    /// method). With an empty body a downstream proxy's `l5d-retryable`
    /// can be retried whatever the classifier, so the head is kept: a
    /// copy of its header map per request.
    fn replayable(&self) -> bool {
        !matches!(self.replay, Replay::Never)
    }

    /// Whether this classifier could retry the request: only then is a
    /// response whose class is in its trailers held for them.
    fn retryable(&self) -> bool {
        self.replayable() && self.policy.classifier.may_retry(&self.method)
    }

    /// Stamps Linkerd's headers and the deadline on one attempt's head;
    /// fails a request whose deadline has passed instead of sending it.
    fn stamp(
        &self,
        head: &mut Parts,
        leaf: &Leaf,
        client_id: Option<http::HeaderValue>,
        grpc: bool,
    ) -> Result<(), ProxyError> {
        headers::stamp_request(
            &mut head.headers,
            &Destination {
                service: &self.route.name_header,
                client: &leaf.id_header,
                residual: leaf.residual_header.as_ref(),
                ctx_dtab: self.route.ctx_dtab_header.as_ref(),
                client_id,
            },
            self.router.via(),
        );
        if let Some(d) = self.deadline {
            let now = Instant::now();
            if d.at <= now {
                return Err(self.router.deadline_error(self.route, d));
            }
            deadline::stamp(&mut head.headers, d, now, grpc);
        }
        Ok(())
    }

    /// An attempt that got no response: retried if its class allows and
    /// the classifier retries the method (a connection that failed before
    /// the request was written is the requeues' to send elsewhere; with a
    /// classifier that retries nothing it reaches the client, as in
    /// Linkerd).
    async fn after_error(&mut self, error: ProxyError, outcome: Option<Outcome>) -> Next {
        let class = self.policy.classifier.classify_error(&self.method, &error);
        if let Some(outcome) = outcome {
            outcome.record(class);
        }
        let next = if self.policy.classifier.may_retry(&self.method) {
            self.next_attempt(class).await
        } else {
            None
        };
        match next {
            Some(next) => Next::Retry(next),
            None => Next::Done(Err(error)),
        }
    }

    /// An attempt that got a response head: classified from it, or from
    /// its trailers (held to learn them when a retry is possible).
    async fn after_response(
        &mut self,
        rsp: Response<PooledBody>,
        outcome: Option<Outcome>,
        start: Instant,
    ) -> Next {
        let (mut head, upstream) = rsp.into_parts();
        let classifier = &self.policy.classifier;
        let Some(class) = classifier.classify_head(&self.method, head.status, &head.headers) else {
            return self.in_trailers(head, upstream, outcome, start).await;
        };
        if let Some(outcome) = outcome {
            outcome.record(class);
        }
        if class == ResponseClass::RetryableFailure
            && let Some(next) = self.next_attempt(class).await
        {
            return Next::Retry(next);
        }
        headers::stamp_response(&mut head.headers);
        head.headers.insert(L5D_SUCCESS_CLASS, class.header_value());
        Next::Done(Ok(Forwarded {
            rsp: Response::from_parts(head, ResponseBody::Upstream(upstream)),
            class: Some(class),
        }))
    }

    /// A response whose class is in its trailers: held (when a retry is
    /// possible) until they come or a bound passes, retried if they say
    /// so, else answered with a body that classifies it as it ends.
    async fn in_trailers(
        &mut self,
        mut head: http::response::Parts,
        upstream: PooledBody,
        outcome: Option<Outcome>,
        start: Instant,
    ) -> Next {
        let (held, rest) = if self.retryable() {
            hold(upstream, self.policy).await
        } else {
            (VecDeque::new(), Some(upstream))
        };
        if rest.is_none() {
            let trailers = held.back().and_then(Frame::trailers_ref);
            let class = self.policy.classifier.classify_trailers(trailers);
            if class == ResponseClass::RetryableFailure
                && let Some(next) = self.next_attempt(class).await
            {
                if let Some(outcome) = outcome {
                    outcome.record(class);
                }
                return Next::Retry(next);
            }
        }
        headers::stamp_response(&mut head.headers);
        let report = Report {
            policy: self.route.policy.clone(),
            outcome,
            router: self.router.metrics.clone(),
            route: self.route.clone(),
            start,
        };
        let body = Classifying::new(held, rest, report);
        Next::Done(Ok(Forwarded {
            rsp: Response::from_parts(head, ResponseBody::Classifying(Box::new(body))),
            class: None,
        }))
    }

    /// One attempt on `leaf`'s balancer, requeued to other endpoints while
    /// the request comes back unwritten and the requeue budget allows;
    /// with the endpoint's outcome to report (none after a requeue that
    /// the budget refused: its failure was reported already).
    async fn send(
        &self,
        leaf: &Leaf,
        mut req: Request<AttemptBody>,
    ) -> (Result<Response<PooledBody>, ProxyError>, Option<Outcome>) {
        let client = &leaf.client;
        let mut avoid = None;
        loop {
            let picked = match client.balancer.pick(avoid, &self.route.name) {
                Ok(picked) => picked,
                Err(e) => return (Err(e), None),
            };
            let addr = picked.addr();
            let call = picked.client().send(req);
            let result = match client.attempt_timeout {
                None => call.await,
                Some(timeout) => tokio::time::timeout(timeout, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(SendFailure::sent(ProxyError::AttemptTimeout {
                            addr: addr.to_string(),
                            timeout,
                        }))
                    }),
            };
            let outcome = picked.responded();
            match result {
                Ok(mut rsp) => {
                    // Who answered, for io.l5d.recentRequests and the
                    // span; only when read, as an extension allocates.
                    if self.served {
                        rsp.extensions_mut().insert(Served {
                            id: leaf.id.clone(),
                            endpoint: addr,
                            retries: self.retries,
                        });
                    }
                    return (Ok(rsp), Some(outcome));
                }
                Err(SendFailure {
                    error,
                    unsent: Some(unsent),
                }) => {
                    outcome.record(ResponseClass::RetryableFailure);
                    if !client.requeues.try_withdraw(Instant::now()) {
                        self.count(|m| &m.requeue_budget_exhausted);
                        return (Err(error), None);
                    }
                    self.count(|m| &m.requeues);
                    tracing::debug!(%addr, %error, "requeued to another endpoint");
                    avoid = Some(addr);
                    req = *unsent;
                }
                Err(SendFailure {
                    error,
                    unsent: None,
                }) => return (Err(error), Some(outcome)),
            }
        }
    }

    /// The body of another attempt after a failure of `class`, once its
    /// backoff has passed; `None` when there will be none (not retryable,
    /// the body cannot be replayed, the budget is spent, or the backoff
    /// would end past the deadline).
    ///
    /// A response's retryable class is the classifier's (which allows it
    /// only for the methods it retries) or a downstream proxy's
    /// `l5d-retryable`, which says the request reached no application:
    /// retried whatever the classifier, if its body can be sent again (an empty one always
    /// can; others only when copied, which only a retrying classifier
    /// asks for). The DaemonSet mesh depends on it: an incoming router
    /// whose view of a moved pod lags its caller's answers "the address
    /// set is empty", retryable, and the outgoing router tries again.
    async fn next_attempt(&mut self, class: ResponseClass) -> Option<AttemptBody> {
        if class != ResponseClass::RetryableFailure {
            return None;
        }
        let body = self.replay.body()?;
        let delay = self.delay();
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now + delay >= d.at) {
            return None;
        }
        if !self.policy.budget.try_withdraw(now) {
            self.count(|m| &m.budget_exhausted);
            return None;
        }
        self.count(|m| &m.retries);
        self.retries += 1;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some(body)
    }

    fn delay(&mut self) -> Duration {
        match self.policy.backoff {
            BackoffConfig::Constant(d) => d,
            BackoffConfig::Jittered { min, max } => self
                .backoff
                .get_or_insert_with(|| Backoff::new(min, max))
                .next_delay(),
        }
    }

    /// Counts one event in the router's and the name's retry metrics.
    fn count(&self, which: impl Fn(&crate::metrics::RetryMetrics) -> &metrics::Counter) {
        which(&self.router.retry_metrics).increment(1);
        which(&self.policy.metrics).increment(1);
    }
}

/// A copy of a request head for one attempt (extensions stay behind: the
/// endpoint needs none).
fn copy_head(parts: &Parts) -> Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head
}

/// Reads a response body whose class is in its trailers, for up to the
/// service's `classificationTimeoutMs` and `retryBufferSize.responseBytes`:
/// the frames read, and the rest of the body (`None` when it ended, the
/// trailers, if any, being the last frame held).
async fn hold(
    mut body: PooledBody,
    policy: &Policy,
) -> (VecDeque<Frame<Bytes>>, Option<PooledBody>) {
    use http_body_util::BodyExt as _;
    let mut held = VecDeque::new();
    let mut bytes = 0;
    let until = tokio::time::Instant::now() + policy.classification_timeout;
    loop {
        if bytes > policy.retry_buffer.response_bytes {
            return (held, Some(body));
        }
        match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) => return (held, Some(body)),
            Ok(None) => return (held, None),
            Ok(Some(Ok(frame))) => {
                let end = frame.is_trailers() || body.is_end_stream();
                bytes += frame.data_ref().map_or(0, Bytes::len);
                held.push_back(frame);
                if end {
                    return (held, None);
                }
            }
            // Let the client's read see the error.
            Ok(Some(Err(_))) => return (held, Some(body)),
        }
    }
}
