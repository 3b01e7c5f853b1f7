//! `Replicas` messages into address sets. Lives here rather than in
//! `l5d-proto`'s `convert` because the target types (`Endpoint` with node
//! name and weight) are the proxy's, not the naming core's.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use l5d_proto::mesh::{self as pb, replicas};

use crate::interpreter::Endpoint;

/// The metadata keys a weight may arrive under: ours, and Finagle's
/// (`WeightedAddress.weightKey`), which Linkerd's namerd sends.
const WEIGHT_KEYS: [&str; 2] = ["endpoint_addr_weight", "weight"];
const NODE_NAME_KEY: &str = "nodeName";

/// One `Replicas` message, checked.
#[derive(Debug, PartialEq)]
pub(crate) enum Replicas {
    Pending,
    Neg,
    Failed(Arc<str>),
    Bound(Arc<[Endpoint]>),
}

/// Checks a message; an error names the endpoint that was wrong. A message
/// without a result is `Neg`, as Linkerd's client reads it.
pub(crate) fn convert(msg: &pb::Replicas) -> Result<Replicas, String> {
    Ok(match &msg.result {
        None | Some(replicas::Result::Neg(_)) => Replicas::Neg,
        Some(replicas::Result::Pending(_)) => Replicas::Pending,
        Some(replicas::Result::Failed(f)) => Replicas::Failed(f.message.as_str().into()),
        Some(replicas::Result::Bound(b)) => {
            let mut eps = b
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| endpoint(e).map_err(|why| format!("invalid Endpoint #{i}: {why}")))
                .collect::<Result<Vec<_>, _>>()?;
            // A set: the order namerd happened to send carries no meaning,
            // and a stable order makes an unchanged set compare equal.
            eps.sort_by_key(|e| e.addr);
            Replicas::Bound(eps.into())
        }
    })
}

fn endpoint(e: &pb::Endpoint) -> Result<Endpoint, String> {
    let ip = match e.address.len() {
        4 => IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(&e.address[..]).expect("4 bytes"),
        )),
        16 => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&e.address[..]).expect("16 bytes"),
        )),
        n => return Err(format!("an address is 4 or 16 bytes, not {n}")),
    };
    let port = u16::try_from(e.port).map_err(|_| format!("port {} is out of range", e.port))?;
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
        .filter(|w| w.is_finite() && *w >= 0.0)
        .unwrap_or(1.0);
    Ok(Endpoint {
        addr: SocketAddr::new(ip, port),
        node_name,
        weight,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ep(address: Vec<u8>, port: i32, node: &str, md: &[(&str, &str)]) -> pb::Endpoint {
        pb::Endpoint {
            inet_af: 0,
            address,
            port,
            meta: Some(pb::endpoint::Meta {
                node_name: node.into(),
            }),
            metadata: md
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        }
    }

    fn bound(endpoints: Vec<pb::Endpoint>) -> pb::Replicas {
        pb::Replicas {
            result: Some(replicas::Result::Bound(replicas::Bound {
                endpoints,
                metadata: HashMap::new(),
            })),
        }
    }

    #[test]
    fn endpoints_carry_node_weight_and_metadata() {
        let msg = bound(vec![
            ep(vec![10, 0, 0, 2], 80, "", &[("weight", "2.0")]),
            ep(vec![10, 0, 0, 1], 8080, "node-a", &[("set", "x")]),
            ep([0u8; 16].to_vec(), 1, "", &[("nodeName", "node-b")]),
        ]);
        let Replicas::Bound(eps) = convert(&msg).unwrap() else {
            panic!("bound")
        };
        let addrs: Vec<String> = eps.iter().map(|e| e.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:8080", "10.0.0.2:80", "[::]:1"]);
        assert_eq!(eps[0].node_name.as_deref(), Some("node-a"));
        assert_eq!(eps[0].weight, 1.0);
        assert_eq!(eps[0].meta.get("set").map(String::as_str), Some("x"));
        assert_eq!(eps[1].weight, 2.0);
        assert_eq!(eps[2].node_name.as_deref(), Some("node-b"));
    }

    #[test]
    fn bad_messages_are_rejected_or_neg() {
        let err = convert(&bound(vec![ep(vec![1, 2, 3], 80, "", &[])])).unwrap_err();
        assert_eq!(
            err,
            "invalid Endpoint #0: an address is 4 or 16 bytes, not 3"
        );
        let err = convert(&bound(vec![ep(vec![1, 2, 3, 4], 70000, "", &[])])).unwrap_err();
        assert_eq!(err, "invalid Endpoint #0: port 70000 is out of range");
        assert_eq!(convert(&pb::Replicas { result: None }), Ok(Replicas::Neg));
    }
}
