//! The in-memory store (`io.l5d.inMemory`): for tests and trials, lost on
//! restart. Versions are 8-byte big-endian counters per namespace, from 1,
//! as namerd's, so the first `ETag` is `AAAAAAAAAAE=`; unlike namerd's, they
//! are never reused after a delete. Each write prunes its namespace's
//! history by the store's [`Retention`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use l5d_dtab::Dtab;
use tokio::sync::watch;

use super::{
    Change, DtabStore, HistoryEntry, Namespace, Op, Retention, StoreError, StoreHealth, Version,
    VersionedDtab, WatchHub, Write, WriteMeta,
};

#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Every namespace's history, present or deleted; the state lock also
    /// orders publications to watchers.
    state: Mutex<BTreeMap<Namespace, Vec<HistoryEntry>>>,
    hub: WatchHub,
    retention: Retention,
}

impl MemoryStore {
    /// A store seeded with `namespaces` (namerd's `namespaces:` setting),
    /// keeping the default history.
    pub fn new(namespaces: BTreeMap<Namespace, Dtab>) -> Self {
        Self::with_retention(namespaces, Retention::default())
    }

    /// [`MemoryStore::new`] keeping the history `retention` allows.
    pub fn with_retention(namespaces: BTreeMap<Namespace, Dtab>, retention: Retention) -> Self {
        let store = MemoryStore {
            retention,
            ..MemoryStore::default()
        };
        {
            let mut state = store.state.lock().expect("memory store lock");
            for (ns, dtab) in namespaces {
                store.commit(
                    &mut state,
                    &ns,
                    Op::Create,
                    Some(dtab),
                    &WriteMeta::default(),
                );
            }
        }
        store
    }

    /// Appends a version to the history and publishes it; the caller holds
    /// the state lock, so versions and publications stay in order.
    fn commit(
        &self,
        state: &mut BTreeMap<Namespace, Vec<HistoryEntry>>,
        ns: &Namespace,
        op: Op,
        dtab: Option<Dtab>,
        meta: &WriteMeta,
    ) -> Version {
        let history = state.entry(ns.clone()).or_default();
        // Versions are never reused, not even across a delete and re-create
        // (namerd restarts at 1 there, so a stale ETag from the namespace's
        // earlier life could pass a compare-and-set).
        let next = history
            .last()
            .and_then(|e| e.version.counter())
            .unwrap_or(0)
            + 1;
        let version = Version::from_counter(next);
        let now = SystemTime::now();
        history.push(HistoryEntry {
            version: version.clone(),
            op,
            dtab: dtab.clone(),
            committed_at: now,
            author: meta.author.clone(),
        });
        // Versions stay counters from the newest entry, which is never
        // pruned, so pruning cannot make a version be reused.
        self.retention.prune(history, now);
        let value = dtab.map(|dtab| VersionedDtab {
            dtab,
            version: version.clone(),
        });
        self.hub.publish(ns, value);
        version
    }

    fn current(
        state: &BTreeMap<Namespace, Vec<HistoryEntry>>,
        ns: &Namespace,
    ) -> Option<VersionedDtab> {
        let last = state.get(ns)?.last()?;
        Some(VersionedDtab {
            dtab: last.dtab.clone()?,
            version: last.version.clone(),
        })
    }
}

#[async_trait]
impl DtabStore for MemoryStore {
    async fn list(&self) -> Result<Vec<Namespace>, StoreError> {
        Ok(self.hub.names())
    }

    async fn get(&self, ns: &Namespace) -> Result<Option<VersionedDtab>, StoreError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(Self::current(&state, ns))
    }

    async fn write(&self, write: Write<'_>) -> Result<Version, StoreError> {
        let Write { ns, change, meta } = write;
        let mut state = self.state.lock().expect("memory store lock");
        let current = Self::current(&state, ns).map(|c| c.version);
        let (op, dtab) = match (change, current) {
            (Change::Create(_), Some(_)) => {
                return Err(StoreError::AlreadyExists { ns: ns.clone() });
            }
            (Change::Update { .. } | Change::Delete, None) => {
                return Err(StoreError::NotFound { ns: ns.clone() });
            }
            (Change::Update { expected, .. }, Some(current)) if current != *expected => {
                return Err(StoreError::VersionMismatch {
                    ns: ns.clone(),
                    current,
                });
            }
            (Change::Create(dtab) | Change::Put(dtab), None) => (Op::Create, Some(dtab)),
            (Change::Update { dtab, .. } | Change::Put(dtab), Some(_)) => (Op::Update, Some(dtab)),
            (Change::Delete, Some(_)) => (Op::Delete, None),
        };
        Ok(self.commit(&mut state, ns, op, dtab.cloned(), meta))
    }

    async fn history(&self, ns: &Namespace) -> Result<Vec<HistoryEntry>, StoreError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state.get(ns).cloned().unwrap_or_default())
    }

    async fn version(
        &self,
        ns: &Namespace,
        version: &Version,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state
            .get(ns)
            .and_then(|h| h.iter().find(|e| e.version == *version).cloned()))
    }

    fn watch(&self, ns: &Namespace) -> watch::Receiver<Option<VersionedDtab>> {
        self.hub.watch(ns)
    }

    fn watch_list(&self) -> watch::Receiver<Vec<Namespace>> {
        self.hub.watch_list()
    }

    fn health(&self) -> StoreHealth {
        StoreHealth {
            ready: true,
            stale: false,
            last_error: None,
            last_sync: Some(SystemTime::now()),
        }
    }
}
