//! The Kubernetes namer's watches: one pair of watchers (Services and
//! EndpointSlices) per Kubernetes namespace, started on first use and
//! shared by every name and id in that namespace, feeding the namespace's
//! [`NamespaceIndex`] and the resolve channels of its watched ids. The
//! `io.l5d.k8s` namer answers from it, the `io.l5d.k8s.daemonset`
//! transformer watches the proxies' own Service through one, and the
//! `io.l5d.k8s.ingress` namer checks its backends' Services with one.
//!
//! A failure of the API server changes no answer: every channel keeps its
//! last good set and the namespace reports itself stale until the failing
//! watcher's next complete list (the driver relists after every error).
//! Before a namespace's first complete lists, answers are `Pending`.
//!
//! Namespaces, once watched, stay watched: names come and go far more often
//! than a mesh's namespaces do, and a restart of the watchers would cost a
//! full list. Their number is capped so that names made up by clients
//! cannot open unbounded watches.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use l5d_dtab::Addr;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::index::{NamespaceIndex, PortCheck, PortSpec, slice_service};
use crate::k8s::watch::{self as driver, Update};
use crate::namer::{NamerState, fixed};

/// Kubernetes namespaces watched at most by one [`Discovery`].
pub(crate) const MAX_NAMESPACES: usize = 1000;

/// How the watchers behave.
#[derive(Clone, Debug)]
pub(crate) struct DiscoveryOptions {
    /// A watch on which nothing arrives this long is restarted (at least 6 s).
    pub(crate) idle_timeout: Duration,
    /// The longest pause between attempts to reach the API server again.
    pub(crate) max_backoff: Duration,
    /// The `namer` label of `namerd_namer_errors_total`.
    pub(crate) metric_label: String,
}

/// What a resolve channel carries the addresses of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) service: String,
    pub(crate) port: PortSpec,
    /// `(key, value)` the Service must carry (the namer's `labelSelector`).
    pub(crate) label: Option<(String, String)>,
}

/// Why a namespace cannot be watched.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "cannot watch Kubernetes namespace {namespace}: {MAX_NAMESPACES} namespaces are watched already"
)]
pub(crate) struct TooManyNamespaces {
    namespace: String,
}

/// Per-namespace watchers and what they know.
pub(crate) struct Discovery {
    client: kube::Client,
    runtime: Handle,
    opts: DiscoveryOptions,
    namespaces: Mutex<BTreeMap<String, Watched>>,
    /// Ticks when any namespace's Services (names, labels, ports) change.
    changes: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// One watched namespace: its state, and its two watchers, stopped when
/// it is dropped.
struct Watched {
    state: Arc<Mutex<NsState>>,
    tasks: [AbortHandle; 2],
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

#[derive(Default)]
struct NsState {
    index: NamespaceIndex,
    services_listed: bool,
    slices_listed: bool,
    services_error: Option<String>,
    slices_error: Option<String>,
    last_update: Option<SystemTime>,
    resolves: HashMap<Target, watch::Sender<Addr>>,
}

// === impl Discovery ===

impl Discovery {
    /// Must be called inside a tokio runtime, where the watchers will run.
    /// Makes no request until a namespace is first used.
    pub(crate) fn new(client: kube::Client, opts: DiscoveryOptions) -> Self {
        Discovery {
            client,
            runtime: Handle::current(),
            opts,
            namespaces: Mutex::new(BTreeMap::new()),
            changes: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Ticks whenever [`Discovery::service`] may answer differently.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether Service `name` exists in `namespace` (with `label`, if
    /// given); `None` until the namespace's Services were listed once.
    pub(crate) fn service(
        &self,
        namespace: &str,
        name: &str,
        label: Option<(&str, &str)>,
    ) -> Result<Option<bool>, TooManyNamespaces> {
        let state = self.namespace(namespace)?;
        let st = lock(&state);
        Ok(st
            .services_listed
            .then(|| st.index.has_service_labelled(name, label)))
    }

    /// Whether Service `name` in `namespace` has `port` (by name or
    /// number); `None` until the namespace's Services were listed once.
    pub(crate) fn service_port(
        &self,
        namespace: &str,
        name: &str,
        port: &PortSpec,
    ) -> Result<Option<PortCheck>, TooManyNamespaces> {
        let state = self.namespace(namespace)?;
        let st = lock(&state);
        Ok(st
            .services_listed
            .then(|| st.index.service_port(name, port)))
    }

    /// The addresses of `target` in `namespace`, kept current.
    pub(crate) fn resolve(&self, namespace: &str, target: Target) -> watch::Receiver<Addr> {
        let state = match self.namespace(namespace) {
            Ok(state) => state,
            Err(e) => return fixed(Addr::Failed(e.to_string().into())),
        };
        let mut st = lock(&state);
        if let Some(tx) = st.resolves.get(&target) {
            return tx.subscribe();
        }
        // Channels nobody watches any more are dropped here and at every
        // publish, so the table holds the ids in use and no more.
        st.resolves.retain(|_, tx| tx.receiver_count() > 0);
        let tx = watch::Sender::new(st.answer(&target));
        let rx = tx.subscribe();
        st.resolves.insert(target, tx);
        rx
    }

    /// Stale if any namespace's last attempt failed.
    pub(crate) fn state(&self) -> NamerState {
        let namespaces = lock(&self.namespaces);
        let mut state = NamerState::default();
        for (name, watched) in namespaces.iter() {
            let st = lock(&watched.state);
            let listed = match (st.services_listed, st.slices_listed) {
                (true, true) => "listed",
                _ => "pending",
            };
            state.details.insert(
                format!("namespace.{name}"),
                format!(
                    "{listed}, {} services, {} watched ids",
                    st.index.service_names().count(),
                    st.resolves.len()
                ),
            );
            for (what, error) in [
                ("services", &st.services_error),
                ("endpointslices", &st.slices_error),
            ] {
                if let Some(e) = error {
                    let message = format!("namespace {name}, {what}: {e}");
                    state
                        .details
                        .insert(format!("error.{name}.{what}"), e.clone());
                    state.last_error.get_or_insert(message);
                }
            }
            state.last_update = state.last_update.max(st.last_update);
        }
        state.stale = state.last_error.is_some();
        state
            .details
            .insert("namespaces".into(), namespaces.len().to_string());
        state
    }

    /// The state of `namespace`, starting its watchers on first use.
    fn namespace(&self, namespace: &str) -> Result<Arc<Mutex<NsState>>, TooManyNamespaces> {
        let mut namespaces = lock(&self.namespaces);
        if let Some(watched) = namespaces.get(namespace) {
            return Ok(watched.state.clone());
        }
        if namespaces.len() >= MAX_NAMESPACES {
            return Err(TooManyNamespaces {
                namespace: namespace.to_string(),
            });
        }
        let watched = self.start(namespace);
        let state = watched.state.clone();
        namespaces.insert(namespace.to_string(), watched);
        Ok(state)
    }

    fn start(&self, namespace: &str) -> Watched {
        tracing::debug!(namespace, "watching Services and EndpointSlices");
        let state = Arc::new(Mutex::new(NsState::default()));
        let config = driver::config(None, self.opts.idle_timeout);
        let feed = Feed {
            state: state.clone(),
            changes: self.changes.clone(),
            namespace: namespace.to_string(),
            metric_label: self.opts.metric_label.clone(),
        };
        let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), namespace);
        let on_service = {
            let feed = feed.clone();
            move |update| feed.service(update)
        };
        let on_slice = move |update| feed.slice(update);
        let max_backoff = self.opts.max_backoff;
        let services = self.runtime.spawn(driver::drive(
            services,
            config.clone(),
            max_backoff,
            on_service,
        ));
        let slices = self
            .runtime
            .spawn(driver::drive(slices, config, max_backoff, on_slice));
        Watched {
            state,
            tasks: [services.abort_handle(), slices.abort_handle()],
        }
    }
}

/// What the two watchers of a namespace write to.
#[derive(Clone)]
struct Feed {
    state: Arc<Mutex<NsState>>,
    changes: Arc<watch::Sender<u64>>,
    namespace: String,
    metric_label: String,
}

impl Feed {
    fn service(&self, update: Update<Service>) {
        let mut st = lock(&self.state);
        let (names_changed, only) = match update {
            Update::Reset { objects, .. } => {
                let first = !st.services_listed;
                st.services_listed = true;
                st.services_error = None;
                (st.index.reset_services(&objects) || first, None)
            }
            Update::Apply(svc) => (st.index.apply_service(&svc), svc.metadata.name),
            Update::Delete(svc) => (st.index.delete_service(&svc), svc.metadata.name),
            Update::Failed(error) => {
                self.failed("services", &error);
                st.services_error = Some(error);
                return;
            }
        };
        st.last_update = Some(SystemTime::now());
        st.publish(only.as_deref());
        drop(st);
        if names_changed {
            self.changes.send_modify(|generation| *generation += 1);
        }
    }

    fn slice(&self, update: Update<EndpointSlice>) {
        let mut st = lock(&self.state);
        let only = match update {
            Update::Reset { objects, .. } => {
                st.slices_listed = true;
                st.slices_error = None;
                st.index.reset_slices(&objects);
                None
            }
            Update::Apply(slice) => {
                st.index.apply_slice(&slice);
                slice_service(&slice).map(str::to_string)
            }
            Update::Delete(slice) => {
                st.index.delete_slice(&slice);
                slice_service(&slice).map(str::to_string)
            }
            Update::Failed(error) => {
                self.failed("endpointslices", &error);
                st.slices_error = Some(error);
                return;
            }
        };
        st.last_update = Some(SystemTime::now());
        st.publish(only.as_deref());
    }

    fn failed(&self, what: &str, error: &str) {
        metrics::counter!("namerd_namer_errors_total", "namer" => self.metric_label.clone())
            .increment(1);
        tracing::warn!(
            namer = %self.metric_label,
            namespace = %self.namespace,
            what,
            %error,
            "Kubernetes API failed; keeping the last good addresses"
        );
    }
}

// === impl NsState ===

impl NsState {
    fn answer(&self, target: &Target) -> Addr {
        if !(self.services_listed && self.slices_listed) {
            return Addr::Pending;
        }
        let label = target.label.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
        if !self.index.has_service_labelled(&target.service, label) {
            return Addr::Neg;
        }
        self.index.addr(&target.service, &target.port)
    }

    /// Sends the current answer to the channels of `only` (a Service name;
    /// every channel if `None`) where it changed.
    fn publish(&mut self, only: Option<&str>) {
        self.resolves.retain(|_, tx| tx.receiver_count() > 0);
        for (target, tx) in &self.resolves {
            if only.is_some_and(|service| service != target.service) {
                continue;
            }
            let addr = self.answer(target);
            tx.send_if_modified(|current| {
                let changed = *current != addr;
                if changed {
                    *current = addr;
                }
                changed
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain inserts and removals: the state is consistent after a panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
