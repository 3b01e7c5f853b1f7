//! A server's or client's configuration that follows its files.
//!
//! The files are polled: read every `reloadIntervalSecs` and compared with
//! what is served. Polling rather than file notifications, because a
//! Kubernetes Secret volume rotates by swapping a symlink (`..data`) in the
//! directory above the files, which a watch on the files themselves does
//! not see, and reading three small files every few seconds costs nothing.
//! A changed set is built into a new configuration and swapped in through
//! a watch channel: new handshakes read the latest, open connections keep
//! the one they were made with (a client's rotated certificate is
//! presented on its next connection). A set that cannot be used (unreadable,
//! expired, not yet valid, key not matching) is refused with a log line
//! naming the file and reason and a count in `tls_certificate_errors_total`;
//! the last good configuration stays in use.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::certs::{CertificateInfo, TlsError};

/// What a followed configuration is read and built from: a server's or a
/// client's `tls` block (see `server.rs`, `client.rs`).
pub(super) trait Source: Send + 'static {
    /// The contents of the files, compared to see whether they changed.
    type Files: PartialEq + Send + 'static;
    type Config: Send + Sync + 'static;

    fn read(&self) -> Result<Self::Files, TlsError>;

    /// Builds from `files`, checking them now; records the served
    /// certificate's expiry, if any.
    fn build(&self, files: &Self::Files) -> Result<Self::Config, TlsError>;

    /// The file a refusal is counted under when the error names none.
    fn main_path(&self) -> &Path;
}

/// Records a served certificate's expiry as a gauge.
pub(super) fn record_served(path: &Path, leaf: &CertificateInfo) {
    metrics::gauge!(
        "tls_certificate_expiry_timestamp_seconds",
        "path" => path.display().to_string()
    )
    .set(leaf.expiry_secs());
}

/// Counts and logs a refused certificate set; `path` when the error names
/// no file.
pub(super) fn record_error(path: &Path, e: &TlsError) {
    let path = e.path.as_deref().unwrap_or(path);
    metrics::counter!(
        "tls_certificate_errors_total",
        "path" => path.display().to_string(),
        "reason" => e.reason()
    )
    .increment(1);
}

/// Polls the files of `source` every `interval` until every receiver of
/// `tx` is gone, swapping in a new configuration when they change and can
/// be used. `served` is the content the current configuration was built
/// from.
pub(super) async fn follow<S: Source>(
    source: S,
    interval: Duration,
    mut served: S::Files,
    tx: watch::Sender<Arc<S::Config>>,
) {
    // The last set refused, so that a bad file is reported once, not on
    // every poll while it stays bad.
    let mut refused: Option<S::Files> = None;
    loop {
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let files = match source.read() {
            Ok(files) => files,
            Err(e) => {
                // A file mid-rotation may be briefly missing; it is counted,
                // and the next poll tries again.
                tracing::warn!(error = %e, "cannot reload TLS files; still using the last good certificate");
                record_error(source.main_path(), &e);
                continue;
            }
        };
        if files == served || refused.as_ref() == Some(&files) {
            continue;
        }
        match source.build(&files) {
            Ok(config) => {
                tracing::info!(file = %source.main_path().display(), "TLS files reloaded");
                tx.send_replace(Arc::new(config));
                served = files;
                refused = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "refusing changed TLS files; still using the last good certificate");
                record_error(source.main_path(), &e);
                refused = Some(files);
            }
        }
    }
}
