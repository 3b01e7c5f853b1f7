//! The binding cache of a router: one [`Route`] per distinct (local dtab,
//! logical name), each kept current by a task that follows the
//! interpreter's binding and turns every new bound tree into a [`Plan`];
//! and one [`Balancer`] per bound id, shared by every route that binds to
//! it.
//!
//! Requests find their route in `l5d-runtime`'s [`WatchCache`] (a shared
//! read lock, no allocation) and read its current plan from a watch
//! channel. Names and local dtabs come from clients, so the cache is
//! bounded (`bindingCache`): by count and by the bytes of its keys, and at
//! either bound a new route evicts the least recently used routes that no
//! request holds, instead of being refused; only when every route has
//! requests in flight is a new name refused ([`CacheFull`], which the
//! router answers as `RouteCacheFull`). Routes unused for the idle TTL are
//! swept too. A route that goes releases what it held at once: its
//! binding (and so its namerd stream, unless another route shares it) and
//! the balancers, with their address-set streams, that no other route
//! uses; otherwise an evicted route would keep loading namerd until the
//! interpreter's own idle TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use l5d_dtab::{Addr, Dtab, Path};
pub use l5d_runtime::watch_cache::CacheFull;
use l5d_runtime::watch_cache::{CacheLimits, Lru, WatchCache, Watched};
use tokio::sync::{oneshot, watch};

use super::plan::Plan;
use super::policy::{IdClient, Policy};
use crate::balance::Balancer;
use crate::client::Clients;
use crate::config::{BindingCacheConfig, Protocol, ServiceConfigs};
use crate::headers;
use crate::interpreter::{BindState, Interpreter};
use crate::metrics::{Metrics, RequestMetrics};
use crate::retry::RetryBudget;

#[cfg(test)]
mod tests;

/// What routes need to build balancers.
#[derive(Debug)]
pub struct Shared {
    pub label: String,
    pub protocol: Protocol,
    pub interpreter: Arc<dyn Interpreter>,
    /// Each bound id's balancer kind, endpoint connector and attempt
    /// policies.
    pub clients: Clients,
    /// Each logical name's policies.
    pub services: ServiceConfigs,
    pub metrics: Metrics,
    /// How long a new plan waits for its ids' first address sets before it
    /// replaces the previous plan anyway.
    pub resolve_timeout: Duration,
    pub balancers: Mutex<HashMap<Path, Arc<IdClient>>>,
}

impl Shared {
    pub fn new(
        label: String,
        protocol: Protocol,
        interpreter: Arc<dyn Interpreter>,
        clients: Clients,
        services: ServiceConfigs,
        metrics: Metrics,
        resolve_timeout: Duration,
    ) -> Self {
        Shared {
            label,
            protocol,
            interpreter,
            clients,
            services,
            metrics,
            resolve_timeout,
            balancers: Mutex::new(HashMap::new()),
        }
    }

    /// The client of `id`: its balancer and attempt policies, made on
    /// first use and shared by every plan that routes to it.
    fn balancer(&self, id: &Path) -> Arc<IdClient> {
        let mut balancers = self.balancers.lock().expect("not poisoned");
        if let Some(b) = balancers.get(id) {
            return b.clone();
        }
        let (kind, connector, config) = self.clients.for_id(id);
        let balancer = Balancer::new(
            id.clone(),
            self.interpreter.resolve(id),
            kind,
            connector,
            self.metrics.clone(),
            &self.label,
        );
        let b = IdClient::new(
            balancer,
            config.request_attempt_timeout,
            RetryBudget::new(&config.requeue_budget),
        );
        balancers.insert(id.clone(), b.clone());
        b
    }

    /// Drops the balancers of `ids` (of every id, for `None`) that no plan
    /// uses any more and releases their address sets in the interpreter.
    /// A route that goes names its own ids, so evicting a batch of routes
    /// costs a lookup per id, not a scan of every balancer per route; the
    /// periodic sweep scans them all for the ids of plans a dtab change
    /// replaced.
    fn release_balancers(&self, ids: Option<&[Path]>) {
        let mut released = Vec::new();
        {
            // A balancer held only by the map belongs to no live plan;
            // plans get theirs under this lock, so none is handed out
            // meanwhile.
            let mut balancers = self.balancers.lock().expect("not poisoned");
            let unused = |b: &Arc<IdClient>| Arc::strong_count(b) == 1;
            match ids {
                None => balancers.retain(|id, b| {
                    if unused(b) {
                        released.push(id.clone());
                    }
                    !unused(b)
                }),
                Some(ids) => {
                    for id in ids {
                        if balancers.get(id).is_some_and(unused) {
                            balancers.remove(id);
                            released.push(id.clone());
                        }
                    }
                }
            }
        }
        for id in released {
            self.interpreter.release_resolution(&id);
        }
    }
}

/// The cache key: the request-local dtab (as shown) and the name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    pub local: Option<Arc<str>>,
    pub name: Path,
}

impl RouteKey {
    /// What the key weighs against `bindingCache.maxKeyBytes`: its text.
    pub fn bytes(&self) -> usize {
        self.name.show().len() + self.local.as_deref().map_or(0, str::len)
    }
}

/// One logical name (under one local dtab).
#[derive(Debug)]
pub struct Route {
    pub name: Path,
    pub local: Option<Dtab>,
    /// `l5d-dst-service` and `l5d-ctx-dtab`, made once.
    pub name_header: HeaderValue,
    pub ctx_dtab_header: Option<HeaderValue>,
    pub plan: watch::Receiver<Arc<Plan>>,
    pub metrics: RequestMetrics,
    /// The name's `service` policies.
    pub policy: Arc<Policy>,
    /// Dropped with the route, which tells its task to stop and release
    /// what the route held (see [`run`]).
    _stop: oneshot::Sender<()>,
}

/// Requests hold a route (its `Arc`) while they use it: a held route is in
/// use and no eviction takes it; otherwise its last lookup says when it
/// was used.
impl Watched for Route {
    fn watchers(&self) -> Option<usize> {
        None
    }

    fn in_use(&self, holders: usize) -> bool {
        holders > 0
    }
}

/// The routes of one router.
#[derive(Debug)]
pub struct Routes {
    /// Keyed with foldhash's seeded hasher: names come from clients, so
    /// the seed is random per map; it hashes a path in a few nanoseconds.
    map: WatchCache<RouteKey, Route, foldhash::fast::RandomState>,
    config: BindingCacheConfig,
}

impl Routes {
    pub fn new(config: BindingCacheConfig) -> Self {
        let limits = CacheLimits {
            capacity: config.paths,
            idle_ttl: Duration::from_secs(config.idle_ttl_secs),
        };
        let lru = Lru {
            max_weight: config.max_key_bytes,
            weigh: RouteKey::bytes,
        };
        let map = WatchCache::with_hasher(limits, foldhash::fast::RandomState::default());
        Routes {
            map: map.with_lru(lru),
            config,
        }
    }

    /// The route for `key`, made (and its binding started) on first use,
    /// evicting least recently used idle routes if the cache is at a
    /// bound; [`CacheFull`] if none could be.
    pub fn get_or_create(
        &self,
        shared: &Arc<Shared>,
        key: RouteKey,
        local: Option<Dtab>,
        bind_dtab: &Dtab,
    ) -> Result<Arc<Route>, CacheFull> {
        let start = |key: &RouteKey| {
            let bind = shared.interpreter.bind(bind_dtab, &key.name);
            let (plan_tx, plan_rx) = watch::channel(Arc::new(Plan::Pending));
            let (stop_tx, stop_rx) = oneshot::channel();
            let held = Held {
                bind_dtab: bind_dtab.clone(),
                name: key.name.clone(),
            };
            tokio::spawn(run(shared.clone(), held, bind, plan_tx, stop_rx));
            let policy = Policy::new(
                shared.services.resolve(&key.name),
                shared.protocol,
                shared.metrics.service_retries(&shared.label, &key.name),
            );
            Arc::new(Route {
                metrics: shared.metrics.service(&shared.label, &key.name),
                policy: Arc::new(policy),
                name: key.name.clone(),
                name_header: headers::path_value(&key.name),
                ctx_dtab_header: local.as_ref().and_then(headers::dtab_value),
                local,
                plan: plan_rx,
                _stop: stop_tx,
            })
        };
        self.map.get_or_start(key, Arc::clone, start)
    }

    pub fn snapshot(&self) -> Vec<Arc<Route>> {
        self.map.snapshot().into_iter().map(|(_, r)| r).collect()
    }

    /// The routes cached now, and the bytes of their keys.
    pub fn usage(&self) -> (usize, usize) {
        (self.map.len(), self.map.weight())
    }

    pub fn config(&self) -> &BindingCacheConfig {
        &self.config
    }

    /// Drops routes unused for the idle TTL (each releases what it held),
    /// then the balancers no plan uses (those of plans a dtab change
    /// replaced).
    pub fn sweep(&self, shared: &Shared) {
        self.map.sweep();
        shared.release_balancers(None);
    }
}

/// What a route's task releases when the route goes.
#[derive(Debug)]
struct Held {
    bind_dtab: Dtab,
    name: Path,
}

/// A route's task: follows its binding until the route is dropped (evicted
/// or swept; requests hold the route, so it is not dropped under them),
/// then releases, in an order in which each step finds nothing of the
/// route's left: its binding receiver, the binding in the interpreter,
/// the plan (once the route's receiver of it is gone), and the balancers
/// no other plan uses.
async fn run(
    shared: Arc<Shared>,
    held: Held,
    mut bind: watch::Receiver<BindState>,
    plan: watch::Sender<Arc<Plan>>,
    stop: oneshot::Receiver<()>,
) {
    tokio::select! {
        () = follow(&shared, &held.name, &mut bind, &plan) => {}
        _ = stop => {}
    }
    drop(bind);
    shared.interpreter.release(&held.bind_dtab, &held.name);
    plan.closed().await;
    let ids: Vec<Path> = plan
        .borrow()
        .leaves()
        .iter()
        .map(|l| l.id.clone())
        .collect();
    drop(plan);
    shared.release_balancers(Some(&ids));
}

/// Follows a binding: every new bound tree becomes a plan, published once
/// its ids' address sets are known (or after `resolve_timeout`), so a dtab
/// change moves traffic without a window of "no endpoints". A plan that
/// could route is never replaced by one that cannot for want of an answer:
/// if none of the new plan's ids has endpoints and some have no answer
/// from namerd yet (pending, or failed because namerd is away or
/// draining), the previous plan keeps routing until they have one or the
/// binding changes again. A failure is never an empty set; an answer of no
/// endpoints (`neg`, an empty set) replaces the plan, as the operator
/// routed.
async fn follow(
    shared: &Shared,
    name: &Path,
    bind: &mut watch::Receiver<BindState>,
    plan: &watch::Sender<Arc<Plan>>,
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
                if can_route(&plan.borrow()) && !settled(&p) {
                    tracing::warn!(
                        router = %shared.label,
                        name = %name.show(),
                        "the new binding's ids have no addresses from namerd yet; \
                         the previous plan keeps routing until they do",
                    );
                    tokio::select! {
                        () = until_settled(&p) => {}
                        changed = bind.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            continue;
                        }
                    }
                }
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
        let mut rx = leaf.client.balancer.replicas();
        async move {
            let _ = rx.wait_for(|s| !matches!(s.addr, Addr::Pending)).await;
        }
    });
    let _ = tokio::time::timeout(timeout, futures::future::join_all(waits)).await;
}

/// Whether some request on `plan` would find an endpoint.
fn can_route(plan: &Plan) -> bool {
    plan.leaves()
        .iter()
        .any(|leaf| leaf.client.balancer.has_endpoints())
}

/// Whether `plan` may replace a plan that routes: it routes, or namerd
/// has answered for every id (an answer of no endpoints is the operator's
/// routing, not a failure).
fn settled(plan: &Plan) -> bool {
    can_route(plan)
        || plan.leaves().iter().all(|leaf| {
            let replicas = leaf.client.balancer.replicas();
            let addr = &replicas.borrow().addr;
            matches!(addr, Addr::Bound(_) | Addr::Neg)
        })
}

/// Waits until `plan` is [`settled`], or its address sets are all gone.
async fn until_settled(plan: &Plan) {
    let mut sets: Vec<_> = plan
        .leaves()
        .iter()
        .map(|leaf| leaf.client.balancer.replicas())
        .collect();
    loop {
        for set in &mut sets {
            set.mark_unchanged();
        }
        if settled(plan) {
            return;
        }
        let changes = sets.iter_mut().map(|set| Box::pin(set.changed()));
        if futures::future::select_all(changes).await.0.is_err() {
            return;
        }
    }
}
