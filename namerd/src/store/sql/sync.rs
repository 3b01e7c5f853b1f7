//! Keeps a SQL store's watch channels in step with the database.
//!
//! Changes reach a replica's [`WatchHub`] three ways that race each other:
//! its own writes (published before the write returns), PostgreSQL
//! notifications (a hint naming a namespace and version) and full re-reads
//! (after every listener (re)connect, after a failure, and every
//! `poll_interval`). Each publication therefore carries the version counter
//! it was read at and is dropped unless that counter is higher than
//! anything published for the namespace so far, deletions included: a
//! re-read that began before a write can never undo it.
//!
//! A failure publishes nothing: watchers keep the last good values while
//! the store reports itself stale and retries with capped backoff until a
//! re-read succeeds. This module sees storage only through `Backend`; it
//! must not depend on a particular database.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use l5d_dtab::Dtab;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::backend::Backend;
use super::{SqlOptions, SyncStats, counter, parse_dtab};
use crate::store::{Namespace, StoreHealth, Version, VersionedDtab, WatchHub};
pub(super) use l5d_runtime::Backoff;

/// Above this many changed namespaces a re-read fetches every row in one
/// statement instead of one statement per namespace (the initial load).
const BULK_REREAD: usize = 16;

/// What a listener tells the synchronisation task.
#[derive(Debug)]
pub(super) enum Hint {
    /// A notification: `ns` was committed at `version`.
    Changed { ns: Namespace, version: i64 },
    /// The listener is (again) subscribed; notifications may have been lost
    /// before, so storage must be re-read.
    Connected,
    /// The listener lost its connection and could not get a new one yet.
    Lost(sqlx::Error),
}

/// The state a store shares with its background tasks.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) backend: Arc<dyn Backend>,
    hub: WatchHub,
    /// The highest version counter published per namespace, deletions
    /// included. Its lock is held while publishing, so watchers see each
    /// namespace's versions in increasing order.
    published: Mutex<HashMap<Namespace, u64>>,
    health: Mutex<StoreHealth>,
    resyncs: AtomicU64,
    listener_connects: AtomicU64,
    /// Failed calls so far. A re-read clears `stale` only if none failed
    /// since it began: one that read just before storage went away and
    /// finished just after a failure must not report storage healthy.
    failures: AtomicU64,
    /// Asks the synchronisation task for a re-read (after a failed call).
    wake: Notify,
}

// === impl Shared ===

impl Shared {
    pub(super) fn new(backend: Arc<dyn Backend>) -> Self {
        Shared {
            backend,
            hub: WatchHub::default(),
            published: Mutex::default(),
            health: Mutex::default(),
            resyncs: AtomicU64::new(0),
            listener_connects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    pub(super) fn hub(&self) -> &WatchHub {
        &self.hub
    }

    /// Publishes `ns` as it was at `version` (`None`: deleted) unless
    /// something at least as new was published; returns the version.
    pub(super) fn offer(&self, ns: &Namespace, version: i64, dtab: Option<Dtab>) -> Version {
        let n = counter(version);
        let version = Version::from_counter(n);
        let mut published = lock(&self.published);
        if published.get(ns).is_none_or(|&last| n > last) {
            published.insert(ns.clone(), n);
            let value = dtab.map(|dtab| VersionedDtab {
                dtab,
                version: version.clone(),
            });
            self.hub.publish(ns, value);
        }
        version
    }

    fn is_newer(&self, ns: &Namespace, version: i64) -> bool {
        lock(&self.published)
            .get(ns)
            .is_none_or(|&last| counter(version) > last)
    }

    /// Offers stored text; an unparsable dtab is reported and skipped, so
    /// watchers keep the last good one (`get` reports it as corrupt).
    fn offer_text(&self, ns: &Namespace, version: i64, text: Option<&str>) {
        match text.map(|text| parse_dtab(ns, text)).transpose() {
            Ok(dtab) => {
                self.offer(ns, version, dtab);
            }
            Err(error) => {
                let backend = self.backend.name();
                metrics::counter!("namerd_store_corrupt_total", "backend" => backend).increment(1);
                warn!(backend, %ns, version, %error, "ignoring an invalid stored dtab");
            }
        }
    }

    /// Re-reads one namespace and publishes what storage says, if newer.
    pub(super) async fn refresh(&self, ns: &Namespace) -> Result<(), sqlx::Error> {
        let before = lock(&self.published).get(ns).copied();
        if let Some(row) = self.backend.current(ns.as_str()).await? {
            self.offer_text(ns, row.version, Some(&row.dtab));
            return Ok(());
        }
        // Absent now. The latest history row tells at which version it was
        // deleted or, if a create raced this read, re-created: either way a
        // true state at a known version, written with the table.
        match self.backend.latest_history(ns.as_str()).await? {
            Some(row) => self.offer_text(ns, row.version, row.dtab.as_deref()),
            None => {
                // No trace at all (removed by hand, the database replaced,
                // or a notification from another schema): there is no
                // version to compare, so it goes only if nothing was
                // published meanwhile; a create that committed after our
                // reads has published, and must not be undone.
                let mut published = lock(&self.published);
                if published.get(ns).copied() == before {
                    published.remove(ns);
                    self.hub.publish(ns, None);
                }
            }
        }
        Ok(())
    }

    /// Re-reads all of storage: every namespace whose version is newer than
    /// the published one, and every published one gone from the table.
    pub(super) async fn resync(&self) -> Result<(), sqlx::Error> {
        let failures = self.failures.load(Ordering::SeqCst);
        let versions = self.backend.versions().await?;
        let mut present = HashSet::with_capacity(versions.len());
        let mut changed = Vec::new();
        for (name, version) in versions {
            let Some(ns) = valid_name(&name) else {
                continue;
            };
            if self.is_newer(&ns, version) {
                changed.push(ns.clone());
            }
            present.insert(ns);
        }
        if changed.len() > BULK_REREAD {
            // Every row is one consistent state, whatever changed since
            // `versions`, so offering all of them is safe.
            let mut seen = HashSet::new();
            for row in self.backend.all_current().await? {
                if let Some(ns) = valid_name(&row.namespace) {
                    self.offer_text(&ns, row.version, Some(&row.dtab));
                    seen.insert(ns);
                }
            }
            changed.retain(|ns| !seen.contains(ns));
        }
        for ns in &changed {
            self.refresh(ns).await?;
        }
        for ns in self.hub.names() {
            if !present.contains(&ns) {
                self.refresh(&ns).await?;
            }
        }
        self.synced(failures);
        Ok(())
    }

    /// Records a failed call and asks for a re-read once storage is back.
    pub(super) fn failed(&self, op: &'static str, error: &sqlx::Error) {
        self.report(op, error);
        self.wake.notify_one();
    }

    /// Marks the view stale: values are kept, never emptied.
    fn report(&self, op: &'static str, error: &sqlx::Error) {
        let backend = self.backend.name();
        metrics::counter!("namerd_store_errors_total", "backend" => backend, "op" => op)
            .increment(1);
        metrics::gauge!("namerd_store_stale", "backend" => backend).set(1.0);
        warn!(backend, op, %error, "dtab storage failed; watches keep the last good dtabs");
        let mut health = lock(&self.health);
        self.failures.fetch_add(1, Ordering::SeqCst);
        health.stale = true;
        health.last_error = Some(error.to_string());
    }

    /// A re-read that began when `failures` calls had failed succeeded.
    fn synced(&self, failures: u64) {
        let backend = self.backend.name();
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("namerd_store_resyncs_total", "backend" => backend).increment(1);
        let mut health = lock(&self.health);
        if self.failures.load(Ordering::SeqCst) != failures {
            // A call failed meanwhile: stay stale; its wake-up asked for
            // another re-read, which will tell.
            health.last_sync = Some(SystemTime::now());
            return;
        }
        metrics::gauge!("namerd_store_stale", "backend" => backend).set(0.0);
        if health.stale {
            info!(backend, "dtab storage reachable again; watches are current");
        }
        *health = StoreHealth {
            ready: true,
            stale: false,
            last_error: None,
            last_sync: Some(SystemTime::now()),
        };
    }

    pub(super) fn health(&self) -> StoreHealth {
        lock(&self.health).clone()
    }

    pub(super) fn stats(&self) -> SyncStats {
        SyncStats {
            resyncs: self.resyncs.load(Ordering::Relaxed),
            listener_connects: self.listener_connects.load(Ordering::Relaxed),
        }
    }

    /// Follows one hint; true if storage must be re-read in full.
    async fn on_hint(&self, hint: Hint) -> bool {
        match hint {
            Hint::Changed { ns, version } => {
                if !self.is_newer(&ns, version) {
                    return false;
                }
                match self.refresh(&ns).await {
                    Ok(()) => false,
                    Err(error) => {
                        self.report("refresh", &error);
                        true
                    }
                }
            }
            Hint::Connected => {
                self.connected();
                true
            }
            Hint::Lost(error) => {
                self.report("listen", &error);
                true
            }
        }
    }

    fn connected(&self) {
        self.listener_connects.fetch_add(1, Ordering::Relaxed);
        let backend = self.backend.name();
        metrics::counter!("namerd_store_listener_connects_total", "backend" => backend)
            .increment(1);
    }
}

/// The background task: re-reads storage when asked, on every listener
/// (re)connect and every `poll_interval`, and follows notifications. It
/// ends only when aborted (the store was dropped).
pub(super) async fn run(
    shared: Arc<Shared>,
    mut hints: Option<mpsc::Receiver<Hint>>,
    opts: SqlOptions,
) {
    let mut poll =
        tokio::time::interval_at(Instant::now() + opts.poll_interval, opts.poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(crate::RETRY_BASE, opts.max_backoff);
    let mut reread = false;
    loop {
        if reread {
            match shared.resync().await {
                Ok(()) => {
                    reread = false;
                    backoff.reset();
                }
                Err(error) => {
                    shared.report("resync", &error);
                    pause(&shared, &mut hints, backoff.next_delay()).await;
                    continue;
                }
            }
        }
        tokio::select! {
            _ = poll.tick() => reread = true,
            () = shared.wake.notified() => reread = true,
            hint = next_hint(&mut hints) => match hint {
                Some(hint) => reread = shared.on_hint(hint).await,
                None => {
                    debug!("the listener has stopped; polling only");
                    hints = None;
                }
            },
        }
    }
}

/// Waits before the next attempt at a re-read. Hints that arrive meanwhile
/// are consumed, so that a listener retrying through a long outage cannot
/// fill the channel with reports that would replay after recovery; the
/// pending re-read covers whatever they said.
async fn pause(shared: &Shared, hints: &mut Option<mpsc::Receiver<Hint>>, delay: Duration) {
    let deadline = tokio::time::sleep(delay);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            hint = next_hint(hints) => match hint {
                Some(Hint::Connected) => shared.connected(),
                Some(_) => {}
                None => *hints = None,
            },
        }
    }
}

async fn next_hint(hints: &mut Option<mpsc::Receiver<Hint>>) -> Option<Hint> {
    match hints {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A stored namespace name, if valid; others are skipped with a warning.
pub(super) fn valid_name(name: &str) -> Option<Namespace> {
    match Namespace::new(name) {
        Ok(ns) => Some(ns),
        Err(error) => {
            warn!(%error, "ignoring a stored namespace with an invalid name");
            None
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these locks is valid after any panic (plain inserts
    // and replacements), so a poisoned lock is used as is.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
