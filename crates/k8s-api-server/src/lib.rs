//! A Kubernetes API test server: ConfigMaps, Services, EndpointSlices and
//! Ingresses
//! over plain HTTP with the real API's semantics (one global
//! resourceVersion, list pagination and selectors, watches that resume,
//! bookmark and expire with 410 Gone, optimistic concurrency, Status
//! errors), plus fault injection. It exists so code written against
//! kube-rs can be tested without a cluster; `tests/kubectl.rs` drives it
//! with the real kubectl so it stays honest.
//!
//! It must not depend on the project's other crates nor on kube itself:
//! it is the other side of the wire.
//!
//! Known differences from a real kube-apiserver, accepted on purpose:
//!
//! - Bodies are JSON only. kubectl's typed commands (`kubectl create
//!   configmap ...`) send protobuf and get 415; `create -f`/`replace -f`
//!   send JSON and work. kube-rs always sends JSON.
//! - No aggregated discovery (the legacy documents are served, which
//!   client-go falls back to) and no schemas: `/openapi/v3` holds only what
//!   kubectl needs to choose server-side field validation, and strict
//!   validation checks only the top level and `metadata`.
//! - No managedFields, finalizers, graceful deletion, server-side apply or
//!   JSON patch (strategic merge patch is applied as a merge patch).
//! - Compaction affects new requests only; open watches keep going (they
//!   never lag behind the log here). A list whose `resourceVersion` is newer
//!   than the store answers 504 at once instead of waiting up to 3 s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod faults;
mod http;
mod object;
mod resource;
mod selector;
mod status;
mod store;
mod version;

pub use faults::Faults;
pub use resource::Resource;

use faults::lock;
use store::Store;

/// How a server behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Emit random, unordered resourceVersion tokens instead of numbers.
    pub opaque_versions: bool,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How many changes per resource are kept for resuming watches and
    /// exact-version lists; older ones answer 410 Gone.
    pub history_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            opaque_versions: false,
            bookmark_interval: Duration::from_secs(1),
            history_limit: 10_000,
        }
    }
}

/// A request the server received, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
}

impl RecordedRequest {
    /// Whether this was a watch (`watch=true` or `watch=1`).
    pub fn is_watch(&self) -> bool {
        self.path
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
    }
}

/// State shared by the HTTP handlers and the direct test API.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// The version of the latest write; watches wait on it.
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) faults: Faults,
    pub(crate) options: Options,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    /// Set once the server stops; watch streams end on it.
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Shared {
    /// Runs a write against the store and wakes the watches.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = lock(&self.store);
        let result = f(&mut store);
        self.changes.send_replace(store.version());
        result
    }
}

/// A running server. Dropping it (or [`ApiServer::shutdown`]) stops it.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Starts a server with default options on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<ApiServer> {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on `127.0.0.1:0`.
    pub async fn start_with(opts: Options) -> std::io::Result<ApiServer> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), opts).await
    }

    /// Starts a server on `addr`.
    pub async fn bind(addr: SocketAddr, opts: Options) -> std::io::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let store = Store::new(opts.opaque_versions, opts.history_limit);
        let shared = Arc::new(Shared {
            changes: watch::Sender::new(store.version()),
            store: Mutex::new(store),
            faults: Faults::new(),
            options: opts,
            requests: Mutex::new(Vec::new()),
            shutdown: watch::Sender::new(false),
        });
        let app = http::router(shared.clone(), addr);
        let mut stopped = shared.shutdown.subscribe();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "k8s api server failed");
            }
        });
        Ok(ApiServer {
            shared,
            addr,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes a kubeconfig for this server (plain HTTP, an anonymous user,
    /// namespace `default`) into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig(&self.url()))?;
        Ok(path)
    }

    /// Creates or replaces an object (by apiVersion, kind, namespace and
    /// name; the namespace defaults to `default`) as a write through the
    /// API would: a new resourceVersion and a watch event. Returns the
    /// stored object.
    ///
    /// # Panics
    ///
    /// If the object is not of a served type or the API would reject it as
    /// invalid: that is a mistake in the test.
    pub fn apply(&self, mut object: Value) -> Value {
        let resource = Resource::from_type(
            object["apiVersion"].as_str().unwrap_or(""),
            object["kind"].as_str().unwrap_or(""),
        )
        .unwrap_or_else(|| panic!("apply: not a served type: {object}"));
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        if let Err(error) = object::prepare(resource, &namespace, None, &mut object) {
            panic!("apply: invalid object: {error}");
        }
        let meta = object::Meta::of(&object);
        let result = self.shared.write(|store| {
            let key = (resource, meta.namespace.clone(), meta.name.clone());
            if store.get(&key).is_some() {
                store.replace(resource, object, false)
            } else {
                store.create(resource, object)
            }
        });
        result.unwrap_or_else(|error| panic!("apply: {error}"))
    }

    /// The stored object, hidden or not.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        let store = lock(&self.shared.store);
        store
            .get(&(resource, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The stored objects of a type in a namespace (all namespaces for
    /// `""`), ordered by namespace and name.
    pub fn list(&self, resource: Resource, namespace: &str) -> Vec<Value> {
        let store = lock(&self.shared.store);
        let namespace = (!namespace.is_empty()).then_some(namespace);
        match store.list_at(resource, namespace, None) {
            Ok(items) => items.into_values().collect(),
            Err(_) => unreachable!("the current state is always available"),
        }
    }

    /// Deletes an object as a DELETE through the API would; false if it
    /// did not exist.
    pub fn remove(&self, resource: Resource, namespace: &str, name: &str) -> bool {
        self.shared
            .write(|store| store.delete(resource, namespace, name, None))
            .is_ok()
    }

    /// Makes every resourceVersion before the current one too old: new
    /// watches and exact lists from them answer 410 Gone.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Stops the server: ends every watch and waits (briefly) for the
    /// connections to close.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn kubeconfig(server: &str) -> String {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "l5d-test", "cluster": { "server": server } }],
        "users": [{ "name": "anonymous", "user": {} }],
        "contexts": [{
            "name": "l5d-test",
            "context": { "cluster": "l5d-test", "user": "anonymous", "namespace": "default" },
        }],
        "current-context": "l5d-test",
        "preferences": {},
    });
    serde_json::to_string_pretty(&config).expect("a JSON value serialises")
}
