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
