//! The `io.l5d.fs` namer's background work: turning inotify events (through
//! `notify`) into reads of the files they name, and rescanning the whole
//! directory periodically because events can be missed (queue overflow, a
//! directory replaced under us, Kubernetes' ConfigMap symlink swaps).
//!
//! Reads happen here, outside the namer's lock; what they found is applied
//! by `directory.rs`'s `Shared::apply` in one step. Must not depend on the
//! namer itself (`fs.rs`).

use std::collections::BTreeSet;
use std::io;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::directory::{FileOutcome, Shared, valid_name};
use super::file::read_service_file;
use crate::namer::addr_file;

/// Editors and `kubectl cp` write a file in several steps (truncate, write,
/// rename); events arriving within this window are handled together so
/// that watchers rarely see the intermediate states.
const DEBOUNCE: Duration = Duration::from_millis(25);

/// What an event asks for.
#[derive(Debug)]
pub(super) enum Trigger {
    /// Read this file again.
    Name(String),
    /// Something we cannot attribute to one file happened: rescan all.
    Full,
}

/// The directory watch: dropping the watcher stops it.
pub(super) type Events = (RecommendedWatcher, mpsc::UnboundedReceiver<Trigger>);

/// Starts watching `root` (not recursively).
pub(super) fn watch_dir(root: &FsPath) -> notify::Result<Events> {
    let (tx, rx) = mpsc::unbounded_channel();
    let dir = root.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        for trigger in triggers(&dir, event) {
            // The worker is gone: the namer was dropped.
            let _ = tx.send(trigger);
        }
    })?;
    watcher.watch(root, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

/// What one notify event asks for. Our own reads cause access events;
/// only a close after writing says anything about content.
fn triggers(root: &FsPath, event: notify::Result<Event>) -> Vec<Trigger> {
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            tracing::debug!(dir = %root.display(), error = %e, "watch error; rescanning");
            return vec![Trigger::Full];
        }
    };
    if let EventKind::Access(kind) = event.kind
        && !matches!(kind, AccessKind::Close(AccessMode::Write))
    {
        return Vec::new();
    }
    if event.need_rescan() || event.paths.is_empty() {
        return vec![Trigger::Full];
    }
    let mut out = Vec::with_capacity(event.paths.len());
    for path in &event.paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| path.parent() == Some(root) && valid_name(n));
        match name {
            Some(name) => out.push(Trigger::Name(name.to_string())),
            // The directory itself, or a hidden entry (a ConfigMap's
            // `..data` symlink swap changes every file at once).
            None => return vec![Trigger::Full],
        }
    }
    out
}

/// Rescans every `interval` and reads what events name, until aborted.
pub(super) async fn run(shared: Arc<Shared>, interval: Duration, events: Option<Events>) {
    // The watcher lives as long as this loop: dropping it stops events.
    let (_watcher, mut rx) = match events {
        Some((watcher, rx)) => (Some(watcher), Some(rx)),
        None => (None, None),
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => full_scan(&shared).await,
            trigger = next(&mut rx) => {
                let Some(first) = trigger else {
                    tracing::warn!(dir = %shared.root.display(), "directory watch ended; relying on rescans");
                    rx = None;
                    continue;
                };
                tokio::time::sleep(DEBOUNCE).await;
                let mut names = BTreeSet::new();
                let mut full = false;
                let more = rx.as_mut().map(|rx| std::iter::from_fn(|| rx.try_recv().ok()));
                for trigger in std::iter::once(first).chain(more.into_iter().flatten()) {
                    match trigger {
                        Trigger::Name(name) => { names.insert(name); }
                        Trigger::Full => full = true,
                    }
                }
                if full {
                    full_scan(&shared).await;
                } else {
                    scan_names(&shared, names).await;
                }
            }
        }
    }
}

async fn next(rx: &mut Option<mpsc::UnboundedReceiver<Trigger>>) -> Option<Trigger> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Lists the directory and reads every service file in it.
pub(super) async fn full_scan(shared: &Shared) {
    let names = match list(&shared.root).await {
        Ok(names) => names,
        Err(e) => return shared.dir_failed(&e),
    };
    // A file deleted between listing and reading is simply not listed.
    let mut present = BTreeSet::new();
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        let outcome = read(shared, &name).await;
        if !matches!(outcome, FileOutcome::Missing) {
            present.insert(name.clone());
            outcomes.push((name, outcome));
        }
    }
    shared.apply(Some(&present), outcomes);
}

async fn scan_names(shared: &Shared, names: BTreeSet<String>) {
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        let outcome = read(shared, &name).await;
        outcomes.push((name, outcome));
    }
    shared.apply(None, outcomes);
}

/// The valid service names in `root` (symlinks included: Kubernetes mounts
/// ConfigMap keys as symlinks).
async fn list(root: &FsPath) -> io::Result<BTreeSet<String>> {
    let mut dir = tokio::fs::read_dir(root).await?;
    let mut names = BTreeSet::new();
    while let Some(entry) = dir.next_entry().await? {
        if let Some(name) = entry.file_name().to_str().filter(|n| valid_name(n)) {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

/// Reads and parses one file, resolving host names in it.
async fn read(shared: &Shared, name: &str) -> FileOutcome {
    let (root, file) = (shared.root.clone(), name.to_string());
    let read = tokio::task::spawn_blocking(move || read_service_file(&root, &file)).await;
    let content = match read {
        Ok(Ok(Some(content))) => content,
        Ok(Ok(None)) => return FileOutcome::Missing,
        Ok(Err(why)) => return FileOutcome::ReadFailed(why),
        Err(e) => return FileOutcome::ReadFailed(e.to_string()),
    };
    if shared.unchanged(name, &content) {
        return FileOutcome::Unchanged;
    }
    let text = String::from_utf8_lossy(&content);
    let (has_hostnames, result) = match addr_file::parse(&text) {
        Ok(lines) => (
            addr_file::has_hostnames(&lines),
            addr_file::endpoints(&lines, &shared.resolver)
                .await
                .map_err(|e| e.to_string()),
        ),
        Err(e) => (false, Err(e.to_string())),
    };
    FileOutcome::Parsed {
        content,
        has_hostnames,
        result,
    }
}
