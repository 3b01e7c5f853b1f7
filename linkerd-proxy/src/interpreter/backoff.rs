//! Reconnect delays: capped, never-ending, decorrelated jitter.
//!
//! Decorrelated jitter ("Exponential Backoff And Jitter", AWS architecture
//! blog) picks each delay uniformly between the base and three times the
//! previous delay, capped. Proxies that lost namerd at the same moment thus
//! drift apart instead of reconnecting in lockstep, and unlike Finagle's
//! `Backoff` streams used by Linkerd 1 (which could be exhausted and leave
//! a watch frozen for good) this iterator never ends.

use std::time::Duration;

/// The delay before each reconnect attempt. Pure: no clock, no sleeping.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    prev: Duration,
    rng: fastrand::Rng,
}

// === impl Backoff ===

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self::with_rng(base, max, fastrand::Rng::new())
    }

    pub(crate) fn with_rng(base: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        let base = base.max(Duration::from_millis(1));
        let max = max.max(base);
        Backoff {
            base,
            max,
            prev: base,
            rng,
        }
    }

    /// The next delay, in `[base, max]`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let lo = self.base.as_secs_f64();
        let hi = (self.prev.as_secs_f64() * 3.0).min(self.max.as_secs_f64());
        let secs = lo + self.rng.f64() * (hi - lo).max(0.0);
        self.prev = Duration::from_secs_f64(secs).clamp(self.base, self.max);
        self.prev
    }

    /// The cap: how long to wait after an answer that will not change by
    /// retrying soon (namerd refused the request).
    pub(crate) fn max(&self) -> Duration {
        self.max
    }

    /// Called after a message was received: the next failure starts over
    /// from the base delay.
    pub(crate) fn reset(&mut self) {
        self.prev = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_base_and_cap_forever() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::with_rng(base, max, fastrand::Rng::with_seed(7));
        let delays: Vec<_> = (0..10_000).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= base && *d <= max));
        // The cap is reached and the sequence keeps going (never exhausted).
        assert!(delays[100..].iter().any(|d| *d > Duration::from_secs(1)));
    }

    #[test]
    fn reset_starts_over_from_the_base() {
        let base = Duration::from_millis(100);
        let mut b = Backoff::with_rng(base, Duration::from_secs(10), fastrand::Rng::with_seed(1));
        for _ in 0..50 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= base * 3);
    }
}
