//! The real `namerctl` binary against an https namerd (in-process, test
//! PKI): verified with `--ca-cert`, with and without client certificates,
//! and every file or trust problem named in the error.

use std::collections::BTreeMap;
use std::process::Output;

use l5d_runtime::config::ServerSettings;
use l5d_runtime::testing::TestPki;
use l5d_runtime::tls::ServerTlsConfig;
use namerd::config::{InterfaceConfig, StorageConfig};
use namerd::testing::{self, TestNamerd};

#[path = "support/run.rs"]
mod run;

use run::{namerctl_env as namerctl, stderr, stdout};

async fn https_namerd(tls: ServerTlsConfig) -> TestNamerd {
    let mut config = testing::loopback_config(
        StorageConfig::InMemory {
            namespaces: BTreeMap::new(),
        },
        Vec::new(),
    );
    for interface in &mut config.interfaces {
        if let InterfaceConfig::HttpController(c) = interface {
            c.server = ServerSettings {
                tls: Some(tls.clone()),
                ..ServerSettings::default()
            };
        }
    }
    testing::start_config(config).await
}

fn failed_with(out: &Output, words: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in words {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
}

#[tokio::test]
async fn https_verified_with_the_ca() {
    let pki = TestPki::new();
    let namerd = https_namerd(pki.server_tls()).await;
    let url = namerd.https_url();
    let dir = pki.dir();
    std::fs::write(dir.join("d.dtab"), "/svc => /host;\n").unwrap();
    let ca = pki.ca_cert.to_str().unwrap();

    let out = namerctl(
        &url,
        dir,
        &[],
        &["--ca-cert", ca, "dtab", "create", "internal", "d.dtab"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The CA from the environment.
    let out = namerctl(
        &url,
        dir,
        &[("NAMERCTL_CA_CERT", &pki.ca_cert)],
        &["dtab", "get", "internal"],
    )
    .await;
    assert!(stdout(&out).contains("/svc  => /host"), "{}", stderr(&out));

    let out = namerctl(&url, dir, &[], &["dtab", "list"]).await;
    failed_with(&out, &["--ca-cert", "NAMERCTL_CA_CERT"]);
    let other = pki.other_ca_cert.to_str().unwrap();
    let out = namerctl(&url, dir, &[], &["--ca-cert", other, "dtab", "list"]).await;
    failed_with(&out, &["cannot reach namerd", "UnknownIssuer"]);
    let out = namerctl(&url, dir, &[], &["--ca-cert", "absent.pem", "dtab", "list"]).await;
    failed_with(&out, &["--ca-cert: absent.pem: cannot read it"]);
    // Plain HTTP to a TLS port is refused, not misread.
    let plain = url.replace("https://", "http://");
    let out = run::namerctl(&plain, dir, &["dtab", "list"]).await;
    assert_ne!(out.status.code(), Some(0));
    namerd.shutdown().await;
}

#[tokio::test]
async fn client_certificates_when_namerd_requires_them() {
    let pki = TestPki::new();
    let namerd = https_namerd(pki.mtls(true)).await;
    let url = namerd.https_url();
    let dir = pki.dir();
    let ca = pki.ca_cert.to_str().unwrap();

    let out = namerctl(&url, dir, &[], &["--ca-cert", ca, "dtab", "list"]).await;
    failed_with(&out, &["cannot reach namerd"]);
    let (cert, key) = (
        pki.client.cert.to_str().unwrap(),
        pki.client.key.to_str().unwrap(),
    );
    let out = namerctl(
        &url,
        dir,
        &[],
        &[
            "--ca-cert",
            ca,
            "--cert",
            cert,
            "--key",
            key,
            "dtab",
            "list",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let env = [
        ("NAMERCTL_CA_CERT", pki.ca_cert.as_path()),
        ("NAMERCTL_CERT", pki.client.cert.as_path()),
        ("NAMERCTL_KEY", pki.client.key.as_path()),
    ];
    let out = namerctl(&url, dir, &env, &["dtab", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let (other_cert, other_key) = (
        pki.other_client.cert.to_str().unwrap(),
        pki.other_client.key.to_str().unwrap(),
    );
    let out = namerctl(
        &url,
        dir,
        &[],
        &[
            "--ca-cert",
            ca,
            "--cert",
            other_cert,
            "--key",
            other_key,
            "dtab",
            "list",
        ],
    )
    .await;
    failed_with(&out, &["cannot reach namerd"]);
    let out = namerctl(
        &url,
        dir,
        &[],
        &[
            "--ca-cert",
            ca,
            "--cert",
            cert,
            "--key",
            other_key,
            "dtab",
            "list",
        ],
    )
    .await;
    failed_with(&out, &["--key:", "does not match the certificate"]);
    let out = namerctl(
        &url,
        dir,
        &[],
        &["--ca-cert", ca, "--cert", cert, "dtab", "list"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "--cert without --key is a usage error"
    );
    namerd.shutdown().await;
}
