//! What a [`WatchCache`] evicts at its bounds, in one order, in one place
//! ([`WatchCache::make_room`]): entries not in use first (least recently
//! used first, a batch at a time, in a cache made
//! [`with_lru`](WatchCache::with_lru), which bounds the summed weight of
//! the keys too); then entries in use that the caller names as evictable,
//! least recently used first, only as many as make room; then refusal.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Slot, WatchCache, Watched};

/// Least-recently-used eviction at the cap, by count and by the summed
/// weight of the keys, for caches whose keys clients choose (the proxy's
/// routes): a new key evicts old unused ones instead of being refused.
pub struct Lru<K> {
    /// The keys' weights summed at most (e.g. their bytes).
    pub max_weight: usize,
    /// A key's weight.
    pub weigh: fn(&K) -> usize,
}

// === impl WatchCache ===

impl<K: Hash + Eq, V: Watched, S: BuildHasher> WatchCache<K, V, S> {
    /// Makes room in a full cache for a key of `incoming` weight, in the
    /// order of the module documentation; whether it did.
    pub(super) fn make_room(
        &self,
        entries: &mut HashMap<K, Slot<V>, S>,
        incoming: usize,
        evictable: impl FnMut(&V) -> bool,
    ) -> bool {
        match &self.lru {
            // Anything nobody watches goes, idle long or not.
            None => {
                self.evict_where(entries, |slot| slot.value.watchers() == Some(0));
            }
            Some(lru) => self.evict_lru(entries, lru, incoming),
        }
        if self.full(entries, incoming) {
            self.evict_in_use(entries, incoming, evictable);
        }
        !self.full(entries, incoming)
    }

    /// Evicts entries in use for which `evictable` holds, least recently
    /// used first, until a key of `incoming` weight fits or none is left.
    fn evict_in_use(
        &self,
        entries: &mut HashMap<K, Slot<V>, S>,
        incoming: usize,
        mut evictable: impl FnMut(&V) -> bool,
    ) {
        let mut candidates: Vec<(u64, *const V, usize)> = entries
            .values()
            .filter(|slot| evictable(&slot.value))
            .map(|slot| {
                let used = slot.last_used.load(Ordering::Relaxed);
                (used, Arc::as_ptr(&slot.value), slot.weight)
            })
            .collect();
        candidates.sort_unstable_by_key(|&(used, _, _)| used);
        let (mut len, mut weight) = (entries.len(), self.weight());
        let mut victims = HashSet::new();
        for (_, value, freed) in candidates {
            if self.fits(len, weight, incoming) {
                break;
            }
            victims.insert(value);
            len -= 1;
            weight -= freed;
        }
        if !victims.is_empty() {
            self.evict_where(entries, |slot| victims.contains(&Arc::as_ptr(&slot.value)));
        }
    }

    /// Makes room for a key of `incoming` weight by evicting the least
    /// recently used entries not in use, down to 7/8 of the capacity and
    /// of the weight, so that a stream of new keys pays for one scan per
    /// eighth of the cache rather than one per key. Entries looked up
    /// within one tick of the clock (a thousandth of the TTL) are equally
    /// recent.
    pub(super) fn evict_lru(
        &self,
        entries: &mut HashMap<K, Slot<V>, S>,
        lru: &Lru<K>,
        incoming: usize,
    ) {
        let capacity = self.limits.capacity;
        let keep_len = capacity.saturating_sub((capacity / 8).max(1));
        let keep_weight = lru
            .max_weight
            .saturating_sub((lru.max_weight / 8).max(incoming));
        let mut idle: Vec<(u64, usize)> = entries
            .values()
            .filter(|slot| !slot.in_use())
            .map(|slot| (slot.last_used.load(Ordering::Relaxed), slot.weight))
            .collect();
        idle.sort_unstable();
        // The oldest prefix that brings both under their marks (or all).
        let (mut len, mut weight) = (entries.len(), self.weight());
        let mut taken = 0;
        while taken < idle.len() && (len > keep_len || weight > keep_weight) {
            len -= 1;
            weight -= idle[taken].1;
            taken += 1;
        }
        let Some(&(newest, _)) = taken.checked_sub(1).and_then(|i| idle.get(i)) else {
            return;
        };
        // Of the entries as recent as the newest taken, only as many as
        // were taken go.
        let mut at_newest = idle[..taken].iter().filter(|(t, _)| *t == newest).count();
        self.evict_where(entries, |slot| {
            let used = slot.last_used.load(Ordering::Relaxed);
            if used > newest || slot.in_use() {
                return false;
            }
            if used == newest {
                if at_newest == 0 {
                    return false;
                }
                at_newest -= 1;
            }
            true
        });
    }
}

// === impl Lru ===

// By hand: derived impls would require `K: Clone`/`K: Debug`.
impl<K> Clone for Lru<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Lru<K> {}

impl<K> std::fmt::Debug for Lru<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lru")
            .field("max_weight", &self.max_weight)
            .finish_non_exhaustive()
    }
}
