//! What the `io.l5d.fs` namer knows of its directory: the service files
//! present, the last good address set of each, and the resolve channels
//! watchers hold. Scans (`scan.rs`) read files outside its lock and
//! [`Shared::apply`] what they found in one step; the namer (`fs.rs`) reads
//! it. Must not depend on either.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use l5d_dtab::{Addr, Endpoint, Path};
use tokio::sync::watch;

use crate::namer::inet::HostResolver;

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
pub(super) struct Table {
    /// The service files present, by name.
    pub(super) files: BTreeMap<String, FileState>,
    /// Resolve channels, by name, whether the file exists or not (so that
    /// a watcher of a missing file sees it appear).
    pub(super) watches: HashMap<String, watch::Sender<Addr>>,
    pub(super) dir_error: Option<String>,
    pub(super) last_update: Option<SystemTime>,
    /// How changes are noticed, for the admin page.
    pub(super) events: String,
}

pub(super) struct FileState {
    /// The last good set, or `Failed` if the file never parsed.
    pub(super) addr: Addr,
    pub(super) content: Option<Vec<u8>>,
    pub(super) has_hostnames: bool,
    pub(super) error: Option<String>,
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

    pub(super) fn prune(&mut self) {
        self.watches.retain(|_, tx| tx.receiver_count() > 0);
    }
}

impl Shared {
    pub(super) fn new(prefix: Path, root: PathBuf, resolver: HostResolver, events: String) -> Self {
        Shared {
            metric_label: prefix.show(),
            prefix,
            root,
            resolver,
            lookup_tx: watch::Sender::new(0),
            table: Mutex::new(Table {
                events,
                ..Table::default()
            }),
        }
    }

    /// Ticks whenever the set of service files changes.
    pub(super) fn lookup_changes(&self) -> watch::Receiver<u64> {
        self.lookup_tx.subscribe()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
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
