//! The load of one endpoint: its requests in flight and, for `ewma`, its
//! peak-EWMA latency estimate. The algorithm is tower's `PeakEwma`, kept
//! as it was when tower chose for us: cost = estimate × (pending + 1); an
//! RTT above the estimate replaces it at once (peak-sensitive); otherwise
//! the estimate moves towards the sample by `1 - e^(-elapsed / decay)`,
//! and every read decays it towards zero the same way, so that an
//! endpoint not heard from for a while is tried again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The latency an endpoint is assumed to have before it answered once.
pub(crate) const DEFAULT_RTT: Duration = Duration::from_millis(30);

#[derive(Debug)]
pub(crate) struct Load {
    pending: AtomicUsize,
    /// `ewma` balancers only.
    rtt: Option<Mutex<RttEstimate>>,
    decay_ns: f64,
}

/// tower's `RttEstimate`, with the time given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RttEstimate {
    update_at: Instant,
    rtt_ns: f64,
}

// === impl Load ===

impl Load {
    /// In-flight counting only (`p2c`, `roundRobin`).
    pub(crate) fn pending_only() -> Self {
        Load {
            pending: AtomicUsize::new(0),
            rtt: None,
            decay_ns: 1.0,
        }
    }

    /// Peak-EWMA with time constant `decay`, starting at [`DEFAULT_RTT`].
    pub(crate) fn peak_ewma(decay: Duration, now: Instant) -> Self {
        Load {
            pending: AtomicUsize::new(0),
            rtt: Some(Mutex::new(RttEstimate::new(DEFAULT_RTT, now))),
            decay_ns: (decay.as_nanos() as f64).max(1.0),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// What p2c compares: the decayed estimate × (pending + 1), or the
    /// pending count.
    pub(crate) fn cost(&self, now: Instant) -> f64 {
        let pending = self.pending() as f64;
        match &self.rtt {
            None => pending,
            Some(rtt) => {
                let mut rtt = rtt.lock().unwrap_or_else(|e| e.into_inner());
                rtt.update(now, now, now, self.decay_ns) * (pending + 1.0)
            }
        }
    }

    /// The estimate at `now`, without touching it (the admin page).
    pub(crate) fn estimate(&self, now: Instant) -> Option<Duration> {
        let rtt = *self.rtt.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy = rtt;
        Some(Duration::from_nanos(
            copy.update(now, now, now, self.decay_ns) as u64,
        ))
    }

    pub(crate) fn start(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt sent at `sent_at` ended at `now` (its response head or
    /// its failure); `sample` unless it was abandoned.
    pub(crate) fn end(&self, sent_at: Instant, now: Instant, sample: bool) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
        if sample && let Some(rtt) = &self.rtt {
            let mut rtt = rtt.lock().unwrap_or_else(|e| e.into_inner());
            rtt.update(sent_at, now, now, self.decay_ns);
        }
    }
}

// === impl RttEstimate ===

impl RttEstimate {
    pub(crate) fn new(rtt: Duration, now: Instant) -> Self {
        RttEstimate {
            update_at: now,
            rtt_ns: rtt.as_nanos() as f64,
        }
    }

    /// Folds in the RTT of an attempt sent at `sent_at` and answered at
    /// `recv_at`, at `now` (a read is a zero RTT at `now`); the estimate.
    pub(crate) fn update(
        &mut self,
        sent_at: Instant,
        recv_at: Instant,
        now: Instant,
        decay_ns: f64,
    ) -> f64 {
        let rtt = recv_at.saturating_duration_since(sent_at).as_nanos() as f64;
        self.rtt_ns = if self.rtt_ns < rtt {
            rtt
        } else {
            let elapsed = now.saturating_duration_since(self.update_at).as_nanos() as f64;
            let decay = (-elapsed / decay_ns).exp();
            self.rtt_ns * decay + rtt * (1.0 - decay)
        };
        self.update_at = self.update_at.max(now);
        self.rtt_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_peak_replaces_the_estimate_at_once() {
        let t0 = Instant::now();
        let load = Load::peak_ewma(10_000 * MS, t0);
        assert_eq!(load.estimate(t0), Some(DEFAULT_RTT));
        load.start();
        load.end(t0, t0 + 500 * MS, true);
        assert_eq!(load.estimate(t0 + 500 * MS), Some(500 * MS));
    }

    #[test]
    fn lower_samples_pull_the_estimate_down_by_elapsed_time() {
        let t0 = Instant::now();
        let decay = 1_000.0 * 1e6;
        let mut e = RttEstimate::new(100 * MS, t0);
        // One time constant later, a 0 ms sample: 100 ms × e^-1.
        let t1 = t0 + 1_000 * MS;
        let got = e.update(t1, t1, t1, decay);
        assert!((got - 100e6 * (-1f64).exp()).abs() < 1.0, "{got}");
        // No time elapsed: the sample weighs nothing.
        let got2 = e.update(t1, t1 + MS, t1, decay);
        assert!((got2 - got).abs() < 1.0, "{got2}");
    }

    #[test]
    fn cost_scales_with_requests_in_flight() {
        let t0 = Instant::now();
        let load = Load::peak_ewma(10_000 * MS, t0);
        let idle = load.cost(t0);
        load.start();
        load.start();
        assert!((load.cost(t0) - 3.0 * idle).abs() < 1.0);
        let count = Load::pending_only();
        count.start();
        assert_eq!(count.cost(t0), 1.0);
        count.end(t0, t0, true);
        assert_eq!(count.cost(t0), 0.0);
    }
}
