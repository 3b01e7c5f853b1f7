//! namerd's two APIs over TLS with the Secret `namerd-tls`: the gRPC API
//! (`io.l5d.mesh`) admits only clients with the proxies' `l5d-tls`
//! certificate, the dtab API (`io.l5d.httpController`) is HTTPS for
//! namerctl's tokens; every router's interpreter and the seed Job dial
//! them over TLS; and the certificates docs/kubernetes.md makes serve
//! them.

use l5d_runtime::tls::{
    ALPN_H2, ALPN_HTTP, ClientTls, ClientTlsConfig, ServerTls, handshake_failure_reason,
};
use linkerd_proxy::config::{InterpreterConfig, ProxyConfig};
use namerd::config::NamerdConfig;

use super::{
    data, documented_certificates, documented_secret, handshake, object, objects, secret_mount,
    shown, tls_secret_dir, with_files,
};

/// The name namerd's certificate is for, through its Service.
const NAMERD: &str = "namerd.linkerd.svc.cluster.local";
/// The proxies' identity, the URI of their `l5d-tls` certificate.
const PROXY_ID: &str = "spiffe://cluster.local/ns/linkerd/sa/l5d";

/// Both storage variants' `namerd-config`, with their files.
fn namerd_configs() -> Vec<(String, String)> {
    let configs: Vec<(String, String)> = objects("ConfigMap")
        .into_iter()
        .filter(|(_, cm)| cm["metadata"]["name"] == "namerd-config")
        .map(|(path, cm)| (shown(&path), data(&cm, "config.yaml").to_string()))
        .collect();
    assert_eq!(configs.len(), 2, "the two storage variants");
    configs
}

/// namerd serves both APIs with the files of its `namerd-tls` mount, the
/// gRPC API requiring a client certificate from the mesh CA (TLS 1.3 only,
/// as the proxies offer), the dtab API asking for none; every router's
/// interpreter verifies namerd's Service name against the `l5d-tls` CA and
/// presents the `l5d-tls` certificate; the seed Job and the documented
/// namerctl commands use https with namerd's CA.
#[test]
fn namerd_serves_tls_with_certificates_from_a_secret() {
    use l5d_runtime::tls::TlsProtocol;

    let namerd_dir = tls_secret_dir(&object("Deployment", "namerd"), "namerd-tls");
    let in_namerd = |file: &str| namerd_dir.join(file);
    for (file, text) in namerd_configs() {
        let config = NamerdConfig::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let http = config.http_controller().expect("the dtab API");
        let http = http.server.tls.as_ref();
        let http = http.unwrap_or_else(|| panic!("{file}: the dtab API is plaintext"));
        assert_eq!(
            (&http.cert_path, &http.key_path),
            (&in_namerd("tls.crt"), &in_namerd("tls.key")),
            "{file}: the dtab API's certificate"
        );
        assert!(
            http.ca_cert_path.is_none() && !http.require_client_auth,
            "{file}: the dtab API asks for no client certificate (operators use tokens)"
        );
        let mesh = config.mesh().expect("the gRPC API").server.tls.as_ref();
        let mesh = mesh.unwrap_or_else(|| panic!("{file}: the gRPC API is plaintext"));
        assert_eq!(
            (&mesh.cert_path, &mesh.key_path),
            (&in_namerd("tls.crt"), &in_namerd("tls.key")),
            "{file}: the gRPC API's certificate"
        );
        assert_eq!(mesh.ca_cert_path, Some(in_namerd("ca.crt")), "{file}");
        assert!(
            mesh.require_client_auth,
            "{file}: the gRPC API must require the proxies' certificate"
        );
        assert_eq!(mesh.protocols, [TlsProtocol::Tls13], "{file}");
    }

    let l5d_dir = tls_secret_dir(&object("DaemonSet", "l5d"), "l5d-tls");
    let in_l5d = |file: &str| l5d_dir.join(file);
    let text = data(&object("ConfigMap", "l5d-config"), "config.yaml").to_string();
    let config = ProxyConfig::from_yaml(&text).expect("l5d-config parses");
    for router in &config.routers {
        let label = &router.label;
        let InterpreterConfig::Mesh { tls, .. } = &router.interpreter else {
            panic!("{label}: not io.l5d.mesh");
        };
        let tls = tls
            .as_deref()
            .unwrap_or_else(|| panic!("{label}: plaintext to namerd"));
        assert_eq!(tls.common_name.as_deref(), Some(NAMERD), "{label}");
        assert_eq!(tls.trust_certs, [in_l5d("ca.crt")], "{label}");
        assert!(!tls.disable_validation, "{label}");
        let auth = tls.client_auth.as_ref();
        let auth = auth.unwrap_or_else(|| panic!("{label}: no client certificate for namerd"));
        assert_eq!(
            (&auth.cert_path, &auth.key_path),
            (&in_l5d("tls.crt"), &in_l5d("tls.key")),
            "{label}"
        );
    }

    // The seed Job: https to the Service name, namerd's CA and nothing else
    // of the Secret.
    let job = object("Job", "namerd-seed-dtabs");
    let env = |name: &str| {
        job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("the seed Job sets {name}"))
            .to_string()
    };
    assert_eq!(env("NAMERD"), format!("https://{NAMERD}:4180"));
    let ca_dir = secret_mount(&job, "namerd-tls").expect("the seed Job mounts namerd-tls");
    assert_eq!(env("NAMERCTL_CA_CERT"), format!("{ca_dir}/ca.crt"));
    let volume = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"]["secretName"] == "namerd-tls")
        .expect("the volume");
    assert_eq!(
        volume["secret"]["items"],
        serde_json::json!([{"key": "ca.crt", "path": "ca.crt"}]),
        "the seed Job mounts namerd's CA only, never its key"
    );

    // The Service no longer announces plaintext HTTP/2.
    let service = object("Service", "namerd");
    for port in service["spec"]["ports"].as_array().expect("ports") {
        if port["name"] == "http" || port["name"] == "mesh" {
            assert_eq!(port["appProtocol"], "https", "{}", port["name"]);
        }
    }
}

/// Every namerctl command docs/kubernetes.md prints reaches namerd over
/// https with a CA: `https://localhost:4180` through the port-forward (a
/// name of namerd's certificate), the mounted CA inside the pod.
#[test]
fn the_documented_namerctl_commands_use_https() {
    let docs = std::fs::read_to_string(super::repo_root().join("docs/kubernetes.md")).unwrap();
    assert!(
        docs.contains("export NAMERCTL_BASE_URL=https://localhost:4180"),
        "the port-forward recipe's base URL"
    );
    let mut commands = 0;
    for line in super::docs_blocks().iter().flat_map(|b| b.lines()) {
        let Some(at) = line.find("namerctl ") else {
            continue;
        };
        if line[at..].starts_with("namerctl dtab") || line[at..].starts_with("namerctl --") {
            commands += 1;
            assert!(line.contains("--ca-cert "), "no --ca-cert: {line}");
            assert!(!line.contains("http://"), "plaintext: {line}");
        }
    }
    assert!(
        commands >= 3,
        "{commands} namerctl commands in docs/kubernetes.md"
    );
    let exec = format!(
        "--base-url https://localhost:4180 --ca-cert {}",
        tls_secret_dir(&object("Deployment", "namerd"), "namerd-tls")
            .join("ca.crt")
            .display()
    );
    assert!(docs.contains(&exec), "kubectl exec's namerctl: {exec}");
}

/// The openssl commands and the `namerd-tls` Secret of docs/kubernetes.md
/// make files both namerd-config variants load, with which every router's
/// interpreter (the `l5d-tls` files) completes a handshake with namerd's
/// gRPC listener and is identified as the proxies, a client without a
/// certificate is refused there, and namerctl (trusting `ca.crt` only)
/// accepts the dtab API as `localhost` and as the Service name.
#[tokio::test]
async fn the_documented_certificates_secure_namerd() {
    if !l5d_e2e::openssl_or_skip().await {
        return;
    }
    let made = documented_certificates().await;
    let namerd_files = documented_secret("namerd-tls", made.path());
    let l5d_files = documented_secret("l5d-tls", made.path());

    let l5d_mount = tls_secret_dir(&object("DaemonSet", "l5d"), "l5d-tls");
    let proxy = with_files(
        data(&object("ConfigMap", "l5d-config"), "config.yaml"),
        &l5d_mount,
        l5d_files.path(),
    );
    let proxy = ProxyConfig::from_yaml(&proxy).expect("l5d-config parses");
    // As the proxy and namerctl build them (linkerd-proxy's proxy.rs,
    // namerctl's client.rs).
    let interpreters: Vec<(String, ClientTls)> = proxy
        .routers
        .iter()
        .map(|router| {
            let InterpreterConfig::Mesh { tls: Some(tls), .. } = &router.interpreter else {
                panic!("{}: no TLS to namerd", router.label);
            };
            let field = format!("{}.interpreter.tls", router.label);
            let client =
                ClientTls::load(tls, ALPN_H2, &field).unwrap_or_else(|e| panic!("{field}: {e}"));
            (router.label.clone(), client)
        })
        .collect();
    let trusting = |alpn: &[&[u8]]| {
        let ca = ClientTlsConfig {
            trust_certs: vec![namerd_files.path().join("ca.crt")],
            ..ClientTlsConfig::default()
        };
        ClientTls::new(&ca, alpn).expect("namerd's ca.crt")
    };
    let namerctl = trusting(&[b"http/1.1"]);
    let anonymous = trusting(ALPN_H2);

    let namerd_mount = tls_secret_dir(&object("Deployment", "namerd"), "namerd-tls");
    for (file, text) in namerd_configs() {
        let text = with_files(&text, &namerd_mount, namerd_files.path());
        let config = NamerdConfig::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let load = |tls: Option<&_>, alpn, what: &str| {
            ServerTls::load(tls.expect("tls"), alpn, what)
                .unwrap_or_else(|e| panic!("{file}: {what}: {e}"))
        };
        let http = config.http_controller().expect("the dtab API");
        let http = load(http.server.tls.as_ref(), ALPN_HTTP, "httpController.tls");
        let mesh = config.mesh().expect("the gRPC API");
        let mesh = load(mesh.server.tls.as_ref(), ALPN_H2, "mesh.tls");

        for (label, client) in &interpreters {
            let (client, server) = handshake(&mesh, client, NAMERD).await;
            client.unwrap_or_else(|e| panic!("{file}: {label}'s handshake with namerd: {e}"));
            let server = server.unwrap_or_else(|e| panic!("{file}: namerd refused {label}: {e}"));
            let identity = server.peer.identity.expect("the proxy is identified");
            assert_eq!(identity.primary(), Some(PROXY_ID), "{file}: {label}");
            assert_eq!(server.alpn.as_deref(), Some(&b"h2"[..]), "{file}: {label}");
        }
        // Trusting namerd is not enough to stream from it.
        let (_, server) = handshake(&mesh, &anonymous, NAMERD).await;
        match server {
            Ok(_) => panic!("{file}: namerd's gRPC API served a client without a certificate"),
            Err(l5d_runtime::listen::HandshakeError::Tls { source, .. }) => {
                assert_eq!(
                    handshake_failure_reason(&source),
                    "no_certificate",
                    "{file}"
                );
            }
            Err(e) => panic!("{file}: {e}"),
        }
        for name in ["localhost", NAMERD] {
            let (client, server) = handshake(&http, &namerctl, name).await;
            client.unwrap_or_else(|e| panic!("{file}: namerctl to https://{name}:4180: {e}"));
            let server = server.unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(server.peer.identity.is_none(), "{file}");
        }
    }
}
