//! Helpers shared by the namer tests.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use l5d_dtab::{Activity, Addr, Bound, Endpoint, Name, NameTree, Path};
use namerd::namer::inet::HostResolver;
use tokio::sync::watch;

/// How long a change may take to show: inotify plus debounce, or a short
/// rescan, are far below this.
pub(crate) const DEADLINE: Duration = Duration::from_secs(2);

pub(crate) fn path(s: &str) -> Path {
    Path::read(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A bound set of `host:port` strings.
pub(crate) fn bound(addrs: &[&str]) -> Addr {
    Addr::bound(addrs.iter().map(|a| Endpoint::new(addr(a))))
}

/// The `host:port` strings of a bound set (`None` otherwise).
pub(crate) fn addrs_of(a: &Addr) -> Option<Vec<String>> {
    match a {
        Addr::Bound(set) => Some(set.endpoints().iter().map(|e| e.addr.to_string()).collect()),
        _ => None,
    }
}

/// A bound leaf `(id, residual)`.
pub(crate) fn leaf(id: &str, residual: &str) -> Activity<NameTree<Name>> {
    Activity::Ok(NameTree::Leaf(Name::Bound(Bound::new(
        path(id),
        path(residual),
    ))))
}

pub(crate) fn neg() -> Activity<NameTree<Name>> {
    Activity::Ok(NameTree::Neg)
}

/// Waits until the channel's value satisfies `pred`, failing the test with
/// the last value after `DEADLINE`.
pub(crate) async fn wait_until<T: Clone + std::fmt::Debug>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    pred: impl FnMut(&T) -> bool,
) -> T {
    let outcome = match tokio::time::timeout(DEADLINE, rx.wait_for(pred)).await {
        Ok(Ok(value)) => return value.clone(),
        Ok(Err(_)) => "channel closed",
        Err(_) => "timed out",
    };
    panic!(
        "{what}: {outcome} after {DEADLINE:?}; last {:?}",
        *rx.borrow()
    )
}

/// Polls `cond` (admin state, which has no channel) until it holds.
pub(crate) async fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A resolver answering from a table the test can change; names not in it
/// fail. Counts lookups per name.
#[derive(Clone, Default)]
pub(crate) struct FakeDns {
    table: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
    lookups: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeDns {
    pub(crate) fn set(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        self.table.lock().unwrap().insert(host.to_string(), ips);
    }

    pub(crate) fn remove(&self, host: &str) {
        self.table.lock().unwrap().remove(host);
    }

    pub(crate) fn lookups(&self, host: &str) -> usize {
        self.lookups.lock().unwrap().get(host).copied().unwrap_or(0)
    }

    pub(crate) fn resolver(&self) -> HostResolver {
        let dns = self.clone();
        HostResolver::from_fn(move |host| {
            *dns.lookups.lock().unwrap().entry(host.clone()).or_default() += 1;
            let answer = dns.table.lock().unwrap().get(&host).cloned();
            async move { answer.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host")) }
        })
    }
}
