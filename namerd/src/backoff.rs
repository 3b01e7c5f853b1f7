//! The jittered, capped backoff namerd's background loops wait with after
//! a failure: the SQL store's reconnects and re-reads, and the Kubernetes
//! watchers' restarts. Jitter keeps replicas from retrying in lockstep.

use std::time::Duration;

/// The first pause after a failure; it doubles up to the maximum.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Capped exponential backoff that never gives up, with jitter: each pause
/// is drawn from the upper half of the exponential step (100 ms doubling up
/// to `max`), so replicas that lost their database or API server together
/// do not reconnect in lockstep.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            next: MIN_BACKOFF.min(max),
            max,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay / 2 + delay.mul_f64(unit_random() / 2.0)
    }

    pub(crate) fn reset(&mut self) {
        self.next = MIN_BACKOFF.min(self.max);
    }
}

/// A number in [0, 1) that differs between calls and processes. Jitter
/// needs no more than this, so no random-number crate is pulled in for it.
fn unit_random() -> f64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // `RandomState` is seeded from the OS once per process.
    let bits = std::collections::hash_map::RandomState::new().hash_one(nanos);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= MIN_BACKOFF && delays[0] >= MIN_BACKOFF / 2);
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(1)));
        assert!(delays[9] >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= MIN_BACKOFF);
    }
}
