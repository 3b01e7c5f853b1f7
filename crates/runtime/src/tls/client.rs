//! A client's rustls configuration built from its `tls` block: the server
//! verified by webpki against `trustCerts` (or, with `disableValidation`,
//! not at all), an optional client certificate, and the caller's ALPN.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::certs::{self, TlsError, TlsErrorKind};
use super::{ClientTlsConfig, TlsProtocol, default_protocols, provider};

/// Builds the client configuration `cfg` describes, offering `alpn`.
pub(super) fn build(cfg: &ClientTlsConfig, alpn: &[Vec<u8>]) -> Result<ClientConfig, TlsError> {
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
        for (i, path) in cfg.trust_certs.iter().enumerate() {
            let field = format!("trustCerts[{i}]");
            let pem = certs::read(&field, path)?;
            roots.roots.extend(certs::roots(&field, path, &pem)?.roots);
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &cfg.client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let pem = certs::read("clientAuth.certPath", &auth.cert_path)?;
            let (chain, _) = certs::certificates(
                "clientAuth.certPath",
                &auth.cert_path,
                &pem,
                SystemTime::now(),
            )?;
            let key_pem = certs::read("clientAuth.keyPath", &auth.key_path)?;
            let key = certs::certified_key(
                ("clientAuth.certPath", &auth.cert_path),
                ("clientAuth.keyPath", &auth.key_path),
                chain,
                &key_pem,
                &provider,
            )?;
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)))
        }
    };
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
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
