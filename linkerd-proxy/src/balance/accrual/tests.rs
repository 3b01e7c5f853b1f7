//! The accrual state machine driven by explicit instants: no sleeping.

use std::time::{Duration, Instant};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn accrual(policy: AccrualPolicy, backoff: BackoffConfig) -> Accrual {
    Accrual::new(
        &AccrualConfig { policy, backoff },
        fastrand::Rng::with_seed(7),
    )
}

fn consecutive(failures: u32) -> Accrual {
    accrual(
        AccrualPolicy::ConsecutiveFailures { failures },
        BackoffConfig::Constant(10 * SEC),
    )
}

/// `io.l5d.successRateWindowed`, dead for a second.
fn windowed(rate: f64, window: Duration) -> Accrual {
    accrual(
        AccrualPolicy::SuccessRateWindowed { rate, window },
        BackoffConfig::Constant(SEC),
    )
}

/// When a dead endpoint may take its probe; `None` unless dead.
fn dead_until(a: &Accrual) -> Option<Instant> {
    match a.state {
        AccrualState::Dead { until, .. } => Some(until),
        _ => None,
    }
}

/// Records `n` attempts of one class at `at`; the transitions they made.
fn feed(a: &mut Accrual, n: usize, success: bool, at: Instant) -> Vec<Transition> {
    (0..n)
        .filter_map(|_| a.record(Attempt::Normal, success, at))
        .collect()
}

#[test]
fn consecutive_failures_trip_after_the_limit_and_a_success_resets_the_count() {
    let t0 = Instant::now();
    let mut a = consecutive(3);
    assert!(feed(&mut a, 2, false, t0).is_empty());
    assert!(feed(&mut a, 1, true, t0).is_empty());
    assert!(feed(&mut a, 2, false, t0).is_empty());
    assert_eq!(a.consecutive_failures(), 2);
    assert_eq!(
        feed(&mut a, 1, false, t0),
        [Transition::Removed {
            reason: Reason::ConsecutiveFailures(3),
            period: 10 * SEC
        }]
    );
    assert_eq!(
        a.state(t0),
        AccrualState::Dead {
            until: t0 + 10 * SEC,
            period: 10 * SEC
        }
    );
    assert_eq!(a.transitions(), 1);
    assert_eq!(a.last_transition(), Some(t0));
}

#[test]
fn a_dead_endpoint_takes_exactly_one_probe_once_its_period_is_over() {
    let t0 = Instant::now();
    let mut a = consecutive(1);
    feed(&mut a, 1, false, t0);
    assert_eq!(a.claim_probe(t0 + 9 * SEC), None, "still dead");
    let due = t0 + 10 * SEC;
    assert_eq!(a.state(due), AccrualState::Probing { in_flight: false });
    assert_eq!(a.claim_probe(due), Some(Transition::Probing));
    assert_eq!(a.state(due), AccrualState::Probing { in_flight: true });
    assert_eq!(a.claim_probe(due), None, "one probe at a time");
    // A cancelled probe lets the next request probe.
    a.release_probe();
    assert_eq!(a.claim_probe(due), Some(Transition::Probing));
}

#[test]
fn a_failed_probe_kills_for_the_next_period_and_a_successful_one_revives() {
    let t0 = Instant::now();
    let mut a = consecutive(2);
    feed(&mut a, 2, false, t0);
    let due = t0 + 10 * SEC;
    a.claim_probe(due);
    assert_eq!(
        a.record(Attempt::Probe, false, due),
        Some(Transition::ProbeFailed { period: 10 * SEC })
    );
    assert_eq!(dead_until(&a), Some(due + 10 * SEC));
    let due = due + 10 * SEC;
    a.claim_probe(due);
    assert_eq!(
        a.record(Attempt::Probe, true, due),
        Some(Transition::Revived)
    );
    assert!(a.is_alive());
    assert_eq!(a.consecutive_failures(), 0);
    // Judged afresh: one failure does not trip it again.
    assert!(feed(&mut a, 1, false, due).is_empty());
    assert_eq!(a.transitions(), 5);
}

#[test]
fn attempts_sent_before_the_trip_change_nothing_while_dead() {
    let t0 = Instant::now();
    let mut a = consecutive(1);
    feed(&mut a, 1, false, t0);
    let dead = a.state(t0);
    assert!(feed(&mut a, 3, true, t0).is_empty());
    assert!(feed(&mut a, 3, false, t0).is_empty());
    assert_eq!(a.state(t0), dead);
}

#[test]
fn a_forced_success_revives_and_a_forced_failure_changes_nothing() {
    let t0 = Instant::now();
    let mut a = consecutive(1);
    feed(&mut a, 1, false, t0);
    let dead = a.state(t0);
    assert_eq!(a.record(Attempt::Forced, false, t0), None);
    assert_eq!(a.state(t0), dead);
    assert_eq!(
        a.record(Attempt::Forced, true, t0),
        Some(Transition::Revived)
    );
    assert!(a.is_alive());
}

#[test]
fn success_rate_trips_below_the_rate_once_the_window_of_requests_was_seen() {
    let t0 = Instant::now();
    let sr = |requests| {
        accrual(
            AccrualPolicy::SuccessRate {
                rate: 0.9,
                requests,
            },
            BackoffConfig::Constant(SEC),
        )
    };
    // Failures from the start: nothing until `requests` were seen.
    let mut a = sr(10);
    assert!(feed(&mut a, 9, false, t0).is_empty());
    assert!(matches!(
        feed(&mut a, 1, false, t0)[..],
        [Transition::Removed {
            reason: Reason::SuccessRate { .. },
            ..
        }]
    ));
    // After successes, the average over ~10 requests falls below 0.9 at
    // the second failure: e^-0.1 = 0.905, e^-0.2 = 0.819.
    let mut a = sr(10);
    assert!(feed(&mut a, 20, true, t0).is_empty());
    assert_eq!(a.success_rate(), Some(1.0));
    assert!(feed(&mut a, 1, false, t0).is_empty());
    let tripped = feed(&mut a, 1, false, t0);
    let [
        Transition::Removed {
            reason: Reason::SuccessRate { rate, required },
            ..
        },
    ] = tripped[..]
    else {
        panic!("{tripped:?}");
    };
    assert!((rate - (-0.2f64).exp()).abs() < 1e-9, "{rate}");
    assert_eq!(required, 0.9);
}

#[test]
fn windowed_success_rate_waits_for_a_whole_window_and_enough_requests() {
    let t0 = Instant::now();
    let mut a = windowed(0.5, 10 * SEC);
    // Failing from the start, but within the first window: alive.
    for i in 0..9 {
        assert!(feed(&mut a, 1, false, t0 + i * SEC).is_empty());
    }
    assert!(a.is_alive());
    // One whole window seen, rate near 0: tripped.
    assert!(matches!(
        feed(&mut a, 1, false, t0 + 10 * SEC)[..],
        [Transition::Removed { .. }]
    ));

    // A success rate above the requirement keeps it alive however long.
    let mut a = windowed(0.5, 10 * SEC);
    for i in 0..100 {
        let success = i % 4 != 3;
        assert!(feed(&mut a, 1, success, t0 + i * SEC).is_empty(), "{i}");
    }
    let rate = a.success_rate().unwrap();
    assert!(rate > 0.5, "{rate}");
}

#[test]
fn too_few_requests_in_a_window_do_not_trip() {
    let t0 = Instant::now();
    let mut a = windowed(0.9, SEC);
    let minutes = (0..4).map(|i| t0 + i * 60 * SEC);
    for at in minutes {
        assert!(feed(&mut a, 1, false, at).is_empty());
    }
    assert!(!feed(&mut a, 1, false, t0 + 300 * SEC).is_empty());
}

#[test]
fn none_never_trips() {
    let t0 = Instant::now();
    let mut a = accrual(AccrualPolicy::None, BackoffConfig::Constant(SEC));
    assert!(feed(&mut a, 1000, false, t0).is_empty());
    assert_eq!(a.consecutive_failures(), 1000);
    assert_eq!(a.success_rate(), None);
}

#[test]
fn jittered_dead_periods_grow_and_start_over_after_a_revival() {
    let (min, max) = (SEC, 300 * SEC);
    let mut a = accrual(
        AccrualPolicy::ConsecutiveFailures { failures: 1 },
        BackoffConfig::Jittered { min, max },
    );
    let mut now = Instant::now();
    feed(&mut a, 1, false, now);
    let mut periods = Vec::new();
    for _ in 0..30 {
        now = dead_until(&a).unwrap();
        a.claim_probe(now);
        let Some(Transition::ProbeFailed { period }) = a.record(Attempt::Probe, false, now) else {
            panic!("the probe failed");
        };
        periods.push(period);
    }
    assert!(periods.iter().all(|p| *p >= min && *p <= max));
    assert!(
        periods[20..].iter().any(|p| *p > 30 * SEC),
        "consecutive periods grow: {periods:?}"
    );
    now = dead_until(&a).unwrap();
    a.claim_probe(now);
    a.record(Attempt::Probe, true, now);
    feed(&mut a, 1, false, now);
    let AccrualState::Dead { period, .. } = a.state(now) else {
        panic!("tripped again");
    };
    assert!(period <= 3 * min, "a revival starts over: {period:?}");
}
