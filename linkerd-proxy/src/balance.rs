//! Per bound id, a balancer over its endpoints: power of two choices over
//! peak-EWMA latency (the default) or over requests in flight, both
//! tower's (`tower::balance::p2c` with `tower::load`), or round robin.
//!
//! A balancer is shared by every request for its id. tower's `Balance`
//! needs `&mut self`, so it sits behind a mutex held only while it picks an
//! endpoint and starts the call (a few hundred nanoseconds); the response
//! is awaited outside the lock. Endpoint clients are always ready, so a
//! balancer is never waited on: one with no endpoints fails the request at
//! once.

use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{Either, FutureExt, TryFutureExt};
use http::{Request, Response};
use l5d_dtab::{Addr, Path};
use tokio::sync::watch;
use tower::Service;
use tower::balance::p2c::Balance;
use tower::load::{CompleteOnResponse, PeakEwmaDiscover, PendingRequestsDiscover};

use crate::client::{Connector, PooledBody, RequestBody};
use crate::config::BalancerKind;
use crate::error::ProxyError;
use crate::interpreter::Resolution;
use crate::metrics::Metrics;

mod discover;
mod round_robin;

use discover::EndpointDiscover;
use round_robin::RoundRobin;

/// The latency an endpoint is assumed to have before it answered once.
const DEFAULT_RTT: Duration = Duration::from_millis(30);

type Req = Request<RequestBody>;

/// The balancer of one bound id.
#[derive(Debug)]
pub struct Balancer {
    id: Path,
    replicas: watch::Receiver<Resolution>,
    lb: Mutex<Lb>,
}

#[derive(Debug)]
enum Lb {
    Ewma(Balance<PeakEwmaDiscover<EndpointDiscover>, Req>),
    LeastLoaded(Balance<PendingRequestsDiscover<EndpointDiscover>, Req>),
    RoundRobin(RoundRobin),
}

impl Balancer {
    pub fn new(
        id: Path,
        replicas: watch::Receiver<Resolution>,
        kind: BalancerKind,
        connector: Connector,
        metrics: Metrics,
        router: &str,
    ) -> Self {
        let discover = EndpointDiscover::new(
            id.clone(),
            replicas.clone(),
            connector,
            metrics,
            router.to_string(),
        );
        let lb = match kind {
            BalancerKind::Ewma { decay } => Lb::Ewma(Balance::new(PeakEwmaDiscover::new(
                discover,
                DEFAULT_RTT,
                decay,
                CompleteOnResponse::default(),
            ))),
            BalancerKind::P2c => Lb::LeastLoaded(Balance::new(PendingRequestsDiscover::new(
                discover,
                CompleteOnResponse::default(),
            ))),
            BalancerKind::RoundRobin => Lb::RoundRobin(RoundRobin::new(discover)),
        };
        Balancer {
            id,
            replicas,
            lb: Mutex::new(lb),
        }
    }

    pub fn id(&self) -> &Path {
        &self.id
    }

    /// The id's current address set.
    pub fn replicas(&self) -> watch::Receiver<Resolution> {
        self.replicas.clone()
    }

    /// True when the id currently has at least one endpoint.
    pub fn has_endpoints(&self) -> bool {
        matches!(&self.replicas.borrow().addr, Addr::Bound(set) if !set.is_empty())
    }

    /// Picks an endpoint and sends `req` to it. The returned future does
    /// not hold the balancer.
    pub fn dispatch(
        &self,
        req: Req,
        name: &Path,
    ) -> Result<impl Future<Output = Result<Response<PooledBody>, ProxyError>> + use<>, ProxyError>
    {
        // The discover stream is read synchronously on each call (see
        // discover.rs), so a no-op waker is enough: nothing here ever
        // waits for a wake-up.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut lb = self.lb.lock().expect("not poisoned");
        let ready = match &mut *lb {
            Lb::Ewma(b) => b.poll_ready(&mut cx),
            Lb::LeastLoaded(b) => b.poll_ready(&mut cx),
            Lb::RoundRobin(b) => b.poll_ready(&mut cx).map_err(Into::into),
        };
        match ready {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                return Err(ProxyError::NoEndpoints {
                    name: name.clone(),
                    id: self.id.clone(),
                    why: e.to_string(),
                });
            }
            Poll::Pending => {
                return Err(ProxyError::NoEndpoints {
                    name: name.clone(),
                    id: self.id.clone(),
                    why: self.why_empty(),
                });
            }
        }
        Ok(match &mut *lb {
            Lb::Ewma(b) => Either::Left(Either::Left(b.call(req).map_err(from_box))),
            Lb::LeastLoaded(b) => Either::Left(Either::Right(b.call(req).map_err(from_box))),
            Lb::RoundRobin(b) => Either::Right(b.call(req).map(|r| r)),
        })
    }

    fn why_empty(&self) -> String {
        match &self.replicas.borrow().addr {
            Addr::Pending => "the address set is not known yet".to_string(),
            Addr::Neg => "the id does not exist".to_string(),
            Addr::Failed(message) => format!("resolution failed: {message}"),
            Addr::Bound(_) => "the address set is empty".to_string(),
        }
    }
}

/// tower's balancer boxes errors; ours are all [`ProxyError`]s.
fn from_box(e: tower::BoxError) -> ProxyError {
    match e.downcast::<ProxyError>() {
        Ok(e) => *e,
        Err(e) => ProxyError::Upstream {
            addr: "(balancer)".to_string(),
            message: e.to_string(),
        },
    }
}
