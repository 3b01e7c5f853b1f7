//! The configurations of `deploy/kubernetes/`, read from the manifests and
//! changed only where the test network differs from a cluster: addresses
//! (a node's address instead of `0.0.0.0`, namerd's bridge address and
//! port instead of its Service name), the Secrets' mount paths (files of
//! the test's PKI, made the way docs/kubernetes.md says), and namerd's
//! dtab API (plain HTTP on loopback without tokens: namerctl is the
//! operator here, not the subject). Everything else (routers, ports,
//! identifiers, namers, transformers, TLS settings, dtabs) is the
//! manifests', so the test runs what a cluster would.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::net::Node;

/// The port of each node's untrusting listener: a second server on the
/// `http-outgoing` router with `clearContext: true`, as an ingress's
/// would have (the manifests have none; docs/security.md).
pub(crate) const EDGE_PORT: u16 = 4150;

/// The proxies' certificate names (docs/kubernetes.md, "Make the mesh
/// certificates").
pub(crate) const L5D_NAMES: [&str; 2] = [
    "l5d.linkerd.svc.cluster.local",
    "spiffe://cluster.local/ns/linkerd/sa/l5d",
];
/// namerd's certificate names.
pub(crate) const NAMERD_NAMES: [&str; 2] = ["namerd.linkerd.svc.cluster.local", "localhost"];
/// The edge's certificate names (the Secret `l5d-ingress-tls`): the hosts
/// of the example Ingress (demo/hello-world-ingress.yaml) and of the
/// Ingresses the ingress tests add.
pub(crate) const INGRESS_NAMES: [&str; 3] =
    ["hello.example.com", "demo.example.com", "*.test.example"];

/// The documents of a manifest under `deploy/kubernetes/`.
fn documents(file: &str) -> Vec<Value> {
    let path = l5d_e2e::repo_root().join("deploy/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The ConfigMap `name` of `file`.
fn config_map(file: &str, name: &str) -> Value {
    documents(file)
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file} has no ConfigMap {name}"))
}

/// A ConfigMap's `config.yaml` with `replace`ments made, as a value.
fn config(file: &str, name: &str, replace: &[(&str, String)]) -> Value {
    let cm = config_map(file, name);
    let mut text = cm["data"]["config.yaml"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no config.yaml"))
        .to_string();
    for (from, to) in replace {
        assert!(text.contains(from), "{name}'s config.yaml has no {from}");
        text = text.replace(from, to);
    }
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A Secret's files as its volume mount holds them (`tls.crt`, `tls.key`,
/// `ca.crt`), in `dir`.
pub(crate) fn secret_dir(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("the Secret's directory");
    for (file, from) in [("tls.crt", cert), ("tls.key", key), ("ca.crt", ca)] {
        std::fs::copy(from, dir.join(file)).expect("the Secret's file");
    }
    dir.to_path_buf()
}

/// `l5d-config` (30-l5d.yaml) for the proxy on `node`: its servers and
/// admin on the node's address, namerd at `namerd_mesh`, the `l5d-tls`
/// files in `tls` and the `l5d-ingress-tls` ones in `ingress_tls`, and the
/// edge listener ([`EDGE_PORT`]).
pub(crate) fn proxy_config(
    node: &Node,
    namerd_mesh: &str,
    tls: &Path,
    ingress_tls: &Path,
) -> String {
    let namerd = namerd_mesh.replace(':', "/");
    let mut config = config(
        "30-l5d.yaml",
        "l5d-config",
        &[
            ("0.0.0.0", node.ip.to_string()),
            ("namerd.linkerd.svc.cluster.local/4321", namerd),
            ("/etc/l5d/tls/", format!("{}/", tls.display())),
            (
                "/etc/l5d/ingress-tls/",
                format!("{}/", ingress_tls.display()),
            ),
        ],
    );
    let routers = config["routers"].as_array_mut().expect("routers");
    let outgoing = routers
        .iter_mut()
        .find(|r| r["label"] == "http-outgoing")
        .expect("the http-outgoing router");
    outgoing["servers"]
        .as_array_mut()
        .expect("servers")
        .push(json!({"ip": node.ip.to_string(), "port": EDGE_PORT, "clearContext": true}));
    config.to_string()
}

/// `namerd-config` (the ConfigMap storage variant): admin and the dtab API
/// on loopback (the latter plain, without tokens), the gRPC API on the
/// bridge (`gateway`) with the `namerd-tls` files in `tls`. Its Kubernetes
/// API is the one `KUBECONFIG` names.
pub(crate) fn namerd_config(gateway: Ipv4Addr, tls: &Path) -> String {
    let mut config = config(
        "storage/namerd-configmap-storage.yaml",
        "namerd-config",
        &[("/etc/namerd/tls/", format!("{}/", tls.display()))],
    );
    config["admin"] = json!({"ip": "127.0.0.1", "port": 0});
    for interface in config["interfaces"].as_array_mut().expect("interfaces") {
        if interface["kind"] == "io.l5d.httpController" {
            *interface = json!({"kind": "io.l5d.httpController", "ip": "127.0.0.1", "port": 0});
        } else {
            interface["ip"] = json!(gateway.to_string());
            interface["port"] = json!(0);
        }
    }
    config.to_string()
}

/// The dtab namespaces 40-namerd-dtabs.yaml seeds, as (namespace, text).
pub(crate) fn dtabs() -> Vec<(String, String)> {
    let cm = config_map("40-namerd-dtabs.yaml", "namerd-dtabs");
    cm["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(file, text)| {
            let ns = file.strip_suffix(".dtab").expect("<namespace>.dtab");
            (ns.to_string(), text.as_str().expect("text").to_string())
        })
        .collect()
}

/// The objects of a manifest under `deploy/kubernetes/` of `kind`
/// (`demo/hello-world-ingress.yaml`'s Ingress, ...).
pub(crate) fn objects(file: &str, kind: &str) -> Vec<Value> {
    documents(file)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}
