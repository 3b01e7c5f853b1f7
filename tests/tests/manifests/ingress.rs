//! The edge (`35-ingress.yaml`, the `ingress` router of `l5d-config`):
//! the Ingresses of the manifests name the IngressClass `linkerd`, which
//! namerd's Ingress namers serve, and the certificate docs/kubernetes.md
//! makes for the edge, stored as its `kubectl create secret tls
//! l5d-ingress-tls` line stores it, serves the ingress router's HTTPS for
//! every host of those Ingresses.

use std::path::Path;

use l5d_runtime::tls::{ALPN_HTTP, ClientTls, ClientTlsConfig, ServerTls};
use linkerd_proxy::config::ProxyConfig;

use super::{
    data, docs_blocks, documented_certificates, handshake, object, objects, secret_mount,
    with_files,
};

/// The hosts of the manifests' Ingresses, after checking that each names
/// the class `linkerd`, whose IngressClass and namerd namers exist.
fn ingress_hosts() -> Vec<String> {
    let class = object("IngressClass", "linkerd");
    assert_eq!(class["spec"]["controller"], "linkerd.io/ingress-controller");
    for (_, cm) in objects("ConfigMap") {
        if cm["metadata"]["name"] != "namerd-config" {
            continue;
        }
        let config: serde_json::Value =
            serde_saphyr::from_str(data(&cm, "config.yaml")).expect("YAML");
        let namers = config["namers"].as_array().expect("namers");
        assert!(
            namers
                .iter()
                .any(|n| n["kind"] == "io.l5d.k8s.ingress" && n["ingressClass"] == "linkerd"),
            "namerd-config serves the class linkerd"
        );
    }
    let ingresses = objects("Ingress");
    assert!(!ingresses.is_empty(), "the demo has an Ingress");
    let mut hosts = Vec::new();
    for (_, ingress) in ingresses {
        assert_eq!(ingress["spec"]["ingressClassName"], "linkerd");
        for rule in ingress["spec"]["rules"].as_array().expect("rules") {
            hosts.push(rule["host"].as_str().expect("a host").to_string());
        }
    }
    hosts
}

#[tokio::test]
async fn the_documented_edge_certificate_serves_every_ingress_host() {
    if !l5d_e2e::openssl_or_skip().await {
        return;
    }
    let hosts = ingress_hosts();
    let made = documented_certificates().await;
    // `kubectl create secret tls NAME --cert=FILE --key=FILE` stores the
    // files under tls.crt and tls.key.
    let line = docs_blocks()
        .iter()
        .flat_map(|code| code.lines().map(str::to_string).collect::<Vec<_>>())
        .find(|line| line.contains("create secret tls l5d-ingress-tls "))
        .expect("docs/kubernetes.md creates the Secret l5d-ingress-tls");
    let files = tempfile::tempdir().unwrap();
    for (flag, key) in [("--cert=", "tls.crt"), ("--key=", "tls.key")] {
        let file = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix(flag))
            .unwrap_or_else(|| panic!("{flag} in {line}"));
        std::fs::copy(made.path().join(file), files.path().join(key))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }

    let daemonset = object("DaemonSet", "l5d");
    let mount = secret_mount(&daemonset, "l5d-ingress-tls")
        .expect("the DaemonSet mounts the Secret l5d-ingress-tls");
    let text = with_files(
        data(&object("ConfigMap", "l5d-config"), "config.yaml"),
        Path::new(mount),
        files.path(),
    );
    let config = ProxyConfig::from_yaml(&text).expect("l5d-config parses");
    let ingress = config
        .routers
        .iter()
        .find(|r| r.label == "ingress")
        .expect("the ingress router");
    let server = ingress.servers[0].settings.tls.clone().expect("HTTPS");
    let server = ServerTls::load(&server, ALPN_HTTP, "ingress.tls").expect("usable files");
    let client = ClientTlsConfig {
        trust_certs: vec![made.path().join("ca.crt")],
        ..ClientTlsConfig::default()
    };
    let client = ClientTls::load(&client, &[b"http/1.1"], "client").expect("the CA");
    for host in &hosts {
        let (client, server) = handshake(&server, &client, host).await;
        client.unwrap_or_else(|e| panic!("{host}: {e}"));
        server.unwrap_or_else(|e| panic!("{host}: {e:?}"));
    }
}
