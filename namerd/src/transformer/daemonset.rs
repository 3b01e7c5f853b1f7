//! `io.l5d.k8s.daemonset`: sends traffic for an endpoint to the proxy of
//! a DaemonSet on the same node instead, as Linkerd 1.x's daemonset
//! transformer does for the linker-to-linker mesh. Applied in namerd, on a
//! namer, so the proxies need no Kubernetes credentials.
//!
//! The proxies are the ready endpoints of their own Service (`service` in
//! `namespace`, port *name* `port`), watched through the Kubernetes namer's
//! discovery (one watcher pair for that namespace). An endpoint is matched
//! to the proxy on the same node by `nodeName` when the proxies use the
//! host network (`hostNetwork: true`: their IP is the node's, not in the
//! pods' subnet), otherwise to the proxy in the same /24 (IPv6: /64), the
//! node's pod subnet. An endpoint with no proxy beside it is dropped; none
//! left is `Neg`, so a dtab can fall back.
//!
//! The result depends on two inputs, the wrapped namer's addresses and the
//! proxies'; [`DaemonSet::proxies`] lets the transformed namer wake up on
//! the second as well as the first. The matching itself ([`map`]) is pure.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use l5d_dtab::{Addr, AddrSet, Endpoint, Path};
use tokio::sync::watch;

use crate::k8s::{ClientError, Connection};
use crate::namer::NamerState;
use crate::namer::k8s::discovery::{Discovery, DiscoveryOptions, Target};
use crate::namer::k8s::index::PortSpec;

/// How an `io.l5d.k8s.daemonset` transformer is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSetOptions {
    /// The Kubernetes namespace of the proxies' Service.
    pub namespace: String,
    /// The proxies' Service.
    pub service: String,
    /// The name of the Service port to send to (e.g. `http-incoming`).
    pub port: String,
    /// Match by node name rather than by subnet.
    pub host_network: bool,
    pub connection: Connection,
}

impl DaemonSetOptions {
    /// `/io.l5d.k8s.daemonset/<namespace>/<port>/<service>`, Linkerd's
    /// default prefix (without the `/%`).
    pub fn default_prefix(&self) -> Path {
        Path::utf8([
            "io.l5d.k8s.daemonset",
            &self.namespace,
            &self.port,
            &self.service,
        ])
    }
}

/// A running daemonset transformer: the proxies' addresses, kept current.
pub(crate) struct DaemonSet {
    host_network: bool,
    proxies: watch::Receiver<Addr>,
    /// Owns the watchers behind `proxies`.
    discovery: Discovery,
}

impl fmt::Debug for DaemonSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonSet")
            .field("host_network", &self.host_network)
            .field("proxies", &*self.proxies.borrow())
            .finish_non_exhaustive()
    }
}

impl DaemonSet {
    /// Builds the client and starts watching the proxies' namespace. Must
    /// run inside a tokio runtime.
    pub(crate) async fn start(opts: &DaemonSetOptions) -> Result<Self, ClientError> {
        let client = opts.connection.client().await?;
        let discovery = Discovery::new(
            client,
            DiscoveryOptions {
                idle_timeout: Duration::from_secs(60),
                max_backoff: Duration::from_secs(10),
                metric_label: opts.default_prefix().show(),
            },
        );
        let target = Target {
            service: opts.service.clone(),
            port: PortSpec::Name(opts.port.clone()),
            label: None,
        };
        let proxies = discovery.resolve(&opts.namespace, target);
        Ok(DaemonSet {
            host_network: opts.host_network,
            proxies,
            discovery,
        })
    }

    /// The proxies' addresses, for waking up when they change.
    pub(crate) fn proxies(&self) -> watch::Receiver<Addr> {
        self.proxies.clone()
    }

    /// `app` with each endpoint replaced by its proxy, as of now.
    pub(crate) fn transform(&self, app: Addr) -> Addr {
        map(app, &self.proxies.borrow(), self.host_network)
    }

    pub(crate) fn state(&self) -> NamerState {
        self.discovery.state()
    }
}

/// Replaces each endpoint of `app` by the proxy beside it (by node name if
/// `host_network`, else by subnet); endpoints without one are dropped and
/// none left is `Neg`. While the proxies are not known, neither is the
/// answer.
pub(crate) fn map(app: Addr, proxies: &Addr, host_network: bool) -> Addr {
    let Addr::Bound(app) = app else {
        return app;
    };
    let proxies = match proxies {
        Addr::Bound(set) => set.endpoints(),
        Addr::Neg => return Addr::Neg,
        Addr::Pending => return Addr::Pending,
        Addr::Failed(e) => return Addr::Failed(e.clone()),
    };
    let beside = |e: &Endpoint, p: &Endpoint| {
        if host_network {
            e.node_name.is_some() && e.node_name == p.node_name
        } else {
            same_subnet(e.addr.ip(), p.addr.ip())
        }
    };
    let mapped: Vec<Endpoint> = app
        .endpoints()
        .iter()
        .filter_map(|e| proxies.iter().find(|p| beside(e, p)).cloned())
        .collect();
    if mapped.is_empty() {
        return Addr::Neg;
    }
    Addr::Bound(AddrSet::with_meta(mapped, app.meta().clone()))
}

/// The same /24 (IPv4) or /64 (IPv6): Linkerd's node-subnet assumption.
fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    match (a.to_canonical(), b.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}

#[cfg(test)]
mod tests;
