//! `io.l5d.fs`: service discovery from a directory whose regular files are
//! service names and whose lines are their addresses (see `addr_file`).
//! Only regular files inside the directory are read, links included as
//! long as they stay inside, each at most [`MAX_FILE_BYTES`] (`file.rs`);
//! errors never repeat a file's content.
//!
//! `/#/io.l5d.fs/web/rest` binds to the id `/#/io.l5d.fs/web` with residual
//! `/rest` while the file `web` exists. The directory is watched with
//! inotify (through `notify`) for prompt changes and fully rescanned every
//! few seconds in case an event was missed. A file that cannot be parsed
//! keeps its last good addresses and makes the namer stale; a deleted file
//! is `Neg`. All background work is one task owned by the [`FsNamer`].
//!
//! This module knows nothing of configuration files or the interpreter.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::{Activity, Addr, Bound, Name, NameTree, Path};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::inet::HostResolver;
use super::{Namer, NamerState, fixed};

mod directory;
mod file;
mod scan;

pub use file::MAX_FILE_BYTES;

use directory::{Shared, valid_name};

/// How an [`FsNamer`] is set up.
#[derive(Clone, Debug)]
pub struct FsOptions {
    pub root_dir: PathBuf,
    /// The complete prefix, `/#/io.l5d.fs` unless configured.
    pub prefix: Path,
    /// How often the whole directory is read again, events or not.
    pub rescan_interval: Duration,
    /// Whether to watch the directory with inotify; without, changes are
    /// only seen at rescans (tests of the safety net use this).
    pub watch_events: bool,
    pub resolver: HostResolver,
}

impl FsOptions {
    pub const DEFAULT_RESCAN: Duration = Duration::from_secs(10);

    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        FsOptions {
            root_dir: root_dir.into(),
            prefix: Path::utf8(["#", "io.l5d.fs"]),
            rescan_interval: Self::DEFAULT_RESCAN,
            watch_events: true,
            resolver: HostResolver::system(),
        }
    }
}

/// Why an [`FsNamer`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot read directory {}: {source}", path.display())]
    RootDir { path: PathBuf, source: io::Error },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
}

/// The `io.l5d.fs` namer.
pub struct FsNamer {
    shared: Arc<Shared>,
    worker: AbortHandle,
}

impl fmt::Debug for FsNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsNamer")
            .field("prefix", &self.shared.prefix)
            .field("root", &self.shared.root)
            .finish_non_exhaustive()
    }
}

impl Drop for FsNamer {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

impl FsNamer {
    /// Reads the directory once (so that lookups answer at once) and starts
    /// watching it. Must run inside a tokio runtime.
    pub async fn new(opts: FsOptions) -> Result<FsNamer, FsError> {
        let root_error = |source| FsError::RootDir {
            path: opts.root_dir.clone(),
            source,
        };
        let meta = tokio::fs::metadata(&opts.root_dir)
            .await
            .map_err(root_error)?;
        if !meta.is_dir() {
            return Err(FsError::NotADirectory {
                path: opts.root_dir,
            });
        }
        // notify reports events under the absolute path it watches; use the
        // same (symlinks unresolved) to recognise our files in them.
        let root = std::path::absolute(&opts.root_dir).map_err(root_error)?;
        // Watch before the first scan so that no change falls in between.
        let (events, how) = if !opts.watch_events {
            (None, "disabled".to_string())
        } else {
            match scan::watch_dir(&root) {
                Ok(events) => (Some(events), "inotify".to_string()),
                Err(e) => {
                    tracing::warn!(dir = %root.display(), error = %e, "cannot watch directory; relying on rescans");
                    (None, format!("unavailable: {e}"))
                }
            }
        };
        let shared = Arc::new(Shared::new(opts.prefix, root, opts.resolver, how));
        scan::full_scan(&shared).await;
        let worker = tokio::spawn(scan::run(shared.clone(), opts.rescan_interval, events));
        Ok(FsNamer {
            shared,
            worker: worker.abort_handle(),
        })
    }
}

impl Namer for FsNamer {
    fn prefix(&self) -> &Path {
        &self.shared.prefix
    }

    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        let Some(name) = path.first_str().filter(|n| valid_name(n)) else {
            return Activity::Ok(NameTree::Neg);
        };
        if !self.shared.lock().files.contains_key(name) {
            return Activity::Ok(NameTree::Neg);
        }
        let id = self.shared.prefix.concat(&path.take(1));
        Activity::Ok(NameTree::Leaf(Name::Bound(Bound::new(id, path.drop(1)))))
    }

    fn lookup_changes(&self) -> watch::Receiver<u64> {
        self.shared.lookup_changes()
    }

    fn resolve(&self, id: &Path) -> watch::Receiver<Addr> {
        let name = match id.first_str() {
            Some(name) if id.len() == 1 && valid_name(name) => name,
            _ => return fixed(Addr::Neg),
        };
        let mut table = self.shared.lock();
        if let Some(tx) = table.watches.get(name) {
            return tx.subscribe();
        }
        // Ids nobody watches any more are pruned at rescans; also here, so
        // that a burst of distinct ids between rescans stays bounded.
        if table.watches.len() >= table.files.len() + 1024 {
            table.prune();
        }
        let current = table.files.get(name).map_or(Addr::Neg, |f| f.addr.clone());
        let tx = watch::Sender::new(current);
        let rx = tx.subscribe();
        table.watches.insert(name.to_string(), tx);
        rx
    }

    fn bound_names(&self) -> Vec<Path> {
        let table = self.shared.lock();
        table
            .files
            .keys()
            .map(|name| self.shared.prefix.concat(&Path::utf8([name])))
            .collect()
    }

    fn state(&self) -> NamerState {
        let table = self.shared.lock();
        let mut details = BTreeMap::new();
        details.insert(
            "rootDir".to_string(),
            self.shared.root.display().to_string(),
        );
        details.insert("names".to_string(), table.files.len().to_string());
        details.insert("watched".to_string(), table.watches.len().to_string());
        details.insert("events".to_string(), table.events.clone());
        let mut last_error = table.dir_error.clone();
        for (name, file) in &table.files {
            if let Some(e) = &file.error {
                details.insert(format!("error.{name}"), e.clone());
                last_error.get_or_insert_with(|| e.clone());
            }
        }
        NamerState {
            stale: last_error.is_some(),
            last_error,
            last_update: table.last_update,
            details,
        }
    }
}
