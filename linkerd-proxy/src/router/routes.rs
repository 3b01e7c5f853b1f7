//! The binding cache of a router: one [`Route`] per distinct (local dtab,
//! logical name), each kept current by a task that follows the
//! interpreter's binding and turns every new bound tree into a [`Plan`];
//! and one [`Balancer`] per bound id, shared by every route that binds to
//! it.
//!
//! Requests find their route in `l5d-runtime`'s [`WatchCache`] (a shared
//! read lock, no allocation) and read its current plan from a watch
//! channel. Routes are used by lookups only, so a route is idle from its
//! last request; idle routes and unreferenced balancers are swept
//! periodically, so client-chosen names cannot grow the cache without
//! bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use l5d_dtab::{Dtab, Path};
use l5d_runtime::watch_cache::{CacheLimits, WatchCache, Watched};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::plan::Plan;
use crate::balance::Balancer;
use crate::client::Clients;
use crate::headers;
use crate::interpreter::{BindState, Interpreter};
use crate::metrics::{Metrics, RequestMetrics};

/// Routes per router at most; beyond it, new names are refused until idle
/// ones are swept.
pub const MAX_ROUTES: usize = 10_000;

/// A route unused this long is dropped with its streams.
pub const ROUTE_IDLE_TTL: Duration = Duration::from_secs(600);

/// What routes need to build balancers.
#[derive(Debug)]
pub struct Shared {
    pub label: String,
    pub interpreter: Arc<dyn Interpreter>,
    /// Each bound id's balancer kind and endpoint connector.
    pub clients: Clients,
    pub metrics: Metrics,
    /// How long a new plan waits for its ids' first address sets before it
    /// replaces the previous plan anyway.
    pub resolve_timeout: Duration,
    pub balancers: Mutex<HashMap<Path, Arc<Balancer>>>,
}

impl Shared {
    pub fn new(
        label: String,
        interpreter: Arc<dyn Interpreter>,
        clients: Clients,
        metrics: Metrics,
        resolve_timeout: Duration,
    ) -> Self {
        Shared {
            label,
            interpreter,
            clients,
            metrics,
            resolve_timeout,
            balancers: Mutex::new(HashMap::new()),
        }
    }

    fn balancer(&self, id: &Path) -> Arc<Balancer> {
        let mut balancers = self.balancers.lock().expect("not poisoned");
        if let Some(b) = balancers.get(id) {
            return b.clone();
        }
        let (kind, connector) = self.clients.for_id(id);
        let b = Arc::new(Balancer::new(
            id.clone(),
            self.interpreter.resolve(id),
            kind,
            connector,
            self.metrics.clone(),
            &self.label,
        ));
        balancers.insert(id.clone(), b.clone());
        b
    }
}

/// The cache key: the request-local dtab (as shown) and the name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    pub local: Option<Arc<str>>,
    pub name: Path,
}

/// One logical name (under one local dtab).
#[derive(Debug)]
pub struct Route {
    pub name: Path,
    pub local: Option<Dtab>,
    /// `l5d-dst-service` and `l5d-ctx-dtab`, made once.
    pub name_header: HeaderValue,
    pub ctx_dtab_header: Option<HeaderValue>,
    pub bind: watch::Receiver<BindState>,
    pub plan: watch::Receiver<Arc<Plan>>,
    pub metrics: RequestMetrics,
    task: AbortHandle,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Requests hold a route only while they use it; its last lookup alone
/// says when it is idle. A request still holding an evicted route keeps
/// its plan until it is done (the task stops with the last holder).
impl Watched for Route {
    fn watchers(&self) -> Option<usize> {
        None
    }
}

/// The routes of one router.
#[derive(Debug)]
pub struct Routes {
    /// Keyed with foldhash's seeded hasher: names come from clients, so
    /// the seed is random per map; it hashes a path in a few nanoseconds.
    map: WatchCache<RouteKey, Route, foldhash::fast::RandomState>,
}

impl Default for Routes {
    fn default() -> Self {
        let limits = CacheLimits {
            capacity: MAX_ROUTES,
            idle_ttl: ROUTE_IDLE_TTL,
        };
        Routes {
            map: WatchCache::with_hasher(limits, foldhash::fast::RandomState::default()),
        }
    }
}

impl Routes {
    /// The route for `key`, made (and its binding started) on first use.
    /// `None` when the cache is full.
    pub fn get_or_create(
        &self,
        shared: &Arc<Shared>,
        key: RouteKey,
        local: Option<Dtab>,
        bind_dtab: &Dtab,
    ) -> Option<Arc<Route>> {
        let start = |key: &RouteKey| {
            let bind = shared.interpreter.bind(bind_dtab, &key.name);
            let (plan_tx, plan_rx) = watch::channel(Arc::new(Plan::Pending));
            let task = tokio::spawn(follow(shared.clone(), bind.clone(), plan_tx)).abort_handle();
            Arc::new(Route {
                metrics: shared.metrics.service(&shared.label, &key.name),
                name: key.name.clone(),
                name_header: headers::path_value(&key.name),
                ctx_dtab_header: local.as_ref().and_then(headers::dtab_value),
                local,
                bind,
                plan: plan_rx,
                task,
            })
        };
        self.map.get_or_start(key, Arc::clone, start).ok()
    }

    pub fn snapshot(&self) -> Vec<Arc<Route>> {
        self.map.snapshot().into_iter().map(|(_, r)| r).collect()
    }

    /// Drops routes unused for [`ROUTE_IDLE_TTL`], then balancers no route
    /// uses.
    pub fn sweep(&self, shared: &Shared) {
        self.map.sweep();
        // A balancer held only by the map belongs to no live plan.
        shared
            .balancers
            .lock()
            .expect("not poisoned")
            .retain(|_, b| Arc::strong_count(b) > 1);
    }
}

/// Follows a binding: every new bound tree becomes a plan, published once
/// its ids' address sets are known (or after `resolve_timeout`), so a dtab
/// change moves traffic without a window of "no endpoints".
async fn follow(
    shared: Arc<Shared>,
    mut bind: watch::Receiver<BindState>,
    plan: watch::Sender<Arc<Plan>>,
) {
    loop {
        let state = bind.borrow_and_update().clone();
        let next = match state {
            BindState::Pending => None,
            BindState::Failed { message } => {
                // A binding that was routable keeps routing (the
                // interpreter keeps its last good tree; this is a new
                // name that never bound).
                Some(Plan::Failed(message))
            }
            BindState::Bound { tree, .. } => {
                let p = Plan::from_tree(&tree, &mut |id| shared.balancer(id));
                wait_for_addresses(&p, shared.resolve_timeout).await;
                Some(p)
            }
        };
        if let Some(next) = next
            && plan.send(Arc::new(next)).is_err()
        {
            return;
        }
        if bind.changed().await.is_err() {
            return;
        }
    }
}

async fn wait_for_addresses(plan: &Plan, timeout: Duration) {
    let waits = plan.leaves().into_iter().map(|leaf| {
        let mut rx = leaf.balancer.replicas();
        async move {
            let _ = rx
                .wait_for(|s| !matches!(s.addr, l5d_dtab::Addr::Pending))
                .await;
        }
    });
    let _ = tokio::time::timeout(timeout, futures::future::join_all(waits)).await;
}
