//! One endpoint of a balancer: its client, its load and its failure
//! accrual, with the accrual's metrics and log lines.
//!
//! Whether an endpoint is alive is mirrored in an atomic flag, so that the
//! pick of a request reads it without the accrual's mutex; the mutex is
//! taken when a class is recorded and, on the pick, only for endpoints
//! that are not alive.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use l5d_dtab::Path;
use metrics::{Counter, Gauge, Label};

use super::accrual::{Accrual, AccrualState, Attempt, Transition};
use super::load::Load;
use crate::client::EndpointClient;
use crate::metrics::Metrics;

/// What a balancer's endpoints share: the labels of their log lines and
/// the per (router, client) counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub router: String,
    pub id: Path,
    removals: Counter,
    probes: Counter,
    revivals: Counter,
}

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub client: EndpointClient,
    pub load: Load,
    alive: AtomicBool,
    accrual: Mutex<Accrual>,
    /// `linkerd_failure_accrual_state`: 0 alive, 1 dead, 2 probing.
    state_gauge: Gauge,
    shared: Arc<Shared>,
}

/// Whether a pick may send a request to an endpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Availability {
    Alive,
    /// Its dead period is over and nobody probes it yet.
    ProbeDue,
    /// Dead until then (`None`: its probe is in flight).
    Unavailable(Option<Instant>),
}

// === impl Shared ===

impl Shared {
    pub(crate) fn new(metrics: &Metrics, router: &str, id: &Path) -> Self {
        let labels = || {
            vec![
                Label::new("router", router.to_string()),
                Label::new("client", id.show()),
            ]
        };
        Shared {
            router: router.to_string(),
            id: id.clone(),
            removals: metrics.counter("linkerd_failure_accrual_removals_total", labels()),
            probes: metrics.counter("linkerd_failure_accrual_probes_total", labels()),
            revivals: metrics.counter("linkerd_failure_accrual_revivals_total", labels()),
        }
    }
}

// === impl Endpoint ===

impl Endpoint {
    pub(crate) fn new(
        client: EndpointClient,
        load: Load,
        accrual: Accrual,
        metrics: &Metrics,
        shared: Arc<Shared>,
    ) -> Self {
        let addr = client.addr();
        let state_gauge = metrics.gauge(
            "linkerd_failure_accrual_state",
            vec![
                Label::new("router", shared.router.clone()),
                Label::new("client", shared.id.show()),
                Label::new("endpoint", addr.to_string()),
            ],
        );
        state_gauge.set(0.0);
        Endpoint {
            addr,
            client,
            load,
            alive: AtomicBool::new(accrual.is_alive()),
            accrual: Mutex::new(accrual),
            state_gauge,
            shared,
        }
    }

    pub(crate) fn availability(&self, now: Instant) -> Availability {
        if self.alive.load(Ordering::Acquire) {
            return Availability::Alive;
        }
        let accrual = self.accrual();
        match accrual.state(now) {
            AccrualState::Alive => Availability::Alive,
            AccrualState::Probing { in_flight: false } => Availability::ProbeDue,
            AccrualState::Probing { in_flight: true } => Availability::Unavailable(None),
            AccrualState::Dead { until, .. } => Availability::Unavailable(Some(until)),
        }
    }

    /// Takes the probe (see `Accrual::claim_probe`); false if another
    /// request took it first.
    pub(crate) fn claim_probe(&self, now: Instant) -> bool {
        let transition = self.accrual().claim_probe(now);
        let claimed = transition.is_some();
        if let Some(t) = transition {
            self.transitioned(&t);
        }
        claimed
    }

    pub(crate) fn release_probe(&self) {
        self.accrual().release_probe();
    }

    pub(crate) fn record(&self, attempt: Attempt, success: bool, now: Instant) {
        let transition = {
            let mut accrual = self.accrual();
            let t = accrual.record(attempt, success, now);
            self.alive.store(accrual.is_alive(), Ordering::Release);
            t
        };
        if let Some(t) = transition {
            self.transitioned(&t);
        }
    }

    /// What the admin page shows of the accrual, at `now`.
    pub(crate) fn accrual_view(&self, now: Instant) -> AccrualView {
        let a = self.accrual();
        AccrualView {
            state: a.state(now),
            consecutive_failures: a.consecutive_failures(),
            success_rate: a.success_rate(),
            last_transition: a.last_transition(),
            transitions: a.transitions(),
        }
    }

    fn accrual(&self) -> MutexGuard<'_, Accrual> {
        self.accrual.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn transitioned(&self, t: &Transition) {
        let (router, id, addr) = (&self.shared.router, &self.shared.id, self.addr);
        match t {
            Transition::Removed { reason, period } => {
                self.shared.removals.increment(1);
                self.state_gauge.set(1.0);
                tracing::info!(%router, client = %id, endpoint = %addr, %reason, dead_for = ?period,
                    "failure accrual: endpoint marked dead");
            }
            Transition::Probing => {
                self.shared.probes.increment(1);
                self.state_gauge.set(2.0);
                tracing::info!(%router, client = %id, endpoint = %addr,
                    "failure accrual: dead period over, probing endpoint");
            }
            Transition::ProbeFailed { period } => {
                self.state_gauge.set(1.0);
                tracing::info!(%router, client = %id, endpoint = %addr, reason = "the probe failed",
                    dead_for = ?period, "failure accrual: endpoint marked dead");
            }
            Transition::Revived => {
                self.shared.revivals.increment(1);
                self.state_gauge.set(0.0);
                tracing::info!(%router, client = %id, endpoint = %addr,
                    "failure accrual: endpoint revived");
            }
        }
    }
}

/// An endpoint's failure accrual as the admin page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AccrualView {
    /// A dead period that is over shows as `Probing { in_flight: false }`.
    pub state: AccrualState,
    pub consecutive_failures: u32,
    /// The success rate the policy tracks (`io.l5d.successRate*` only).
    pub success_rate: Option<f64>,
    pub last_transition: Option<Instant>,
    /// State changes since the endpoint joined.
    pub transitions: u64,
}
