//! How much dtab history a store keeps, and how it is read a page at a time.
//!
//! Every committed version goes into the history, so without a bound a
//! namespace rewritten often (or with large dtabs) grows its storage and its
//! `GET .../history` answers without limit. A [`Retention`] keeps at most
//! `max_versions` versions of a namespace and none older than `max_age`,
//! except that the newest version of a namespace is never pruned: it is the
//! current dtab (or the record of its deletion, from which a re-created
//! namespace continues its versions, so that no version is ever reused).
//!
//! Every backend prunes when it writes, in the same transaction or object
//! as the new version (see each backend for why that suffices), with the
//! rules of [`Retention::retained`]. Reads go a [`HistoryPage`] at a time,
//! newest first, with an opaque cursor: the version the previous page ended
//! on. Pure: no I/O, no clock of its own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{HistoryEntry, Version};

/// The history a store keeps per namespace. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Versions kept per namespace, the current one included (at least 1;
    /// 0 is read as 1).
    pub max_versions: usize,
    /// Versions committed longer ago than this are pruned at the next write
    /// of their namespace (the newest is always kept).
    pub max_age: Duration,
}

/// One page of a namespace's history: at most `limit` versions older than
/// `before` (the newest when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The cursor: the oldest version of the previous page. Compared for
    /// equality only; a version no longer retained has nothing older left
    /// (pruning goes oldest first), so its page is empty.
    pub before: Option<Version>,
    pub limit: usize,
}

impl Default for Retention {
    /// 1,000 versions, 90 days.
    fn default() -> Self {
        Retention {
            max_versions: 1_000,
            max_age: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

impl Retention {
    /// Keeps everything: for stores opened without a policy in tests.
    pub const UNBOUNDED: Retention = Retention {
        max_versions: usize::MAX,
        max_age: Duration::MAX,
    };

    /// Versions committed before this are too old at `now`.
    pub fn cutoff(&self, now: SystemTime) -> SystemTime {
        now.checked_sub(self.max_age).unwrap_or(UNIX_EPOCH)
    }

    /// `max_versions`, at least 1.
    pub fn versions(&self) -> usize {
        self.max_versions.max(1)
    }

    /// Whether the entry at `index` of a history of `len` entries (oldest
    /// first), committed at `at`, is kept at `now`: the newest always, the
    /// others while they are among the newest `max_versions` and not older
    /// than `max_age`.
    pub fn retained(&self, index: usize, len: usize, at: SystemTime, now: SystemTime) -> bool {
        let newest = index + 1 == len;
        newest || (len - index <= self.versions() && at >= self.cutoff(now))
    }

    /// Prunes `history` (oldest first) in place at `now`.
    pub fn prune(&self, history: &mut Vec<HistoryEntry>, now: SystemTime) {
        let len = history.len();
        let mut index = 0;
        history.retain(|e| {
            let keep = self.retained(index, len, e.committed_at, now);
            index += 1;
            keep
        });
    }
}

impl HistoryPage {
    /// The page of a whole retained history (oldest first), newest first:
    /// how a backend that holds its history in memory serves pages.
    pub fn select(&self, mut history: Vec<HistoryEntry>) -> Vec<HistoryEntry> {
        if let Some(before) = &self.before {
            match history.iter().position(|e| e.version == *before) {
                Some(at) => history.truncate(at),
                None => history.clear(),
            }
        }
        history.reverse();
        history.truncate(self.limit);
        history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Op;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn entry(n: u64, at: SystemTime) -> HistoryEntry {
        HistoryEntry {
            version: Version::from_counter(n),
            op: Op::Update,
            dtab: None,
            committed_at: at,
            author: None,
        }
    }

    fn versions(history: &[HistoryEntry]) -> Vec<u64> {
        history.iter().filter_map(|e| e.version.counter()).collect()
    }

    #[test]
    fn prunes_by_count_and_by_age_but_never_the_newest() {
        let now = UNIX_EPOCH + 1000 * DAY;
        let r = Retention {
            max_versions: 3,
            max_age: 10 * DAY,
        };
        // Six versions a day apart, the newest today.
        let mut h: Vec<_> = (1..=6u32)
            .map(|n| entry(n.into(), now - DAY * (6 - n)))
            .collect();
        r.prune(&mut h, now);
        assert_eq!(versions(&h), [4, 5, 6], "by count");
        // Nine days later the newest is 9 days old, the others older than 10.
        let later = now + 9 * DAY + DAY / 2;
        r.prune(&mut h, later);
        assert_eq!(versions(&h), [6], "by age, the newest kept");
        r.prune(&mut h, later + 1000 * DAY);
        assert_eq!(versions(&h), [6], "the newest is never pruned");
        let one = Retention {
            max_versions: 0,
            ..r
        };
        let mut h: Vec<_> = (1..=3).map(|n| entry(n, now)).collect();
        one.prune(&mut h, now);
        assert_eq!(versions(&h), [3], "0 versions means the current one");
    }

    #[test]
    fn the_default_is_a_thousand_versions_or_ninety_days() {
        let r = Retention::default();
        assert_eq!((r.max_versions, r.max_age), (1_000, 90 * DAY));
        let now = UNIX_EPOCH + 10_000 * DAY;
        assert!(r.retained(0, 1_000, now - 90 * DAY, now));
        assert!(!r.retained(0, 1_001, now, now));
        assert!(!r.retained(0, 2, now - 90 * DAY - Duration::from_secs(1), now));
        assert_eq!(Retention::UNBOUNDED.cutoff(now), UNIX_EPOCH);
    }

    #[test]
    fn pages_go_newest_first_from_the_cursor() {
        let h: Vec<_> = (1..=5).map(|n| entry(n, UNIX_EPOCH)).collect();
        let page = |before: Option<u64>, limit| {
            let page = HistoryPage {
                before: before.map(Version::from_counter),
                limit,
            };
            versions(&page.select(h.clone()))
        };
        assert_eq!(page(None, 2), [5, 4]);
        assert_eq!(page(Some(4), 2), [3, 2]);
        assert_eq!(page(Some(2), 2), [1]);
        assert_eq!(page(Some(1), 2), Vec::<u64>::new());
        assert_eq!(
            page(Some(99), 2),
            Vec::<u64>::new(),
            "a cursor not retained"
        );
        assert_eq!(page(None, 100), [5, 4, 3, 2, 1]);
    }
}
