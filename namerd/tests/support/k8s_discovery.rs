//! Kubernetes service discovery as scenario tests see it: Services and
//! EndpointSlices written to the test API server, and namerd's answers read
//! back through its `io.linkerd.mesh` streams (`StreamReplicas`,
//! `StreamBoundTree` for any name), every wait bounded.

use std::time::Duration;

use l5d_dtab::{Bound, NameTree};
use l5d_proto::mesh as pb;
use pb::replicas::Result as Rep;
use serde_json::{Value, json};
use tokio::time::Instant;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::namerd_client::{CALL_LIMIT, wire};

/// A Service with named ports `(name, port, targetPort name)`.
pub(crate) fn service(namespace: &str, name: &str, ports: &[(&str, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(port_name, port)| json!({"name": port_name, "port": port, "targetPort": port_name}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": ports}
    })
}

/// One endpoint of a slice: IP, node, ready.
pub(crate) type Ep<'a> = (&'a str, &'a str, bool);

/// An EndpointSlice of `service` with one named port.
pub(crate) fn slice(
    namespace: &str,
    name: &str,
    service: &str,
    port: (&str, u16),
    endpoints: &[Ep<'_>],
) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node, ready)| {
            json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service}
        },
        "addressType": "IPv4",
        "ports": [{"name": port.0, "port": port.1, "protocol": "TCP"}],
        "endpoints": endpoints
    })
}

/// A replica set as the stream tells it; bound sets as sorted
/// `address@node` strings, so that tests compare them whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Set {
    Pending,
    Neg,
    Failed(String),
    Bound(Vec<String>),
}

/// `Set::Bound` of `address@node` strings.
pub(crate) fn bound(addrs: &[&str]) -> Set {
    let mut v: Vec<String> = addrs.iter().map(|s| s.to_string()).collect();
    v.sort();
    Set::Bound(v)
}

fn set_of(rsp: pb::Replicas) -> Set {
    match rsp.result {
        Some(Rep::Pending(_)) | None => Set::Pending,
        Some(Rep::Neg(_)) => Set::Neg,
        Some(Rep::Failed(f)) => Set::Failed(f.message),
        Some(Rep::Bound(b)) => {
            let mut v: Vec<String> = b
                .endpoints
                .iter()
                .map(|e| {
                    let ip: std::net::IpAddr = match e.address.len() {
                        4 => <[u8; 4]>::try_from(e.address.as_slice()).unwrap().into(),
                        _ => <[u8; 16]>::try_from(e.address.as_slice()).unwrap().into(),
                    };
                    let node = e.meta.as_ref().map_or("", |m| m.node_name.as_str());
                    format!("{}@{node}", std::net::SocketAddr::new(ip, e.port as u16))
                })
                .collect();
            v.sort();
            Set::Bound(v)
        }
    }
}

/// A `StreamReplicas` watch of one id.
pub(crate) struct Replicas {
    id: String,
    stream: Streaming<pb::Replicas>,
    pub(crate) last: Set,
}

impl Replicas {
    pub(crate) async fn open(channel: &Channel, id: &str) -> Replicas {
        let mut client = pb::resolver_client::ResolverClient::new(channel.clone());
        let req = pb::ReplicasReq { id: Some(wire(id)) };
        let stream = tokio::time::timeout(CALL_LIMIT, client.stream_replicas(req))
            .await
            .unwrap_or_else(|_| panic!("StreamReplicas {id}: no answer within {CALL_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("StreamReplicas {id}: {e}"))
            .into_inner();
        Replicas {
            id: id.to_string(),
            stream,
            last: Set::Pending,
        }
    }

    /// Reads until the set is `want`, at most `within`; returns how long
    /// that took.
    pub(crate) async fn until(&mut self, want: &Set, within: Duration) -> Duration {
        let start = Instant::now();
        let deadline = start + within;
        while self.last != *want {
            let item = tokio::time::timeout_at(deadline, self.stream.message()).await;
            match item {
                Ok(Ok(Some(rsp))) => self.last = set_of(rsp),
                Ok(Ok(None)) => panic!("{}: the stream ended", self.id),
                Ok(Err(status)) => panic!("{}: {status}", self.id),
                Err(_) => panic!(
                    "{}: no {want:?} within {within:?}; last {:?}",
                    self.id, self.last
                ),
            }
        }
        start.elapsed()
    }

    /// Asserts that nothing new arrives for `quiet` (a bounded check of an
    /// absence: it can miss a late change, never invent one).
    pub(crate) async fn quiet_for(&mut self, quiet: Duration) {
        if let Ok(item) = tokio::time::timeout(quiet, self.stream.message()).await {
            panic!("{}: expected no change, got {item:?}", self.id);
        }
    }
}

/// A `StreamBoundTree` watch of `name` in the dtab namespace `root`.
pub(crate) struct Tree {
    stream: Streaming<pb::BoundTreeRsp>,
    pub(crate) last: String,
}

impl Tree {
    pub(crate) async fn open(channel: &Channel, root: &str, name: &str) -> Tree {
        let req = pb::BindReq {
            root: Some(wire(root)),
            name: Some(wire(name)),
            dtab: None,
        };
        let mut client = pb::interpreter_client::InterpreterClient::new(channel.clone());
        let stream = tokio::time::timeout(CALL_LIMIT, client.stream_bound_tree(req))
            .await
            .unwrap_or_else(|_| panic!("StreamBoundTree {name}: no answer within {CALL_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("StreamBoundTree {name}: {e}"))
            .into_inner();
        Tree {
            stream,
            last: String::new(),
        }
    }

    /// Reads until the tree, shown as `id residual` leaves (`~` for Neg),
    /// is `want`, at most [`CALL_LIMIT`].
    pub(crate) async fn until(&mut self, want: &str) {
        let deadline = Instant::now() + CALL_LIMIT;
        while self.last != want {
            match tokio::time::timeout_at(deadline, self.stream.message()).await {
                Ok(Ok(Some(rsp))) => self.last = show(&rsp),
                Ok(Ok(None)) => panic!("the tree stream ended"),
                Ok(Err(status)) => panic!("tree stream: {status}"),
                Err(_) => panic!("no tree {want} within {CALL_LIMIT:?}; last {}", self.last),
            }
        }
    }
}

fn show(rsp: &pb::BoundTreeRsp) -> String {
    match rsp.tree.as_ref().map(NameTree::<Bound>::try_from) {
        Some(Ok(tree)) => tree.show_with(|b, out| {
            out.push_str(&b.id.show());
            out.push(' ');
            out.push_str(&b.residual.show());
        }),
        Some(Err(e)) => format!("(undecodable tree: {e})"),
        None => "(no tree)".to_string(),
    }
}
