//! The Kubernetes store's view of its ConfigMaps, fed by the watcher and by
//! the store's own writes, and published to a [`WatchHub`]. Pure: no I/O,
//! time is passed in, so every rule below is tested without a server.
//!
//! - **Read-your-writes without ordering versions.** A write's response is
//!   applied at once and remembered as *pending* until the watcher delivers
//!   that same `resourceVersion` (watch events arrive in commit order, so
//!   everything before it is older and is held back, the latest held-back
//!   event being kept). Versions are only compared for equality. A pending
//!   write the watcher never confirms (it relisted past it) expires after
//!   `pending_ttl`, and the latest held-back state is applied then; a
//!   relist requested after the write settles it at once.
//! - **Absence is not deletion.** A `Delete` event (or our own delete) is
//!   a deletion; an object merely missing from a relist (an API server
//!   that briefly hides it) keeps its last good dtab and makes the store
//!   stale until it reappears, or until it has been missing for
//!   `missing_grace`, after which it is believed gone.
//! - **A corrupt object keeps the last good dtab** and is reported by `get`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::time::Instant;

use super::object::{Decoded, Layout};
use crate::store::{Namespace, StoreHealth, Version, VersionedDtab, WatchHub};

/// Versions of a namespace the watcher delivered recently, to recognise a
/// write whose event came before its response was applied.
const SEEN: usize = 8;

#[derive(Debug)]
pub(super) struct Index {
    layout: Layout,
    hub: WatchHub,
    entries: BTreeMap<Namespace, Entry>,
    pending: HashMap<Namespace, Pending>,
    seen: HashMap<Namespace, VecDeque<String>>,
    /// The last failure of the watcher, until the next successful list.
    failure: Option<String>,
    ready: bool,
    last_sync: Option<SystemTime>,
    pending_ttl: Duration,
    missing_grace: Duration,
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) object: ConfigMap,
    pub(super) rv: String,
    /// The last good dtab (what watchers have).
    pub(super) good: Option<VersionedDtab>,
    /// Why the current object's dtab is unusable, if it is.
    pub(super) corrupt: Option<String>,
    missing_since: Option<Instant>,
}

#[derive(Debug)]
struct Pending {
    /// Our write's version; `None` for our delete.
    rv: Option<String>,
    since: Instant,
    /// The latest state the watcher reported meanwhile (`None`: deleted).
    held: Option<Option<ConfigMap>>,
}

impl Index {
    pub(super) fn new(layout: Layout, pending_ttl: Duration, missing_grace: Duration) -> Self {
        Index {
            layout,
            hub: WatchHub::default(),
            entries: BTreeMap::new(),
            pending: HashMap::new(),
            seen: HashMap::new(),
            failure: None,
            ready: false,
            last_sync: None,
            pending_ttl,
            missing_grace,
        }
    }

    pub(super) fn hub(&self) -> &WatchHub {
        &self.hub
    }

    pub(super) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(super) fn entry(&self, ns: &Namespace) -> Option<&Entry> {
        self.entries.get(ns)
    }

    // === the watcher ===

    pub(super) fn apply(&mut self, cm: ConfigMap) {
        let Some(decoded) = self.layout.decode(&cm) else {
            return;
        };
        self.remember(&decoded);
        if let Some(p) = self.pending.get_mut(&decoded.ns) {
            if p.rv.as_deref() != Some(decoded.rv.as_str()) {
                p.held = Some(Some(cm));
                return;
            }
            self.pending.remove(&decoded.ns);
        }
        self.set(decoded, cm);
    }

    pub(super) fn delete(&mut self, cm: ConfigMap) {
        let Some(decoded) = self.layout.decode(&cm) else {
            return;
        };
        if let Some(p) = self.pending.get_mut(&decoded.ns) {
            if p.rv.is_some() {
                p.held = Some(None);
                return;
            }
            self.pending.remove(&decoded.ns);
        }
        self.remove(&decoded.ns);
    }

    /// A complete list, requested at `started`. Objects we have that it
    /// lacks are kept, as missing. Our writes made before `started` are
    /// settled by it: it is at least as new as they are.
    pub(super) fn reset(&mut self, objects: Vec<ConfigMap>, started: Instant, now: Instant) {
        self.pending.retain(|_, p| p.since > started);
        let mut listed = std::collections::HashSet::new();
        for cm in objects {
            if let Some(d) = self.layout.decode(&cm) {
                listed.insert(d.ns.clone());
                self.apply(cm);
            }
        }
        // Our delete is confirmed by a list without the object.
        self.pending
            .retain(|ns, p| p.rv.is_some() || listed.contains(ns));
        for (ns, entry) in &mut self.entries {
            if !listed.contains(ns)
                && !self.pending.contains_key(ns)
                && entry.missing_since.is_none()
            {
                tracing::warn!(%ns, "dtab ConfigMap missing from the list; keeping its last good dtab");
                entry.missing_since = Some(now);
            }
        }
        self.failure = None;
        self.ready = true;
        self.last_sync = Some(SystemTime::now());
    }

    pub(super) fn failed(&mut self, error: String) {
        self.failure = Some(error);
    }

    /// Expires pending writes and long-missing objects.
    pub(super) fn tick(&mut self, now: Instant) {
        let expired: Vec<Namespace> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= self.pending_ttl)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in expired {
            let held = self.pending.remove(&ns).and_then(|p| p.held);
            match held {
                Some(Some(cm)) => self.apply(cm),
                Some(None) => self.remove(&ns),
                None => {}
            }
        }
        let gone: Vec<Namespace> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.missing_since
                    .is_some_and(|t| now.duration_since(t) >= self.missing_grace)
            })
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in gone {
            tracing::info!(%ns, grace = ?self.missing_grace, "dtab ConfigMap missing for longer than the grace period; deleting");
            self.remove(&ns);
        }
    }

    /// Namespaces whose objects are missing from the API server's lists,
    /// to be probed (a probe that finds one is applied like an event).
    pub(super) fn missing(&self) -> Vec<Namespace> {
        self.entries
            .iter()
            .filter(|(_, e)| e.missing_since.is_some())
            .map(|(ns, _)| ns.clone())
            .collect()
    }

    // === our writes ===

    /// Applies the object a write of ours returned (`None`: we deleted).
    pub(super) fn wrote(&mut self, ns: &Namespace, cm: Option<ConfigMap>, now: Instant) {
        match cm {
            Some(cm) => {
                let Some(decoded) = self.layout.decode(&cm) else {
                    return;
                };
                if self.seen.get(ns).is_some_and(|s| s.contains(&decoded.rv)) {
                    return; // The watcher was first: the index is at it or newer.
                }
                self.pending.insert(
                    ns.clone(),
                    Pending {
                        rv: Some(decoded.rv.clone()),
                        since: now,
                        held: None,
                    },
                );
                self.set(decoded, cm);
            }
            None => {
                if self.entries.contains_key(ns) {
                    self.pending.insert(
                        ns.clone(),
                        Pending {
                            rv: None,
                            since: now,
                            held: None,
                        },
                    );
                    self.remove(ns);
                }
            }
        }
    }

    // === state ===

    pub(super) fn health(&self) -> StoreHealth {
        let missing: Vec<&Namespace> = self
            .entries
            .iter()
            .filter(|(_, e)| e.missing_since.is_some())
            .map(|(ns, _)| ns)
            .collect();
        let last_error = self.failure.clone().or_else(|| {
            (!missing.is_empty()).then(|| {
                let names: Vec<String> = missing.iter().map(|ns| ns.to_string()).collect();
                format!(
                    "dtab ConfigMaps missing from the API server, last good dtabs kept: {}",
                    names.join(", ")
                )
            })
        });
        StoreHealth {
            ready: self.ready,
            stale: last_error.is_some(),
            last_error,
            last_sync: self.last_sync,
        }
    }

    fn remember(&mut self, d: &Decoded) {
        let seen = self.seen.entry(d.ns.clone()).or_default();
        if !seen.contains(&d.rv) {
            if seen.len() == SEEN {
                seen.pop_front();
            }
            seen.push_back(d.rv.clone());
        }
    }

    fn set(&mut self, d: Decoded, cm: ConfigMap) {
        let previous = self.entries.remove(&d.ns);
        let (good, corrupt) = match d.dtab {
            Ok(dtab) => (
                Some(VersionedDtab {
                    dtab,
                    version: Version::from_bytes(d.rv.as_bytes()),
                }),
                None,
            ),
            Err(e) => {
                metrics::counter!("namerd_store_corrupt_total", "backend" => "k8s").increment(1);
                tracing::warn!(ns = %d.ns, error = %e, "ignoring an invalid stored dtab");
                (previous.and_then(|p| p.good), Some(e))
            }
        };
        if let Some(value) = &good {
            self.hub.publish(&d.ns, Some(value.clone()));
        }
        self.entries.insert(
            d.ns,
            Entry {
                object: cm,
                rv: d.rv,
                good,
                corrupt,
                missing_since: None,
            },
        );
    }

    fn remove(&mut self, ns: &Namespace) {
        self.entries.remove(ns);
        self.hub.publish(ns, None);
    }
}

#[cfg(test)]
mod tests;
