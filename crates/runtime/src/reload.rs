//! Values built from files and kept current while the process runs:
//! namerd's token file, and the certificates, keys and CAs of every TLS
//! server and client (`tls.rs`). This is the one polling loop; a new kind
//! of followed file is a new [`Source`], not a new loop.
//!
//! [`follow`] reads and builds a [`Source`] once, failing if it cannot (a
//! configuration error at start), then re-reads its files every interval
//! and publishes a new value on a watch channel when the bytes changed and
//! build. Files that are missing, too large or unusable after a change
//! leave the last good value in place and are logged (and passed to
//! [`Source::refused`], where TLS counts them) once per distinct problem,
//! not on every poll. [`watch_file`] is the one-file case.
//!
//! Polling the content rather than watching with inotify: a Secret update
//! replaces a directory symlink (`..data`), which an inotify watch on the
//! file itself never sees, and the files are a few KiB, so reading them
//! every few seconds costs nothing. Knows nothing of what the files mean.

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

/// What a followed value is read and built from.
pub trait Source: Send + 'static {
    /// The contents of the files, read together so that a change is
    /// compared and built as one snapshot.
    type Files: PartialEq + Send + 'static;
    type Value: Send + Sync + 'static;
    /// Compared too, so that the same problem is reported once.
    type Error: fmt::Display + PartialEq + Clone + Send + 'static;

    /// Reads every file (with [`read_file`], for the size cap).
    fn read(&self) -> Result<Self::Files, Self::Error>;

    /// Builds the value from `files`, checking them now.
    fn build(&self, files: &Self::Files) -> Result<Self::Value, Self::Error>;

    /// The file named in log lines (the first, if there are several).
    fn path(&self) -> &Path;

    /// Called once for each distinct refusal, the one at start included:
    /// where a source counts its refusals in a metric.
    fn refused(&self, _error: &Self::Error) {}
}

/// Reads and builds `source` now, then, unless `interval` is zero, re-reads
/// its files every `interval` in a task for as long as a receiver is alive,
/// publishing each changed, usable version. Must be called within a tokio
/// runtime when `interval` is not zero.
///
/// # Errors
///
/// When the files cannot be read or built now.
pub fn follow<S: Source>(
    source: S,
    interval: Duration,
) -> Result<watch::Receiver<Arc<S::Value>>, S::Error> {
    let mut poller = Poller::new(source);
    let first = match poller.poll() {
        Poll::Changed(value) => value,
        Poll::Failed(e) => return Err(e),
        Poll::Unchanged => unreachable!("the first read is always a change"),
    };
    let (tx, rx) = watch::channel(Arc::new(first));
    if interval.is_zero() {
        return Ok(rx);
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let file = poller.source.path().display().to_string();
            match poller.poll() {
                Poll::Changed(value) => {
                    tracing::info!(%file, "reloaded");
                    tx.send_replace(Arc::new(value));
                }
                Poll::Failed(e) => {
                    tracing::warn!(%file, error = %e, "refusing the changed file; keeping the last good version");
                }
                Poll::Unchanged => {}
            }
        }
    });
    Ok(rx)
}

/// Follows one file, parsed by `parse`: [`follow`] for the simplest source.
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
    follow(
        File {
            path: path.into(),
            parse,
        },
        interval,
    )
}

/// A file's bytes, refused beyond [`MAX_FILE_BYTES`].
///
/// # Errors
///
/// When the file cannot be read or is too large.
pub fn read_file(path: &Path) -> Result<Vec<u8>, ReloadError> {
    // A few KiB from a local file (a mounted Secret): not worth a hop to
    // the blocking pool.
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

/// One file and how to parse it.
struct File<F> {
    path: PathBuf,
    parse: F,
}

impl<T, E, F> Source for File<F>
where
    T: Send + Sync + 'static,
    E: fmt::Display,
    F: Fn(&[u8]) -> Result<T, E> + Send + 'static,
{
    type Files = Vec<u8>;
    type Value = T;
    type Error = ReloadError;

    fn read(&self) -> Result<Vec<u8>, ReloadError> {
        read_file(&self.path)
    }

    fn build(&self, bytes: &Vec<u8>) -> Result<T, ReloadError> {
        (self.parse)(bytes).map_err(|e| ReloadError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// One read of a source's files, compared with the previous one.
struct Poller<S: Source> {
    source: S,
    /// What was read last time, usable or not, so that unchanged files are
    /// neither built nor reported again.
    last: Option<Result<S::Files, S::Error>>,
}

enum Poll<T, E> {
    Changed(T),
    Unchanged,
    /// A new problem (the same one again is `Unchanged`).
    Failed(E),
}

impl<S: Source> Poller<S> {
    fn new(source: S) -> Self {
        Poller { source, last: None }
    }

    fn poll(&mut self) -> Poll<S::Value, S::Error> {
        let read = self.source.read();
        if self.last.as_ref() == Some(&read) {
            return Poll::Unchanged;
        }
        let built = match self.last.insert(read) {
            Ok(files) => self.source.build(files),
            Err(e) => Err(e.clone()),
        };
        match built {
            Ok(value) => Poll::Changed(value),
            Err(e) => {
                self.source.refused(&e);
                Poll::Failed(e)
            }
        }
    }
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

    type Parse = fn(&[u8]) -> Result<u32, String>;

    fn file(path: &Path) -> File<Parse> {
        File {
            path: path.to_path_buf(),
            parse: number,
        }
    }

    fn changed<E>(poll: Poll<u32, E>) -> Option<u32> {
        match poll {
            Poll::Changed(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn each_change_is_read_once_and_a_problem_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let mut poller = Poller::new(file(&path));
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

    /// Two files read as one snapshot, counting its refusals.
    struct Pair {
        dir: PathBuf,
        refusals: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Source for Pair {
        type Files = (Vec<u8>, Vec<u8>);
        type Value = u32;
        type Error = ReloadError;

        fn read(&self) -> Result<Self::Files, ReloadError> {
            Ok((
                read_file(&self.dir.join("a"))?,
                read_file(&self.dir.join("b"))?,
            ))
        }

        fn build(&self, (a, b): &Self::Files) -> Result<u32, ReloadError> {
            let parse = |bytes: &[u8]| {
                number(bytes).map_err(|message| ReloadError::Parse {
                    path: self.dir.clone(),
                    message,
                })
            };
            Ok(parse(a)? + parse(b)?)
        }

        fn path(&self) -> &Path {
            &self.dir
        }

        fn refused(&self, _: &ReloadError) {
            self.refusals
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_source_of_several_files_is_one_snapshot_and_each_refusal_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = || refusals.load(std::sync::atomic::Ordering::Relaxed);
        let mut poller = Poller::new(Pair {
            dir: dir.path().to_path_buf(),
            refusals: refusals.clone(),
        });
        std::fs::write(dir.path().join("a"), "1").unwrap();
        assert!(matches!(
            poller.poll(),
            Poll::Failed(ReloadError::Read { .. })
        ));
        assert_eq!(count(), 1, "refused at start too");
        std::fs::write(dir.path().join("b"), "2").unwrap();
        assert_eq!(changed(poller.poll()), Some(3));
        std::fs::write(dir.path().join("b"), "x").unwrap();
        assert!(matches!(
            poller.poll(),
            Poll::Failed(ReloadError::Parse { .. })
        ));
        assert!(matches!(poller.poll(), Poll::Unchanged));
        assert_eq!(count(), 2, "the same problem is counted once");
        std::fs::write(dir.path().join("b"), "5").unwrap();
        assert_eq!(changed(poller.poll()), Some(6));
        assert_eq!(count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_reads_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        std::fs::write(&path, "1").unwrap();
        let rx = follow(file(&path), Duration::ZERO).unwrap();
        std::fs::write(&path, "2").unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(**rx.borrow(), 1);
        assert!(rx.has_changed().is_err(), "nothing follows the file");
    }
}
