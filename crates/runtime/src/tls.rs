//! TLS for every listener and client of both binaries, with rustls and its
//! ring provider only (no aws-lc, no OpenSSL).
//!
//! - [`ServerTlsConfig`] / [`ClientTlsConfig`]: the `tls` blocks, with
//!   Linkerd 1.x's field names; TLS 1.0 and 1.1 are refused by name.
//! - [`ServerTls`]: a server configuration that follows its files (polled
//!   by [`crate::reload`], the one loop for every followed file): new
//!   handshakes get the latest good certificate, open connections are
//!   untouched. A changed set that cannot be used (unreadable, expired,
//!   not yet valid, key not matching) is refused with a log line naming
//!   the file and reason and a count in `tls_certificate_errors_total`;
//!   the last good configuration stays in use.
//! - [`ClientTls`]: a client configuration and the server name to verify;
//!   a long-lived client's follows its files too.
//! - [`handshake_failure_reason`]: why a handshake failed, as the one
//!   metric label both servers and clients use;
//! - [`TlsError`]: a file or setting that cannot be used, naming the file,
//!   its key in the block, and why; [`TlsError::at`] turns it into the
//!   configuration error a binary exits 64 on.
//!
//! The caller chooses ALPN (`h2`, `http/1.1`): this module knows no
//! protocol above TLS.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ServerConfig};
use tokio::sync::watch;

use crate::config::ConfigError;
use crate::reload;

mod certs;
mod client;
mod config;
mod failure;
mod server;

pub use certs::{CertificateInfo, TlsError, TlsErrorKind};
pub use client::server_name;
pub use config::{
    ClientAuthConfig, ClientTlsConfig, ServerTlsConfig, TlsProtocol, default_protocols,
};
pub use failure::{HANDSHAKE_FAILURE_REASONS, handshake_failure_reason};
pub use rustls_pki_types::ServerName;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// ALPN for a server or client speaking HTTP/2 only (gRPC).
pub const ALPN_H2: &[&[u8]] = &[b"h2"];
/// ALPN for a server or client speaking HTTP/2 or HTTP/1.1, preferring h2.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A server's TLS configuration, kept current with its files.
#[derive(Clone, Debug)]
pub struct ServerTls {
    current: watch::Receiver<Arc<ServerConfig>>,
}

/// A client's TLS configuration, kept current with its files when made by
/// [`ClientTls::load`].
#[derive(Clone, Debug)]
pub struct ClientTls {
    current: watch::Receiver<Arc<ClientConfig>>,
    common_name: Option<String>,
}

// === impl ServerTls ===

impl ServerTls {
    /// Reads and checks the files of `cfg` and builds the configuration,
    /// offering `alpn`; when `reloadIntervalSecs` is not 0, a task (on the
    /// current tokio runtime) follows the files for as long as a clone of
    /// this handle lives. `block` is the `tls` block's field path, named by
    /// the error when the files cannot be used.
    pub fn load(
        cfg: &ServerTlsConfig,
        alpn: &[&[u8]],
        block: &str,
    ) -> Result<ServerTls, ConfigError> {
        let source = server::ServerSource {
            cfg: cfg.clone(),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        };
        let current = start(source, cfg.reload_interval_secs, block)?;
        Ok(ServerTls { current })
    }

    /// The configuration new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.borrow().clone()
    }

    /// An acceptor for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config())
    }
}

// === impl ClientTls ===

impl ClientTls {
    /// Reads the files of `cfg` and builds the configuration, offering
    /// `alpn`, once: the files are not followed (see [`ClientTls::load`]).
    pub fn new(cfg: &ClientTlsConfig, alpn: &[&[u8]]) -> Result<ClientTls, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let (_, current) = watch::channel(Arc::new(client::build(cfg, &alpn)?));
        Ok(ClientTls {
            current,
            common_name: cfg.common_name.clone(),
        })
    }

    /// Like [`ClientTls::new`], for a long-lived client: when
    /// `reloadIntervalSecs` is not 0, a task (on the current tokio
    /// runtime) follows the files for as long as a clone of this handle
    /// lives, and new connections use the latest good configuration (a
    /// rotated client certificate, a new CA bundle). `block` is the `tls`
    /// block's field path, named by the error when the files cannot be
    /// used.
    pub fn load(
        cfg: &ClientTlsConfig,
        alpn: &[&[u8]],
        block: &str,
    ) -> Result<ClientTls, ConfigError> {
        let source = client::ClientSource {
            cfg: cfg.clone(),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        };
        let current = start(source, cfg.reload_interval_secs, block)?;
        Ok(ClientTls {
            current,
            common_name: cfg.common_name.clone(),
        })
    }

    /// The configuration new connections use.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.current.borrow().clone()
    }

    /// A connector for one new connection.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config())
    }

    /// The name to verify for a connection to `host`: `commonName` if it
    /// is configured, else `host`.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        server_name(self.common_name.as_deref().unwrap_or(host))
    }
}

/// Reads and builds `source` now (a refusal becomes the configuration
/// error of `block`), then, unless `interval_secs` is 0, follows its files.
fn start<S: reload::Source<Error = TlsError>>(
    source: S,
    interval_secs: u64,
    block: &str,
) -> Result<watch::Receiver<Arc<S::Value>>, ConfigError> {
    reload::follow(source, Duration::from_secs(interval_secs)).map_err(|e| e.at(block))
}

/// Records the expiry of a certificate served or presented as a gauge.
fn record_expiry(path: &Path, leaf: &CertificateInfo) {
    metrics::gauge!(
        "tls_certificate_expiry_timestamp_seconds",
        "path" => path.display().to_string()
    )
    .set(leaf.expiry_secs());
}

/// Counts a refused certificate set under the file the error names, else
/// `path`.
fn count_refusal(path: &Path, e: &TlsError) {
    let path = e.path.as_deref().unwrap_or(path);
    metrics::counter!(
        "tls_certificate_errors_total",
        "path" => path.display().to_string(),
        "reason" => e.reason()
    )
    .increment(1);
}

/// The ring provider, with its cipher suites narrowed to `ciphers` (rustls
/// names) when given, checked against `protocols`.
fn provider(
    ciphers: Option<&[String]>,
    protocols: &[TlsProtocol],
) -> Result<CryptoProvider, TlsError> {
    if protocols.is_empty() {
        return Err(TlsError::new("protocols", None, TlsErrorKind::Empty));
    }
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = ciphers {
        if names.is_empty() {
            return Err(TlsError::new("ciphers", None, TlsErrorKind::Empty));
        }
        let name_of = |s: &rustls::SupportedCipherSuite| s.suite().as_str().unwrap_or("?");
        let supported: Vec<&str> = provider.cipher_suites.iter().map(name_of).collect();
        for (i, name) in names.iter().enumerate() {
            if !supported.contains(&name.as_str()) {
                return Err(TlsError::new(
                    format!("ciphers[{i}]"),
                    None,
                    TlsErrorKind::UnknownCipher {
                        name: name.clone(),
                        supported: supported.join(", "),
                    },
                ));
            }
        }
        provider
            .cipher_suites
            .retain(|s| names.iter().any(|n| n == name_of(s)));
    }
    let usable = provider
        .cipher_suites
        .iter()
        .any(|s| protocols.iter().any(|p| s.version() == p.rustls()));
    if !usable {
        return Err(TlsError::new("ciphers", None, TlsErrorKind::NoUsableCipher));
    }
    Ok(provider)
}

#[cfg(test)]
mod tests;
