//! A file's parsed contents, kept current while the process runs: namerd's
//! token file today, and any other small file an operator rotates in place
//! (Kubernetes updates a mounted Secret by swapping a symlink).
//!
//! [`watch_file`] reads and parses the file once, failing if it cannot (a
//! configuration error at start), then re-reads it every interval and
//! publishes the new value on a watch channel when the bytes changed and
//! parse. A file that is missing, too large or invalid after a change keeps
//! the last good value in place and is logged once per distinct problem,
//! not on every poll.
//!
//! Polling the content rather than watching with inotify: a Secret update
//! replaces a directory symlink, which an inotify watch on the file itself
//! never sees, and the files are a few KiB, so reading them every few
//! seconds costs nothing. Knows nothing of what the files mean.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Larger files are refused: these are tokens and certificates, and a
/// runaway file must not be read into memory every interval.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why a file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} is larger than {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// Reads and parses `path` now, then re-reads it every `interval` for as
/// long as a receiver is alive, publishing each changed, valid version.
/// Must be called within a tokio runtime.
///
/// # Errors
///
/// When the file cannot be read or parsed now.
pub fn watch_file<T, E, F>(
    path: impl Into<PathBuf>,
    interval: Duration,
    parse: F,
) -> Result<watch::Receiver<Arc<T>>, ReloadError>
where
    T: Send + Sync + 'static,
    E: fmt::Display,
    F: Fn(&[u8]) -> Result<T, E> + Send + 'static,
{
    let mut poller = Poller::new(path.into(), parse);
    let first = match poller.poll() {
        Poll::Changed(value) => value,
        Poll::Failed(e) => return Err(e),
        Poll::Unchanged => unreachable!("the first read is always a change"),
    };
    let (tx, rx) = watch::channel(Arc::new(first));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match poller.poll() {
                Poll::Changed(value) => {
                    tracing::info!(path = %poller.path.display(), "reloaded");
                    tx.send_replace(Arc::new(value));
                }
                Poll::Failed(e) => {
                    tracing::warn!(error = %e, "keeping the last good version");
                }
                Poll::Unchanged => {}
            }
        }
    });
    Ok(rx)
}

/// One read of the file, compared with the previous one.
struct Poller<F> {
    path: PathBuf,
    parse: F,
    /// The bytes read last time, valid or not, so that an unchanged file
    /// is neither parsed nor reported again.
    last: Option<Result<Vec<u8>, ReloadError>>,
}

enum Poll<T> {
    Changed(T),
    Unchanged,
    /// A new problem (the same one again is `Unchanged`).
    Failed(ReloadError),
}

impl<F> Poller<F> {
    fn new(path: PathBuf, parse: F) -> Self {
        Poller {
            path,
            parse,
            last: None,
        }
    }

    fn poll<T, E>(&mut self) -> Poll<T>
    where
        F: Fn(&[u8]) -> Result<T, E>,
        E: fmt::Display,
    {
        // A few KiB from a local file (a mounted Secret): not worth a hop
        // to the blocking pool.
        let read = read_capped(&self.path);
        if self.last.as_ref() == Some(&read) {
            return Poll::Unchanged;
        }
        self.last = Some(read.clone());
        let parsed = read.and_then(|bytes| {
            (self.parse)(&bytes).map_err(|e| ReloadError::Parse {
                path: self.path.clone(),
                message: e.to_string(),
            })
        });
        match parsed {
            Ok(value) => Poll::Changed(value),
            Err(e) => Poll::Failed(e),
        }
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, ReloadError> {
    let read_error = |e: std::io::Error| ReloadError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReloadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(bytes: &[u8]) -> Result<u32, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        text.trim()
            .parse()
            .map_err(|e| format!("not a number: {e}"))
    }

    fn changed(poll: Poll<u32>) -> Option<u32> {
        match poll {
            Poll::Changed(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn each_change_is_read_once_and_a_problem_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let mut poller = Poller::new(path.clone(), number);
        assert!(matches!(
            poller.poll(),
            Poll::Failed(ReloadError::Read { .. })
        ));
        assert!(matches!(poller.poll(), Poll::Unchanged));
        std::fs::write(&path, "1\n").unwrap();
        assert_eq!(changed(poller.poll()), Some(1));
        assert!(matches!(poller.poll(), Poll::Unchanged));
        std::fs::write(&path, "one").unwrap();
        let Poll::Failed(e) = poller.poll() else {
            panic!("a bad file fails");
        };
        assert!(e.to_string().contains("not a number"), "{e}");
        assert!(matches!(poller.poll(), Poll::Unchanged));
        std::fs::write(&path, vec![b'1'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            poller.poll(),
            Poll::Failed(ReloadError::TooLarge { .. })
        ));
        std::fs::write(&path, "2").unwrap();
        assert_eq!(changed(poller.poll()), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_is_published_and_a_bad_one_keeps_the_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let interval = Duration::from_secs(5);
        assert!(watch_file(&path, interval, number).is_err());
        std::fs::write(&path, "1").unwrap();
        let mut rx = watch_file(&path, interval, number).unwrap();
        assert_eq!(**rx.borrow_and_update(), 1);

        // A Kubernetes Secret update: a new file renamed over the old.
        let next = dir.path().join("n.new");
        std::fs::write(&next, "2").unwrap();
        std::fs::rename(&next, &path).unwrap();
        rx.changed().await.unwrap();
        assert_eq!(**rx.borrow_and_update(), 2);

        // Invalid, then valid again: only the valid one is published.
        std::fs::write(&path, "two").unwrap();
        tokio::time::sleep(interval * 3).await;
        assert!(!rx.has_changed().unwrap());
        assert_eq!(**rx.borrow(), 2);
        std::fs::write(&path, "3").unwrap();
        rx.changed().await.unwrap();
        assert_eq!(**rx.borrow_and_update(), 3);
    }
}
