//! A retry budget, as Finagle's `RetryBudget` that Linkerd 1.x uses:
//! every request deposits, every retry withdraws, and retries may add
//! `percentCanRetry` of the requests of the last `ttlSecs`, plus a reserve
//! of `minRetriesPerSec` for every second of the window so that low
//! traffic can still retry.
//!
//! One counter pair per second of the window, in atomics: a request's
//! deposit is two atomic operations on the request path, and a retry's
//! check sums the window (at most 60 slots). Concurrent retries that check
//! at the same moment may together overdraw by the number of them: the
//! budget bounds load, not an exact count, as Finagle's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::BudgetConfig;

#[derive(Debug)]
pub struct RetryBudget {
    reserve: f64,
    percent: f64,
    origin: Instant,
    slots: Box<[Slot]>,
}

/// The requests and retries of one second of the window.
#[derive(Debug, Default)]
struct Slot {
    /// The second (since `origin`) the counts are of, plus one (0: never).
    second: AtomicU64,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
}

impl RetryBudget {
    pub fn new(config: &BudgetConfig) -> Self {
        let ttl = config.ttl.as_secs().max(1);
        RetryBudget {
            reserve: f64::from(config.min_retries_per_sec) * ttl as f64,
            percent: config.percent_can_retry,
            origin: Instant::now(),
            slots: (0..ttl).map(|_| Slot::default()).collect(),
        }
    }

    /// A request at `now`.
    pub fn deposit(&self, now: Instant) {
        self.slot(now).deposits.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget at `now`, if it has one.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let current = self.second(now);
        let (mut deposits, mut withdrawals) = (0u64, 0u64);
        for slot in self.slots.iter() {
            let second = slot.second.load(Ordering::Acquire);
            if second != 0 && current - (second - 1) < self.slots.len() as u64 {
                deposits += slot.deposits.load(Ordering::Relaxed);
                withdrawals += slot.withdrawals.load(Ordering::Relaxed);
            }
        }
        let allowed = self.reserve + self.percent * deposits as f64;
        if (withdrawals + 1) as f64 > allowed {
            return false;
        }
        self.slot(now).withdrawals.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// The slot of `now`'s second, emptied first if it held an older one.
    fn slot(&self, now: Instant) -> &Slot {
        let second = self.second(now);
        let slot = &self.slots[(second % self.slots.len() as u64) as usize];
        let tag = second + 1;
        let seen = slot.second.load(Ordering::Acquire);
        if seen != tag
            && seen < tag
            && slot
                .second
                .compare_exchange(seen, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // The one thread that moved the slot on empties it; a count
            // another thread adds in between is lost, which only makes the
            // budget slightly stricter.
            slot.deposits.store(0, Ordering::Relaxed);
            slot.withdrawals.store(0, Ordering::Relaxed);
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(min: u32, percent: f64, ttl: u64) -> RetryBudget {
        RetryBudget::new(&BudgetConfig {
            min_retries_per_sec: min,
            percent_can_retry: percent,
            ttl: Duration::from_secs(ttl),
        })
    }

    fn withdrawals(b: &RetryBudget, now: Instant) -> usize {
        (0..100_000).take_while(|_| b.try_withdraw(now)).count()
    }

    #[test]
    fn the_reserve_allows_min_retries_per_second_of_the_window() {
        let b = budget(3, 0.0, 10);
        assert_eq!(withdrawals(&b, b.origin), 30);
    }

    #[test]
    fn requests_add_their_percentage() {
        let b = budget(0, 0.2, 10);
        let now = b.origin + Duration::from_millis(500);
        for _ in 0..100 {
            b.deposit(now);
        }
        assert_eq!(withdrawals(&b, now), 20);
        // Over 1000%: ten retries per request.
        let b = budget(0, 10.0, 10);
        for _ in 0..5 {
            b.deposit(now);
        }
        assert_eq!(withdrawals(&b, now), 50);
    }

    #[test]
    fn deposits_and_withdrawals_expire_after_the_ttl() {
        let b = budget(1, 0.5, 2);
        let t0 = b.origin;
        for _ in 0..10 {
            b.deposit(t0);
        }
        assert_eq!(withdrawals(&b, t0), 2 + 5);
        // One second on: still in the window, nothing left.
        assert_eq!(withdrawals(&b, t0 + Duration::from_secs(1)), 0);
        // Past the window: only the reserve again.
        assert_eq!(withdrawals(&b, t0 + Duration::from_secs(5)), 2);
    }
}
