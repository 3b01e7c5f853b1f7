//! A server's rustls configuration built from its `tls` block: the
//! certificate and key (checked to be valid now and to match), client
//! certificates verified by webpki against `caCertPath` (required or
//! optional), the protocols and ciphers configured, and the caller's ALPN.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;

use super::certs::{self, CertificateInfo, TlsError, TlsErrorKind};
use super::{ServerTlsConfig, count_refusal, provider, record_expiry};
use crate::reload::Source;

/// A built server configuration and what it was built from.
#[derive(Debug)]
pub(super) struct Built {
    pub(super) config: ServerConfig,
    /// The served leaf certificate.
    pub(super) leaf: CertificateInfo,
}

/// The contents of the files a server configuration is built from, read
/// together so that a reload compares and builds one consistent snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Option<Vec<u8>>,
}

impl Files {
    pub(super) fn read(cfg: &ServerTlsConfig) -> Result<Files, TlsError> {
        Ok(Files {
            cert: certs::read("certPath", &cfg.cert_path)?,
            key: certs::read("keyPath", &cfg.key_path)?,
            ca: match &cfg.ca_cert_path {
                Some(path) => Some(certs::read("caCertPath", path)?),
                None => None,
            },
        })
    }
}

/// Builds the configuration `cfg` describes from `files`, offering `alpn`.
pub(super) fn build(
    cfg: &ServerTlsConfig,
    files: &Files,
    alpn: &[Vec<u8>],
    now: SystemTime,
) -> Result<Built, TlsError> {
    let provider = Arc::new(provider(cfg.ciphers.as_deref(), &cfg.protocols)?);
    let (chain, leaf) = certs::certificates("certPath", &cfg.cert_path, &files.cert, now)?;
    let key = certs::certified_key(
        ("certPath", &cfg.cert_path),
        ("keyPath", &cfg.key_path),
        chain,
        &files.key,
        &provider,
    )?;
    let verifier = match (&cfg.ca_cert_path, &files.ca) {
        (Some(path), Some(pem)) => {
            let roots = Arc::new(certs::roots("caCertPath", path, pem)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            let builder = if cfg.require_client_auth {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder
                .build()
                .map_err(|e| rejected("caCertPath", path, e))?
        }
        _ if cfg.require_client_auth => {
            return Err(TlsError::new(
                "requireClientAuth",
                None,
                TlsErrorKind::Rejected("client certificates need caCertPath to verify them".into()),
            ));
        }
        _ => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&super::TlsProtocol::versions(&cfg.protocols))
        .map_err(|_| TlsError::new("ciphers", None, TlsErrorKind::NoUsableCipher))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
    config.alpn_protocols = alpn.to_vec();
    Ok(Built { config, leaf })
}

/// A server's `tls` block as [`crate::reload::follow`] reads and builds it.
#[derive(Debug)]
pub(super) struct ServerSource {
    pub(super) cfg: ServerTlsConfig,
    pub(super) alpn: Vec<Vec<u8>>,
}

impl Source for ServerSource {
    type Files = Files;
    type Value = ServerConfig;
    type Error = TlsError;

    fn read(&self) -> Result<Files, TlsError> {
        Files::read(&self.cfg)
    }

    fn build(&self, files: &Files) -> Result<ServerConfig, TlsError> {
        let built = build(&self.cfg, files, &self.alpn, SystemTime::now())?;
        record_expiry(&self.cfg.cert_path, &built.leaf);
        Ok(built.config)
    }

    fn path(&self) -> &Path {
        &self.cfg.cert_path
    }

    fn refused(&self, e: &TlsError) {
        count_refusal(&self.cfg.cert_path, e);
    }
}

fn rejected(field: &str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::new(field, Some(path), TlsErrorKind::Rejected(e.to_string()))
}
