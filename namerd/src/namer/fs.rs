//! `io.l5d.fs`: service discovery from a directory whose regular files are
//! service names and whose lines are their addresses (see `addr_file`).
//!
//! `/#/io.l5d.fs/web/rest` binds to the id `/#/io.l5d.fs/web` with residual
//! `/rest` while the file `web` exists. The directory is watched with
//! inotify (through `notify`) for prompt changes and fully rescanned every
//! few seconds in case an event was missed. A file that cannot be parsed
//! keeps its last good addresses and makes the namer stale; a deleted file
//! is `Neg`. All background work is one task owned by the [`FsNamer`].
//!
//! This module knows nothing of configuration files or the interpreter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use l5d_dtab::{Activity, Bound, Name, NameTree, Path};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::inet::HostResolver;
use super::{Addr, Endpoint, Namer, NamerState, fixed, fs_watch};

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
            match fs_watch::watch_dir(&root) {
                Ok(events) => (Some(events), "inotify".to_string()),
                Err(e) => {
                    tracing::warn!(dir = %root.display(), error = %e, "cannot watch directory; relying on rescans");
                    (None, format!("unavailable: {e}"))
                }
            }
        };
        let shared = Arc::new(Shared {
            metric_label: opts.prefix.show(),
            prefix: opts.prefix,
            root,
            resolver: opts.resolver,
            lookup_tx: watch::Sender::new(0),
            table: Mutex::new(Table {
                events: how,
                ..Table::default()
            }),
        });
        fs_watch::full_scan(&shared).await;
        let worker = tokio::spawn(fs_watch::run(shared.clone(), opts.rescan_interval, events));
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
        self.shared.lookup_tx.subscribe()
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

/// Whether `name` can be a service file: a plain, visible file name.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// What reading one file gave.
#[derive(Debug)]
pub(super) enum FileOutcome {
    /// Not there (or not a regular file).
    Missing,
    /// The same bytes as last time, with no host names to resolve again.
    Unchanged,
    Parsed {
        content: Vec<u8>,
        has_hostnames: bool,
        result: Result<Vec<Endpoint>, String>,
    },
    ReadFailed(String),
}

/// State shared by the namer and its worker.
pub(super) struct Shared {
    pub(super) prefix: Path,
    pub(super) root: PathBuf,
    pub(super) resolver: HostResolver,
    metric_label: String,
    lookup_tx: watch::Sender<u64>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// The service files present, by name.
    files: BTreeMap<String, FileState>,
    /// Resolve channels, by name, whether the file exists or not (so that
    /// a watcher of a missing file sees it appear).
    watches: HashMap<String, watch::Sender<Addr>>,
    dir_error: Option<String>,
    last_update: Option<SystemTime>,
    /// How changes are noticed, for the admin page.
    events: String,
}

struct FileState {
    /// The last good set, or `Failed` if the file never parsed.
    addr: Addr,
    content: Option<Vec<u8>>,
    has_hostnames: bool,
    error: Option<String>,
}

impl Table {
    fn publish(&self, name: &str, addr: &Addr) {
        if let Some(tx) = self.watches.get(name) {
            tx.send_if_modified(|current| {
                let changed = current != addr;
                if changed {
                    *current = addr.clone();
                }
                changed
            });
        }
    }

    fn prune(&mut self) {
        self.watches.retain(|_, tx| tx.receiver_count() > 0);
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("fs namer lock")
    }

    /// Whether `content` is what `name` held last time and needs no DNS.
    pub(super) fn unchanged(&self, name: &str, content: &[u8]) -> bool {
        self.lock()
            .files
            .get(name)
            .is_some_and(|f| !f.has_hostnames && f.content.as_deref() == Some(content))
    }

    /// Applies what a scan found: `listing` (a full scan) is the set of
    /// names present, and `outcomes` what reading some of them gave.
    pub(super) fn apply(
        &self,
        listing: Option<&BTreeSet<String>>,
        outcomes: Vec<(String, FileOutcome)>,
    ) {
        let mut table = self.lock();
        let mut names_changed = false;
        if let Some(listing) = listing {
            let gone: Vec<String> = table
                .files
                .keys()
                .filter(|n| !listing.contains(*n))
                .cloned()
                .collect();
            for name in gone {
                table.files.remove(&name);
                table.publish(&name, &Addr::Neg);
                names_changed = true;
            }
            if table.dir_error.take().is_some() {
                tracing::info!(dir = %self.root.display(), "directory readable again");
            }
            table.last_update = Some(SystemTime::now());
            table.prune();
        }
        for (name, outcome) in outcomes {
            names_changed |= self.apply_file(&mut table, name, outcome);
        }
        drop(table);
        if names_changed {
            self.lookup_tx.send_modify(|generation| *generation += 1);
        }
    }

    /// Applies one file's outcome; true if the set of names changed.
    fn apply_file(&self, table: &mut Table, name: String, outcome: FileOutcome) -> bool {
        let (content, has_hostnames, result) = match outcome {
            FileOutcome::Unchanged => return false,
            FileOutcome::Missing => {
                let existed = table.files.remove(&name).is_some();
                table.publish(&name, &Addr::Neg);
                return existed;
            }
            FileOutcome::Parsed {
                content,
                has_hostnames,
                result,
            } => (Some(content), has_hostnames, result),
            FileOutcome::ReadFailed(e) => (None, false, Err(e)),
        };
        let is_new = !table.files.contains_key(&name);
        let file = table.files.entry(name.clone()).or_insert(FileState {
            addr: Addr::Pending,
            content: None,
            has_hostnames: false,
            error: None,
        });
        file.content = content;
        file.has_hostnames = has_hostnames;
        match result {
            Ok(endpoints) => {
                file.addr = Addr::bound(endpoints);
                file.error = None;
            }
            Err(e) => {
                let message = format!("{}: {e}", self.root.join(&name).display());
                metrics::counter!("namerd_namer_errors_total", "namer" => self.metric_label.clone())
                    .increment(1);
                if file.error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(namer = %self.prefix, error = %message, "cannot use address file; keeping its last good addresses");
                }
                if !matches!(file.addr, Addr::Bound { .. }) {
                    file.addr = Addr::Failed(message.as_str().into());
                }
                file.error = Some(message);
            }
        }
        let addr = file.addr.clone();
        table.publish(&name, &addr);
        is_new
    }

    /// The directory could not be listed: keep everything, report stale.
    pub(super) fn dir_failed(&self, error: &io::Error) {
        let message = format!("cannot read directory {}: {error}", self.root.display());
        metrics::counter!("namerd_namer_errors_total", "namer" => self.metric_label.clone())
            .increment(1);
        let mut table = self.lock();
        if table.dir_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(namer = %self.prefix, error = %message, "keeping the last good names");
        }
        table.dir_error = Some(message);
    }
}
