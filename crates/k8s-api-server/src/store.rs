//! The object store: every object by (resource, namespace, name), one global
//! resource-version counter bumped by every write, and a bounded log of the
//! changes per resource. The log is what watches resume from and what a
//! list at an exact older version is rebuilt from (current state with the
//! later changes undone), the way etcd's MVCC history serves both.
//!
//! The store is plain data behind the server's mutex: no I/O and no async,
//! so a write, its version and its log entry are one step.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use crate::Resource;
use crate::object::{self, Meta};
use crate::status::ApiError;
use crate::version::Versions;

/// The identity of a stored object.
pub(crate) type Key = (Resource, String, String);

/// What a change did to an object, as watch events name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Modified,
    Deleted,
}

/// One committed change. `object` is the state after the change (for a
/// delete, the last state stamped with the delete's version, as the real
/// server sends it); `prev` the state before.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) version: u64,
    pub(crate) change: Change,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) object: Value,
    pub(crate) prev: Option<Value>,
}

/// A requested version the store no longer has history for.
#[derive(Debug, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub(crate) struct TooOld {
    pub(crate) requested: u64,
    pub(crate) oldest: u64,
}

#[derive(Debug, Default)]
struct Log {
    events: VecDeque<Arc<Event>>,
    /// Changes at or before this version were dropped from `events`.
    floor: u64,
}

#[derive(Debug)]
pub(crate) struct Store {
    version: u64,
    objects: BTreeMap<Key, Value>,
    logs: BTreeMap<Resource, Log>,
    /// Versions before this one were compacted away.
    compacted: u64,
    history_limit: usize,
    pub(crate) versions: Versions,
    next_uid: u64,
}

impl Store {
    pub(crate) fn new(opaque_versions: bool, history_limit: usize) -> Self {
        Store {
            version: 1,
            objects: BTreeMap::new(),
            logs: Resource::ALL
                .into_iter()
                .map(|r| (r, Log::default()))
                .collect(),
            compacted: 0,
            history_limit: history_limit.max(1),
            versions: Versions::new(opaque_versions),
            next_uid: 0,
        }
    }

    /// The version of the latest write.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Fails if the history after `version` is no longer complete.
    pub(crate) fn check_available(&self, resource: Resource, version: u64) -> Result<(), TooOld> {
        let oldest = self.compacted.max(self.logs[&resource].floor);
        if version < oldest {
            return Err(TooOld {
                requested: version,
                oldest,
            });
        }
        Ok(())
    }

    /// The objects of `resource` (in `namespace`, or all) as they were at
    /// `at` (or now), ordered by namespace and name.
    pub(crate) fn list_at(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        at: Option<u64>,
    ) -> Result<BTreeMap<Key, Value>, TooOld> {
        let in_scope = |ns: &str| namespace.is_none_or(|n| n == ns);
        let mut items: BTreeMap<Key, Value> = self
            .objects
            .range((resource, String::new(), String::new())..)
            .take_while(|((r, _, _), _)| *r == resource)
            .filter(|((_, ns, _), _)| in_scope(ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(at) = at.filter(|at| *at < self.version) {
            self.check_available(resource, at)?;
            // Undo the later changes, newest first.
            for event in self.logs[&resource].events.iter().rev() {
                if event.version <= at {
                    break;
                }
                if !in_scope(&event.namespace) {
                    continue;
                }
                let key = (resource, event.namespace.clone(), event.name.clone());
                match &event.prev {
                    Some(prev) => items.insert(key, prev.clone()),
                    None => items.remove(&key),
                };
            }
        }
        Ok(items)
    }

    /// The changes to `resource` after `version`.
    pub(crate) fn events_after(
        &self,
        resource: Resource,
        version: u64,
    ) -> Result<Vec<Arc<Event>>, TooOld> {
        let log = &self.logs[&resource];
        if version < log.floor {
            return Err(TooOld {
                requested: version,
                oldest: log.floor,
            });
        }
        let start = log.events.partition_point(|e| e.version <= version);
        Ok(log.events.range(start..).cloned().collect())
    }

    /// Makes every version before the current one too old for new lists and
    /// watches. Watches already open keep their place (etcd cancels only
    /// watchers that fall behind a compaction; ours never lag).
    pub(crate) fn compact(&mut self) {
        self.compacted = self.version;
    }

    /// Creates an object; `object` has its metadata checked and filled.
    pub(crate) fn create(
        &mut self,
        resource: Resource,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let meta = Meta::of(&object);
        let key = (resource, meta.namespace.clone(), meta.name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource, &meta.name));
        }
        self.next_uid += 1;
        object::fill_created(resource, &mut object, self.next_uid);
        Ok(self.commit(key, Change::Added, object, None))
    }

    /// Replaces an object. With `check_version`, a `resourceVersion` in the
    /// body must be the stored one (optimistic concurrency).
    pub(crate) fn replace(
        &mut self,
        resource: Resource,
        mut object: Value,
        check_version: bool,
    ) -> Result<Value, ApiError> {
        let meta = Meta::of(&object);
        let key = (resource, meta.namespace.clone(), meta.name.clone());
        let Some(current) = self.objects.get(&key) else {
            return Err(ApiError::not_found(resource, &meta.name));
        };
        if check_version
            && let Some(sent) = meta.resource_version.as_deref()
            && current["metadata"]["resourceVersion"].as_str() != Some(sent)
        {
            return Err(ApiError::conflict(resource, &meta.name));
        }
        object::fill_updated(resource, &mut object, current);
        // A write that changes nothing is not a write: no new version, no
        // event (the real server compares the encoded objects).
        if object == *current {
            return Ok(current.clone());
        }
        let prev = current.clone();
        Ok(self.commit(key, Change::Modified, object, Some(prev)))
    }

    /// Deletes an object, returning its last state stamped with the delete's
    /// version. `precondition` is a `resourceVersion` it must still have.
    pub(crate) fn delete(
        &mut self,
        resource: Resource,
        namespace: &str,
        name: &str,
        precondition: Option<&str>,
    ) -> Result<Value, ApiError> {
        let key = (resource, namespace.to_owned(), name.to_owned());
        let Some(current) = self.objects.get(&key) else {
            return Err(ApiError::not_found(resource, name));
        };
        let stored = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if let Some(wanted) = precondition
            && wanted != stored
        {
            let detail = format!(
                "Precondition failed: ResourceVersion in precondition: {wanted}, ResourceVersion in object meta: {stored}"
            );
            return Err(ApiError::precondition(resource, name, detail));
        }
        let prev = self.objects.remove(&key);
        let last = prev.clone().unwrap_or_default();
        Ok(self.commit(key, Change::Deleted, last, prev))
    }

    fn commit(
        &mut self,
        key: Key,
        change: Change,
        mut object: Value,
        prev: Option<Value>,
    ) -> Value {
        self.version += 1;
        let version = self.version;
        object["metadata"]["resourceVersion"] = Value::String(self.versions.render(version));
        let (resource, namespace, name) = key.clone();
        if change != Change::Deleted {
            self.objects.insert(key, object.clone());
        }
        let log = self
            .logs
            .get_mut(&resource)
            .expect("every resource has a log");
        log.events.push_back(Arc::new(Event {
            version,
            change,
            namespace,
            name,
            object: object.clone(),
            prev,
        }));
        while log.events.len() > self.history_limit {
            if let Some(dropped) = log.events.pop_front() {
                log.floor = dropped.version;
            }
        }
        object
    }
}
