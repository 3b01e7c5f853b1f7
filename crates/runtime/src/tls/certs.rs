//! Reading certificates and keys from PEM files, checking them before they
//! are served, and reading the names and validity out of a certificate.
//!
//! x509-parser reads validity and subject alternative names because
//! neither rustls nor webpki exposes a certificate's validity period, and
//! one parser for both keeps a certificate's facts in one place. (webpki
//! still does all verification; this module only reports.)

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ClientIdentity;
use crate::config::ConfigError;
use crate::reload::ReloadError;

/// A certificate, key or CA file that cannot be used, naming the file, the
/// configuration key it came from, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", .path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
pub struct TlsError {
    /// The key inside the `tls` block (`certPath`, `trustCerts[1]`, ...).
    pub field: String,
    /// The file, when the error is about one.
    pub path: Option<PathBuf>,
    pub kind: TlsErrorKind,
}

/// Why a file or setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsErrorKind {
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("no PEM certificate in it")]
    NoCertificate,
    #[error("no PEM private key in it ({0})")]
    NoKey(String),
    #[error("cannot parse certificate {index}: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error("certificate {index} expired at {at}")]
    Expired { index: usize, at: String },
    #[error("certificate {index} is not valid until {at}")]
    NotYetValid { index: usize, at: String },
    #[error("the key does not match the certificate in {0}")]
    KeyMismatch(String),
    #[error("refused by rustls: {0}")]
    Rejected(String),
    #[error("no supported cipher suite named {name:?}; supported: {supported}")]
    UnknownCipher { name: String, supported: String },
    #[error("none of the configured cipher suites can be used with the configured protocols")]
    NoUsableCipher,
    #[error("must not be empty")]
    Empty,
}

/// What one certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// DNS names, then URIs, from the subject alternative names.
    pub names: Vec<String>,
}

// === impl TlsError ===

impl TlsError {
    pub(super) fn new(field: impl Into<String>, path: Option<&Path>, kind: TlsErrorKind) -> Self {
        TlsError {
            field: field.into(),
            path: path.map(Path::to_path_buf),
            kind,
        }
    }

    /// The reason as a metric label value.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            TlsErrorKind::Unreadable(_) => "unreadable",
            TlsErrorKind::NoCertificate
            | TlsErrorKind::NoKey(_)
            | TlsErrorKind::BadCertificate { .. }
            | TlsErrorKind::Rejected(_) => "invalid",
            TlsErrorKind::Expired { .. } => "expired",
            TlsErrorKind::NotYetValid { .. } => "not_yet_valid",
            TlsErrorKind::KeyMismatch(_) => "key_mismatch",
            TlsErrorKind::UnknownCipher { .. }
            | TlsErrorKind::NoUsableCipher
            | TlsErrorKind::Empty => "config",
        }
    }

    /// This error as a configuration error of the `tls` block at `block`
    /// (e.g. `interfaces[0].tls`), for refusing to start.
    pub fn at(&self, block: &str) -> ConfigError {
        ConfigError::new(format!("{block}.{}", self.field), self)
    }
}

// === impl CertificateInfo ===

impl CertificateInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertificateInfo, String> {
        use x509_parser::extensions::GeneralName;

        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let time = |t: x509_parser::time::ASN1Time| {
            let secs = t.timestamp();
            if secs >= 0 {
                UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
            } else {
                UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            }
        };
        let validity = cert.validity();
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => dns.push((*n).to_string()),
                    GeneralName::URI(u) => uris.push((*u).to_string()),
                    _ => {}
                }
            }
        }
        dns.extend(uris);
        Ok(CertificateInfo {
            not_before: time(validity.not_before),
            not_after: time(validity.not_after),
            names: dns,
        })
    }

    /// Seconds since the Unix epoch at which the certificate expires.
    pub fn expiry_secs(&self) -> f64 {
        self.not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

// === impl ClientIdentity ===

impl ClientIdentity {
    /// The identity in a verified client certificate: its subject
    /// alternative names. `None` when the certificate cannot be parsed or
    /// has no DNS or URI name.
    pub fn from_certificate(der: &[u8]) -> Option<ClientIdentity> {
        let info = CertificateInfo::parse(der).ok()?;
        (!info.names.is_empty()).then_some(ClientIdentity { names: info.names })
    }
}

/// A file's bytes (at most [`crate::reload::MAX_FILE_BYTES`]), or why they
/// cannot be read.
pub(super) fn read(field: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::reload::read_file(path).map_err(|e| {
        let reason = match e {
            ReloadError::Read { reason, .. } => reason,
            other => other.to_string(),
        };
        TlsError::new(field, Some(path), TlsErrorKind::Unreadable(reason))
    })
}

/// The certificates of a PEM file's contents, each parsed and checked to be
/// within its validity period at `now`; the leaf's facts are returned.
pub(super) fn certificates(
    field: &str,
    path: &Path,
    pem: &[u8],
    now: SystemTime,
) -> Result<(Vec<CertificateDer<'static>>, CertificateInfo), TlsError> {
    let err = |kind| TlsError::new(field, Some(path), kind);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            err(TlsErrorKind::BadCertificate {
                index: 0,
                reason: e.to_string(),
            })
        })?;
    let mut leaf = None;
    for (index, der) in certs.iter().enumerate() {
        let info = CertificateInfo::parse(der)
            .map_err(|reason| err(TlsErrorKind::BadCertificate { index, reason }))?;
        if now > info.not_after {
            let at = show_time(info.not_after);
            return Err(err(TlsErrorKind::Expired { index, at }));
        }
        if now < info.not_before {
            let at = show_time(info.not_before);
            return Err(err(TlsErrorKind::NotYetValid { index, at }));
        }
        leaf.get_or_insert(info);
    }
    match leaf {
        Some(leaf) => Ok((certs, leaf)),
        None => Err(err(TlsErrorKind::NoCertificate)),
    }
}

/// CA certificates for verifying peers. CAs are not checked for validity
/// here: webpki refuses a chain through an expired CA at handshake time.
pub(super) fn roots(
    field: &str,
    path: &Path,
    pem: &[u8],
) -> Result<rustls::RootCertStore, TlsError> {
    let err = |kind| TlsError::new(field, Some(path), kind);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| {
            err(TlsErrorKind::BadCertificate {
                index: roots.len(),
                reason: e.to_string(),
            })
        })?;
        roots
            .add(cert)
            .map_err(|e| err(TlsErrorKind::Rejected(e.to_string())))?;
    }
    if roots.is_empty() {
        return Err(err(TlsErrorKind::NoCertificate));
    }
    Ok(roots)
}

/// A certificate chain with its key, checked to match.
pub(super) fn certified_key(
    (cert_field, cert_path): (&str, &Path),
    (key_field, key_path): (&str, &Path),
    chain: Vec<CertificateDer<'static>>,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let key_err = |kind| TlsError::new(key_field, Some(key_path), kind);
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| key_err(TlsErrorKind::NoKey(e.to_string())))?;
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(key) => Ok(key),
        Err(rustls::Error::InconsistentKeys(_)) => Err(key_err(TlsErrorKind::KeyMismatch(
            cert_path.display().to_string(),
        ))),
        Err(e) => Err(TlsError::new(
            cert_field,
            Some(cert_path),
            TlsErrorKind::Rejected(e.to_string()),
        )),
    }
}

/// A time as x509-parser shows certificate times (`Jan  1 00:00:00 2030 +00:00`).
pub(super) fn show_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs)
        .ok()
        .and_then(|s| x509_parser::time::ASN1Time::from_timestamp(s).ok())
        .map_or_else(|| format!("{secs}s after the epoch"), |t| t.to_string())
}
