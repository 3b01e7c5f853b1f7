//! Address sets: what a bound id ([`Bound::id`](crate::Bound)) resolves to,
//! as Finagle's `Addr` and `Address.Inet`.
//!
//! These are the types both binaries share: namerd's namers and
//! transformers produce them, `l5d-proto` carries them over the wire
//! (`Replicas`), and the proxy's interpreters publish them to its
//! balancers. They are plain std types: no serde, no I/O. The JSON and
//! protobuf shapes live at the edges that need them.
//!
//! A set is shared behind one [`Arc`] ([`AddrSet`]), so handing the current
//! value to a reader (the proxy does it on its request path through watch
//! channels) costs a reference count, never a copy of the endpoints.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// One address of a service, with what a proxy may filter or weigh on.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// IP address and port.
    pub addr: SocketAddr,
    /// The node (Kubernetes node name) the endpoint runs on, if known: the
    /// proxy's local-node filter and namerd's daemonset transformer match
    /// on it.
    pub node_name: Option<Arc<str>>,
    /// The relative weight the source gave (fs namer `* weight`, the
    /// `weight` metadata of a `Replicas` message), or `None` when it gave
    /// none. `None` and `Some(1.0)` balance alike ([`Self::effective_weight`])
    /// but are told apart because namerd writes a weight to the wire and to
    /// its JSON only when the source had one.
    pub weight: Option<f64>,
    /// Anything else the source knows, stringified. A set read from the wire
    /// keeps every key the message carried, the `nodeName` and weight keys
    /// included; writing one to the wire sets those keys from the fields.
    pub meta: BTreeMap<String, String>,
}

impl Endpoint {
    /// The weight of an endpoint whose source gave none.
    pub const DEFAULT_WEIGHT: f64 = 1.0;

    /// An endpoint with no node, weight or metadata.
    pub fn new(addr: SocketAddr) -> Self {
        Endpoint {
            addr,
            node_name: None,
            weight: None,
            meta: BTreeMap::new(),
        }
    }

    /// The weight to balance by: the source's, or [`Self::DEFAULT_WEIGHT`].
    pub fn effective_weight(&self) -> f64 {
        self.weight.unwrap_or(Self::DEFAULT_WEIGHT)
    }
}

/// The address set of a bound id, as Finagle's `Addr`.
#[derive(Clone, Debug, PartialEq)]
pub enum Addr {
    /// Not known yet.
    Pending,
    /// The id does not exist (any more).
    Neg,
    /// The source failed before it ever had an answer. Whoever publishes
    /// sets keeps a `Bound` answer through later failures instead of
    /// replacing it with this: a failure is never an empty set.
    Failed(Arc<str>),
    /// The endpoints (possibly none) and the metadata of the whole set.
    Bound(AddrSet),
}

impl Addr {
    /// A bound set without set metadata; see [`AddrSet::new`].
    pub fn bound(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        Addr::Bound(AddrSet::new(endpoints))
    }
}

/// The endpoints of a bound address set, sorted by address and without two
/// endpoints of the same address, so that equal sets compare equal whatever
/// order the source listed them in; and the metadata of the whole set.
///
/// Cloning shares the set.
#[derive(Clone)]
pub struct AddrSet(Arc<SetInner>);

#[derive(PartialEq)]
struct SetInner {
    endpoints: Box<[Endpoint]>,
    meta: BTreeMap<String, String>,
}

impl AddrSet {
    /// A set of `endpoints` without set metadata. Of several endpoints with
    /// the same address, the first one listed is kept.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        AddrSet::with_meta(endpoints, BTreeMap::new())
    }

    /// A set of `endpoints` (as [`AddrSet::new`]) with set metadata.
    pub fn with_meta(
        endpoints: impl IntoIterator<Item = Endpoint>,
        meta: BTreeMap<String, String>,
    ) -> Self {
        let mut endpoints: Vec<Endpoint> = endpoints.into_iter().collect();
        // Stable, so the first of equal addresses stays first for dedup.
        endpoints.sort_by_key(|e| e.addr);
        endpoints.dedup_by_key(|e| e.addr);
        AddrSet(Arc::new(SetInner {
            endpoints: endpoints.into_boxed_slice(),
            meta,
        }))
    }

    /// The endpoints, sorted by address.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.0.endpoints
    }

    /// The metadata of the whole set.
    pub fn meta(&self) -> &BTreeMap<String, String> {
        &self.0.meta
    }

    pub fn len(&self) -> usize {
        self.0.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.endpoints.is_empty()
    }
}

impl PartialEq for AddrSet {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl fmt::Debug for AddrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AddrSet");
        d.field("endpoints", &self.endpoints());
        if !self.meta().is_empty() {
            d.field("meta", self.meta());
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(addr: &str, node: Option<&str>) -> Endpoint {
        let mut e = Endpoint::new(addr.parse().unwrap());
        e.node_name = node.map(Arc::from);
        e
    }

    #[test]
    fn a_set_is_sorted_by_address_and_keeps_the_first_of_duplicates() {
        let set = AddrSet::new([
            ep("10.0.0.2:80", None),
            ep("10.0.0.1:80", Some("a")),
            ep("10.0.0.1:80", Some("b")),
            ep("10.0.0.1:79", None),
        ]);
        let got: Vec<(String, Option<&str>)> = set
            .endpoints()
            .iter()
            .map(|e| (e.addr.to_string(), e.node_name.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1:79".to_string(), None),
                ("10.0.0.1:80".to_string(), Some("a")),
                ("10.0.0.2:80".to_string(), None),
            ]
        );
    }

    #[test]
    fn equal_sets_compare_equal_whatever_the_order_given() {
        let a = Addr::bound([ep("10.0.0.1:80", None), ep("10.0.0.2:80", None)]);
        let b = Addr::bound([ep("10.0.0.2:80", None), ep("10.0.0.1:80", None)]);
        assert_eq!(a, b);
        let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let c = Addr::Bound(AddrSet::with_meta([ep("10.0.0.1:80", None)], meta));
        assert_ne!(Addr::bound([ep("10.0.0.1:80", None)]), c);
        assert_ne!(Addr::bound([]), Addr::Neg);
    }

    #[test]
    fn a_missing_weight_balances_as_the_default() {
        let mut e = ep("10.0.0.1:80", None);
        assert_eq!(e.effective_weight(), 1.0);
        e.weight = Some(0.25);
        assert_eq!(e.effective_weight(), 0.25);
    }
}
