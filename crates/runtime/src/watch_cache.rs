//! One cache for every "live thing per key" of both binaries: namerd's
//! shared bindings, the proxy interpreters' bindings and address sets, the
//! proxy routers' routes.
//!
//! Each key maps to one shared value, made and started on first lookup
//! (get-or-start) and handed out to every later caller, so that a thousand
//! requests for a name share one upstream stream. Client-chosen keys must
//! not grow a process without bound, so an entry nobody used for the idle
//! TTL is evicted by a sweep on a timer, and the number of entries is
//! capped. What goes at the cap follows one order (`watch_cache/lru.rs`):
//! first entries not in use (all that nobody watches; or, in a cache made
//! [`with_lru`], which bounds the summed weight of its keys too, the least
//! recently used of them, a batch at a time); then, only if the caller of
//! [`get_or_start_evicting`] allows, the least recently used entries in
//! use that it names; and only then is a new key refused.
//!
//! [`with_lru`]: WatchCache::with_lru
//! [`get_or_start_evicting`]: WatchCache::get_or_start_evicting
//!
//! "Used" has two sources. A lookup stamps the entry (to the thousandth of
//! the TTL, so that a hit on the request path writes a shared cache line
//! at most that often). An entry whose value has watchers ([`Watched`]: the
//! receivers of its watch channel) is in use for as long as it has any,
//! and idle from the later of its last lookup and the first sweep that
//! found it unwatched. A hit takes a read lock and hands out a clone of
//! what the caller needs; it allocates nothing.
//!
//! Knows nothing of what the values are; depends on tokio only for its
//! clock, the sweeper task and [`Feed`]'s channel.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

mod lru;
#[cfg(test)]
mod tests;

pub use lru::Lru;

/// What a cached value says about its use.
pub trait Watched: Send + Sync + 'static {
    /// How many hold the value's channel now; `None` for a value used by
    /// lookups only, which is idle from its last lookup.
    fn watchers(&self) -> Option<usize>;

    /// The entry left the cache (idle, at the cap, or the cache dropped):
    /// stop what feeds it.
    fn evicted(&self) {}

    /// Whether the value is in use now, so that no eviction may take it;
    /// `holders` counts the handles to it outside the cache (its `Arc`'s
    /// other owners, e.g. requests in flight). By default: it has
    /// watchers. Counted under the cache's write lock, and handles are
    /// only handed out under a lock, so a value counted unused has no
    /// holder a lookup is about to give it to.
    fn in_use(&self, holders: usize) -> bool {
        let _ = holders;
        self.watchers().is_some_and(|n| n > 0)
    }
}

/// How big a cache may grow and how long unused entries stay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Entries at most (`usize::MAX`: no cap).
    pub capacity: usize,
    /// An entry unused for this long is evicted by the next sweep.
    pub idle_ttl: Duration,
}

/// A new key was refused: the cache is at its capacity and every entry is
/// in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the cache is full ({capacity} entries)")]
pub struct CacheFull {
    pub capacity: usize,
}

/// Values by key, shared, started on first use and evicted when idle. See
/// the module documentation.
#[derive(Debug)]
pub struct WatchCache<K, V: Watched, S = RandomState> {
    entries: RwLock<HashMap<K, Slot<V>, S>>,
    limits: CacheLimits,
    clock: Clock,
    lru: Option<Lru<K>>,
    /// The summed weight of the keys (0 without [`Lru`]); written under
    /// the write lock.
    weight: AtomicUsize,
}

#[derive(Debug)]
struct Slot<V> {
    value: Arc<V>,
    /// The key's weight (0 without [`Lru`]).
    weight: usize,
    /// Ticks of the cache's clock at the last lookup.
    last_used: AtomicU64,
    /// When a sweep first found no watchers, since one last found some.
    unwatched_since: Option<Instant>,
}

/// Lookup times as ticks since the cache was made, so that a slot stores
/// one atomic integer. A tick is a power of two nanoseconds, so that
/// reading the clock on the request path is a shift, not a division.
#[derive(Debug)]
struct Clock {
    epoch: Instant,
    /// log2 of the tick in nanoseconds.
    shift: u32,
}

/// A watch channel fed by at most one task, which is aborted when the
/// entry is evicted: the value of most caches.
#[derive(Debug)]
pub struct Feed<T> {
    tx: watch::Sender<T>,
    task: Mutex<Option<AbortHandle>>,
}

// === impl WatchCache ===

impl<K: Hash + Eq, V: Watched> WatchCache<K, V> {
    pub fn new(limits: CacheLimits) -> Self {
        Self::with_hasher(limits, RandomState::new())
    }
}

impl<K: Hash + Eq, V: Watched, S: BuildHasher> WatchCache<K, V, S> {
    /// A cache whose map hashes with `hasher` (the proxy's route cache uses
    /// a faster seeded one than std's SipHash).
    pub fn with_hasher(limits: CacheLimits, hasher: S) -> Self {
        WatchCache {
            entries: RwLock::new(HashMap::with_hasher(hasher)),
            clock: Clock::new(limits.idle_ttl),
            limits,
            lru: None,
            weight: AtomicUsize::new(0),
        }
    }

    /// The cache with least-recently-used eviction at its capacity and at
    /// `lru`'s weight (see the module documentation). Call before use.
    #[must_use]
    pub fn with_lru(mut self, lru: Lru<K>) -> Self {
        self.lru = Some(lru);
        self
    }

    /// The summed weight of the keys (0 without [`Lru`]).
    pub fn weight(&self) -> usize {
        self.weight.load(Ordering::Relaxed)
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// `hand_out(value)` for `key`'s value, made by `start(&key)` on a miss
    /// (under the write lock, so at most once per key). `hand_out` runs
    /// while the entry is known to be in the cache, so a receiver it
    /// subscribes cannot belong to an entry evicted meanwhile.
    pub fn get_or_start<H>(
        &self,
        key: K,
        hand_out: impl FnOnce(&Arc<V>) -> H,
        start: impl FnOnce(&K) -> Arc<V>,
    ) -> Result<H, CacheFull> {
        self.get_or_start_evicting(key, hand_out, start, |_| false)
    }

    /// [`get_or_start`](Self::get_or_start), except that at the cap, when
    /// evicting the entries not in use does not make room, entries in use
    /// for which `evictable` holds go too, least recently looked up first
    /// (their [`Watched::evicted`] must tell their watchers). `evictable`
    /// runs under the cache's write lock, only then, at most once per
    /// entry.
    pub fn get_or_start_evicting<H>(
        &self,
        key: K,
        hand_out: impl FnOnce(&Arc<V>) -> H,
        start: impl FnOnce(&K) -> Arc<V>,
        evictable: impl FnMut(&V) -> bool,
    ) -> Result<H, CacheFull> {
        let now = self.clock.ticks();
        if let Some(slot) = read(&self.entries).get(&key) {
            slot.touch(now);
            return Ok(hand_out(&slot.value));
        }
        let mut entries = write(&self.entries);
        if let Some(slot) = entries.get(&key) {
            slot.touch(now);
            return Ok(hand_out(&slot.value));
        }
        let capacity = self.limits.capacity;
        let weight = self.lru.as_ref().map_or(0, |lru| (lru.weigh)(&key));
        if self.lru.as_ref().is_some_and(|lru| weight > lru.max_weight) {
            // Evicting everything would not make room: evict nothing.
            return Err(CacheFull { capacity });
        }
        if self.full(&entries, weight) && !self.make_room(&mut entries, weight, evictable) {
            return Err(CacheFull { capacity });
        }
        let value = start(&key);
        let handle = hand_out(&value);
        entries.insert(
            key,
            Slot {
                value,
                weight,
                last_used: AtomicU64::new(now),
                unwatched_since: None,
            },
        );
        self.weight.fetch_add(weight, Ordering::Relaxed);
        Ok(handle)
    }

    /// `key`'s value, if there is one; not a use.
    pub fn peek<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        read(&self.entries).get(key).map(|s| s.value.clone())
    }

    /// Every entry, for state pages.
    pub fn snapshot(&self) -> Vec<(K, Arc<V>)>
    where
        K: Clone,
    {
        read(&self.entries)
            .iter()
            .map(|(k, s)| (k.clone(), s.value.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        read(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evicts `key`'s entry now if it is not in use (a caller that held
    /// it let go and knows no one else needs it); whether it did.
    pub fn evict_if_unused<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = write(&self.entries);
        if entries.get(key).is_none_or(Slot::in_use) {
            return false;
        }
        let slot = entries.remove(key).expect("present under the lock");
        self.weight.fetch_sub(slot.weight, Ordering::Relaxed);
        slot.value.evicted();
        true
    }

    /// Evicts the entries unused for the idle TTL; returns how many.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let ttl = self.limits.idle_ttl;
        let mut entries = write(&self.entries);
        self.evict_where(&mut entries, |slot| {
            if slot.in_use() {
                slot.unwatched_since = None;
                return false;
            }
            let last_used = self.clock.instant(slot.last_used.load(Ordering::Relaxed));
            let idle_from = match slot.value.watchers() {
                Some(0) => last_used.max(*slot.unwatched_since.get_or_insert(now)),
                Some(_) => {
                    slot.unwatched_since = None;
                    return false;
                }
                None => last_used,
            };
            now.saturating_duration_since(idle_from) >= ttl
        })
    }

    /// Whether `entries` has no room for a key of `weight`.
    fn full(&self, entries: &HashMap<K, Slot<V>, S>, weight: usize) -> bool {
        !self.fits(entries.len(), self.weight(), weight)
    }

    /// Whether `len` entries of summed weight `total` leave room for a key
    /// of `weight`.
    fn fits(&self, len: usize, total: usize, weight: usize) -> bool {
        len < self.limits.capacity
            && self
                .lru
                .as_ref()
                .is_none_or(|lru| total.saturating_add(weight) <= lru.max_weight)
    }

    /// Evicts the entries `idle` says are, calling their `evicted`;
    /// returns how many.
    fn evict_where(
        &self,
        entries: &mut HashMap<K, Slot<V>, S>,
        mut idle: impl FnMut(&mut Slot<V>) -> bool,
    ) -> usize {
        let before = entries.len();
        let mut freed = 0;
        entries.retain(|_, slot| {
            if idle(slot) {
                slot.value.evicted();
                freed += slot.weight;
                return false;
            }
            true
        });
        self.weight.fetch_sub(freed, Ordering::Relaxed);
        before - entries.len()
    }
}

impl<K, V: Watched, S> Drop for WatchCache<K, V, S> {
    fn drop(&mut self) {
        let entries = self.entries.get_mut().unwrap_or_else(|e| e.into_inner());
        for slot in entries.values() {
            slot.value.evicted();
        }
    }
}

// A poisoned lock only means a panic elsewhere; the map itself is intact.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

// === impl Slot ===

impl<V: Watched> Slot<V> {
    /// Whether the value is in use: see [`Watched::in_use`].
    fn in_use(&self) -> bool {
        self.value.in_use(Arc::strong_count(&self.value) - 1)
    }
}

impl<V> Slot<V> {
    /// Stores only a new tick: most hits on a busy key write nothing.
    fn touch(&self, now: u64) {
        if self.last_used.load(Ordering::Relaxed) != now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }
}

// === impl Clock ===

impl Clock {
    /// Ticks of about a thousandth of `ttl` (at least half a millisecond).
    fn new(ttl: Duration) -> Self {
        let tick = (ttl / 1000).max(Duration::from_millis(1));
        Clock {
            epoch: Instant::now(),
            shift: u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX).ilog2(),
        }
    }

    fn ticks(&self) -> u64 {
        nanos(self.epoch.elapsed()) >> self.shift
    }

    /// The end of tick `ticks`: a use is never taken for older than it was,
    /// so nothing is evicted before its TTL.
    fn instant(&self, ticks: u64) -> Instant {
        let end = ticks.saturating_add(1).saturating_mul(1 << self.shift);
        self.epoch + Duration::from_nanos(end)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// === impl Feed ===

impl<T> Feed<T> {
    pub fn new(init: T) -> Self {
        Feed {
            tx: watch::Sender::new(init),
            task: Mutex::new(None),
        }
    }

    /// The channel, for the task that feeds it.
    pub fn sender(&self) -> &watch::Sender<T> {
        &self.tx
    }

    pub fn subscribe(&self) -> watch::Receiver<T> {
        self.tx.subscribe()
    }

    /// Records the task feeding the channel, aborted on eviction.
    pub fn fed_by(&self, task: AbortHandle) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }
}

impl<T: Send + Sync + 'static> Watched for Feed<T> {
    fn watchers(&self) -> Option<usize> {
        Some(self.tx.receiver_count())
    }

    fn evicted(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// Runs `sweep` on `owner` every quarter of `idle_ttl` (between 10 ms and
/// a minute) until the owner is dropped. Must be called within a tokio
/// runtime.
pub fn spawn_sweeper<O: Send + Sync + 'static>(owner: Weak<O>, idle_ttl: Duration, sweep: fn(&O)) {
    let every = (idle_ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(owner) = owner.upgrade() else { return };
            sweep(&owner);
        }
    });
}
