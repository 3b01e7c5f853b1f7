//! `io.linkerd.mesh.Resolver`: the replica set (address set) of a concrete
//! id from a bound tree, once (`GetReplicas`) or live (`StreamReplicas`,
//! one per leaf id in a Linkerd 1.x proxy).
//!
//! This service only forwards what the interpreter's namers publish: a
//! namer that loses its source keeps its last good set, so nothing here
//! ever turns an error into an empty set.

use std::collections::HashMap;
use std::net::IpAddr;

use l5d_proto::mesh as pb;
use pb::endpoint::{AddressFamily, Meta};
use pb::replicas;
use pb::resolver_server::Resolver as ResolverRpc;
use tonic::{Request, Response, Status};

use super::error::MeshError;
use super::stream::{self, MeshStream, OnClose, Step};
use super::{Context, refuse, request, unary};
use crate::namer::{Addr, Endpoint, fixed};

const GET_REPLICAS: &str = "GetReplicas";
const STREAM_REPLICAS: &str = "StreamReplicas";

/// Linkerd's answer to an empty id, a normal message rather than an error.
const NO_ID: &str = "No ID provided";

/// The metadata key of an endpoint's node (Finagle's `Metadata.nodeName`).
const NODE_NAME_KEY: &str = "nodeName";
/// The metadata keys of an endpoint's weight: ours, and Finagle's
/// (`WeightedAddress.weightKey`), which is what Linkerd's namerd sends.
const WEIGHT_KEYS: [&str; 2] = ["weight", "endpoint_addr_weight"];

#[derive(Debug)]
pub(crate) struct ResolverService {
    ctx: Context,
}

impl ResolverService {
    pub(crate) fn new(ctx: Context) -> Self {
        ResolverService { ctx }
    }

    /// Waits up to the pending timeout for an answer; a set that is still
    /// pending then is answered as `pending` (a state the message has,
    /// unlike a bound tree).
    async fn get(&self, req: pb::ReplicasReq) -> Result<pb::Replicas, MeshError> {
        let Some(id) = request::id(req.id.as_ref())? else {
            return Ok(no_id());
        };
        let addr = self.ctx.interpreter.resolve(&id);
        let addr = self
            .ctx
            .settled(addr, |a| !matches!(a, Addr::Pending))
            .await?;
        Ok(to_replicas(&addr))
    }
}

#[tonic::async_trait]
impl ResolverRpc for ResolverService {
    async fn get_replicas(
        &self,
        request: Request<pb::ReplicasReq>,
    ) -> Result<Response<pb::Replicas>, Status> {
        unary(GET_REPLICAS, self.get(request.into_inner())).await
    }

    type StreamReplicasStream = MeshStream<pb::Replicas>;

    async fn stream_replicas(
        &self,
        request: Request<pb::ReplicasReq>,
    ) -> Result<Response<Self::StreamReplicasStream>, Status> {
        let addr = match request::id(request.get_ref().id.as_ref()) {
            Ok(Some(id)) => self.ctx.interpreter.resolve(&id),
            Ok(None) => fixed(Addr::Failed(NO_ID.into())),
            Err(e) => return Err(refuse(STREAM_REPLICAS, e)),
        };
        // Namers answer fixed states (`neg`, an id that is not concrete)
        // with a watch whose sender is gone: such a value is final, and the
        // stream stays open with it.
        Ok(Response::new(stream::from_watch(
            STREAM_REPLICAS,
            addr,
            self.ctx.shutdown.clone(),
            OnClose::Hold,
            |addr: &Addr| Step::Send(to_replicas(addr)),
        )))
    }
}

fn no_id() -> pb::Replicas {
    to_replicas(&Addr::Failed(NO_ID.into()))
}

pub(crate) fn to_replicas(addr: &Addr) -> pb::Replicas {
    let result = match addr {
        Addr::Pending => replicas::Result::Pending(replicas::Pending {}),
        Addr::Neg => replicas::Result::Neg(replicas::Neg {}),
        Addr::Failed(message) => replicas::Result::Failed(replicas::Failed {
            message: message.to_string(),
        }),
        Addr::Bound { endpoints, meta } => replicas::Result::Bound(replicas::Bound {
            endpoints: endpoints.iter().map(to_endpoint).collect(),
            metadata: meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    };
    pb::Replicas {
        result: Some(result),
    }
}

/// As Linkerd's `ResolverService`: raw address bytes with their family
/// (an IPv4-mapped IPv6 address is IPv4, as on the JVM), `meta` always
/// present, and every metadata value stringified into `metadata`.
fn to_endpoint(e: &Endpoint) -> pb::Endpoint {
    let (family, address) = match e.addr.ip().to_canonical() {
        IpAddr::V4(ip) => (AddressFamily::Inet4, ip.octets().to_vec()),
        IpAddr::V6(ip) => (AddressFamily::Inet6, ip.octets().to_vec()),
    };
    let mut metadata: HashMap<String, String> =
        e.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(node) = &e.node_name {
        metadata.insert(NODE_NAME_KEY.into(), node.clone());
    }
    if let Some(weight) = e.weight {
        for key in WEIGHT_KEYS {
            metadata.insert(key.into(), jvm_double(weight));
        }
    }
    pb::Endpoint {
        inet_af: family.into(),
        address,
        port: i32::from(e.addr.port()),
        meta: Some(Meta {
            node_name: e.node_name.clone().unwrap_or_default(),
        }),
        metadata,
    }
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
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn addr_states_map_one_to_one() {
        let cases = [
            (
                Addr::Pending,
                replicas::Result::Pending(replicas::Pending {}),
            ),
            (Addr::Neg, replicas::Result::Neg(replicas::Neg {})),
            (
                Addr::Failed("boom".into()),
                replicas::Result::Failed(replicas::Failed {
                    message: "boom".into(),
                }),
            ),
        ];
        for (addr, result) in cases {
            assert_eq!(to_replicas(&addr).result, Some(result));
        }
        assert_eq!(
            no_id().result,
            Some(replicas::Result::Failed(replicas::Failed {
                message: "No ID provided".into()
            }))
        );
    }

    #[test]
    fn endpoints_carry_raw_addresses_and_stringified_metadata() {
        let mut v4 = Endpoint::new("10.0.0.1:8080".parse().unwrap());
        v4.node_name = Some("node-a".into());
        v4.weight = Some(2.0);
        v4.meta.insert("zone".into(), "z1".into());
        let v6 = Endpoint::new("[2001:db8::1]:9090".parse().unwrap());
        let mapped = Endpoint::new("[::ffff:10.0.0.2]:80".parse().unwrap());
        let addr = Addr::Bound {
            endpoints: vec![v4, v6, mapped],
            meta: BTreeMap::from([("set".to_string(), "x".to_string())]),
        };
        let Some(replicas::Result::Bound(bound)) = to_replicas(&addr).result else {
            panic!("bound");
        };
        assert_eq!(bound.metadata, HashMap::from([("set".into(), "x".into())]));
        let [a, b, c] = &bound.endpoints[..] else {
            panic!("three endpoints");
        };
        assert_eq!(
            (a.inet_af, &a.address[..], a.port),
            (AddressFamily::Inet4 as i32, &[10, 0, 0, 1][..], 8080)
        );
        assert_eq!(a.meta.as_ref().unwrap().node_name, "node-a");
        let expected: HashMap<String, String> = [
            ("zone", "z1"),
            ("nodeName", "node-a"),
            ("weight", "2.0"),
            ("endpoint_addr_weight", "2.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(a.metadata, expected);
        assert_eq!(
            (b.inet_af, b.address.len()),
            (AddressFamily::Inet6 as i32, 16)
        );
        assert_eq!(b.meta.as_ref().unwrap().node_name, "");
        assert_eq!(
            (c.inet_af, &c.address[..]),
            (AddressFamily::Inet4 as i32, &[10, 0, 0, 2][..])
        );
    }

    #[test]
    fn weights_print_as_on_the_jvm() {
        assert_eq!(jvm_double(1.0), "1.0");
        assert_eq!(jvm_double(0.25), "0.25");
    }
}
