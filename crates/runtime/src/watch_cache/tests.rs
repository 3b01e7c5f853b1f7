//! The cache's rules on paused time: what keeps an entry, when it goes,
//! what the cap does, and that eviction stops the feeding task.

use std::sync::atomic::{AtomicBool, AtomicUsize};

use super::*;

const TTL: Duration = Duration::from_secs(10);

fn limits(capacity: usize) -> CacheLimits {
    CacheLimits {
        capacity,
        idle_ttl: TTL,
    }
}

/// A value used by lookups only, which records its eviction.
#[derive(Debug, Default)]
struct Looked {
    evicted: AtomicBool,
}

impl Watched for Looked {
    fn watchers(&self) -> Option<usize> {
        None
    }

    fn evicted(&self) {
        self.evicted.store(true, Ordering::Relaxed);
    }
}

fn feed(cache: &WatchCache<&'static str, Feed<u32>>, key: &'static str) -> watch::Receiver<u32> {
    cache
        .get_or_start(key, |f| f.subscribe(), |_| Arc::new(Feed::new(0)))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_watched_entry_stays_and_an_unwatched_one_goes_after_the_ttl() {
    let cache = WatchCache::new(limits(usize::MAX));
    let held = feed(&cache, "held");
    drop(feed(&cache, "dropped"));
    // The first sweep finds "dropped" unwatched; it goes a TTL later.
    assert_eq!(cache.sweep(), 0);
    tokio::time::advance(TTL - Duration::from_millis(100)).await;
    assert_eq!(cache.sweep(), 0);
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(cache.sweep(), 1);
    tokio::time::advance(TTL * 10).await;
    assert_eq!(cache.sweep(), 0);
    assert!(cache.peek("held").is_some());
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_lookup_restarts_the_idle_time() {
    let cache = WatchCache::new(limits(usize::MAX));
    drop(feed(&cache, "k"));
    cache.sweep();
    tokio::time::advance(TTL / 2).await;
    drop(feed(&cache, "k"));
    tokio::time::advance(TTL / 2 + Duration::from_millis(100)).await;
    assert_eq!(cache.sweep(), 0, "asked for TTL/2 ago");
    tokio::time::advance(TTL / 2).await;
    assert_eq!(cache.sweep(), 1);
}

#[tokio::test(start_paused = true)]
async fn lookup_only_entries_are_idle_from_their_last_lookup() {
    let cache = WatchCache::new(limits(usize::MAX));
    let get = |cache: &WatchCache<u8, Looked>| {
        cache
            .get_or_start(1, Arc::clone, |_| Arc::new(Looked::default()))
            .unwrap()
    };
    let value = get(&cache);
    tokio::time::advance(TTL - Duration::from_millis(100)).await;
    get(&cache);
    tokio::time::advance(TTL - Duration::from_millis(100)).await;
    assert_eq!(cache.sweep(), 0);
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(cache.sweep(), 1);
    assert!(value.evicted.load(Ordering::Relaxed));
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_unwatched_entries_go_at_once_then_new_keys_are_refused() {
    let cache = WatchCache::new(limits(2));
    let a = feed(&cache, "a");
    let _b = feed(&cache, "b");
    let refused = cache.get_or_start("c", |f| f.subscribe(), |_| Arc::new(Feed::new(0)));
    assert_eq!(refused.unwrap_err(), CacheFull { capacity: 2 });
    drop(a);
    // Not idle for the TTL, but unwatched: it makes room.
    let _c = feed(&cache, "c");
    assert!(cache.peek("a").is_none());
    assert_eq!(cache.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_lookup_only_entries_are_kept() {
    let cache = WatchCache::new(limits(1));
    let start = |_: &u8| Arc::new(Looked::default());
    cache.get_or_start(1, Arc::clone, start).unwrap();
    assert!(cache.get_or_start(2, Arc::clone, start).is_err());
    assert!(cache.get_or_start(1, Arc::clone, start).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_key_is_started_once() {
    let cache: WatchCache<_, Feed<u32>> = WatchCache::new(limits(usize::MAX));
    let starts = AtomicUsize::new(0);
    for _ in 0..3 {
        let _rx = cache
            .get_or_start(
                "k",
                |f| f.subscribe(),
                |_| {
                    starts.fetch_add(1, Ordering::Relaxed);
                    Arc::new(Feed::new(0))
                },
            )
            .unwrap();
    }
    assert_eq!(starts.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn eviction_and_drop_abort_the_feeding_task() {
    let cache = WatchCache::new(limits(usize::MAX));
    let spawn = |_: &&str| {
        let feed = Arc::new(Feed::new(0u32));
        let task = tokio::spawn(std::future::pending::<()>());
        feed.fed_by(task.abort_handle());
        (feed, task)
    };
    let mut tasks = Vec::new();
    for key in ["evicted", "dropped"] {
        cache
            .get_or_start(
                key,
                |_| (),
                |k| {
                    let (feed, task) = spawn(k);
                    tasks.push(task);
                    feed
                },
            )
            .unwrap();
    }
    cache.sweep();
    tokio::time::advance(TTL + Duration::from_millis(100)).await;
    let _ = feed(&cache, "dropped");
    assert_eq!(cache.sweep(), 1);
    let evicted = tasks.remove(0);
    assert!(evicted.await.unwrap_err().is_cancelled());
    drop(cache);
    assert!(tasks.remove(0).await.unwrap_err().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_runs_until_its_owner_is_dropped() {
    let cache = Arc::new(WatchCache::new(limits(usize::MAX)));
    drop(feed(&cache, "k"));
    spawn_sweeper(Arc::downgrade(&cache), TTL, |c| {
        c.sweep();
    });
    tokio::time::sleep(TTL * 2).await;
    assert!(cache.is_empty());
    assert_eq!(
        Arc::strong_count(&cache),
        1,
        "the sweeper holds no strong reference"
    );
}

/// A value in use while anyone outside the cache holds it (as a route is
/// while requests hold it), which records its eviction.
#[derive(Debug, Default)]
struct Held {
    evicted: AtomicBool,
}

impl Watched for Held {
    fn watchers(&self) -> Option<usize> {
        None
    }

    fn evicted(&self) {
        self.evicted.store(true, Ordering::Relaxed);
    }

    fn in_use(&self, holders: usize) -> bool {
        holders > 0
    }
}

/// Longer than a tick of a [`TTL`] cache's clock, so lookups are ordered.
const STEP: Duration = Duration::from_millis(20);

fn lru_cache(capacity: usize, max_weight: usize) -> WatchCache<String, Held> {
    WatchCache::new(limits(capacity)).with_lru(Lru {
        max_weight,
        weigh: String::len,
    })
}

fn get(cache: &WatchCache<String, Held>, key: &str) -> Result<Arc<Held>, CacheFull> {
    cache.get_or_start(key.to_string(), Arc::clone, |_| Arc::new(Held::default()))
}

fn present(cache: &WatchCache<String, Held>, keys: &[&str]) -> Vec<bool> {
    keys.iter().map(|k| cache.peek(*k).is_some()).collect()
}

#[tokio::test(start_paused = true)]
async fn lru_at_the_cap_evicts_the_least_recently_used() {
    let cache = lru_cache(8, usize::MAX);
    let mut values = Vec::new();
    for i in 0..8 {
        values.push(get(&cache, &format!("k{i}")).unwrap());
        tokio::time::advance(STEP).await;
    }
    drop(values);
    // k0 is used again: now k1 is the least recently used.
    get(&cache, "k0").unwrap();
    tokio::time::advance(STEP).await;
    // Not held: a holder would keep it in use.
    let first = Arc::downgrade(&cache.peek("k1").unwrap());
    drop(get(&cache, "new").unwrap());
    assert_eq!(cache.len(), 8, "one eighth of 8 went: one entry");
    assert_eq!(present(&cache, &["k0", "k1", "k2"]), [true, false, true]);
    assert!(first.upgrade().is_none(), "the cache let go of it");
}

#[tokio::test(start_paused = true)]
async fn lru_evicts_an_eighth_at_a_time_and_never_what_is_in_use() {
    let cache = lru_cache(16, usize::MAX);
    let mut held = Vec::new();
    for i in 0..16 {
        let value = get(&cache, &format!("k{i:02}")).unwrap();
        // The two oldest are in use: the next two go instead.
        if i < 2 {
            held.push(value);
        }
        tokio::time::advance(STEP).await;
    }
    get(&cache, "new").unwrap();
    assert_eq!(cache.len(), 15, "down to 14, then the new key");
    assert_eq!(
        present(&cache, &["k00", "k01", "k02", "k03", "k04"]),
        [true, true, false, false, true]
    );
    for value in &held {
        assert!(!value.evicted.load(Ordering::Relaxed));
    }
}

#[tokio::test(start_paused = true)]
async fn lru_refuses_only_when_everything_is_in_use() {
    let cache = lru_cache(2, usize::MAX);
    let a = get(&cache, "a").unwrap();
    let b = get(&cache, "b").unwrap();
    assert_eq!(get(&cache, "c").unwrap_err(), CacheFull { capacity: 2 });
    assert_eq!(present(&cache, &["a", "b"]), [true, true]);
    drop(b);
    // "b" is unused now, whatever its age: it makes room.
    get(&cache, "c").unwrap();
    assert_eq!(present(&cache, &["a", "b", "c"]), [true, false, true]);
    drop(a);
}

#[tokio::test(start_paused = true)]
async fn lru_bounds_the_summed_weight_of_the_keys() {
    // Keys of 10 bytes; at most 100 bytes of them.
    let cache = lru_cache(usize::MAX, 100);
    for i in 0..10 {
        drop(get(&cache, &format!("key-{i:06}")).unwrap());
        tokio::time::advance(STEP).await;
    }
    assert_eq!(cache.weight(), 100);
    drop(get(&cache, "key-new-00").unwrap());
    // Down to 100 - max(100 / 8, 10) = 88 bytes: two keys went.
    assert_eq!((cache.len(), cache.weight()), (9, 90));
    assert_eq!(
        present(&cache, &["key-000000", "key-000001", "key-000002"]),
        [false, false, true]
    );
    // A key heavier than the whole budget evicts nothing.
    let huge = "x".repeat(101);
    assert!(get(&cache, &huge).is_err());
    assert_eq!((cache.len(), cache.weight()), (9, 90));
    // Sweeps and explicit evictions give the weight back.
    assert!(cache.evict_if_unused("key-000002"));
    assert_eq!(cache.weight(), 80);
    tokio::time::advance(TTL * 2).await;
    cache.sweep();
    assert_eq!((cache.len(), cache.weight()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn evict_if_unused_keeps_what_is_held_or_watched() {
    let cache = lru_cache(usize::MAX, usize::MAX);
    let held = get(&cache, "held").unwrap();
    assert!(!cache.evict_if_unused("held"));
    assert!(!cache.evict_if_unused("absent"));
    drop(held);
    assert!(cache.evict_if_unused("held"));
    assert!(cache.is_empty());
    let feeds = WatchCache::new(limits(usize::MAX));
    let rx = feed(&feeds, "watched");
    assert!(!feeds.evict_if_unused("watched"));
    drop(rx);
    assert!(feeds.evict_if_unused("watched"));
}

#[tokio::test(start_paused = true)]
async fn a_sweep_keeps_what_is_in_use_past_its_ttl() {
    let cache = lru_cache(usize::MAX, usize::MAX);
    let held = get(&cache, "held").unwrap();
    tokio::time::advance(TTL * 2).await;
    assert_eq!(cache.sweep(), 0, "held past its TTL");
    drop(held);
    assert_eq!(cache.sweep(), 1, "idle since its last lookup");
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_the_least_recently_looked_up_evictable_entry_goes() {
    let cache = WatchCache::new(limits(3));
    let _a = feed(&cache, "a");
    tokio::time::advance(Duration::from_secs(1)).await;
    let _b = feed(&cache, "b");
    tokio::time::advance(Duration::from_secs(1)).await;
    let _c = feed(&cache, "c");
    tokio::time::advance(Duration::from_secs(1)).await;
    // A lookup of "a" makes "b" the least recent.
    let _a2 = feed(&cache, "a");
    let start = |_: &&str| Arc::new(Feed::new(0));
    let evictable = |f: &Feed<u32>| *f.sender().borrow() == 0;
    let _d = cache
        .get_or_start_evicting("d", |f| f.subscribe(), start, evictable)
        .unwrap();
    assert!(cache.peek("b").is_none(), "b was looked up least recently");
    assert_eq!(cache.len(), 3);
    // Only entries `evictable` allows may go: with none, the key is refused.
    for key in ["a", "c", "d"] {
        cache.peek(key).unwrap().sender().send_replace(1);
    }
    let refused = cache.get_or_start_evicting("e", |f| f.subscribe(), start, evictable);
    assert_eq!(refused.unwrap_err(), CacheFull { capacity: 3 });
    // Watched entries are never evicted by plain `get_or_start`.
    let refused = cache.get_or_start("e", |f| f.subscribe(), start);
    assert!(refused.is_err());
}

/// The one order at the cap, in a cache made `with_lru`: the least
/// recently used entry not in use goes before any in use, and an evictable
/// entry in use goes only when nothing unused is left; then refusal.
#[tokio::test(start_paused = true)]
async fn lru_evicts_what_is_unused_before_what_the_caller_allows() {
    let cache = lru_cache(2, usize::MAX);
    let held = get(&cache, "held").unwrap();
    tokio::time::advance(STEP).await;
    drop(get(&cache, "unused").unwrap());
    tokio::time::advance(STEP).await;
    let anything = |_: &Held| true;
    let start = |_: &String| Arc::new(Held::default());
    let first = cache
        .get_or_start_evicting("first".into(), Arc::clone, start, anything)
        .unwrap();
    assert_eq!(
        present(&cache, &["held", "unused", "first"]),
        [true, false, true],
        "the unused entry went, though newer than the held one"
    );
    tokio::time::advance(STEP).await;
    let _second = cache
        .get_or_start_evicting("second".into(), Arc::clone, start, anything)
        .unwrap();
    assert_eq!(
        present(&cache, &["held", "first", "second"]),
        [false, true, true],
        "then the least recently used entry in use"
    );
    assert!(held.evicted.load(Ordering::Relaxed), "its holder can tell");
    let none = |_: &Held| false;
    let refused = cache.get_or_start_evicting("third".into(), Arc::clone, start, none);
    assert_eq!(refused.unwrap_err(), CacheFull { capacity: 2 });
    drop(first);
}
