//! Per bound id, a balancer over its endpoints: power of two choices over
//! peak-EWMA latency (`ewma`, the default) or over requests in flight
//! (`p2c`), or round robin; among the endpoints failure accrual considers
//! alive (`balance/accrual.rs`).
//!
//! This was tower's `p2c::Balance` over `PeakEwma`/`PendingRequests`. It
//! was replaced because failure accrual must skip dead endpoints and a
//! requeue must avoid the endpoint that just failed: tower's balancer
//! chooses among the services its `ReadyCache` holds as ready, so a dead
//! endpoint would have to report "not ready" from `poll_ready` and a
//! per-request exclusion would have to be a readiness change too, each
//! needing a waker to bring the endpoint back (a timer task per dead
//! endpoint, a wake-up per request); and `Balance::call` takes `&mut
//! self`, so every request went through one mutex. Here the choice is a
//! plain function of a snapshot: the load algorithm is tower's
//! (`balance/load.rs`), the sampling is the same two-random-choices.
//!
//! The request path takes no lock that another request waits on: the
//! endpoint set is read under a shared read lock (written only when the
//! id's address set changes), the address-set channel is checked with a
//! `try_lock` (a busy lock means another request is refreshing), an
//! endpoint's liveness is an atomic flag, and its load and accrual each
//! sit behind the endpoint's own mutex, held for a few instructions.
//!
//! Rules kept from the tower version: a failure or a pending state keeps
//! the current endpoints (a failure is never an empty set); `Neg` and an
//! empty bound set remove them. An endpoint that stays keeps its load and
//! accrual across address-set changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use l5d_dtab::{Addr, Path};
use tokio::sync::watch;

use crate::classify::ResponseClass;
use crate::client::{Connector, EndpointClient};
use crate::config::{AccrualConfig, BalancerConfig, BalancerKind};
use crate::error::ProxyError;
use crate::interpreter::Resolution;
use crate::metrics::Metrics;

mod accrual;
mod endpoint;
mod load;
mod pick;

pub use accrual::AccrualState;
use accrual::{Accrual, Attempt};
pub use endpoint::AccrualView;
use endpoint::{Endpoint, Shared};
use load::Load;

/// The balancer of one bound id.
#[derive(Debug)]
pub struct Balancer {
    id: Path,
    replicas: watch::Receiver<Resolution>,
    /// The receiver the endpoint set follows, marked seen on each refresh;
    /// `true` until the first one.
    watch: Mutex<(watch::Receiver<Resolution>, bool)>,
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
    kind: BalancerKind,
    accrual: AccrualConfig,
    /// The next endpoint for round robin.
    next: AtomicUsize,
    connector: Connector,
    metrics: Metrics,
    shared: Arc<Shared>,
}

/// One attempt's endpoint; counts as pending (load) until
/// [`responded`](Picked::responded) or dropped.
#[derive(Debug)]
pub struct Picked {
    endpoint: Option<Arc<Endpoint>>,
    attempt: Attempt,
    sent_at: Instant,
}

/// Reports an attempt's class to its endpoint's failure accrual; dropping
/// it without [`record`](Outcome::record) reports nothing (a cancelled
/// request says nothing about the endpoint).
#[derive(Debug)]
pub struct Outcome {
    endpoint: Option<Arc<Endpoint>>,
    attempt: Attempt,
    at: Instant,
}

/// One endpoint as `/client_state.json` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointState {
    pub addr: SocketAddr,
    /// The peak-EWMA latency estimate (`ewma` balancers).
    pub ewma: Option<Duration>,
    /// Attempts picked and not yet answered.
    pub pending: usize,
    pub accrual: AccrualView,
}

// === impl Balancer ===

impl Balancer {
    pub fn new(
        id: Path,
        replicas: watch::Receiver<Resolution>,
        config: BalancerConfig,
        connector: Connector,
        metrics: Metrics,
        router: &str,
    ) -> Self {
        let shared = Arc::new(Shared::new(&metrics, router, &id));
        Balancer {
            watch: Mutex::new((replicas.clone(), true)),
            replicas,
            endpoints: RwLock::new(Arc::from(Vec::new())),
            kind: config.kind,
            accrual: config.accrual,
            next: AtomicUsize::new(0),
            connector,
            metrics,
            shared,
            id,
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

    /// Picks an endpoint for one attempt: power of two choices (or round
    /// robin) among the endpoints failure accrual considers alive, never
    /// `avoid` when another endpoint is usable (a requeue after a
    /// connection failure goes elsewhere); when every endpoint is dead,
    /// still one of them (the one whose dead period ends soonest), never a
    /// self-inflicted outage. `NoEndpoints` when the set is empty or not
    /// known.
    pub fn pick(&self, avoid: Option<SocketAddr>, name: &Path) -> Result<Picked, ProxyError> {
        self.refresh();
        let endpoints = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        if endpoints.is_empty() {
            return Err(ProxyError::NoEndpoints {
                name: name.clone(),
                id: self.id.clone(),
                why: self.why_empty(),
            });
        }
        let now = Instant::now();
        let round_robin = (self.kind == BalancerKind::RoundRobin)
            .then(|| self.next.fetch_add(1, Ordering::Relaxed));
        let (index, attempt) = pick::choose(&endpoints, avoid, now, round_robin);
        let endpoint = endpoints[index].clone();
        drop(endpoints);
        endpoint.load.start();
        Ok(Picked {
            endpoint: Some(endpoint),
            attempt,
            sent_at: now,
        })
    }

    /// Every endpoint with its load and failure accrual.
    pub fn endpoints(&self) -> Vec<EndpointState> {
        self.refresh();
        let now = Instant::now();
        let endpoints = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        endpoints
            .iter()
            .map(|e| EndpointState {
                addr: e.addr,
                ewma: e.load.estimate(now),
                pending: e.load.pending(),
                accrual: e.accrual_view(now),
            })
            .collect()
    }

    /// Brings the endpoint set up to the address-set channel if it moved.
    fn refresh(&self) {
        let mut watch = match self.watch.try_lock() {
            Ok(watch) => watch,
            // Another request is refreshing right now. With endpoints to
            // pick from, this one uses the current set; with none yet (the
            // first requests of a new balancer, at once), it waits for that
            // refresh (microseconds) rather than fail with no endpoints.
            Err(_)
                if !self
                    .endpoints
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty() =>
            {
                return;
            }
            Err(_) => self.watch.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let (rx, first) = &mut *watch;
        if !*first && !rx.has_changed().unwrap_or(false) {
            return;
        }
        *first = false;
        let resolution = rx.borrow_and_update().clone();
        let wanted: Vec<SocketAddr> = match &resolution.addr {
            Addr::Bound(set) => set.endpoints().iter().map(|e| e.addr).collect(),
            Addr::Neg => Vec::new(),
            Addr::Pending | Addr::Failed(_) => return,
        };
        let current = self
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut next: Vec<Arc<Endpoint>> = Vec::with_capacity(wanted.len());
        for addr in wanted {
            if next.iter().any(|e| e.addr == addr) {
                continue;
            }
            let kept = current.iter().find(|e| e.addr == addr).cloned();
            next.push(kept.unwrap_or_else(|| Arc::new(self.endpoint(addr))));
        }
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(next);
    }

    fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        let metrics = self.metrics.endpoint(&self.shared.router, &self.id, addr);
        let client = self.connector.client(addr, metrics);
        let load = match self.kind {
            BalancerKind::Ewma { decay } => Load::peak_ewma(decay, Instant::now()),
            BalancerKind::P2c | BalancerKind::RoundRobin => Load::pending_only(),
        };
        let accrual = Accrual::new(&self.accrual, fastrand::Rng::new());
        Endpoint::new(client, load, accrual, &self.metrics, self.shared.clone())
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

// === impl Picked ===

impl Picked {
    pub fn addr(&self) -> SocketAddr {
        self.endpoint().addr
    }

    pub fn client(&self) -> &EndpointClient {
        &self.endpoint().client
    }

    /// The attempt got its response head or failed: records the latency
    /// sample (peak-EWMA), ends the pending count, and hands back what
    /// reports the attempt's class to failure accrual.
    pub fn responded(mut self) -> Outcome {
        let endpoint = self.endpoint.take().expect("taken only here and in drop");
        let now = Instant::now();
        endpoint.load.end(self.sent_at, now, true);
        Outcome {
            endpoint: Some(endpoint),
            attempt: self.attempt,
            at: now,
        }
    }

    fn endpoint(&self) -> &Endpoint {
        self.endpoint.as_ref().expect("taken only when consumed")
    }
}

impl Drop for Picked {
    /// Abandoned before an answer: no longer pending, no latency sample,
    /// and a probe goes to the next request.
    fn drop(&mut self) {
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.load.end(self.sent_at, self.sent_at, false);
            if self.attempt == Attempt::Probe {
                endpoint.release_probe();
            }
        }
    }
}

// === impl Outcome ===

impl Outcome {
    /// Reports the attempt's class: only `Success` counts as a success.
    pub fn record(mut self, class: ResponseClass) {
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.record(self.attempt, class.is_success(), self.at);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if let Some(endpoint) = self.endpoint.take()
            && self.attempt == Attempt::Probe
        {
            endpoint.release_probe();
        }
    }
}

#[cfg(test)]
mod tests;
