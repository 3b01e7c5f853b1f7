//! Serving a server configuration that follows its files.
//!
//! The files are polled: read every `reloadIntervalSecs` and compared with
//! what is served. Polling rather than file notifications, because a
//! Kubernetes Secret volume rotates by swapping a symlink (`..data`) in the
//! directory above the files, which a watch on the files themselves does
//! not see, and reading three small files every few seconds costs nothing.
//! A changed set is built into a new configuration and swapped in through
//! a watch channel: new handshakes read the latest, open connections keep
//! the one they were made with. A set that cannot be used (unreadable,
//! expired, not yet valid, key not matching) is refused with a log line
//! naming the file and reason and a count in `tls_certificate_errors_total`;
//! the last good configuration keeps serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use tokio::sync::watch;

use super::ServerTlsConfig;
use super::certs::{CertificateInfo, TlsError};
use super::server::{self, Files};

/// Records the served certificate's expiry as a gauge.
pub(super) fn record_served(cfg: &ServerTlsConfig, leaf: &CertificateInfo) {
    metrics::gauge!(
        "tls_certificate_expiry_timestamp_seconds",
        "path" => cfg.cert_path.display().to_string()
    )
    .set(leaf.expiry_secs());
}

/// Counts and logs a refused certificate set.
pub(super) fn record_error(cfg: &ServerTlsConfig, e: &TlsError) {
    let path = e.path.as_ref().unwrap_or(&cfg.cert_path);
    metrics::counter!(
        "tls_certificate_errors_total",
        "path" => path.display().to_string(),
        "reason" => e.reason()
    )
    .increment(1);
}

/// Polls the files of `cfg` until every receiver of `tx` is gone, swapping
/// in a new configuration when they change and can be used. `served` is
/// the content the current configuration was built from.
pub(super) async fn follow(
    cfg: ServerTlsConfig,
    alpn: Vec<Vec<u8>>,
    mut served: Files,
    tx: watch::Sender<Arc<ServerConfig>>,
) {
    let interval = Duration::from_secs(cfg.reload_interval_secs);
    // The last set refused, so that a bad file is reported once, not on
    // every poll while it stays bad.
    let mut refused: Option<Files> = None;
    loop {
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let files = match Files::read(&cfg) {
            Ok(files) => files,
            Err(e) => {
                // A file mid-rotation may be briefly missing; it is counted,
                // and the next poll tries again.
                tracing::warn!(error = %e, "cannot reload TLS files; still serving the last good certificate");
                record_error(&cfg, &e);
                continue;
            }
        };
        if files == served || refused.as_ref() == Some(&files) {
            continue;
        }
        match server::build(&cfg, &files, &alpn, SystemTime::now()) {
            Ok(built) => {
                tracing::info!(cert = %cfg.cert_path.display(), "TLS certificate reloaded");
                record_served(&cfg, &built.leaf);
                tx.send_replace(built.config);
                served = files;
                refused = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "refusing changed TLS files; still serving the last good certificate");
                record_error(&cfg, &e);
                refused = Some(files);
            }
        }
    }
}
