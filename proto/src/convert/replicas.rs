//! `Replicas` messages and the naming core's [`Addr`], both ways: namerd's
//! resolver writes them, the proxy's mesh interpreter reads them.
//!
//! Endpoints are written as Linkerd's `ResolverService` writes them: raw
//! address bytes with their family (an IPv4-mapped IPv6 address is IPv4, as
//! on the JVM), `meta` always present, and every metadata value stringified
//! into `metadata`, the node and the weight included under the keys
//! Linkerd's namerd uses. Reading takes the node from `meta` (else the
//! `nodeName` key) and the weight from either weight key, and keeps the
//! whole metadata map, so a set namerd wrote reads back to a message equal
//! to the one it wrote.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use l5d_dtab::{Addr, AddrSet, Endpoint};

use crate::mesh::endpoint::{AddressFamily, Meta};
use crate::mesh::{self, replicas};

/// The metadata key of an endpoint's node (Finagle's `Metadata.nodeName`).
const NODE_NAME_KEY: &str = "nodeName";
/// The metadata keys of an endpoint's weight: Finagle's
/// (`WeightedAddress.weightKey`), read first, and `weight`. Both are written.
const WEIGHT_KEYS: [&str; 2] = ["endpoint_addr_weight", "weight"];

/// A `Replicas` message with an endpoint the core cannot hold; names the
/// endpoint by its position in the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Endpoint #{index}: {fault}")]
pub struct EndpointError {
    pub index: usize,
    pub fault: EndpointFault,
}

/// What was wrong with an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointFault {
    #[error("an address is 4 or 16 bytes, not {0}")]
    AddressLength(usize),
    #[error("port {0} is out of range")]
    Port(i32),
}

impl From<&Addr> for mesh::Replicas {
    fn from(addr: &Addr) -> Self {
        let result = match addr {
            Addr::Pending => replicas::Result::Pending(replicas::Pending {}),
            Addr::Neg => replicas::Result::Neg(replicas::Neg {}),
            Addr::Failed(message) => replicas::Result::Failed(replicas::Failed {
                message: message.to_string(),
            }),
            Addr::Bound(set) => replicas::Result::Bound(replicas::Bound {
                endpoints: set.endpoints().iter().map(Into::into).collect(),
                metadata: set
                    .meta()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
        };
        mesh::Replicas {
            result: Some(result),
        }
    }
}

impl TryFrom<&mesh::Replicas> for Addr {
    type Error = EndpointError;

    /// A message without a result is `Neg`, as Linkerd's client reads it.
    fn try_from(msg: &mesh::Replicas) -> Result<Self, EndpointError> {
        Ok(match &msg.result {
            None | Some(replicas::Result::Neg(_)) => Addr::Neg,
            Some(replicas::Result::Pending(_)) => Addr::Pending,
            Some(replicas::Result::Failed(f)) => Addr::Failed(f.message.as_str().into()),
            Some(replicas::Result::Bound(b)) => {
                let endpoints = b
                    .endpoints
                    .iter()
                    .enumerate()
                    .map(|(index, e)| endpoint(e).map_err(|fault| EndpointError { index, fault }))
                    .collect::<Result<Vec<_>, _>>()?;
                let meta = b
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Addr::Bound(AddrSet::with_meta(endpoints, meta))
            }
        })
    }
}

impl From<&Endpoint> for mesh::Endpoint {
    fn from(e: &Endpoint) -> Self {
        let (family, address) = match e.addr.ip().to_canonical() {
            IpAddr::V4(ip) => (AddressFamily::Inet4, ip.octets().to_vec()),
            IpAddr::V6(ip) => (AddressFamily::Inet6, ip.octets().to_vec()),
        };
        let mut metadata: HashMap<String, String> =
            e.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(node) = &e.node_name {
            metadata.insert(NODE_NAME_KEY.into(), node.to_string());
        }
        if let Some(weight) = e.weight {
            for key in WEIGHT_KEYS {
                metadata.insert(key.into(), jvm_double(weight));
            }
        }
        mesh::Endpoint {
            inet_af: family.into(),
            address,
            port: i32::from(e.addr.port()),
            meta: Some(Meta {
                node_name: e.node_name.as_deref().unwrap_or_default().to_string(),
            }),
            metadata,
        }
    }
}

fn endpoint(e: &mesh::Endpoint) -> Result<Endpoint, EndpointFault> {
    let ip = if let Ok(v4) = <[u8; 4]>::try_from(&e.address[..]) {
        IpAddr::V4(Ipv4Addr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(&e.address[..]) {
        IpAddr::V6(Ipv6Addr::from(v6))
    } else {
        return Err(EndpointFault::AddressLength(e.address.len()));
    };
    let port = u16::try_from(e.port).map_err(|_| EndpointFault::Port(e.port))?;
    let meta: BTreeMap<String, String> = e
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let node_name = e
        .meta
        .as_ref()
        .map(|m| m.node_name.as_str())
        .filter(|n| !n.is_empty())
        .or_else(|| meta.get(NODE_NAME_KEY).map(String::as_str))
        .map(Arc::from);
    let weight = WEIGHT_KEYS
        .iter()
        .find_map(|k| meta.get(*k))
        .and_then(|w| w.parse::<f64>().ok())
        .filter(|w| w.is_finite() && *w >= 0.0);
    Ok(Endpoint {
        addr: SocketAddr::new(ip, port),
        node_name,
        weight,
        meta,
    })
}

/// A weight as the JVM's `Double.toString` writes common values: `2.0`,
/// `0.5` (Rust would write `2`).
fn jvm_double(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests;
