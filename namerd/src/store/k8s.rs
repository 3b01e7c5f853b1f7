//! Dtab storage in Kubernetes ConfigMaps (`io.l5d.k8s`): one ConfigMap per
//! dtab namespace in one Kubernetes namespace (schema in `k8s/object.rs`).
//!
//! Writes go to the API server and are compare-and-set by
//! `metadata.resourceVersion`: `update` replaces the object carrying the
//! caller's version and a 409 Conflict is a version mismatch, never retried
//! behind the caller's back; `create` POSTs a fixed name, so concurrent
//! creates have exactly one winner (409 AlreadyExists); only `put`, being
//! unconditional, retries its read-then-replace on conflict.
//!
//! Reads and watches come from an index (`k8s/index.rs`) that a
//! kube-runtime watcher keeps current (`crate::k8s::watch`) and that every
//! write of ours updates at once from its response. When the API server
//! fails, or an object goes missing from a relist, the index keeps the last
//! good dtabs and the store reports itself stale, as the SQL stores do: a
//! failure never becomes "namespace absent".
//!
//! Differences from the other backends: versions are resource versions,
//! not counters; the history lives in the object (at most 16 earlier
//! versions, fewer if the store's retention says so, pruned by each write
//! of the object) and goes with it when the namespace is deleted.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use l5d_dtab::Dtab;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{
    Change, DtabStore, HistoryEntry, Namespace, Op, StoreError, StoreHealth, Version,
    VersionedDtab, Write, WriteMeta,
};
use crate::k8s::watch::{self as driver, Update};
use crate::k8s::{is_already_exists, is_status};

mod index;
mod object;
mod options;
mod sync;

pub use object::{MAX_OBJECT_BYTES, TooLarge};
pub use options::{K8sOpenError, K8sOptions, selector_labels};

use index::Index;
use object::Layout;

/// Dtab storage in Kubernetes ConfigMaps.
#[derive(Debug)]
pub struct K8sStore {
    api: Api<ConfigMap>,
    index: Arc<Mutex<Index>>,
    _tasks: Tasks,
}

#[derive(Debug)]
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(AbortHandle::abort);
    }
}

/// Attempts of `put`'s read-then-replace before it gives up.
const PUT_ATTEMPTS: usize = 16;

// === impl K8sStore ===

impl K8sStore {
    /// Connects, starts watching and waits for the first complete list, so
    /// that the store never answers "absent" before it knows.
    pub async fn open(opts: K8sOptions) -> Result<Self, K8sOpenError> {
        let labels =
            selector_labels(&opts.label_selector).ok_or_else(|| K8sOpenError::Selector {
                selector: opts.label_selector.clone(),
            })?;
        let client = opts.connection.client().await?;
        let api: Api<ConfigMap> = Api::namespaced(client, &opts.namespace);
        let layout = Layout {
            name_prefix: opts.name_prefix.clone(),
            labels,
            data_key: opts.data_key.clone(),
            retention: opts.retention,
        };
        let index = Arc::new(Mutex::new(Index::new(
            layout,
            opts.pending_ttl,
            opts.missing_grace,
        )));
        let (ready_tx, mut ready) = watch::channel(false);
        let config = driver::config(Some(&opts.label_selector), opts.idle_timeout);
        let feed = index.clone();
        let watcher = tokio::spawn(driver::drive(
            api.clone(),
            config,
            opts.max_backoff,
            move |update| {
                let mut ix = lock(&feed);
                match update {
                    Update::Reset { objects, started } => {
                        ix.reset(objects, started, Instant::now());
                        ready_tx.send_replace(true);
                    }
                    Update::Apply(cm) => ix.apply(cm),
                    Update::Delete(cm) => ix.delete(cm),
                    Update::Failed(error) => {
                        metrics::counter!("namerd_store_errors_total", "backend" => "k8s", "op" => "watch")
                        .increment(1);
                        tracing::warn!(%error, "Kubernetes API failed; watches keep the last good dtabs");
                        ix.failed(error);
                    }
                }
                metrics::gauge!("namerd_store_stale", "backend" => "k8s")
                    .set(f64::from(u8::from(ix.health().stale)));
            },
        ));
        let ticker = tokio::spawn(sync::tick(index.clone(), api.clone()));
        let tasks = Tasks(vec![watcher.abort_handle(), ticker.abort_handle()]);
        if tokio::time::timeout(opts.open_timeout, ready.wait_for(|r| *r))
            .await
            .is_err()
        {
            let message = lock(&index)
                .health()
                .last_error
                .unwrap_or_else(|| "no answer".into());
            return Err(K8sOpenError::Load {
                namespace: opts.namespace,
                timeout: opts.open_timeout,
                message,
            });
        }
        Ok(K8sStore {
            api,
            index,
            _tasks: tasks,
        })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
    }

    fn name(&self, ns: &Namespace) -> String {
        self.index().layout().object_name(ns)
    }

    fn build(
        &self,
        ns: &Namespace,
        dtab: &Dtab,
        op: Op,
        meta: &WriteMeta,
        previous: Option<&ConfigMap>,
    ) -> Result<ConfigMap, StoreError> {
        // Refused before any API call: the server's 413 would say less.
        self.index()
            .layout()
            .build(ns, dtab, op, meta, previous)
            .map_err(StoreError::from)
    }

    fn wrote(&self, ns: &Namespace, object: Option<ConfigMap>) -> Version {
        let version = object
            .as_ref()
            .and_then(|cm| cm.metadata.resource_version.as_deref())
            .map(|rv| Version::from_bytes(rv.as_bytes()));
        self.index().wrote(ns, object, Instant::now());
        version.unwrap_or_else(|| Version::from_bytes(b""))
    }

    /// The object as the API server has it now.
    async fn fetch(
        &self,
        ns: &Namespace,
        op: &'static str,
    ) -> Result<Option<ConfigMap>, StoreError> {
        self.api
            .get_opt(&self.name(ns))
            .await
            .map_err(|e| failed(op, e))
    }

    async fn mismatch(&self, ns: &Namespace) -> StoreError {
        match self.fetch(ns, "update").await {
            Ok(Some(current)) => StoreError::VersionMismatch {
                ns: ns.clone(),
                current: rv_of(&current),
            },
            Ok(None) => StoreError::NotFound { ns: ns.clone() },
            Err(e) => e,
        }
    }

    /// Creates the object; the API server refuses it if it exists.
    async fn create_object(&self, write: Write<'_>, dtab: &Dtab) -> Result<Version, StoreError> {
        let Write { ns, meta, .. } = write;
        let object = self.build(ns, dtab, Op::Create, meta, None)?;
        match self.api.create(&PostParams::default(), &object).await {
            Ok(created) => Ok(self.wrote(ns, Some(created))),
            Err(e) if is_already_exists(&e) => Err(StoreError::AlreadyExists { ns: ns.clone() }),
            Err(e) => Err(failed("create", e)),
        }
    }

    /// The compare-and-set: a replace conditional on the resourceVersion.
    async fn replace_object(
        &self,
        write: Write<'_>,
        dtab: &Dtab,
        expected: &Version,
    ) -> Result<Version, StoreError> {
        let Write { ns, meta, .. } = write;
        let expected_rv = String::from_utf8_lossy(expected.as_bytes()).into_owned();
        let known = self
            .index()
            .entry(ns)
            .filter(|e| e.rv == expected_rv)
            .map(|e| e.object.clone());
        let previous = match known {
            Some(object) => object,
            None => {
                let current = self
                    .fetch(ns, "update")
                    .await?
                    .ok_or_else(|| StoreError::NotFound { ns: ns.clone() })?;
                if current.metadata.resource_version.as_deref() != Some(expected_rv.as_str()) {
                    return Err(StoreError::VersionMismatch {
                        ns: ns.clone(),
                        current: rv_of(&current),
                    });
                }
                current
            }
        };
        let object = self.build(ns, dtab, Op::Update, meta, Some(&previous))?;
        match self
            .api
            .replace(&self.name(ns), &PostParams::default(), &object)
            .await
        {
            Ok(replaced) => Ok(self.wrote(ns, Some(replaced))),
            // Someone else wrote first: the caller decides what to do.
            Err(e) if is_status(&e, 409) => Err(self.mismatch(ns).await),
            Err(e) if is_status(&e, 404) => Err(StoreError::NotFound { ns: ns.clone() }),
            Err(e) => Err(failed("update", e)),
        }
    }

    /// Creates or replaces the object, whatever its resourceVersion.
    async fn put_object(&self, write: Write<'_>, dtab: &Dtab) -> Result<Version, StoreError> {
        let Write { ns, meta, .. } = write;
        let name = self.name(ns);
        for _ in 0..PUT_ATTEMPTS {
            let written = match self.fetch(ns, "put").await? {
                None => {
                    let object = self.build(ns, dtab, Op::Create, meta, None)?;
                    self.api.create(&PostParams::default(), &object).await
                }
                Some(current) => {
                    let object = self.build(ns, dtab, Op::Update, meta, Some(&current))?;
                    self.api
                        .replace(&name, &PostParams::default(), &object)
                        .await
                }
            };
            match written {
                Ok(object) => return Ok(self.wrote(ns, Some(object))),
                // Unconditional: a lost race is simply tried again.
                Err(e) if is_status(&e, 409) || is_status(&e, 404) => continue,
                Err(e) => return Err(failed("put", e)),
            }
        }
        Err(StoreError::unavailable(format!(
            "put of {ns} conflicted {PUT_ATTEMPTS} times in a row"
        )))
    }

    async fn delete_object(&self, ns: &Namespace) -> Result<Version, StoreError> {
        match self
            .api
            .delete(&self.name(ns), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(self.wrote(ns, None)),
            Err(e) if is_status(&e, 404) => Err(StoreError::NotFound { ns: ns.clone() }),
            Err(e) => Err(failed("delete", e)),
        }
    }
}

#[async_trait]
impl DtabStore for K8sStore {
    async fn list(&self) -> Result<Vec<Namespace>, StoreError> {
        Ok(self.index().hub().names())
    }

    async fn get(&self, ns: &Namespace) -> Result<Option<VersionedDtab>, StoreError> {
        let ix = self.index();
        let health = ix.health();
        let entry = ix.entry(ns);
        if let Some(e) = entry.and_then(|e| e.corrupt.clone()) {
            return Err(StoreError::Corrupt {
                ns: ns.clone(),
                message: e.into(),
            });
        }
        // While the view is not known to be current, say so: readers then
        // get the last good value marked stale (`l5d-stale: true`).
        if let Some(error) = health.last_error {
            return Err(StoreError::unavailable(error));
        }
        Ok(entry.and_then(|e| e.good.clone()))
    }

    async fn write(&self, write: Write<'_>) -> Result<Version, StoreError> {
        match write.change {
            Change::Create(dtab) => self.create_object(write, dtab).await,
            Change::Update { dtab, expected } => self.replace_object(write, dtab, expected).await,
            Change::Put(dtab) => self.put_object(write, dtab).await,
            Change::Delete => self.delete_object(write.ns).await,
        }
    }

    async fn history(&self, ns: &Namespace) -> Result<Vec<HistoryEntry>, StoreError> {
        let ix = self.index();
        let Some(entry) = ix.entry(ns) else {
            return Ok(Vec::new());
        };
        ix.layout()
            .history(ns, &entry.object)
            .map_err(|message| StoreError::Corrupt {
                ns: ns.clone(),
                message: message.into(),
            })
    }

    async fn version(
        &self,
        ns: &Namespace,
        version: &Version,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let history = self.history(ns).await?;
        Ok(history.into_iter().find(|e| e.version == *version))
    }

    fn watch(&self, ns: &Namespace) -> watch::Receiver<Option<VersionedDtab>> {
        self.index().hub().watch(ns)
    }

    fn watch_list(&self) -> watch::Receiver<Vec<Namespace>> {
        self.index().hub().watch_list()
    }

    fn health(&self) -> StoreHealth {
        self.index().health()
    }
}

fn rv_of(cm: &ConfigMap) -> Version {
    Version::from_bytes(
        cm.metadata
            .resource_version
            .as_deref()
            .unwrap_or("")
            .as_bytes(),
    )
}

fn failed(op: &'static str, e: kube::Error) -> StoreError {
    metrics::counter!("namerd_store_errors_total", "backend" => "k8s", "op" => op).increment(1);
    tracing::warn!(op, error = %e, "Kubernetes API call failed");
    StoreError::unavailable(e)
}

fn lock(m: &Mutex<Index>) -> MutexGuard<'_, Index> {
    // The index is consistent after any panic (plain inserts and removals).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the store does with a ConfigMap the watcher hands it, for the fuzz
/// targets (`crate::fuzzing`): decode it as one of ours, read its history,
/// apply it, relist with it, delete it. The index and the object schema
/// stay private to this module.
pub(crate) fn read_for_fuzzing(cm: ConfigMap) {
    use std::time::Duration;

    let layout = Layout {
        name_prefix: "dtab-".into(),
        labels: [("l5d.io/dtab".to_string(), "true".to_string())].into(),
        data_key: "dtab".into(),
        retention: super::Retention::default(),
    };
    if let Some(decoded) = layout.decode(&cm) {
        let _ = layout.history(&decoded.ns, &cm);
    }
    let mut index = Index::new(layout, Duration::from_secs(30), Duration::from_secs(60));
    let now = Instant::now();
    index.apply(cm.clone());
    index.reset(vec![cm.clone()], now, now);
    let _ = index.health();
    index.delete(cm);
    index.tick(now + Duration::from_secs(3600));
    let _ = index.missing();
}
