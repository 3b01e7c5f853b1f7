//! What the interpreters keep in their [`WatchCache`]s: one [`Entry`] per
//! key, a watch channel handed out as receivers and fed by at most one
//! background task, with the status the admin state shows. The cache
//! itself (sharing, idle eviction, the sweeper) is `l5d-runtime`'s.
//!
//! A hit takes a read lock and subscribes a receiver; keys are made of
//! `Arc`-backed `Path` and `Dtab` values, so building one to look up does
//! not allocate either.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use l5d_dtab::{Dtab, Path};
use l5d_runtime::watch_cache::{CacheLimits, Feed, WatchCache, Watched};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The channels of one kind of key.
pub(crate) type Cache<K, T> = WatchCache<K, Entry<T>>;

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

/// One shared channel, what feeds it, and how that went.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    feed: Feed<T>,
    status: Mutex<Status>,
}

/// The interpreters' caches: no cap (the routers in front of them have
/// one), entries nobody held for `idle_ttl` dropped with their streams.
pub(crate) fn cache<K: Hash + Eq, T: Send + Sync + 'static>(idle_ttl: Duration) -> Cache<K, T> {
    WatchCache::new(CacheLimits {
        capacity: usize::MAX,
        idle_ttl,
    })
}

/// A receiver of `key`'s channel; on a miss `start` makes the entry.
pub(crate) fn subscribe<K: Hash + Eq, T: Send + Sync + 'static>(
    cache: &Cache<K, T>,
    key: K,
    start: impl FnOnce(&K) -> Arc<Entry<T>>,
) -> watch::Receiver<T> {
    cache
        .get_or_start(key, |e| e.feed.subscribe(), start)
        .expect("the interpreters' caches have no cap")
}

// === impl BindKey ===

impl BindKey {
    pub(crate) fn new(local: &Dtab, name: &Path) -> Self {
        BindKey {
            local: local.clone(),
            name: name.clone(),
        }
    }
}

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
    /// An entry holding `init`, fed by the task `spawn` starts, if any (it
    /// is aborted when the entry is evicted or the cache dropped). Without
    /// a task, `init` counts as what the source sent.
    pub(crate) fn start(
        init: T,
        spawn: impl FnOnce(Arc<Self>) -> Option<AbortHandle>,
    ) -> Arc<Self> {
        let entry = Arc::new(Entry {
            feed: Feed::new(init),
            status: Mutex::default(),
        });
        match spawn(entry.clone()) {
            Some(task) => entry.feed.fed_by(task),
            None => entry.received(),
        }
        entry
    }

    pub(crate) fn current(&self) -> watch::Ref<'_, T> {
        self.feed.sender().borrow()
    }

    /// Publishes a value the source sent.
    pub(crate) fn publish(&self, value: T) {
        self.feed.sender().send_replace(value);
        self.received();
    }

    /// Records that the source sent something (even an unchanged value).
    pub(crate) fn received(&self) {
        self.status_mut().last_update = Some(SystemTime::now());
    }

    /// Publishes a value of our own (e.g. `Failed` when the source is
    /// unreachable); the source's last update time stays.
    pub(crate) fn set(&self, value: T) {
        self.feed.sender().send_replace(value);
    }

    /// Publishes `value` only if `differs` says it is new, so receivers are
    /// not woken by a repeated snapshot.
    pub(crate) fn publish_if(&self, value: T, differs: impl FnOnce(&T, &T) -> bool) -> bool {
        let changed = self.feed.sender().send_if_modified(|cur| {
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
        self.feed.sender().receiver_count()
    }

    fn status_mut(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Send + Sync + 'static> Watched for Entry<T> {
    fn watchers(&self) -> Option<usize> {
        self.feed.watchers()
    }

    fn evicted(&self) {
        self.feed.evicted();
    }
}
