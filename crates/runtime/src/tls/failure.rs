//! Why a TLS handshake failed, in one word fit for a metric label, for
//! servers (`listener_handshake_failures_total{reason}`) and clients (the
//! proxy's `linkerd_client_tls_failures_total{reason}`) alike, so that an
//! expired, misnamed or foreign certificate reads the same on both sides.
//!
//! tokio-rustls reports a failed handshake as an `io::Error` whose inner
//! error is the `rustls::Error`; anything else (a reset, an early end of
//! stream) is the transport's.

use std::io;

use rustls::{CertificateError, Error};

/// Every reason [`handshake_failure_reason`] gives, plus `timeout`, which
/// the caller counts when the handshake took too long.
pub const HANDSHAKE_FAILURE_REASONS: &[&str] = &[
    "no_certificate",
    "expired",
    "not_yet_valid",
    "unknown_ca",
    "name_mismatch",
    "bad_certificate",
    "refused_by_peer",
    "protocol",
    "malformed",
    "io",
    "timeout",
];

/// The reason a handshake failed with `e`: our verification of the peer's
/// certificate (`no_certificate`: a client sent none where one is
/// required; `expired`, `not_yet_valid`, `unknown_ca`: signed by no
/// trusted CA; `name_mismatch`: not for the name dialled;
/// `bad_certificate`: any other fault), the peer's refusal of ours or of
/// the handshake (`refused_by_peer`: it sent an alert), no common version,
/// cipher suite or ALPN protocol (`protocol`), bytes that are not TLS
/// (`malformed`), or the connection itself (`io`).
pub fn handshake_failure_reason(e: &io::Error) -> &'static str {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) else {
        return "io";
    };
    match tls {
        Error::NoCertificatesPresented => "no_certificate",
        Error::InvalidCertificate(cert) => certificate_reason(cert),
        Error::UnsupportedNameType | Error::InvalidCertRevocationList(_) => "bad_certificate",
        Error::AlertReceived(_) => "refused_by_peer",
        Error::PeerIncompatible(_) | Error::NoApplicationProtocol => "protocol",
        Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::InvalidMessage(_)
        | Error::PeerMisbehaved(_)
        | Error::DecryptError
        | Error::PeerSentOversizedRecord => "malformed",
        _ => "io",
    }
}

fn certificate_reason(e: &CertificateError) -> &'static str {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "not_yet_valid"
        }
        CertificateError::UnknownIssuer => "unknown_ca",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "name_mismatch"
        }
        _ => "bad_certificate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn every_reason_is_listed_and_read_from_the_inner_rustls_error() {
        let cases = [
            (wrapped(Error::NoCertificatesPresented), "no_certificate"),
            (
                wrapped(Error::InvalidCertificate(CertificateError::Expired)),
                "expired",
            ),
            (
                wrapped(Error::InvalidCertificate(CertificateError::NotValidYet)),
                "not_yet_valid",
            ),
            (
                wrapped(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
                "unknown_ca",
            ),
            (
                wrapped(Error::InvalidCertificate(CertificateError::NotValidForName)),
                "name_mismatch",
            ),
            (
                wrapped(Error::InvalidCertificate(CertificateError::BadSignature)),
                "bad_certificate",
            ),
            (
                wrapped(Error::AlertReceived(
                    rustls::AlertDescription::CertificateExpired,
                )),
                "refused_by_peer",
            ),
            (wrapped(Error::NoApplicationProtocol), "protocol"),
            (wrapped(Error::DecryptError), "malformed"),
            (io::Error::from(io::ErrorKind::UnexpectedEof), "io"),
            (io::Error::other("not rustls"), "io"),
        ];
        for (e, expected) in cases {
            let reason = handshake_failure_reason(&e);
            assert_eq!(reason, expected, "{e}");
            assert!(HANDSHAKE_FAILURE_REASONS.contains(&reason));
        }
    }
}
