//! The Kubernetes manifests in `deploy/kubernetes/` (docs/kubernetes.md):
//!
//! - every manifest validates, strictly (unknown fields are errors), against
//!   the Kubernetes schemas of the versions in [`KUBERNETES_VERSIONS`], with
//!   `kubernetes-validate` from PyPI (`tests/kubernetes/requirements.txt`;
//!   its schemas are bundled, so this runs offline);
//! - the namerd configurations kept in ConfigMaps parse with namerd's own
//!   parser, and listen where the Deployment and Service expect; the proxy's
//!   configuration parses with the proxy's;
//! - namerd's dtab API authenticates writes with a token file mounted from
//!   a Secret, and the seed Job sends a token mounted from another;
//! - the seeded dtabs parse, and every router of the proxy configuration has
//!   one; the proxy's ports agree between its configuration, the DaemonSet
//!   and the Service;
//! - the DaemonSet mesh hop is mutual TLS 1.3 with the certificates of the
//!   Secret `l5d-tls`, and the openssl commands docs/kubernetes.md gives
//!   for that Secret make files that complete the hop;
//! - namerd serves its gRPC API over mutual TLS (only the proxies'
//!   certificate gets in) and its dtab API over HTTPS, with the Secret
//!   `namerd-tls`, and the proxies, the seed Job and the documented
//!   namerctl commands dial them over TLS (`manifests/namerd_tls.rs`);
//! - the NetworkPolicies admit each port's expected clients only
//!   (`manifests/network_policies.rs`).
//! - the edge: the Ingresses name the class `linkerd`, which the
//!   IngressClass and namerd's Ingress namers serve, and the documented
//!   edge certificate serves the ingress router's HTTPS for their hosts
//!   (`manifests/ingress.rs`).
//!
//! No cluster is involved: what only a cluster can show is listed in
//! docs/kubernetes.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use l5d_e2e::{python_has, repo_root, skip_or_fail};
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::overrides::AddressOverrides;
use namerd::config::NamerdConfig;
use serde_json::Value;
use tokio::process::Command;

/// 1.33: the Kubernetes API namerd is built against (k8s-openapi's `v1_33`
/// feature); 1.37: the newest schemas kubernetes-validate 1.37.0 bundles,
/// to catch APIs that newer clusters removed.
const KUBERNETES_VERSIONS: &[&str] = &["1.33", "1.37"];

#[path = "manifests/ingress.rs"]
mod ingress;
#[path = "manifests/namerd_tls.rs"]
mod namerd_tls;
#[path = "manifests/network_policies.rs"]
mod network_policies;

/// Every `.yaml` / `.yml` file under deploy/kubernetes/, sorted.
fn manifest_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("deploy/kubernetes"), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes/");
    files
}

/// The path relative to the repository, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The YAML documents of a manifest file (empty documents dropped).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", shown(path)));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", shown(path)));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Every object of `kind` across all manifests, with its file.
fn objects(kind: &str) -> Vec<(PathBuf, Value)> {
    manifest_files()
        .into_iter()
        .flat_map(|path| {
            documents(&path)
                .into_iter()
                .filter(|d| d["kind"] == kind)
                .map(move |d| (path.clone(), d))
        })
        .collect()
}

/// The one object of `kind` named `name`.
fn object(kind: &str, name: &str) -> Value {
    let mut found: Vec<Value> = objects(kind)
        .into_iter()
        .filter(|(_, o)| o["metadata"]["name"] == name)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} {name}");
    found.remove(0)
}

/// A ConfigMap's `data` key, as text.
fn data<'a>(config_map: &'a Value, key: &str) -> &'a str {
    config_map["data"][key].as_str().unwrap_or_else(|| {
        panic!(
            "ConfigMap {} has no data key {key}",
            config_map["metadata"]["name"]
        )
    })
}

/// Named container ports of a workload's first container: name -> port.
fn container_ports(workload: &Value) -> BTreeMap<String, u64> {
    workload["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .expect("the container has ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("ports are named").to_string(),
                p["containerPort"].as_u64().expect("a port number"),
            )
        })
        .collect()
}

/// A Service's ports: name -> (port, targetPort name).
fn service_ports(service: &Value) -> BTreeMap<String, (u64, String)> {
    service["spec"]["ports"]
        .as_array()
        .expect("the Service has ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("ports are named").to_string(),
                (
                    p["port"].as_u64().expect("a port number"),
                    p["targetPort"]
                        .as_str()
                        .expect("targetPort is a port name")
                        .to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn manifests_validate_against_kubernetes_schemas() {
    if !python_has("kubernetes_validate").await {
        skip_or_fail(
            "python3 with kubernetes-validate, to validate deploy/kubernetes/ \
             (pip install -r tests/kubernetes/requirements.txt)",
        );
        return;
    }
    let files = manifest_files();
    for version in KUBERNETES_VERSIONS {
        let out = Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "-k", version])
            .args(files.iter().map(|f| shown(f)))
            .current_dir(repo_root())
            .output()
            .await
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report = format!("kubernetes-validate {version}:\n{stdout}{stderr}");
        assert!(out.status.success(), "manifests are invalid: {report}");
        // A kind or apiVersion without a schema (a typo, a removed API) is
        // only a warning to kubernetes-validate; here it is a failure.
        // (stderr is left to Python's own warnings.)
        for line in stdout.lines() {
            assert!(
                line.starts_with("INFO ") && line.contains(" passed for resource "),
                "not validated: {line}\n{report}"
            );
        }
        for file in &files {
            let objects = documents(file).len();
            let passed = stdout
                .lines()
                .filter(|l| l.starts_with(&format!("INFO {} passed ", shown(file))))
                .count();
            assert_eq!(
                passed,
                objects,
                "{}: {objects} objects, {passed} validated\n{report}",
                shown(file)
            );
        }
        eprintln!(
            "{} manifests validated against Kubernetes {version}",
            files.len()
        );
    }
}

#[test]
fn namerd_configs_parse_with_namerds_parser() {
    let configs = objects("ConfigMap")
        .into_iter()
        .filter(|(_, cm)| cm["metadata"]["name"] == "namerd-config")
        .collect::<Vec<_>>();
    // One per storage variant.
    assert_eq!(
        configs.len(),
        2,
        "expected the ConfigMap namerd-config in the two storage variants"
    );
    let deployment = object("Deployment", "namerd");
    let ports = container_ports(&deployment);
    let service = service_ports(&object("Service", "namerd"));
    let l5d_ports = service_ports(&object("Service", "l5d"));
    let seed = object("ConfigMap", "namerd-dtabs");
    for (path, cm) in configs {
        let text = data(&cm, "config.yaml");
        let config = NamerdConfig::parse(text)
            .unwrap_or_else(|e| panic!("{}: config.yaml: {e}", shown(&path)));
        // The daemonset transformers name the l5d Service's incoming ports,
        // and every namer a seeded dtab uses is configured.
        let raw: Value = serde_saphyr::from_str(text).expect("config.yaml is YAML");
        let mut prefixes = BTreeSet::new();
        for namer in raw["namers"].as_array().expect("namers") {
            prefixes.insert(format!("/#{}", namer["prefix"].as_str().expect("a prefix")));
            for t in namer["transformers"].as_array().into_iter().flatten() {
                if t["kind"] == "io.l5d.k8s.daemonset" {
                    assert_eq!(
                        (&t["namespace"], &t["service"]),
                        (&"linkerd".into(), &"l5d".into())
                    );
                    let port = t["port"].as_str().expect("a port name");
                    assert!(
                        port.ends_with("-incoming") && l5d_ports.contains_key(port),
                        "{}: the daemonset transformer's port {port} is not an incoming port of Service l5d",
                        shown(&path)
                    );
                }
            }
        }
        for (key, dtab) in seed["data"].as_object().expect("dtabs") {
            for word in dtab.as_str().expect("text").split_whitespace() {
                if let Some(rest) = word.strip_prefix("/#/") {
                    let namer = format!("/#/{}", rest.split('/').next().unwrap_or_default());
                    assert!(
                        prefixes.contains(&namer),
                        "{key} uses {namer}, which {} does not configure",
                        shown(&path)
                    );
                }
            }
        }
        // namerd listens on every address, on the ports the Deployment's
        // probes and the Service name.
        let http = config.http_controller().expect("the dtab HTTP API");
        let mesh = config.mesh().expect("the io.linkerd.mesh API");
        for (name, addr) in [
            ("admin", config.admin.addr()),
            ("http", http.addr()),
            ("mesh", mesh.addr()),
        ] {
            assert!(
                addr.ip().is_unspecified(),
                "{}: {name} listens on {addr}, unreachable from the Service",
                shown(&path)
            );
            assert_eq!(
                Some(&u64::from(addr.port())),
                ports.get(name),
                "{}: {name} port differs from the Deployment's",
                shown(&path)
            );
            assert_eq!(
                service
                    .get(name)
                    .map(|(port, target)| (*port, target.as_str())),
                Some((u64::from(addr.port()), name)),
                "{}: the Service's {name} port",
                shown(&path)
            );
        }
    }
}

/// The proxy's configuration (ConfigMap `l5d-config`, key `config.yaml`).
fn proxy_config() -> Value {
    let text = data(&object("ConfigMap", "l5d-config"), "config.yaml").to_string();
    serde_saphyr::from_str(&text).expect("l5d-config's config.yaml is YAML")
}

#[test]
fn proxy_config_parses_with_the_proxys_parser() {
    let text = data(&object("ConfigMap", "l5d-config"), "config.yaml").to_string();
    let config =
        ProxyConfig::from_yaml(&text).unwrap_or_else(|e| panic!("l5d-config: config.yaml: {e}"));
    // 0.0.0.0 in the pod is the pod IP (and loopback): admin for the
    // kubelet's probes and monitoring, routers for applications and other
    // proxies; NetworkPolicies narrow who (network_policies.rs).
    assert!(
        config.admin.ip.is_unspecified(),
        "admin listens on loopback"
    );
    assert_eq!(config.admin.port, 9990);
    for router in &config.routers {
        // Mesh servers carry l5d-ctx-* from hop to hop; a server facing
        // the outside (an ingress) must strip them.
        let mesh = router.label.ends_with("-outgoing") || router.label.ends_with("-incoming");
        for server in &router.servers {
            assert!(
                server.ip.is_unspecified(),
                "{} listens on {}",
                router.label,
                server.ip
            );
            assert_eq!(
                server.clear_context, !mesh,
                "{}: clearContext on every server facing the outside, only there",
                router.label
            );
            assert_eq!(
                server.allow_override_to_addresses,
                AddressOverrides::Refused,
                "{}: no override may name an address",
                router.label
            );
        }
    }
    assert_eq!(config.routers.len(), 7);
    // The edge: Linkerd's ingress identifier, HTTPS only.
    let ingress = config
        .routers
        .iter()
        .find(|r| r.label == "ingress")
        .expect("the ingress router");
    assert_eq!(
        ingress.identifiers,
        [linkerd_proxy::config::IdentifierConfig::Ingress]
    );
    assert!(
        ingress.servers.iter().all(|s| s.settings.tls.is_some()),
        "the ingress serves HTTPS only"
    );
}

#[test]
fn seeded_dtabs_parse_and_every_router_has_one() {
    let seed = object("ConfigMap", "namerd-dtabs");
    let dtabs: BTreeMap<&str, &str> = seed["data"]
        .as_object()
        .expect("namerd-dtabs has data")
        .iter()
        .map(|(key, text)| {
            let ns = key
                .strip_suffix(".dtab")
                .unwrap_or_else(|| panic!("namerd-dtabs key {key} does not end in .dtab"));
            (ns, text.as_str().expect("dtab text"))
        })
        .collect();
    for (ns, text) in &dtabs {
        l5d_dtab::Dtab::read(text).unwrap_or_else(|e| panic!("dtab {ns}: {e}"));
        assert!(
            ns.len() <= 128
                && ns
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{ns} is not a namerd namespace name"
        );
    }
    assert!(dtabs.contains_key("internal") && dtabs.contains_key("ingress"));

    let config = proxy_config();
    let routers = config["routers"].as_array().expect("routers");
    let mut roots = BTreeSet::new();
    for router in routers {
        let label = router["label"].as_str().expect("every router has a label");
        let interpreter = &router["interpreter"];
        assert_eq!(interpreter["kind"], "io.l5d.mesh", "{label}");
        assert_eq!(
            interpreter["dst"], "/$/inet/namerd.linkerd.svc.cluster.local/4321",
            "{label} must reach namerd's mesh port through its Service"
        );
        let root = interpreter["root"].as_str().expect("a root");
        let ns = root
            .strip_prefix('/')
            .unwrap_or_else(|| panic!("{label}: root {root} is not a path"));
        assert!(
            dtabs.contains_key(ns),
            "{label} reads namespace {ns}, which the seed Job does not create"
        );
        // Incoming routers keep the endpoints on their own node; outgoing
        // ones do not filter (namerd's daemonset transformer chose the node).
        let localnode = interpreter["transformers"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t["kind"] == "io.l5d.k8s.localnode"));
        assert_eq!(localnode, label.ends_with("-incoming"), "{label}");
        assert!(roots.insert(root), "two routers read {root}");
    }
}

#[test]
fn proxy_ports_agree_between_config_daemonset_and_service() {
    let config = proxy_config();
    let daemonset = object("DaemonSet", "l5d");
    let ports = container_ports(&daemonset);
    let service = service_ports(&object("Service", "l5d"));

    let mut expected = BTreeMap::new();
    for router in config["routers"].as_array().expect("routers") {
        let label = router["label"].as_str().expect("a label").to_string();
        let port = router["servers"][0]["port"].as_u64().expect("a port");
        expected.insert(label, port);
    }
    expected.insert(
        "admin".to_string(),
        config["admin"]["port"].as_u64().expect("an admin port"),
    );
    for name in [
        "http-outgoing",
        "http-incoming",
        "h2-outgoing",
        "h2-incoming",
        "grpc-outgoing",
        "grpc-incoming",
        "admin",
    ] {
        assert!(expected.contains_key(name), "no router or port {name}");
    }
    assert_eq!(ports, expected, "DaemonSet container ports vs l5d-config");
    // The Service l5d-ingress offers the ingress port, alone.
    let ingress = service_ports(&object("Service", "l5d-ingress"));
    assert_eq!(
        ingress
            .values()
            .map(|(_, target)| target.as_str())
            .collect::<Vec<_>>(),
        ["ingress"]
    );
    // The Service l5d offers the incoming ports (the daemonset transformer
    // reads them) and admin (monitoring), never the outgoing ones or the
    // ingress.
    expected.retain(|name, _| !name.ends_with("-outgoing") && name != "ingress");
    let by_service: BTreeMap<String, u64> = service
        .iter()
        .map(|(name, (port, target))| {
            assert_eq!(name, target, "Service port {name} targets {target}");
            (name.clone(), *port)
        })
        .collect();
    assert_eq!(by_service, expected, "Service l5d ports vs l5d-config");

    // Only the outgoing ports are on the node's address.
    let container = &daemonset["spec"]["template"]["spec"]["containers"][0];
    let host_ports: BTreeSet<&str> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter(|p| !p["hostPort"].is_null())
        .map(|p| p["name"].as_str().expect("named"))
        .collect();
    assert_eq!(
        host_ports,
        BTreeSet::from(["http-outgoing", "h2-outgoing", "grpc-outgoing"])
    );
    // The proxy holds no Kubernetes credentials.
    assert_eq!(
        daemonset["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    let env: BTreeMap<&str, &str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?,
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(env.get("NODE_NAME"), Some(&"spec.nodeName"));
    assert_eq!(env.get("POD_IP"), Some(&"status.podIP"));
}

/// The mount path of the Secret `secret` in a pod template, if it is mounted
/// as a directory (a `subPath` mount never sees the Secret's updates).
fn secret_mount<'a>(workload: &'a Value, secret: &str) -> Option<&'a str> {
    let pod = &workload["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["secret"]["secretName"] == secret)?["name"]
        .as_str()?;
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == volume)?;
    assert!(mount["subPath"].is_null(), "{secret} is mounted by subPath");
    mount["mountPath"].as_str()
}

/// namerd binds its dtab API on every address, so writes need a token:
/// the token file its configuration names is mounted from the Secret
/// `namerd-tokens`, the permissions name the seed Job's identity, and the
/// Job sends that identity's token, mounted from `namerd-seed-token`.
#[test]
fn the_dtab_api_takes_tokens_mounted_from_secrets() {
    let deployment = object("Deployment", "namerd");
    let tokens_dir = secret_mount(&deployment, "namerd-tokens")
        .expect("the namerd Deployment mounts the Secret namerd-tokens");
    for (path, cm) in objects("ConfigMap") {
        if cm["metadata"]["name"] != "namerd-config" {
            continue;
        }
        let config = NamerdConfig::parse(data(&cm, "config.yaml")).unwrap();
        let auth = config.http_controller().and_then(|c| c.auth.as_ref());
        let auth = auth.unwrap_or_else(|| panic!("{}: the dtab API has no auth", shown(&path)));
        let file = auth.token_file.as_ref().expect("a token file");
        assert_eq!(
            file.parent(),
            Some(Path::new(tokens_dir)),
            "{}: the token file is not in the Secret's mount",
            shown(&path)
        );
        let identities = format!("{:?}", auth.permissions);
        assert!(
            identities.contains("seed"),
            "{}: {identities}",
            shown(&path)
        );
    }
    let job = object("Job", "namerd-seed-dtabs");
    let seed_dir = secret_mount(&job, "namerd-seed-token")
        .expect("the seed Job mounts the Secret namerd-seed-token");
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    let token_file = env
        .iter()
        .find(|e| e["name"] == "NAMERCTL_TOKEN_FILE")
        .and_then(|e| e["value"].as_str())
        .expect("the seed Job sets NAMERCTL_TOKEN_FILE");
    assert_eq!(token_file, format!("{seed_dir}/token"));
}

/// Where `workload` mounts the TLS Secret `secret`: a read-only directory
/// with exactly `tls.crt`, `tls.key` and `ca.crt`, readable by the pod's
/// group only (the `l5d-tls` of the proxies, the `namerd-tls` of namerd).
fn tls_secret_dir(workload: &Value, secret: &str) -> PathBuf {
    let dir = secret_mount(workload, secret)
        .unwrap_or_else(|| panic!("{} mounts no Secret {secret}", workload["metadata"]["name"]));
    let pod = &workload["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"]["secretName"] == secret)
        .expect("the Secret's volume");
    let keys: BTreeSet<&str> = volume["secret"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{secret}'s items are listed"))
        .iter()
        .map(|i| {
            assert_eq!(i["key"], i["path"], "{secret} items keep their names");
            i["key"].as_str().expect("a key")
        })
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["tls.crt", "tls.key", "ca.crt"]),
        "{secret}"
    );
    assert_eq!(volume["secret"]["defaultMode"], 0o440, "{secret}");
    assert_eq!(
        pod["securityContext"]["fsGroup"],
        pod["securityContext"]["runAsGroup"]
    );
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == dir)
        .expect("the mount");
    assert_eq!(mount["readOnly"], true, "{secret} is mounted read-only");
    PathBuf::from(dir)
}

/// The id namerd's daemonset transformer makes for an endpoint behind the
/// l5d pod's `port`.
fn daemonset_id(port: &str) -> l5d_dtab::Path {
    l5d_dtab::Path::read(&format!(
        "/%/io.l5d.k8s.daemonset/linkerd/{port}/l5d/#/io.l5d.k8s.http/default/http/world"
    ))
    .expect("a path")
}

const INCOMING: [&str; 3] = ["http-incoming", "h2-incoming", "grpc-incoming"];

/// The DaemonSet mesh hop is mutual TLS 1.3 with the certificates of the
/// Secret `l5d-tls`: every incoming server requires a client certificate
/// from `ca.crt`; every outgoing router dials the ids of the l5d pods'
/// incoming ports over TLS 1.3, presenting `tls.crt` and verifying the
/// mesh name against `ca.crt`, and dials anything else in plaintext, as
/// the dtabs route it.
#[test]
fn the_mesh_hop_is_mutual_tls_with_certificates_from_a_secret() {
    use l5d_runtime::tls::TlsProtocol;

    let dir = tls_secret_dir(&object("DaemonSet", "l5d"), "l5d-tls");
    let in_dir = |file: &str| dir.join(file);
    let text = data(&object("ConfigMap", "l5d-config"), "config.yaml").to_string();
    let config = ProxyConfig::from_yaml(&text).expect("l5d-config parses");
    let (mut incoming, mut outgoing) = (0, 0);
    for router in &config.routers {
        if router.label == "ingress" {
            // The edge: HTTPS to the outside with its own certificate
            // (manifests/ingress.rs), to the pods directly, in plaintext.
            let pod = l5d_dtab::Path::read("/#/io.l5d.k8s/default/http/hello").expect("a path");
            assert!(router.client.tls_for(&pod).is_none(), "ingress");
            continue;
        }
        if router.label.ends_with("-incoming") {
            incoming += 1;
            for server in &router.servers {
                let tls =
                    server.settings.tls.as_ref().unwrap_or_else(|| {
                        panic!("{}: the incoming server has no tls", router.label)
                    });
                assert_eq!(tls.cert_path, in_dir("tls.crt"), "{}", router.label);
                assert_eq!(tls.key_path, in_dir("tls.key"), "{}", router.label);
                assert_eq!(tls.ca_cert_path, Some(in_dir("ca.crt")), "{}", router.label);
                assert!(tls.require_client_auth, "{}", router.label);
                assert_eq!(tls.protocols, [TlsProtocol::Tls13], "{}", router.label);
            }
        } else {
            assert!(router.label.ends_with("-outgoing"), "{}", router.label);
            outgoing += 1;
            for server in &router.servers {
                assert!(
                    server.settings.tls.is_none(),
                    "{}: applications speak plaintext to their node's proxy",
                    router.label
                );
            }
            for port in INCOMING {
                let id = daemonset_id(port);
                let tls = router
                    .client
                    .tls_for(&id)
                    .unwrap_or_else(|| panic!("{}: no TLS for {}", router.label, id.show()));
                let block = tls.block;
                assert_eq!(
                    tls.common_name.as_deref(),
                    Some("l5d.linkerd.svc.cluster.local")
                );
                assert_eq!(block.trust_certs, [in_dir("ca.crt")], "{}", router.label);
                assert!(!block.disable_validation, "{}", router.label);
                let auth = block.client_auth.as_ref().expect("a client certificate");
                assert_eq!(
                    (&auth.cert_path, &auth.key_path),
                    (&in_dir("tls.crt"), &in_dir("tls.key")),
                    "{}",
                    router.label
                );
                assert_eq!(block.protocols.as_deref(), Some(&[TlsProtocol::Tls13][..]));
            }
            let elsewhere = l5d_dtab::Path::read("/$/inet/10.0.0.1/80").expect("a path");
            assert!(
                router.client.tls_for(&elsewhere).is_none(),
                "{}: TLS beyond the mesh hop",
                router.label
            );
        }
    }
    assert_eq!((incoming, outgoing), (3, 3));
}

/// The files the openssl commands of docs/kubernetes.md ("Make the mesh
/// certificates") make, run as printed in bash, in a new directory.
async fn documented_certificates() -> tempfile::TempDir {
    let script = docs_blocks()
        .into_iter()
        .find(|code| code.contains("openssl req -x509"))
        .expect("docs/kubernetes.md has the openssl commands for the mesh certificates");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .output()
        .await
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the documented commands failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The ```sh blocks of docs/kubernetes.md.
fn docs_blocks() -> Vec<String> {
    let docs = std::fs::read_to_string(repo_root().join("docs/kubernetes.md")).unwrap();
    docs.split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(code, _)| code.to_string()))
        .collect()
}

/// The Secret `secret` as docs/kubernetes.md's `kubectl create secret
/// generic` makes it from the files in `made`, laid out as its volume
/// mount: a directory with one file per key (`--from-file=KEY=FILE`, or
/// `--from-file=FILE` for the key FILE).
fn documented_secret(secret: &str, made: &Path) -> tempfile::TempDir {
    let command = format!("create secret generic {secret} ");
    let line = docs_blocks()
        .iter()
        .flat_map(|code| code.lines().map(str::to_string).collect::<Vec<_>>())
        .find(|line| line.contains(&command))
        .unwrap_or_else(|| panic!("docs/kubernetes.md has no `kubectl {command}`"));
    let mount = tempfile::tempdir().unwrap();
    let mut keys = BTreeSet::new();
    for spec in line
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--from-file="))
    {
        let (key, file) = spec.split_once('=').unwrap_or((spec, spec));
        std::fs::copy(made.join(file), mount.path().join(key))
            .unwrap_or_else(|e| panic!("{secret}: {file} (for {key}): {e}"));
        keys.insert(key.to_string());
    }
    assert_eq!(
        keys,
        BTreeSet::from(["tls.crt", "tls.key", "ca.crt"].map(String::from)),
        "the keys of {secret}: {line}"
    );
    mount
}

/// A manifest's text with the mount directory `mount` replaced by `files`.
fn with_files(text: &str, mount: &Path, files: &Path) -> String {
    text.replace(&mount.display().to_string(), &files.display().to_string())
}

/// One TLS handshake between `client`, verifying `name`, and a loopback
/// listener serving `server`: the client's outcome and the server's
/// connection (with the caller's identity and the ALPN protocol) or why it
/// refused. The 30 s handshake timeout only bounds a hang: a handshake on
/// loopback takes milliseconds, even with a busy core.
async fn handshake(
    server: &l5d_runtime::tls::ServerTls,
    client: &l5d_runtime::tls::ClientTls,
    name: &str,
) -> (
    std::io::Result<()>,
    Result<l5d_runtime::listen::Connection, l5d_runtime::listen::HandshakeError>,
) {
    use l5d_runtime::listen::{Listener, ListenerLimits};

    let limits = ListenerLimits {
        max_connections: 10,
        max_connections_per_peer: 10,
        handshake_timeout: std::time::Duration::from_secs(30),
    };
    let listener = Listener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "manifests",
        Some(server.clone()),
        limits,
    )
    .await
    .unwrap();
    let name = client
        .server_name(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let tcp = tokio::net::TcpStream::connect(listener.local_addr())
        .await
        .unwrap();
    let (client, server) = tokio::join!(client.connector().connect(name, tcp), async {
        listener.accept().await.handshake().await
    });
    (client.map(drop), server)
}

/// The openssl commands of docs/kubernetes.md ("Make the mesh
/// certificates"), run as printed, make files the proxy accepts, and the
/// TLS blocks of `l5d-config` then complete the mesh hop: an outgoing
/// router's client presents the certificate and verifies the incoming
/// server's name, which identifies the caller by the certificate's URI.
#[tokio::test]
async fn the_documented_certificates_complete_the_mesh_hop() {
    use l5d_runtime::tls::{ALPN_HTTP, ClientTls, ServerTls};

    if !l5d_e2e::openssl_or_skip().await {
        return;
    }
    let made = documented_certificates().await;
    let files = documented_secret("l5d-tls", made.path());

    // l5d-config's blocks, with the Secret's mount replaced by the files.
    let mount = tls_secret_dir(&object("DaemonSet", "l5d"), "l5d-tls");
    let text = with_files(
        data(&object("ConfigMap", "l5d-config"), "config.yaml"),
        &mount,
        files.path(),
    );
    let config = ProxyConfig::from_yaml(&text).expect("l5d-config parses");
    let router = |label: &str| {
        config
            .routers
            .iter()
            .find(|r| r.label == label)
            .unwrap_or_else(|| panic!("no router {label}"))
    };
    let server = router("http-incoming").servers[0]
        .settings
        .tls
        .clone()
        .unwrap();
    let server = ServerTls::load(&server, ALPN_HTTP, "http-incoming.tls").expect("usable files");
    let id = daemonset_id("http-incoming");
    let outgoing = router("http-outgoing");
    let tls = outgoing
        .client
        .tls_for(&id)
        .expect("TLS to the incoming port");
    let client = ClientTls::load(tls.block, &[b"http/1.1"], "http-outgoing.client.tls")
        .expect("usable files");
    let name = tls.common_name.as_deref().expect("a commonName");
    let (client, server) = handshake(&server, &client, name).await;
    client.expect("the outgoing router's handshake");
    let server = server.expect("the incoming router's handshake");
    let identity = server.peer.identity.expect("the caller is identified");
    assert_eq!(
        identity.primary(),
        Some("spiffe://cluster.local/ns/linkerd/sa/l5d")
    );
}
