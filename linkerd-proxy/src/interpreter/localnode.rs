//! The incoming router's local-node filter (Linkerd's
//! `io.l5d.k8s.localnode` transformer, applied on the proxy side): address
//! sets keep only the endpoints on this node, so a request that reached a
//! node's proxy goes to an application instance on that node.
//!
//! Wraps any interpreter. Bindings pass through; each resolution is a
//! derived channel fed by a task that follows the inner channel, shared and
//! evicted like the others. A filtered set may be empty: that is the
//! answer (no local instance), not a failure.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use l5d_dtab::{Addr, AddrSet, Dtab, Endpoint, Path};
use l5d_runtime::watch_cache::spawn_sweeper;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::cache::{self, Cache, Entry};
use super::state_json;
use super::{BindState, DelegateError, Interpreter, Resolution};

/// Which endpoints are local.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalFilter {
    /// Endpoints whose `nodeName` is this node's (`hostNetwork: true`;
    /// from `NODE_NAME`).
    ByNode(Arc<str>),
    /// Endpoints in this pod's /24 (IPv6: /64) (`hostNetwork: false`; from
    /// `POD_IP`).
    BySubnet(IpAddr),
}

/// The environment does not say where this proxy runs.
#[derive(Debug, thiserror::Error)]
pub enum LocalFilterError {
    #[error("{var} is not set; the local-node filter needs it")]
    Missing { var: &'static str },
    #[error("{var}=`{value}` is not an IP address")]
    NotAnIp { var: &'static str, value: String },
}

/// An interpreter whose address sets are filtered to this node.
#[derive(Debug)]
pub struct LocalNode {
    inner: Arc<dyn Interpreter>,
    filter: LocalFilter,
    resolves: Cache<Path, Resolution>,
}

// === impl LocalFilter ===

impl LocalFilter {
    /// `NODE_NAME` when `host_network`, else `POD_IP`, as Linkerd's
    /// `io.l5d.k8s.localnode` reads them.
    pub fn from_env(host_network: bool) -> Result<Self, LocalFilterError> {
        Self::from_lookup(host_network, |var| std::env::var(var).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `get`.
    pub fn from_lookup(
        host_network: bool,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LocalFilterError> {
        if host_network {
            let var = "NODE_NAME";
            let node = get(var).filter(|v| !v.is_empty());
            return node
                .map(|n| LocalFilter::ByNode(n.into()))
                .ok_or(LocalFilterError::Missing { var });
        }
        let var = "POD_IP";
        let value = get(var)
            .filter(|v| !v.is_empty())
            .ok_or(LocalFilterError::Missing { var })?;
        value
            .parse()
            .map(LocalFilter::BySubnet)
            .map_err(|_| LocalFilterError::NotAnIp { var, value })
    }

    pub fn keeps(&self, e: &Endpoint) -> bool {
        match self {
            LocalFilter::ByNode(node) => e.node_name.as_deref() == Some(&**node),
            LocalFilter::BySubnet(ip) => same_subnet(*ip, e.addr.ip()),
        }
    }

    fn apply(&self, state: &Resolution) -> Resolution {
        match &state.addr {
            Addr::Bound(set) => Resolution {
                addr: Addr::Bound(AddrSet::with_meta(
                    set.endpoints().iter().filter(|e| self.keeps(e)).cloned(),
                    set.meta().clone(),
                )),
                at: state.at,
            },
            _ => state.clone(),
        }
    }
}

/// The same /24 for IPv4, the same /64 for IPv6 (IPv4-mapped addresses
/// count as IPv4).
fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    match (a.to_canonical(), b.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}

// === impl LocalNode ===

impl LocalNode {
    /// Must be called within a tokio runtime.
    pub fn new(inner: Arc<dyn Interpreter>, filter: LocalFilter, idle_ttl: Duration) -> Arc<Self> {
        let this = Arc::new(LocalNode {
            inner,
            filter,
            resolves: cache::cache(idle_ttl),
        });
        spawn_sweeper(Arc::downgrade(&this), idle_ttl, |this| {
            this.resolves.sweep();
        });
        this
    }

    pub fn filter(&self) -> &LocalFilter {
        &self.filter
    }
}

impl Interpreter for LocalNode {
    fn bind(&self, local: &Dtab, name: &Path) -> watch::Receiver<BindState> {
        self.inner.bind(local, name)
    }

    fn release(&self, local: &Dtab, name: &Path) {
        self.inner.release(local, name);
    }

    /// Drops the filtered view; the inner address set goes after the
    /// inner interpreter's idle TTL (its receiver is dropped with the
    /// filtering task, which ends only after this returns).
    fn release_resolution(&self, id: &Path) {
        self.resolves.evict_if_unused(id);
    }

    fn resolve(&self, id: &Path) -> watch::Receiver<Resolution> {
        cache::subscribe(&self.resolves, id.clone(), |id| {
            let mut inner = self.inner.resolve(id);
            let filter = self.filter.clone();
            Entry::start(Resolution::now(Addr::Pending), |entry| {
                let task = tokio::spawn(async move {
                    loop {
                        let filtered = filter.apply(&inner.borrow_and_update());
                        entry.publish(filtered);
                        // The inner channel closes only when the inner
                        // interpreter is dropped; the last value stays.
                        if inner.changed().await.is_err() {
                            return;
                        }
                    }
                });
                Some(task.abort_handle())
            })
        })
    }

    fn delegate(
        &self,
        local: &Dtab,
        path: &Path,
    ) -> BoxFuture<'static, Result<Value, DelegateError>> {
        self.inner.delegate(local, path)
    }

    fn state(&self) -> Value {
        let filter = match &self.filter {
            LocalFilter::ByNode(n) => json!({"nodeName": &**n}),
            LocalFilter::BySubnet(ip) => json!({"subnetOf": ip.to_string()}),
        };
        let streams: Vec<Value> = self
            .resolves
            .snapshot()
            .iter()
            .map(|(id, e)| state_json::resolve_json(id, e))
            .collect();
        json!({
            "kind": "localnode",
            "filter": filter,
            "streams": streams,
            "inner": self.inner.state(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_24_and_64_bits() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases = [
            ("10.1.2.3", "10.1.2.200", true),
            ("10.1.2.3", "10.1.3.3", false),
            ("10.1.2.3", "::ffff:10.1.2.9", true),
            ("fd00:1:2:3::1", "fd00:1:2:3:ffff::9", true),
            ("fd00:1:2:3::1", "fd00:1:2:4::1", false),
            ("10.1.2.3", "fd00::1", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_subnet(ip(a), ip(b)), want, "{a} {b}");
        }
    }

    #[test]
    fn filter_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let f = LocalFilter::from_lookup(true, env(&[("NODE_NAME", "n1")])).unwrap();
        assert_eq!(f, LocalFilter::ByNode("n1".into()));
        let f = LocalFilter::from_lookup(false, env(&[("POD_IP", "10.0.0.7")])).unwrap();
        assert_eq!(f, LocalFilter::BySubnet("10.0.0.7".parse().unwrap()));
        let e = LocalFilter::from_lookup(true, env(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "NODE_NAME is not set; the local-node filter needs it"
        );
        let e = LocalFilter::from_lookup(false, env(&[("POD_IP", "x")])).unwrap_err();
        assert_eq!(e.to_string(), "POD_IP=`x` is not an IP address");
    }
}
