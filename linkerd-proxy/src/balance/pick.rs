//! The choice of one endpoint among a snapshot, in three tiers: the
//! usable endpoints (alive, or due for their probe) other than `avoid`;
//! else `avoid` if it is usable; else, every endpoint being dead or
//! probed, the one whose dead period ends soonest (a forced attempt), so
//! that failure accrual never turns a sick service into an outage.
//!
//! Within the first tier, power of two choices: two distinct endpoints at
//! random, the lower cost wins (peak-EWMA cost or requests in flight, see
//! `load.rs`); or round robin from a shared counter. The common case (both
//! samples usable) reads two atomic flags and two costs; only when a
//! sample is unusable is the whole snapshot scanned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::accrual::Attempt;
use super::endpoint::{Availability, Endpoint};

/// A probe taken by a concurrent pick makes the choice run again; after
/// this many tries the last candidate is sent as a forced attempt.
const CLAIM_TRIES: usize = 4;

/// The endpoint (its index) and how the attempt is sent. `round_robin`
/// holds the round-robin counter's value for `roundRobin` balancers.
/// `endpoints` is not empty.
pub(super) fn choose(
    endpoints: &[Arc<Endpoint>],
    avoid: Option<SocketAddr>,
    now: Instant,
    round_robin: Option<usize>,
) -> (usize, Attempt) {
    let mut last = 0;
    for _ in 0..CLAIM_TRIES {
        let choice = match round_robin {
            Some(start) => next_in_turn(endpoints, avoid, now, start),
            None => two_choices(endpoints, avoid, now),
        };
        match choice {
            Choice::Usable(i, Availability::ProbeDue) => {
                if endpoints[i].claim_probe(now) {
                    return (i, Attempt::Probe);
                }
                last = i;
            }
            Choice::Usable(i, _) => return (i, Attempt::Normal),
            Choice::Forced(i) => return (i, Attempt::Forced),
        }
    }
    (last, Attempt::Forced)
}

enum Choice {
    Usable(usize, Availability),
    Forced(usize),
}

/// The endpoint's availability if a pick may use it now.
fn usable(e: &Endpoint, now: Instant) -> Option<Availability> {
    let a = e.availability(now);
    matches!(a, Availability::Alive | Availability::ProbeDue).then_some(a)
}

/// Usable and not the endpoint to avoid.
fn preferred(e: &Endpoint, avoid: Option<SocketAddr>, now: Instant) -> Option<Availability> {
    if Some(e.addr) == avoid {
        return None;
    }
    usable(e, now)
}

fn two_choices(endpoints: &[Arc<Endpoint>], avoid: Option<SocketAddr>, now: Instant) -> Choice {
    let n = endpoints.len();
    if n == 1 {
        // One endpoint (common for a small service): no choice to make and
        // nothing to collect.
        return match preferred(&endpoints[0], avoid, now) {
            Some(a) => Choice::Usable(0, a),
            None => fallback(endpoints, avoid, now),
        };
    }
    if n >= 2 {
        let (a, b) = distinct_pair(n);
        let pa = preferred(&endpoints[a], avoid, now);
        let pb = preferred(&endpoints[b], avoid, now);
        match (pa, pb) {
            (Some(x), Some(y)) => return cheaper(endpoints, now, (a, x), (b, y)),
            (Some(x), None) => return Choice::Usable(a, x),
            (None, Some(y)) => return Choice::Usable(b, y),
            (None, None) => {}
        }
    }
    let candidates: Vec<(usize, Availability)> = endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| preferred(e, avoid, now).map(|a| (i, a)))
        .collect();
    match candidates.len() {
        0 => fallback(endpoints, avoid, now),
        1 => Choice::Usable(candidates[0].0, candidates[0].1),
        k => {
            let (a, b) = distinct_pair(k);
            cheaper(endpoints, now, candidates[a], candidates[b])
        }
    }
}

fn next_in_turn(
    endpoints: &[Arc<Endpoint>],
    avoid: Option<SocketAddr>,
    now: Instant,
    start: usize,
) -> Choice {
    let n = endpoints.len();
    (0..n)
        .map(|k| (start.wrapping_add(k)) % n)
        .find_map(|i| preferred(&endpoints[i], avoid, now).map(|a| Choice::Usable(i, a)))
        .unwrap_or_else(|| fallback(endpoints, avoid, now))
}

/// No endpoint but `avoid` is usable: `avoid` if it is, else the dead
/// endpoint whose period ends soonest (not `avoid` if another will do;
/// endpoints with a probe in flight last).
fn fallback(endpoints: &[Arc<Endpoint>], avoid: Option<SocketAddr>, now: Instant) -> Choice {
    if let Some(i) = endpoints.iter().position(|e| Some(e.addr) == avoid)
        && let Some(a) = usable(&endpoints[i], now)
    {
        return Choice::Usable(i, a);
    }
    let soonest = endpoints
        .iter()
        .enumerate()
        .min_by_key(|(_, e)| {
            let until = match e.availability(now) {
                Availability::Unavailable(until) => until,
                // Revived since the scan: as good as any.
                Availability::Alive | Availability::ProbeDue => Some(now),
            };
            (Some(e.addr) == avoid, until.is_none(), until)
        })
        .map_or(0, |(i, _)| i);
    Choice::Forced(soonest)
}

fn cheaper(
    endpoints: &[Arc<Endpoint>],
    now: Instant,
    (a, x): (usize, Availability),
    (b, y): (usize, Availability),
) -> Choice {
    if endpoints[b].load.cost(now) < endpoints[a].load.cost(now) {
        Choice::Usable(b, y)
    } else {
        Choice::Usable(a, x)
    }
}

/// Two distinct indices below `n` (at least 2), uniformly.
fn distinct_pair(n: usize) -> (usize, usize) {
    let a = fastrand::usize(..n);
    let mut b = fastrand::usize(..n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}
