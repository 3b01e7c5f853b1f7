//! The shared channels behind every interpreter: one `watch` channel per
//! key, handed out as receivers, fed by at most one background task, and
//! dropped (task and all) once nobody has held a receiver for a while.
//!
//! A hit takes a read lock and clones a receiver; keys are made of
//! `Arc`-backed `Path` and `Dtab` values, so building one to look up does
//! not allocate either.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use l5d_dtab::{Dtab, Path};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// The key of a binding: the request-local dtab and the logical name.
///
/// `Dtab` has no `Hash` (its trees hold `f64` weights), so the hash covers
/// the name and the number of dentries and equality compares the dtabs;
/// keys of one name with different local dtabs are few.
#[derive(Clone, Debug)]
pub(crate) struct BindKey {
    pub(crate) local: Dtab,
    pub(crate) name: Path,
}

/// What the admin state shows of one entry besides its value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Status {
    /// When the source last sent a value (whether or not it changed).
    pub(crate) last_update: Option<SystemTime>,
    pub(crate) last_error: Option<String>,
    /// Messages that could not be converted; the last good value was kept.
    pub(crate) rejected: u64,
}

/// One shared channel and what feeds it.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    tx: watch::Sender<T>,
    status: Mutex<Status>,
    task: Mutex<Option<AbortHandle>>,
    /// Milliseconds since the cache's epoch when a receiver was last handed
    /// out, so that a key asked for again and again stays even if each
    /// receiver is short-lived.
    last_asked: AtomicU64,
    /// When the sweeper first saw no receivers.
    idle_since: Mutex<Option<Instant>>,
}

/// The channels of one kind of key.
#[derive(Debug)]
pub(crate) struct Cache<K, T> {
    entries: RwLock<HashMap<K, Arc<Entry<T>>>>,
    epoch: Instant,
}

// === impl BindKey ===

impl PartialEq for BindKey {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.local == other.local
    }
}

impl Eq for BindKey {}

impl Hash for BindKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.local.len().hash(state);
    }
}

// === impl Entry ===

impl<T> Entry<T> {
    pub(crate) fn current(&self) -> watch::Ref<'_, T> {
        self.tx.borrow()
    }

    /// Publishes a value the source sent.
    pub(crate) fn publish(&self, value: T) {
        self.tx.send_replace(value);
        self.received();
    }

    /// Records that the source sent something (even an unchanged value).
    pub(crate) fn received(&self) {
        self.status_mut().last_update = Some(SystemTime::now());
    }

    /// Publishes a value of our own (e.g. `Failed` when the source is
    /// unreachable); the source's last update time stays.
    pub(crate) fn set(&self, value: T) {
        self.tx.send_replace(value);
    }

    /// Publishes `value` only if `differs` says it is new, so receivers are
    /// not woken by a repeated snapshot.
    pub(crate) fn publish_if(&self, value: T, differs: impl FnOnce(&T, &T) -> bool) -> bool {
        let changed = self.tx.send_if_modified(|cur| {
            if differs(cur, &value) {
                *cur = value;
                true
            } else {
                false
            }
        });
        self.received();
        changed
    }

    pub(crate) fn set_error(&self, message: Option<String>) {
        self.status_mut().last_error = message;
    }

    pub(crate) fn reject(&self, message: String) {
        let mut s = self.status_mut();
        s.rejected += 1;
        s.last_error = Some(message);
    }

    pub(crate) fn status(&self) -> Status {
        self.status_mut().clone()
    }

    pub(crate) fn receivers(&self) -> usize {
        self.tx.receiver_count()
    }

    fn status_mut(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn abort(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// === impl Cache ===

impl<K: Hash + Eq + Clone, T> Cache<K, T> {
    pub(crate) fn new() -> Self {
        Cache {
            entries: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// A receiver of `key`'s channel. On a miss the channel starts with
    /// `init(&key)` and `spawn` may start the task that feeds it (it is
    /// aborted when the entry is evicted or the cache dropped).
    pub(crate) fn get_or_insert(
        &self,
        key: K,
        init: impl FnOnce(&K) -> T,
        spawn: impl FnOnce(&K, Arc<Entry<T>>) -> Option<AbortHandle>,
    ) -> watch::Receiver<T> {
        let now = self.now_ms();
        if let Some(e) = read(&self.entries).get(&key) {
            e.last_asked.store(now, Ordering::Relaxed);
            return e.tx.subscribe();
        }
        let mut entries = write(&self.entries);
        if let Some(e) = entries.get(&key) {
            e.last_asked.store(now, Ordering::Relaxed);
            return e.tx.subscribe();
        }
        let (tx, rx) = watch::channel(init(&key));
        let entry = Arc::new(Entry {
            tx,
            status: Mutex::default(),
            task: Mutex::new(None),
            last_asked: AtomicU64::new(now),
            idle_since: Mutex::new(None),
        });
        let task = spawn(&key, entry.clone());
        *lock(&entry.task) = task;
        entries.insert(key, entry);
        rx
    }

    /// The current value of `key`, without creating an entry.
    pub(crate) fn peek(&self, key: &K) -> Option<T>
    where
        T: Clone,
    {
        read(&self.entries).get(key).map(|e| e.current().clone())
    }

    /// Every entry, for the admin state.
    pub(crate) fn snapshot(&self) -> Vec<(K, Arc<Entry<T>>)> {
        read(&self.entries)
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.entries).len()
    }

    /// Drops the entries that have had no receiver, and were not asked
    /// for, for `ttl`; dropping one cancels its task (and so its stream).
    pub(crate) fn sweep(&self, ttl: Duration) -> usize {
        let now = Instant::now();
        let mut entries = write(&self.entries);
        let before = entries.len();
        entries.retain(|_, e| {
            let mut idle = lock(&e.idle_since);
            if e.tx.receiver_count() > 0 {
                *idle = None;
                return true;
            }
            let since = *idle.get_or_insert(now);
            let asked = self.epoch + Duration::from_millis(e.last_asked.load(Ordering::Relaxed));
            if now.saturating_duration_since(since.max(asked)) < ttl {
                return true;
            }
            e.abort();
            false
        });
        before - entries.len()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl<K, T> Drop for Cache<K, T> {
    fn drop(&mut self) {
        let entries = self.entries.get_mut().unwrap_or_else(|e| e.into_inner());
        for e in entries.values() {
            e.abort();
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs `sweep` on `owner` every quarter of `ttl` (between 10 ms and a
/// minute) until the owner is dropped.
pub(crate) fn spawn_sweeper<O: Send + Sync + 'static>(
    owner: Weak<O>,
    ttl: Duration,
    sweep: fn(&O),
) {
    let every = (ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(owner) = owner.upgrade() else { return };
            sweep(&owner);
        }
    });
}
