//! The balancer's choice with failure accrual: real endpoints' state,
//! driven through `pick`, `responded` and `record` as the router does. A
//! dead period of an hour keeps the dead endpoints dead for the test.

use std::collections::BTreeMap;
use std::time::Duration;

use l5d_dtab::Endpoint as Replica;

use super::*;
use crate::config::{AccrualPolicy, BackoffConfig, ClientConfig, Protocol};

const HOUR: Duration = Duration::from_secs(3600);

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1000 + i))
}

fn name() -> Path {
    Path::utf8(["svc", "test"])
}

/// A balancer of `kind` over endpoints 0..n; one failure kills an endpoint
/// for an hour.
fn balancer(kind: BalancerKind, n: u16) -> (Balancer, watch::Sender<Resolution>) {
    let replicas: Vec<_> = (0..n).map(|i| Replica::new(addr(i))).collect();
    let (tx, rx) = watch::channel(Resolution::now(Addr::bound(replicas)));
    let config = BalancerConfig {
        kind,
        accrual: AccrualConfig {
            policy: AccrualPolicy::ConsecutiveFailures { failures: 1 },
            backoff: BackoffConfig::Constant(HOUR),
        },
    };
    let connector = Connector::new(Protocol::Http, &ClientConfig::default(), None);
    let b = Balancer::new(
        Path::utf8(["#", "test"]),
        rx,
        config,
        connector,
        Metrics::new(),
        "test",
    );
    (b, tx)
}

const KINDS: [BalancerKind; 3] = [
    BalancerKind::Ewma {
        decay: Duration::from_secs(10),
    },
    BalancerKind::P2c,
    BalancerKind::RoundRobin,
];

/// Kills endpoint `i`: a pick that lands on it, answered with a failure.
/// Picks that land elsewhere stay pending meanwhile, so that the load of
/// the others grows until `i` wins (peak-EWMA alone would keep choosing
/// whichever endpoint's estimate is a nanosecond lower).
fn kill(b: &Balancer, i: u16) {
    let mut elsewhere = Vec::new();
    for _ in 0..10_000 {
        let picked = b.pick(None, &name()).unwrap();
        if picked.addr() == addr(i) {
            picked
                .responded()
                .record(ResponseClass::NonRetryableFailure);
            return;
        }
        elsewhere.push(picked);
    }
    panic!("endpoint {i} was never picked");
}

/// How many of `n` picks (each answered with success) went where.
fn spread(b: &Balancer, avoid: Option<SocketAddr>, n: usize) -> BTreeMap<SocketAddr, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let picked = b.pick(avoid, &name()).unwrap();
        *counts.entry(picked.addr()).or_default() += 1;
        picked.responded().record(ResponseClass::Success);
    }
    counts
}

#[test]
fn dead_endpoints_are_never_picked_while_an_alive_one_exists() {
    for kind in KINDS {
        let (b, _tx) = balancer(kind, 5);
        for i in 0..4 {
            kill(&b, i);
        }
        let counts = spread(&b, None, 1_000);
        assert_eq!(
            counts.keys().copied().collect::<Vec<_>>(),
            [addr(4)],
            "{kind:?}"
        );
        let states = b.endpoints();
        let dead = states
            .iter()
            .filter(|s| matches!(s.accrual.state, AccrualState::Dead { .. }))
            .count();
        assert_eq!(dead, 4, "{kind:?}: {states:?}");
    }
}

#[test]
fn avoid_is_honoured_while_another_endpoint_is_usable() {
    for kind in KINDS {
        let (b, _tx) = balancer(kind, 3);
        let counts = spread(&b, Some(addr(1)), 600);
        assert!(!counts.contains_key(&addr(1)), "{kind:?}: {counts:?}");
        assert_eq!(counts.len(), 2, "{kind:?}: {counts:?}");
        // The only alive endpoint is the one to avoid: still picked.
        kill(&b, 0);
        kill(&b, 2);
        let counts = spread(&b, Some(addr(1)), 10);
        assert_eq!(
            counts.keys().copied().collect::<Vec<_>>(),
            [addr(1)],
            "{kind:?}"
        );
    }
}

#[test]
fn when_every_endpoint_is_dead_the_one_dead_longest_still_gets_requests() {
    for kind in KINDS {
        let (b, _tx) = balancer(kind, 3);
        for i in [2, 0, 1] {
            kill(&b, i);
        }
        // The endpoints by the end of their dead periods.
        let mut by_end: Vec<(Instant, SocketAddr)> = b
            .endpoints()
            .iter()
            .map(|s| match s.accrual.state {
                AccrualState::Dead { until, .. } => (until, s.addr),
                other => panic!("{kind:?}: {} is {other:?}", s.addr),
            })
            .collect();
        by_end.sort();
        let picked = b.pick(None, &name()).unwrap();
        assert_eq!(picked.addr(), by_end[0].1, "{kind:?}");
        // A forced attempt's failure leaves it dead, its period unchanged.
        picked
            .responded()
            .record(ResponseClass::NonRetryableFailure);
        let picked = b.pick(Some(by_end[0].1), &name()).unwrap();
        assert_eq!(
            picked.addr(),
            by_end[1].1,
            "{kind:?}: avoid among the dead too"
        );
        // Its success revives it.
        picked.responded().record(ResponseClass::Success);
        let revived = b.endpoints();
        let revived = revived.iter().find(|s| s.addr == by_end[1].1).unwrap();
        assert_eq!(revived.accrual.state, AccrualState::Alive, "{kind:?}");
    }
}

#[test]
fn pending_counts_until_responded_and_a_cancelled_attempt_reports_nothing() {
    let (b, _tx) = balancer(BalancerKind::P2c, 1);
    let picked = b.pick(None, &name()).unwrap();
    assert_eq!(b.endpoints()[0].pending, 1);
    let outcome = picked.responded();
    assert_eq!(b.endpoints()[0].pending, 0);
    drop(outcome);
    let dropped = b.pick(None, &name()).unwrap();
    drop(dropped);
    let state = &b.endpoints()[0];
    assert_eq!(state.pending, 0);
    assert_eq!(state.accrual.consecutive_failures, 0);
    assert_eq!(state.accrual.state, AccrualState::Alive);
}

#[test]
fn p2c_prefers_the_endpoint_with_fewer_requests_in_flight() {
    let (b, _tx) = balancer(BalancerKind::P2c, 2);
    // Hold five attempts on whichever endpoint gets them first.
    let held: Vec<Picked> = (0..5).map(|_| b.pick(None, &name()).unwrap()).collect();
    let states = b.endpoints();
    let (a, c) = (states[0].pending, states[1].pending);
    assert_eq!(a + c, 5);
    assert!(a.abs_diff(c) <= 1, "least loaded of two: {a} and {c}");
    drop(held);
}

#[test]
fn the_set_follows_the_channel_and_failures_keep_it() {
    let (b, tx) = balancer(BalancerKind::RoundRobin, 2);
    kill(&b, 0);
    tx.send_replace(Resolution::now(Addr::Failed("namerd away".into())));
    assert_eq!(b.endpoints().len(), 2, "a failure keeps the endpoints");
    let replicas: Vec<_> = [0, 2].iter().map(|i| Replica::new(addr(*i))).collect();
    tx.send_replace(Resolution::now(Addr::bound(replicas)));
    let states = b.endpoints();
    assert_eq!(
        states.iter().map(|s| s.addr).collect::<Vec<_>>(),
        [addr(0), addr(2)]
    );
    assert!(
        matches!(states[0].accrual.state, AccrualState::Dead { .. }),
        "an endpoint that stays keeps its accrual"
    );
    tx.send_replace(Resolution::now(Addr::Neg));
    let err = b.pick(None, &name()).unwrap_err();
    assert!(matches!(err, ProxyError::NoEndpoints { .. }), "{err}");
}

/// The first requests of a new balancer, at once on several threads: none
/// fails for want of endpoints while one of them builds the set (the soak
/// test saw a 502 "the address set is empty" from exactly that).
#[test]
fn concurrent_first_picks_all_find_the_endpoints() {
    for _ in 0..200 {
        let (b, _tx) = balancer(BalancerKind::P2c, 3);
        let b = std::sync::Arc::new(b);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.pick(None, &name()).map(|p| p.addr()))
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().is_ok(), "a first pick found no endpoint");
        }
    }
}
