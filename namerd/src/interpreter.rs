//! The interpreter: live bindings of `(namespace, name, local dtab)` and live
//! address sets of bound ids, shared by every watcher of the same key.
//!
//! A binding is a task that binds the name with `l5d-dtab`'s pure binder
//! through `stored dtab ++ local dtab` and the configured namers, publishes
//! the result on a watch channel when it changed, and binds again when the
//! stored dtab or any namer's set of names changes. Failures never replace a
//! good tree: after a binding has bound once, a failure keeps the last good
//! tree and marks it stale. Bindings live in `l5d-runtime`'s
//! [`WatchCache`]: idle ones are evicted after a TTL and the number of live
//! bindings is capped, so clients asking for endless distinct names cannot
//! grow namerd without bound.
//!
//! The cap is shared fairly. Each client's bindings are counted and
//! limited (`crate::client`), and at the cap, once the bindings nobody
//! watches are gone, a binding held only by clients over their fair share
//! (the cap divided among the clients holding bindings) is evicted, least
//! recently asked for first, so that a new client can always bind while
//! someone holds more than their share. The work of each bind and
//! delegation is budgeted and large work leaves the async runtime
//! (`interpreter/budget.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use l5d_dtab::{
    Activity, Addr, Bound, DelegateTree, Dtab, Name, NameError, NameTree, NamerSet, Path,
};
use l5d_runtime::watch_cache::{CacheFull, CacheLimits, WatchCache, spawn_sweeper};
use tokio::sync::watch;

use crate::client::{Client, ClientLimits, Clients, FairShare, LimitError};
use crate::namer::inet::InetResolver;
use crate::namer::{Namer, fixed};
use crate::store::{DtabStore, Namespace, StoreError};

mod binding;
mod budget;
mod changes;
mod dry_run;
mod propagation;
#[cfg(test)]
mod tests;

use binding::LiveBinding;
pub use binding::{BindingLease, BindingWatch};
use budget::Budget;
pub use dry_run::{DryRun, DryRunName};
pub use propagation::{Propagated, Propagation};

/// Limits of the interpreter.
#[derive(Clone, Debug)]
pub struct InterpreterOptions {
    /// Live bindings at most; at the cap, bindings nobody watches are
    /// stopped at once, then bindings held only by clients over their fair
    /// share, and new keys are refused if that does not make room.
    pub max_bindings: usize,
    /// A binding nobody has watched for this long is stopped.
    pub idle_ttl: Duration,
    /// What one client may hold.
    pub clients: ClientLimits,
    /// The largest name (or id, or tree) plus local dtab a request may
    /// give, in bytes as sent.
    pub max_key_bytes: usize,
    /// Dentry visits (lookups × dentries) one bind or delegation may make.
    pub bind_budget: usize,
}

impl Default for InterpreterOptions {
    fn default() -> Self {
        InterpreterOptions {
            max_bindings: 10_000,
            idle_ttl: Duration::from_secs(600),
            clients: ClientLimits::default(),
            max_key_bytes: 8 * 1024,
            bind_budget: 1_000_000,
        }
    }
}

/// The current state of a binding.
#[derive(Clone, Debug)]
pub struct Binding {
    /// `Pending` until first bound; `Failed` only if it never bound.
    pub tree: Activity<Arc<NameTree<Bound>>>,
    /// When `tree` last changed.
    pub updated: SystemTime,
    /// Why the last attempt failed, while the last good tree is served.
    pub stale: Option<Arc<str>>,
    /// When this binding saw the dtab change that produced `tree`, if a
    /// dtab change did (for the commit-to-stream-write metric).
    pub dtab_changed_at: Option<Instant>,
    /// The binding was evicted while watched, to make room at the global
    /// cap: it changes no more, and its watchers should end their streams.
    pub evicted: bool,
}

impl Binding {
    /// Whether a one-off answer can be given: the name bound or failed,
    /// or the binding was evicted.
    pub fn settled(&self) -> bool {
        self.evicted || !matches!(self.tree, Activity::Pending)
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum InterpretError {
    #[error(
        "too many live bindings (the limit is {limit}, interpreter.maxBindings); try again later"
    )]
    TooManyBindings { limit: usize },
    /// The client is at one of its own limits.
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(
        "the name and local dtab are {size} bytes, over the limit of {limit} (interpreter.maxKeyBytes)"
    )]
    KeyTooLarge { size: usize, limit: usize },
    /// A watched binding was evicted to make room for another client.
    #[error(
        "binding evicted: namerd is at its limit of live bindings (interpreter.maxBindings) \
         and this client holds more than its share; try again later"
    )]
    Evicted,
    #[error("Request timed out.")]
    Timeout,
    #[error("{0}")]
    Name(NameError),
    #[error("{0}")]
    Store(StoreError),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BindKey {
    ns: Namespace,
    name: Path,
    /// The local dtab's text, which identifies it.
    local: String,
}

/// Binds names and resolves ids for namerd's APIs.
pub struct Interpreter {
    store: Arc<dyn DtabStore>,
    namers: Arc<NamerSet<NamerRef>>,
    all_namers: Vec<Arc<dyn Namer>>,
    inet: Arc<InetResolver>,
    opts: InterpreterOptions,
    /// Each binding's channel is shared with its task, so that the cache
    /// can hand out receivers and see when nobody holds one.
    bindings: WatchCache<BindKey, LiveBinding>,
    clients: Arc<Clients>,
    budget: Arc<Budget>,
    propagation: Arc<Propagation>,
}

impl fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interpreter")
            .field("namers", &self.all_namers)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// A configured namer as the pure binder sees it.
#[derive(Clone, Debug)]
pub struct NamerRef(Arc<dyn Namer>);

impl l5d_dtab::Namer for NamerRef {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        self.0.lookup(path)
    }
}

impl Interpreter {
    /// An interpreter over `store` and `namers` (in preference order).
    /// Must be called inside a tokio runtime: it starts the idle sweeper.
    pub fn new(
        store: Arc<dyn DtabStore>,
        namers: Vec<Arc<dyn Namer>>,
        inet: Arc<InetResolver>,
        opts: InterpreterOptions,
    ) -> Arc<Self> {
        let set = NamerSet::new(
            namers
                .iter()
                .map(|n| (n.prefix().clone(), NamerRef(n.clone())))
                .collect(),
        );
        let interpreter = Arc::new(Interpreter {
            store,
            namers: Arc::new(set),
            all_namers: namers,
            inet,
            bindings: WatchCache::new(CacheLimits {
                capacity: opts.max_bindings,
                idle_ttl: opts.idle_ttl,
            }),
            clients: Clients::new(opts.clients),
            budget: Arc::new(Budget::new(opts.bind_budget)),
            propagation: Arc::default(),
            opts,
        });
        spawn_sweeper(
            Arc::downgrade(&interpreter),
            interpreter.opts.idle_ttl,
            Interpreter::sweep,
        );
        interpreter
    }

    pub fn store(&self) -> &Arc<dyn DtabStore> {
        &self.store
    }

    pub fn namers(&self) -> &[Arc<dyn Namer>] {
        &self.all_namers
    }

    pub fn inet(&self) -> &Arc<InetResolver> {
        &self.inet
    }

    /// What every client holds, for the APIs' stream leases.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// The last dtab-change-to-stream-write time of each namespace.
    pub fn propagation(&self) -> &Arc<Propagation> {
        &self.propagation
    }

    /// Per live binding (namespace, name, local dtab): the watchers
    /// reading it now (streams and one-off answers being sent).
    pub fn binding_watchers(&self) -> std::collections::HashMap<(Namespace, Path, String), usize> {
        self.bindings
            .snapshot()
            .into_iter()
            .map(|(k, b)| {
                let watching = b.feed().sender().receiver_count();
                ((k.ns, k.name, k.local), watching)
            })
            .collect()
    }

    /// Refuses a request whose name (or id, or tree) and local dtab are
    /// `size` bytes as sent, if that is over the limit. The APIs call it
    /// before parsing them.
    pub fn check_key_size(&self, size: usize) -> Result<(), InterpretError> {
        let limit = self.opts.max_key_bytes;
        if size > limit {
            metrics::counter!("namerd_keys_too_large_total").increment(1);
            return Err(InterpretError::KeyTooLarge { size, limit });
        }
        Ok(())
    }

    /// Runs `parse` over `bytes` of client input (a request body, a local
    /// dtab), off the async runtime if they are many.
    pub async fn parse_input<T: Send + 'static>(
        &self,
        bytes: usize,
        parse: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        self.budget.parse(bytes, parse).await
    }

    /// Live binding of `name` in namespace `ns` through the stored dtab
    /// `++ local`, shared with every other caller of the same key, and
    /// counted against `client` until the watch is dropped.
    pub fn bind(
        &self,
        client: &Client,
        ns: &Namespace,
        name: &Path,
        local: &Dtab,
    ) -> Result<BindingWatch, InterpretError> {
        let hold = self.clients.hold_binding(client)?;
        let key = BindKey {
            ns: ns.clone(),
            name: name.clone(),
            local: local.show(),
        };
        let mut started = false;
        let start = |key: &BindKey| {
            started = true;
            let binding = LiveBinding::new();
            let inputs = binding::Inputs {
                store: self.store.clone(),
                namers: self.namers.clone(),
                all_namers: self.all_namers.clone(),
                budget: self.budget.clone(),
            };
            let task = tokio::spawn(binding::run(
                inputs,
                key.clone(),
                local.clone(),
                binding.clone(),
            ));
            binding.feed().fed_by(task.abort_handle());
            binding
        };
        // Computed at the cap only, once per call.
        let mut fair: Option<FairShare> = None;
        let evictable = |b: &LiveBinding| {
            let fair = fair.get_or_insert_with(|| self.clients.fair_share(self.opts.max_bindings));
            !fair.over.contains(client) && b.held_only_by(&fair.over)
        };
        let watch = self
            .bindings
            .get_or_start_evicting(key, |b| b.watch(hold), start, evictable);
        match watch {
            Ok(watch) => {
                if started {
                    metrics::gauge!("namerd_bindings").set(self.bindings.len() as f64);
                }
                Ok(watch)
            }
            Err(CacheFull { capacity }) => {
                metrics::counter!("namerd_bindings_refused_total").increment(1);
                Err(InterpretError::TooManyBindings { limit: capacity })
            }
        }
    }

    /// Live addresses of a bound id. A `/%/...` transformer prefix is
    /// stripped first; `/$/...` ids are resolved by DNS, `/#/...` ids by
    /// the namer whose prefix they start with.
    pub fn resolve(&self, id: &Path) -> watch::Receiver<Addr> {
        let id = id.strip_transformer_prefix();
        if id.first_str() == Some("$") {
            return match l5d_dtab::global::lookup(&id) {
                Activity::Ok(NameTree::Leaf(Name::Bound(b))) => self.inet.resolve(&b.id),
                Activity::Ok(NameTree::Neg) => fixed(Addr::Neg),
                Activity::Ok(_) => fixed(Addr::Failed(
                    format!("{id} is not a concrete bound id").into(),
                )),
                Activity::Failed(e) => fixed(Addr::Failed(e.to_string().into())),
                Activity::Pending => fixed(Addr::Pending),
            };
        }
        for namer in &self.all_namers {
            if id.starts_with(namer.prefix()) {
                return namer.resolve(&id.drop(namer.prefix().len()));
            }
        }
        fixed(Addr::Neg)
    }

    /// The delegation trace of `tree` through the namespace's dtab (or only
    /// the namers, without a namespace) `++ local`, waiting up to `timeout`
    /// for namers that have not answered yet.
    pub async fn delegate(
        &self,
        ns: Option<&Namespace>,
        tree: &NameTree<Path>,
        local: &Dtab,
        timeout: Duration,
    ) -> Result<DelegateTree<Bound>, InterpretError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let base = match ns {
            Some(ns) => self
                .store
                .get(ns)
                .await
                .map_err(InterpretError::Store)?
                .map(|v| v.dtab)
                .unwrap_or_default(),
            None => Dtab::empty(),
        };
        let dtab = base.concat(local);
        let mut changes = changes::NamerChanges::new(&self.all_namers);
        loop {
            let trace = self
                .budget
                .delegate(dtab.clone(), self.namers.clone(), tree.clone())
                .await;
            match trace {
                Activity::Ok(trace) => return Ok(trace),
                Activity::Failed(e) => return Err(InterpretError::Name(e)),
                Activity::Pending => {}
            }
            if tokio::time::timeout_at(deadline, changes.next())
                .await
                .is_err()
            {
                return Err(InterpretError::Timeout);
            }
        }
    }

    /// Every id the enumerating namers know.
    pub fn bound_names(&self) -> Vec<Path> {
        let mut names: Vec<Path> = self
            .all_namers
            .iter()
            .flat_map(|n| n.bound_names())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The live bindings, for the admin state page.
    pub fn bindings(&self) -> Vec<(Namespace, Path, String, Binding)> {
        let mut out: Vec<_> = self
            .bindings
            .snapshot()
            .into_iter()
            .map(|(k, b)| {
                let binding = b.feed().sender().borrow().clone();
                (k.ns, k.name, k.local, binding)
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        out
    }

    /// Stops the bindings nobody watched or asked for during the TTL.
    fn sweep(&self) {
        self.bindings.sweep();
        metrics::gauge!("namerd_bindings").set(self.bindings.len() as f64);
    }
}

/// Ticks whenever any namer's set of names changes (for
/// `/api/1/bound-names?watch=true`).
pub fn namer_changes(
    interpreter: &Interpreter,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    let changes = changes::NamerChanges::new(&interpreter.all_namers);
    futures::stream::unfold(changes, |mut changes| async move {
        changes.next().await;
        Some(((), changes))
    })
}
