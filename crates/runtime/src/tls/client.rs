//! A client's rustls configuration built from its `tls` block: the server
//! verified by webpki against `trustCerts` (or, with `disableValidation`,
//! not at all), an optional client certificate (checked to be valid now
//! and to match its key), and the caller's ALPN.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::certs::{self, CertificateInfo, TlsError, TlsErrorKind};
use super::{
    ClientTlsConfig, TlsProtocol, count_refusal, default_protocols, provider, record_expiry,
};
use crate::reload::Source;

/// The contents of the files a client configuration is built from, read
/// together so that a reload compares and builds one consistent snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Files {
    trust: Vec<Vec<u8>>,
    /// The client certificate chain and its key.
    auth: Option<(Vec<u8>, Vec<u8>)>,
}

impl Files {
    pub(super) fn read(cfg: &ClientTlsConfig) -> Result<Files, TlsError> {
        let mut trust = Vec::with_capacity(cfg.trust_certs.len());
        if !cfg.disable_validation {
            for (i, path) in cfg.trust_certs.iter().enumerate() {
                trust.push(certs::read(&format!("trustCerts[{i}]"), path)?);
            }
        }
        let auth = match &cfg.client_auth {
            None => None,
            Some(auth) => Some((
                certs::read("clientAuth.certPath", &auth.cert_path)?,
                certs::read("clientAuth.keyPath", &auth.key_path)?,
            )),
        };
        Ok(Files { trust, auth })
    }
}

/// Reads the files of `cfg` and builds the client configuration it
/// describes, offering `alpn`.
pub(super) fn build(cfg: &ClientTlsConfig, alpn: &[Vec<u8>]) -> Result<ClientConfig, TlsError> {
    build_from(cfg, &Files::read(cfg)?, alpn, SystemTime::now()).map(|(config, _)| config)
}

/// Builds the client configuration `cfg` describes from `files`, offering
/// `alpn`; with the client certificate's facts, if there is one.
pub(super) fn build_from(
    cfg: &ClientTlsConfig,
    files: &Files,
    alpn: &[Vec<u8>],
    now: SystemTime,
) -> Result<(ClientConfig, Option<CertificateInfo>), TlsError> {
    let protocols = cfg.protocols.clone().unwrap_or_else(default_protocols);
    let provider = Arc::new(provider(None, &protocols)?);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&TlsProtocol::versions(&protocols))
        .map_err(|_| TlsError::new("protocols", None, TlsErrorKind::NoUsableCipher))?;
    let builder = if cfg.disable_validation {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoValidation(provider.clone())))
    } else {
        if cfg.trust_certs.is_empty() {
            return Err(TlsError::new("trustCerts", None, TlsErrorKind::Empty));
        }
        let mut roots = rustls::RootCertStore::empty();
        for (i, (path, pem)) in cfg.trust_certs.iter().zip(&files.trust).enumerate() {
            let field = format!("trustCerts[{i}]");
            roots.roots.extend(certs::roots(&field, path, pem)?.roots);
        }
        builder.with_root_certificates(roots)
    };
    let (mut config, leaf) = match (&cfg.client_auth, &files.auth) {
        (Some(auth), Some((pem, key_pem))) => {
            let (chain, leaf) =
                certs::certificates("clientAuth.certPath", &auth.cert_path, pem, now)?;
            let key = certs::certified_key(
                ("clientAuth.certPath", &auth.cert_path),
                ("clientAuth.keyPath", &auth.key_path),
                chain,
                key_pem,
                &provider,
            )?;
            let resolver = Arc::new(rustls::sign::SingleCertAndKey::from(key));
            (builder.with_client_cert_resolver(resolver), Some(leaf))
        }
        _ => (builder.with_no_client_auth(), None),
    };
    config.alpn_protocols = alpn.to_vec();
    Ok((config, leaf))
}

/// A client's `tls` block as [`crate::reload::follow`] reads and builds it.
#[derive(Debug)]
pub(super) struct ClientSource {
    pub(super) cfg: ClientTlsConfig,
    pub(super) alpn: Vec<Vec<u8>>,
}

impl ClientSource {
    /// The path a client's refusals and expiry are recorded under.
    fn recorded_path(cfg: &ClientTlsConfig) -> &Path {
        match (&cfg.client_auth, cfg.trust_certs.first()) {
            (Some(auth), _) => &auth.cert_path,
            (None, Some(first)) => first,
            (None, None) => Path::new("trustCerts"),
        }
    }
}

impl Source for ClientSource {
    type Files = Files;
    type Value = ClientConfig;
    type Error = TlsError;

    fn read(&self) -> Result<Files, TlsError> {
        Files::read(&self.cfg)
    }

    fn build(&self, files: &Files) -> Result<ClientConfig, TlsError> {
        let (config, leaf) = build_from(&self.cfg, files, &self.alpn, SystemTime::now())?;
        if let Some(leaf) = leaf {
            record_expiry(Self::recorded_path(&self.cfg), &leaf);
        }
        Ok(config)
    }

    fn path(&self) -> &Path {
        Self::recorded_path(&self.cfg)
    }

    fn refused(&self, e: &TlsError) {
        count_refusal(Self::recorded_path(&self.cfg), e);
    }
}

/// The name to verify the server's certificate against (and to send as
/// SNI): an IP address or a DNS name.
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string()).map_err(|e| {
        TlsError::new(
            "commonName",
            None,
            TlsErrorKind::Rejected(format!("{name:?} is not a DNS name or IP address: {e}")),
        )
    })
}

/// `disableValidation`: any certificate is accepted, but the handshake's
/// signatures are still checked against it, as rustls requires of a
/// verifier.
#[derive(Debug)]
struct NoValidation(Arc<CryptoProvider>);

impl ServerCertVerifier for NoValidation {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
