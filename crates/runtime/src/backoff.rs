//! Retry delays: capped, never-ending, decorrelated jitter.
//!
//! Every background loop of both binaries waits with this after a failure:
//! the proxy's namerd streams and DNS refreshes, namerd's SQL store and
//! Kubernetes watchers. Decorrelated jitter ("Exponential Backoff And
//! Jitter", AWS architecture blog) picks each delay uniformly between the
//! base and three times the previous delay, capped. Processes that lost a
//! peer at the same moment thus drift apart instead of retrying in
//! lockstep, and unlike Finagle's `Backoff` streams used by Linkerd 1
//! (which could be exhausted and leave a watch frozen for good) this never
//! ends. Pure: no clock, no sleeping; the caller sleeps.

use std::time::Duration;

/// The delay before each retry. See the module documentation.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    prev: Duration,
    rng: fastrand::Rng,
}

// === impl Backoff ===

impl Backoff {
    /// Delays from `base` (at least 1 ms) up to `max` (at least `base`),
    /// seeded from the OS so that processes differ.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self::with_rng(base, max, fastrand::Rng::new())
    }

    /// As [`new`](Self::new) with the random source given, for tests.
    pub fn with_rng(base: Duration, max: Duration, rng: fastrand::Rng) -> Self {
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
    pub fn next_delay(&mut self) -> Duration {
        let lo = self.base.as_secs_f64();
        let hi = (self.prev.as_secs_f64() * 3.0).min(self.max.as_secs_f64());
        let secs = lo + self.rng.f64() * (hi - lo).max(0.0);
        self.prev = Duration::from_secs_f64(secs).clamp(self.base, self.max);
        self.prev
    }

    /// The cap: how long to wait after an answer that will not change by
    /// retrying soon.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Called after a success: the next failure starts over from the base.
    pub fn reset(&mut self) {
        self.prev = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);

    #[test]
    fn delays_stay_within_base_and_cap_forever() {
        let max = Duration::from_secs(2);
        let mut b = Backoff::with_rng(BASE, max, fastrand::Rng::with_seed(7));
        let delays: Vec<_> = (0..10_000).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= BASE && *d <= max));
        // The cap is reached and the sequence keeps going (never exhausted).
        assert!(delays[100..].iter().any(|d| *d > Duration::from_secs(1)));
    }

    #[test]
    fn each_delay_is_at_most_three_times_the_previous() {
        let mut b = Backoff::with_rng(BASE, Duration::from_secs(60), fastrand::Rng::with_seed(3));
        let mut prev = BASE;
        for _ in 0..1_000 {
            let d = b.next_delay();
            assert!(d <= prev * 3, "{d:?} after {prev:?}");
            prev = d;
        }
    }

    #[test]
    fn reset_starts_over_from_the_base() {
        let mut b = Backoff::with_rng(BASE, Duration::from_secs(10), fastrand::Rng::with_seed(1));
        for _ in 0..50 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= BASE * 3);
    }

    #[test]
    fn degenerate_bounds_are_raised() {
        let mut b = Backoff::with_rng(Duration::ZERO, Duration::ZERO, fastrand::Rng::with_seed(5));
        assert_eq!(b.next_delay(), Duration::from_millis(1));
        assert_eq!(b.max(), Duration::from_millis(1));
    }

    #[test]
    fn processes_seeded_differently_drift_apart() {
        let max = Duration::from_secs(10);
        let mut a = Backoff::with_rng(BASE, max, fastrand::Rng::with_seed(1));
        let mut b = Backoff::with_rng(BASE, max, fastrand::Rng::with_seed(2));
        let differ = (0..10).filter(|_| a.next_delay() != b.next_delay()).count();
        assert!(differ >= 9, "{differ} of 10 delays differ");
    }
}
