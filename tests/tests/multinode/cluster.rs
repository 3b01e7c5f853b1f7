//! The DaemonSet mesh on three nodes ([`super::net`]): in the root
//! namespace the Kubernetes API test server (in-process, loopback only:
//! only namerd talks to it) and namerd (`namerd-config`, ConfigMap
//! storage, its gRPC API on the bridge); on every node one linkerd-proxy
//! (`l5d-config`, the incoming routers behind mutual TLS with the
//! documented certificate names) and the demo "pods" a test starts, bound
//! to the node's address.
//!
//! The API server holds what a cluster's controllers would write: the
//! `l5d` Service and its EndpointSlice (the DaemonSet's pods, one per node,
//! the node's address and `nodeName`), and for each demo Service the
//! Service and EndpointSlices of the pods the test says back it
//! ([`Cluster::publish`]). Ingress tests add their objects with
//! [`Cluster::apply`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy};
use l5d_k8s_api_server::{ApiServer, Resource};
use l5d_runtime::testing::TestPki;
use serde_json::{Value, json};

use super::deploy::{self, INGRESS_NAMES, L5D_NAMES, NAMERD_NAMES};
use super::net::{Net, Node};

/// The nodes' names (`spec.nodeName`).
pub(crate) const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

/// The Kubernetes namespace of the demo Services (the dtabs' `default`).
pub(crate) const NAMESPACE: &str = "default";

/// The `l5d` Service's ports, as in 30-l5d.yaml.
const L5D_PORTS: [(&str, u16); 4] = [
    ("http-incoming", 4141),
    ("h2-incoming", 4241),
    ("grpc-incoming", 4341),
    ("admin", 9990),
];

/// docs/kubernetes.md's rule for a gRPC service whose name has capitals
/// (the demo's `l5d.demo.Greeter`), added to both gRPC namespaces: it is
/// the Service `greeter`.
const GREETER_RULE: &str = "/svc/l5d.demo.Greeter => /srv/greeter ;\n";

/// A demo pod: an `l5d-demo` process inside a node.
#[derive(Debug)]
pub(crate) struct Pod {
    pub(crate) node: String,
    pub(crate) demo: Demo,
}

/// The running mesh. Fields drop in order: processes first, the network
/// last.
#[derive(Debug)]
pub(crate) struct Cluster {
    pods: BTreeMap<String, Pod>,
    proxies: BTreeMap<String, Proxy>,
    pub(crate) namerd: Namerd,
    pub(crate) api: ApiServer,
    _pki: TestPki,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) net: Net,
}

// === impl Cluster ===

impl Cluster {
    /// Builds the network, starts the API server, namerd (dtabs seeded
    /// from 40-namerd-dtabs.yaml with namerctl) and one proxy per node.
    /// `None` when the test cannot run here (not root; see [`Net`]).
    pub(crate) async fn start() -> Option<Cluster> {
        let started = Instant::now();
        let net = Net::create(&NODES)?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = TestPki::new();
        let (l5d, namerd) = (
            pki.issue("l5d", &L5D_NAMES),
            pki.issue("namerd", &NAMERD_NAMES),
        );
        let l5d_tls = deploy::secret_dir(
            &dir.path().join("l5d-tls"),
            &l5d.cert,
            &l5d.key,
            &pki.ca_cert,
        );
        let namerd_tls = deploy::secret_dir(
            &dir.path().join("namerd-tls"),
            &namerd.cert,
            &namerd.key,
            &pki.ca_cert,
        );
        let ingress = pki.issue("ingress", &INGRESS_NAMES);
        let ingress_tls = deploy::secret_dir(
            &dir.path().join("l5d-ingress-tls"),
            &ingress.cert,
            &ingress.key,
            &pki.ca_cert,
        );

        let api = ApiServer::start().await.expect("the API server starts");
        api.apply(l5d_service());
        api.apply(l5d_endpoints(&net.nodes));
        let kubeconfig = api.kubeconfig(dir.path()).expect("a kubeconfig");
        let env = format!("KUBECONFIG={}", kubeconfig.display());
        let config = deploy::namerd_config(net.gateway, &namerd_tls);
        let namerd = Namerd::start_via(&["env", &env], &config).await;

        let proxies = net
            .nodes
            .iter()
            .map(|node| start_proxy(node, &namerd.mesh, &l5d_tls, &ingress_tls));
        let (proxies, ()) = tokio::join!(
            futures::future::join_all(proxies),
            seed_dtabs(&namerd, dir.path())
        );
        let proxies = NODES.iter().map(|n| n.to_string()).zip(proxies).collect();
        eprintln!("multinode: the cluster started in {:?}", started.elapsed());
        Some(Cluster {
            pods: BTreeMap::new(),
            proxies,
            namerd,
            api,
            _pki: pki,
            dir,
            net,
        })
    }

    pub(crate) fn node(&self, name: &str) -> &Node {
        self.net.node(name)
    }

    /// The proxy on `node`.
    pub(crate) fn proxy(&self, node: &str) -> &Proxy {
        self.proxies
            .get(node)
            .unwrap_or_else(|| panic!("no proxy on {node}"))
    }

    /// `node`'s router `label` (`http-outgoing`, ...), as `IP:PORT`.
    pub(crate) fn router(&self, node: &str, label: &str) -> String {
        self.proxy(node).router(label).to_string()
    }

    /// SIGKILL to the proxy on `node`.
    pub(crate) async fn kill_proxy(&mut self, node: &str) {
        let proxy = self.proxies.remove(node).expect("a running proxy");
        proxy.kill().await;
    }

    /// Starts `l5d-demo <kind> --name <name>` inside `node` on its address
    /// and a port the OS picks.
    pub(crate) async fn start_pod(&mut self, node: &str, kind: &str, name: &str) -> SocketAddr {
        let at = self.node(node);
        let exec = at.exec();
        let exec: Vec<&str> = exec.iter().map(String::as_str).collect();
        let listen = format!("{}:0", at.ip);
        let demo = Demo::start_via(&exec, kind, name, &listen, &[]).await;
        let addr = demo.addr;
        let pod = Pod {
            node: node.to_string(),
            demo,
        };
        assert!(
            self.pods.insert(name.to_string(), pod).is_none(),
            "{name} runs"
        );
        addr
    }

    /// SIGTERM to a pod (it finishes what it serves, a few seconds at most).
    pub(crate) async fn stop_pod(&mut self, name: &str) {
        let pod = self.pods.remove(name).expect("a running pod");
        assert_eq!(pod.demo.stop().await, Some(0), "{name} stops cleanly");
    }

    pub(crate) fn pod(&self, name: &str) -> &Pod {
        self.pods
            .get(name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    /// Creates or replaces an object in the API server.
    pub(crate) fn apply(&self, object: Value) -> Value {
        self.api.apply(object)
    }

    /// The Service `service` (in [`NAMESPACE`]) with the named `ports`,
    /// all served by each pod on its one port, and EndpointSlices for
    /// `endpoints` (pod name, ready): one slice per distinct pod port, as
    /// the EndpointSlice controller groups them, named `<service>-<i>`;
    /// slices left over from an earlier call are deleted.
    pub(crate) fn publish(&self, service: &str, ports: &[&str], endpoints: &[(&str, bool)]) {
        let service_ports: Vec<Value> = ports
            .iter()
            .map(|name| json!({"name": name, "port": 80, "targetPort": name}))
            .collect();
        self.apply(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": NAMESPACE},
            "spec": {"ports": service_ports}
        }));
        let mut by_port: BTreeMap<u16, Vec<Value>> = BTreeMap::new();
        for (name, ready) in endpoints {
            let pod = self.pod(name);
            let node = self.node(&pod.node);
            by_port
                .entry(pod.demo.addr.port())
                .or_default()
                .push(json!({
                    "addresses": [node.ip.to_string()],
                    "nodeName": node.name,
                    "conditions": {"ready": ready, "serving": true, "terminating": !ready},
                }));
        }
        let count = by_port.len();
        for (i, (port, endpoints)) in by_port.into_iter().enumerate() {
            let ports: Vec<Value> = ports
                .iter()
                .map(|name| json!({"name": name, "port": port, "protocol": "TCP"}))
                .collect();
            self.apply(slice(
                NAMESPACE,
                &format!("{service}-{i}"),
                service,
                ports,
                endpoints,
            ));
        }
        for old in self.api.list(Resource::EndpointSlices, NAMESPACE) {
            let meta = &old["metadata"];
            let name = meta["name"].as_str().unwrap_or_default();
            let index = name
                .strip_prefix(&format!("{service}-"))
                .and_then(|i| i.parse::<usize>().ok());
            let ours = meta["labels"]["kubernetes.io/service-name"] == service;
            if ours && index.is_some_and(|i| i >= count) {
                self.api.remove(Resource::EndpointSlices, NAMESPACE, name);
            }
        }
    }

    /// [`Cluster::publish`] with every pod ready.
    pub(crate) fn expose(&self, service: &str, ports: &[&str], pods: &[&str]) {
        let endpoints: Vec<(&str, bool)> = pods.iter().map(|p| (*p, true)).collect();
        self.publish(service, ports, &endpoints);
    }

    /// The proxy on `node`'s `/admin/metrics.json`.
    pub(crate) async fn metrics(&self, node: &str) -> Metrics {
        let url = format!("http://{}/admin/metrics.json", self.proxy(node).admin);
        let (code, out, err) = l5d_e2e::curl(&[&url]).await;
        assert_eq!(code, 0, "{url}: {err}");
        Metrics(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{url}: {e}: {out}")))
    }

    /// Edits the dtab namespace `ns` with namerctl (get, `edit`, update
    /// compare-and-set); how long namerctl took.
    pub(crate) async fn edit_dtab(&self, ns: &str, edit: impl FnOnce(&str) -> String) -> Duration {
        let (text, version) = self.namerd.dtab(ns).await;
        let text = edit(&text);
        let since = Instant::now();
        self.namerd
            .update_dtab(self.dir.path(), ns, &version, &text)
            .await;
        since.elapsed()
    }
}

/// A proxy's metrics, as `/admin/metrics.json`'s flat map.
#[derive(Debug)]
pub(crate) struct Metrics(pub(crate) Value);

impl Metrics {
    /// The sum of `metric` over the series whose labels include every one
    /// of `labels` (`("router", "http-outgoing")`, ...).
    pub(crate) fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let map = self.0.as_object().expect("a JSON object");
        map.iter()
            .filter(|(key, _)| {
                key.strip_prefix(metric)
                    .is_some_and(|rest| rest.starts_with('{') || rest.is_empty())
                    && labels
                        .iter()
                        .all(|(k, v)| key.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|(_, v)| v.as_f64())
            .sum()
    }

    /// Requests a router sent to `endpoint` (`IP:PORT`).
    pub(crate) fn sent_to(&self, router: &str, endpoint: &str) -> f64 {
        let labels = [("router", router), ("endpoint", endpoint)];
        self.sum("linkerd_endpoint_requests_total", &labels)
    }

    /// Requests a router received.
    pub(crate) fn received(&self, router: &str) -> f64 {
        self.sum("linkerd_router_requests_total", &[("router", router)])
    }
}

/// The proxy on `node`, as the DaemonSet runs it: `NODE_NAME` and
/// `POD_IP` from the downward API.
async fn start_proxy(node: &Node, namerd_mesh: &str, tls: &Path, ingress_tls: &Path) -> Proxy {
    let mut wrapper = node.exec();
    wrapper.extend([
        "env".to_string(),
        format!("NODE_NAME={}", node.name),
        format!("POD_IP={}", node.ip),
    ]);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let config = deploy::proxy_config(node, namerd_mesh, tls, ingress_tls);
    Proxy::start_via(&wrapper, &config).await
}

/// Creates the dtab namespaces of 40-namerd-dtabs.yaml, as its Job does,
/// with [`GREETER_RULE`] in the gRPC ones.
async fn seed_dtabs(namerd: &Namerd, dir: &Path) {
    for (ns, mut text) in deploy::dtabs() {
        if ns.starts_with("internal-grpc") {
            text.push_str(GREETER_RULE);
        }
        namerd.create_dtab(dir, &ns, &text).await;
    }
}

/// The `l5d` Service (30-l5d.yaml's ports).
fn l5d_service() -> Value {
    let ports: Vec<Value> = L5D_PORTS
        .iter()
        .map(|(name, port)| json!({"name": name, "port": port, "targetPort": name}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "l5d", "namespace": "linkerd"},
        "spec": {"ports": ports}
    })
}

/// The `l5d` DaemonSet's pods as the Service's endpoints: one per node,
/// at the node's address.
fn l5d_endpoints(nodes: &[Node]) -> Value {
    let ports: Vec<Value> = L5D_PORTS
        .iter()
        .map(|(name, port)| json!({"name": name, "port": port, "protocol": "TCP"}))
        .collect();
    let endpoints: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({"addresses": [n.ip.to_string()], "nodeName": n.name, "conditions": {"ready": true}})
        })
        .collect();
    slice("linkerd", "l5d-0", "l5d", ports, endpoints)
}

fn slice(
    namespace: &str,
    name: &str,
    service: &str,
    ports: Vec<Value>,
    endpoints: Vec<Value>,
) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service}
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints
    })
}
