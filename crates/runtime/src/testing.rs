//! A PKI generated at test time, for tests of anything that serves or
//! dials TLS: a CA, a server certificate for `localhost` and 127.0.0.1, a
//! client certificate with DNS and URI names, an expired and a
//! not-yet-valid server certificate, and a second CA with a client
//! certificate of its own. Everything is written as PEM to a temporary
//! directory that lives as long as the [`TestPki`]. No key is ever
//! committed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    date_time_ymd,
};

use crate::tls::{ClientAuthConfig, ClientTlsConfig, ServerTlsConfig, default_protocols};

/// The names in [`TestPki`]'s client certificate.
pub const CLIENT_NAMES: [&str; 2] = ["client.test", "spiffe://l5d.test/deployer"];

/// A certificate and its key, as files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The generated PKI.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: Ca,
    /// The CA's certificate.
    pub ca_cert: PathBuf,
    /// For `localhost` and 127.0.0.1, signed by the CA.
    pub server: Pair,
    /// With [`CLIENT_NAMES`], signed by the CA.
    pub client: Pair,
    /// For `localhost`, signed by the CA, expired in 2000.
    pub expired: Pair,
    /// For `localhost`, signed by the CA, valid from 3000.
    pub not_yet_valid: Pair,
    /// A second CA's certificate.
    pub other_ca_cert: PathBuf,
    /// A client certificate signed by the second CA.
    pub other_client: Pair,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca")
    }
}

impl TestPki {
    /// Generates everything into a new temporary directory.
    ///
    /// # Panics
    ///
    /// If generation or writing fails: a broken test environment.
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (ca, ca_pem) = Ca::new("l5d test CA");
        let (other, other_pem) = Ca::new("another CA");
        let ca_cert = write(dir.path(), "ca.pem", &ca_pem);
        let other_ca_cert = write(dir.path(), "other-ca.pem", &other_pem);
        let server = ca.issue(dir.path(), "server", &["localhost", "127.0.0.1"], None);
        let client = ca.issue(dir.path(), "client", &CLIENT_NAMES, None);
        let expired = ca.issue(
            dir.path(),
            "expired",
            &["localhost", "127.0.0.1"],
            Some((1999, 2000)),
        );
        let not_yet_valid = ca.issue(
            dir.path(),
            "not-yet-valid",
            &["localhost", "127.0.0.1"],
            Some((3000, 3001)),
        );
        let other_client = other.issue(dir.path(), "other-client", &CLIENT_NAMES, None);
        TestPki {
            dir,
            ca,
            ca_cert,
            server,
            client,
            expired,
            not_yet_valid,
            other_ca_cert,
            other_client,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new server certificate for `localhost` and 127.0.0.1 from the
    /// same CA, written as `{stem}.pem` and `{stem}.key` (for rotation).
    pub fn issue_server(&self, stem: &str) -> Pair {
        self.ca
            .issue(self.dir.path(), stem, &["localhost", "127.0.0.1"], None)
    }

    /// A new certificate for `names` (DNS names, IP addresses, URIs) from
    /// the same CA, usable by a server or a client, written as `{stem}.pem`
    /// and `{stem}.key` (for rotation, or a server with names of its own).
    pub fn issue(&self, stem: &str, names: &[&str]) -> Pair {
        self.ca.issue(self.dir.path(), stem, names, None)
    }

    /// The server's `tls` block: the server pair, no client certificates.
    pub fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig {
            cert_path: self.server.cert.clone(),
            key_path: self.server.key.clone(),
            ca_cert_path: None,
            require_client_auth: false,
            protocols: default_protocols(),
            ciphers: None,
            reload_interval_secs: 0,
        }
    }

    /// The server's `tls` block verifying client certificates against the
    /// CA, requiring them if `require`.
    pub fn mtls(&self, require: bool) -> ServerTlsConfig {
        ServerTlsConfig {
            ca_cert_path: Some(self.ca_cert.clone()),
            require_client_auth: require,
            ..self.server_tls()
        }
    }

    /// A client's `tls` block trusting the CA, for `localhost`.
    pub fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig {
            common_name: Some("localhost".into()),
            trust_certs: vec![self.ca_cert.clone()],
            ..ClientTlsConfig::default()
        }
    }

    /// [`TestPki::client_tls`] presenting `pair`.
    pub fn client_tls_with(&self, pair: &Pair) -> ClientTlsConfig {
        ClientTlsConfig {
            client_auth: Some(ClientAuthConfig {
                cert_path: pair.cert.clone(),
                key_path: pair.key.clone(),
            }),
            ..self.client_tls()
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Ca {
    fn new(name: &str) -> (Ca, String) {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        (
            Ca {
                issuer: Issuer::new(params, key),
            },
            cert.pem(),
        )
    }

    /// A leaf for `names` (IP addresses become IP names, `scheme://` URI
    /// names), valid from and until the given years if set.
    fn issue(&self, dir: &Path, stem: &str, names: &[&str], years: Option<(i32, i32)>) -> Pair {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, stem);
        for name in names {
            params.subject_alt_names.push(if name.contains("://") {
                SanType::URI((*name).try_into().expect("an IA5 URI"))
            } else if let Ok(ip) = name.parse() {
                SanType::IpAddress(ip)
            } else {
                SanType::DnsName((*name).try_into().expect("an IA5 DNS name"))
            });
        }
        if let Some((from, until)) = years {
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(until, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("a signed leaf");
        Pair {
            cert: write(dir, &format!("{stem}.pem"), &cert.pem()),
            key: write(dir, &format!("{stem}.key"), &key.serialize_pem()),
        }
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("a writable temporary directory");
    path
}
