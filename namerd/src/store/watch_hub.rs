//! The watch channels every store backend serves its watchers from.
//! Must not depend on any particular backend.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::{Namespace, VersionedDtab};

/// The watch channels of a store: the latest known value of every
/// namespace, published in order. Backends feed it after each commit and
/// after each re-read of storage.
#[derive(Debug)]
pub struct WatchHub {
    inner: Mutex<HubState>,
    list: watch::Sender<Vec<Namespace>>,
}

#[derive(Debug, Default)]
struct HubState {
    /// Present namespaces and the sender for every namespace ever watched.
    values: BTreeMap<Namespace, Option<VersionedDtab>>,
    senders: BTreeMap<Namespace, watch::Sender<Option<VersionedDtab>>>,
}

impl Default for WatchHub {
    fn default() -> Self {
        WatchHub {
            inner: Mutex::default(),
            list: watch::Sender::new(Vec::new()),
        }
    }
}

impl WatchHub {
    /// Publishes the value of one namespace (`None`: deleted), if it changed.
    pub fn publish(&self, ns: &Namespace, value: Option<VersionedDtab>) {
        let mut state = self.inner.lock().expect("watch hub lock");
        let changed = state.values.get(ns).cloned().flatten() != value;
        if !changed {
            return;
        }
        let list_changed = state.values.get(ns).is_some_and(Option::is_some) != value.is_some();
        match &value {
            Some(_) => {
                state.values.insert(ns.clone(), value.clone());
            }
            None => {
                state.values.remove(ns);
            }
        }
        if let Some(tx) = state.senders.get(ns) {
            tx.send_replace(value);
        }
        if list_changed {
            let names = state.values.keys().cloned().collect();
            self.list.send_replace(names);
        }
    }

    /// Replaces everything with a full snapshot (after a re-read): absent
    /// namespaces are published as deleted.
    pub fn reset(&self, snapshot: BTreeMap<Namespace, VersionedDtab>) {
        let known: Vec<Namespace> = {
            let state = self.inner.lock().expect("watch hub lock");
            state.values.keys().cloned().collect()
        };
        for ns in known {
            if !snapshot.contains_key(&ns) {
                self.publish(&ns, None);
            }
        }
        for (ns, value) in snapshot {
            self.publish(&ns, Some(value));
        }
    }

    /// The latest known value.
    pub fn current(&self, ns: &Namespace) -> Option<VersionedDtab> {
        let state = self.inner.lock().expect("watch hub lock");
        state.values.get(ns).cloned().flatten()
    }

    pub fn watch(&self, ns: &Namespace) -> watch::Receiver<Option<VersionedDtab>> {
        let mut state = self.inner.lock().expect("watch hub lock");
        let current = state.values.get(ns).cloned().flatten();
        if !state.senders.contains_key(ns) {
            // Watches of names that come and go (a client polling random
            // namespaces) must not accumulate senders nobody listens to.
            state.senders.retain(|_, tx| tx.receiver_count() > 0);
        }
        state
            .senders
            .entry(ns.clone())
            .or_insert_with(|| watch::Sender::new(current))
            .subscribe()
    }

    pub fn watch_list(&self) -> watch::Receiver<Vec<Namespace>> {
        self.list.subscribe()
    }

    pub fn names(&self) -> Vec<Namespace> {
        self.list.borrow().clone()
    }
}
