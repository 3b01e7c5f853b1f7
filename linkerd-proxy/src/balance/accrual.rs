//! Failure accrual of one endpoint, as Linkerd 1.x's: a policy watches the
//! classes of the endpoint's attempts and trips it; a tripped endpoint is
//! dead for a backoff period, then due for a probe: exactly one request
//! may go to it, and its class decides. A successful probe revives the
//! endpoint (counters and backoff start over); a failed one kills it for
//! the next, longer, period.
//!
//! Pure: every call is given the time (`Instant`), so the tests drive it
//! without sleeping; the endpoint (`endpoint.rs`) holds it under its own
//! mutex and turns its transitions into metrics and logs.

use std::fmt;
use std::time::{Duration, Instant};

use l5d_runtime::Backoff;

use crate::config::{AccrualConfig, AccrualPolicy, BackoffConfig};

/// `io.l5d.successRateWindowed` trips only after at least this many
/// requests in the window, as Finagle's default `minRequestThreshold`, so
/// that one failure in a quiet window does not kill an endpoint.
const WINDOWED_MIN_REQUESTS: u64 = 5;

/// How an attempt was sent to its endpoint, which decides what its class
/// may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// To an alive endpoint: its class feeds the policy.
    Normal,
    /// The one request allowed to a dead endpoint whose period is over.
    Probe,
    /// To a dead endpoint because every endpoint was dead: a success
    /// revives it (it answered), a failure changes nothing (its period
    /// was already decided).
    Forced,
}

/// Where an endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccrualState {
    Alive,
    /// Tripped: no requests until `until` (`period` after it tripped).
    Dead {
        until: Instant,
        period: Duration,
    },
    /// The dead period is over; `in_flight` while the probe is out.
    Probing {
        in_flight: bool,
    },
}

/// A change of state worth a metric and a log line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Transition {
    /// An alive endpoint tripped.
    Removed { reason: Reason, period: Duration },
    /// The probe was sent.
    Probing,
    /// The probe failed: dead again.
    ProbeFailed { period: Duration },
    /// A probe (or a forced request) succeeded.
    Revived,
}

/// Why a policy tripped.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reason {
    ConsecutiveFailures(u32),
    SuccessRate { rate: f64, required: f64 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
            Reason::SuccessRate { rate, required } => {
                write!(f, "success rate {rate:.3} below {required}")
            }
        }
    }
}

/// The failure accrual of one endpoint.
#[derive(Debug)]
pub(crate) struct Accrual {
    policy: Policy,
    periods: Periods,
    state: AccrualState,
    /// Tracked whatever the policy, for the admin page.
    consecutive_failures: u32,
    transitions: u64,
    last_transition: Option<Instant>,
}

#[derive(Debug)]
enum Policy {
    Consecutive {
        failures: u32,
    },
    SuccessRate {
        required: f64,
        requests: u64,
        ema: Ema,
        seen: u64,
    },
    Windowed {
        required: f64,
        window: Duration,
        ema: Ema,
        since: Option<Instant>,
        seen: u64,
    },
    None,
}

/// An exponentially weighted moving average over stamps (requests or
/// time), as Finagle's `Ema`: each value weighs `1 - exp(-Δstamp / window)`.
#[derive(Debug, Default)]
struct Ema {
    last: Option<(f64, f64)>,
}

#[derive(Debug)]
enum Periods {
    Constant(Duration),
    Jittered(Backoff),
}

// === impl Accrual ===

impl Accrual {
    pub(crate) fn new(config: &AccrualConfig, rng: fastrand::Rng) -> Self {
        let policy = match config.policy {
            AccrualPolicy::ConsecutiveFailures { failures } => Policy::Consecutive { failures },
            AccrualPolicy::SuccessRate { rate, requests } => Policy::SuccessRate {
                required: rate,
                requests: u64::from(requests),
                ema: Ema::default(),
                seen: 0,
            },
            AccrualPolicy::SuccessRateWindowed { rate, window } => Policy::Windowed {
                required: rate,
                window,
                ema: Ema::default(),
                since: None,
                seen: 0,
            },
            AccrualPolicy::None => Policy::None,
        };
        let periods = match config.backoff {
            BackoffConfig::Constant(d) => Periods::Constant(d),
            BackoffConfig::Jittered { min, max } => {
                Periods::Jittered(Backoff::with_rng(min, max, rng))
            }
        };
        Accrual {
            policy,
            periods,
            state: AccrualState::Alive,
            consecutive_failures: 0,
            transitions: 0,
            last_transition: None,
        }
    }

    /// The state at `now`: a dead period that is over reads as probing.
    pub(crate) fn state(&self, now: Instant) -> AccrualState {
        match self.state {
            AccrualState::Dead { until, .. } if until <= now => {
                AccrualState::Probing { in_flight: false }
            }
            state => state,
        }
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.state == AccrualState::Alive
    }

    /// Takes the probe of an endpoint whose dead period is over: true (and
    /// the probe is in flight) unless another request took it.
    pub(crate) fn claim_probe(&mut self, now: Instant) -> Option<Transition> {
        match self.state(now) {
            AccrualState::Probing { in_flight: false } => {
                self.state = AccrualState::Probing { in_flight: true };
                self.transitioned(now);
                Some(Transition::Probing)
            }
            _ => None,
        }
    }

    /// A probe that was cancelled (its request dropped before its class
    /// was known): the next request may probe instead.
    pub(crate) fn release_probe(&mut self) {
        if self.state == (AccrualState::Probing { in_flight: true }) {
            self.state = AccrualState::Probing { in_flight: false };
        }
    }

    /// An attempt's class, at `now`.
    pub(crate) fn record(
        &mut self,
        attempt: Attempt,
        success: bool,
        now: Instant,
    ) -> Option<Transition> {
        if success {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        match (self.state, attempt) {
            (AccrualState::Alive, _) => {
                let reason = self
                    .policy
                    .observe(success, self.consecutive_failures, now)?;
                let period = self.periods.next();
                self.state = AccrualState::Dead {
                    until: now + period,
                    period,
                };
                self.transitioned(now);
                Some(Transition::Removed { reason, period })
            }
            (AccrualState::Probing { in_flight: true }, Attempt::Probe) if !success => {
                let period = self.periods.next();
                self.state = AccrualState::Dead {
                    until: now + period,
                    period,
                };
                self.transitioned(now);
                Some(Transition::ProbeFailed { period })
            }
            (_, Attempt::Probe | Attempt::Forced) if success => {
                self.state = AccrualState::Alive;
                self.policy.reset();
                self.periods.reset();
                self.transitioned(now);
                Some(Transition::Revived)
            }
            // Sent before the endpoint tripped, or forced and failed:
            // its period stands.
            _ => None,
        }
    }

    fn transitioned(&mut self, now: Instant) {
        self.transitions += 1;
        self.last_transition = Some(now);
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The success rate the policy tracks, if it tracks one.
    pub(crate) fn success_rate(&self) -> Option<f64> {
        match &self.policy {
            Policy::SuccessRate { ema, .. } | Policy::Windowed { ema, .. } => ema.value(),
            _ => None,
        }
    }

    pub(crate) fn transitions(&self) -> u64 {
        self.transitions
    }

    pub(crate) fn last_transition(&self) -> Option<Instant> {
        self.last_transition
    }
}

// === impl Policy ===

impl Policy {
    /// Feeds one class; `Some` when the endpoint should trip.
    fn observe(&mut self, success: bool, consecutive: u32, now: Instant) -> Option<Reason> {
        let value = if success { 1.0 } else { 0.0 };
        match self {
            Policy::Consecutive { failures } => {
                (consecutive >= *failures).then_some(Reason::ConsecutiveFailures(consecutive))
            }
            Policy::SuccessRate {
                required,
                requests,
                ema,
                seen,
            } => {
                *seen += 1;
                let rate = ema.update(*seen as f64, value, *requests as f64);
                (*seen >= *requests && rate < *required).then_some(Reason::SuccessRate {
                    rate,
                    required: *required,
                })
            }
            Policy::Windowed {
                required,
                window,
                ema,
                since,
                seen,
            } => {
                let start = *since.get_or_insert(now);
                *seen += 1;
                let stamp = now.saturating_duration_since(start).as_secs_f64();
                let rate = ema.update(stamp, value, window.as_secs_f64());
                let full = now.saturating_duration_since(start) >= *window;
                (full && *seen >= WINDOWED_MIN_REQUESTS && rate < *required).then_some(
                    Reason::SuccessRate {
                        rate,
                        required: *required,
                    },
                )
            }
            Policy::None => None,
        }
    }

    /// After a revival: judged afresh.
    fn reset(&mut self) {
        match self {
            Policy::SuccessRate { ema, seen, .. } => {
                *ema = Ema::default();
                *seen = 0;
            }
            Policy::Windowed {
                ema, since, seen, ..
            } => {
                *ema = Ema::default();
                *since = None;
                *seen = 0;
            }
            Policy::Consecutive { .. } | Policy::None => {}
        }
    }
}

// === impl Ema ===

impl Ema {
    fn update(&mut self, stamp: f64, value: f64, window: f64) -> f64 {
        let next = match self.last {
            None => value,
            Some((at, ema)) => {
                let w = (-(stamp - at).max(0.0) / window).exp();
                value * (1.0 - w) + ema * w
            }
        };
        self.last = Some((stamp, next));
        next
    }

    fn value(&self) -> Option<f64> {
        self.last.map(|(_, v)| v)
    }
}

// === impl Periods ===

impl Periods {
    fn next(&mut self) -> Duration {
        match self {
            Periods::Constant(d) => *d,
            Periods::Jittered(b) => b.next_delay(),
        }
    }

    fn reset(&mut self) {
        if let Periods::Jittered(b) = self {
            b.reset();
        }
    }
}

#[cfg(test)]
mod tests;
