//! One live binding: the task that keeps it bound, the channel its
//! watchers read, and which clients hold it.
//!
//! A watcher gets a [`BindingWatch`]: the channel's receiver and a lease
//! that counts the binding against its client (a [`BindingHold`]) and
//! records the client among the binding's holders until dropped. The
//! holders are what lets the interpreter evict, at the global cap, a
//! binding held only by clients over their fair share; such a binding's
//! watchers are told (`Binding::evicted`) so that their streams end.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use l5d_dtab::{Activity, Bound, Dtab, NameTree, NamerSet};
use l5d_runtime::watch_cache::{Feed, Watched};
use tokio::sync::watch;

use super::budget::Budget;
use super::{BindKey, Binding, NamerRef, changes};
use crate::client::{BindingHold, Client};
use crate::namer::Namer;
use crate::store::DtabStore;

/// A binding in the interpreter's cache.
#[derive(Debug)]
pub(super) struct LiveBinding {
    feed: Feed<Binding>,
    /// The clients holding the binding, with their number of holds.
    holders: Mutex<HashMap<Client, usize>>,
}

/// A watch of a binding: its channel (through `Deref`), counted against
/// the client that asked until dropped.
#[derive(Debug)]
pub struct BindingWatch {
    rx: watch::Receiver<Binding>,
    lease: BindingLease,
}

/// What counts a binding against a client; give it back by dropping it.
#[derive(Debug)]
pub struct BindingLease {
    binding: Arc<LiveBinding>,
    hold: BindingHold,
}

// === impl LiveBinding ===

impl LiveBinding {
    pub(super) fn new() -> Arc<LiveBinding> {
        Arc::new(LiveBinding {
            feed: Feed::new(Binding {
                tree: Activity::Pending,
                updated: SystemTime::now(),
                stale: None,
                dtab_changed_at: None,
                evicted: false,
            }),
            holders: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn feed(&self) -> &Feed<Binding> {
        &self.feed
    }

    /// A watch for the client of `hold`, which the binding now counts
    /// among its holders.
    pub(super) fn watch(self: &Arc<Self>, hold: BindingHold) -> BindingWatch {
        *self.holders().entry(hold.client().clone()).or_default() += 1;
        BindingWatch {
            rx: self.feed.subscribe(),
            lease: BindingLease {
                binding: self.clone(),
                hold,
            },
        }
    }

    /// How many watches are open on the binding now (streams, and unary
    /// requests waiting for it to settle), over every client.
    pub(super) fn watches(&self) -> usize {
        self.holders().values().sum()
    }

    /// Whether some client holds the binding and every one is in `over`.
    pub(super) fn held_only_by(&self, over: &HashSet<Client>) -> bool {
        let holders = self.holders();
        !holders.is_empty() && holders.keys().all(|client| over.contains(client))
    }

    // A poisoned lock only means a panic elsewhere; the map is intact.
    fn holders(&self) -> MutexGuard<'_, HashMap<Client, usize>> {
        self.holders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Watched for LiveBinding {
    fn watchers(&self) -> Option<usize> {
        self.feed.watchers()
    }

    /// Stops the task; watchers that still hold the binding (it was
    /// evicted for a fair share) are told, so that their streams end
    /// rather than wait on a binding nobody updates.
    fn evicted(&self) {
        self.feed.evicted();
        if self.feed.watchers() != Some(0) {
            metrics::counter!("namerd_bindings_reclaimed_total").increment(1);
            self.feed.sender().send_modify(|b| b.evicted = true);
        }
    }
}

// === impl BindingWatch ===

impl BindingWatch {
    /// The channel and the lease, for a stream that keeps both.
    pub fn into_parts(self) -> (watch::Receiver<Binding>, BindingLease) {
        (self.rx, self.lease)
    }
}

impl Deref for BindingWatch {
    type Target = watch::Receiver<Binding>;

    fn deref(&self) -> &Self::Target {
        &self.rx
    }
}

impl DerefMut for BindingWatch {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.rx
    }
}

// === impl BindingLease ===

impl Drop for BindingLease {
    fn drop(&mut self) {
        let client = self.hold.client();
        let mut holders = self.binding.holders();
        if let Some(n) = holders.get_mut(client) {
            *n -= 1;
            if *n == 0 {
                holders.remove(client);
            }
        }
    }
}

// === the binding task ===

/// What a binding's task needs.
pub(super) struct Inputs {
    pub(super) store: Arc<dyn DtabStore>,
    pub(super) namers: Arc<NamerSet<NamerRef>>,
    pub(super) all_namers: Vec<Arc<dyn Namer>>,
    pub(super) budget: Arc<Budget>,
}

/// Binds `key` now and after every change of its inputs, publishing only
/// changes, and never replacing a good tree with a failure.
///
/// The task lives as long as the binding, and its size is that of the
/// largest state of this future, for every binding held. So the bind
/// itself (the binder's future and a trace span, several hundred bytes) is
/// a boxed future of its own, allocated between a change and its
/// publication only; between changes the task holds its inputs and the two
/// waits.
pub(super) async fn run(inputs: Inputs, key: BindKey, local: Dtab, binding: Arc<LiveBinding>) {
    let mut dtab = inputs.store.watch(&key.ns);
    let mut changes = changes::NamerChanges::new(&inputs.all_namers);
    let mut dtab_changed_at = None;
    loop {
        let base = dtab
            .borrow_and_update()
            .clone()
            .map(|v| v.dtab)
            .unwrap_or_default();
        let full = base.concat(&local);
        Box::pin(bind_and_publish(
            &inputs,
            &key,
            full,
            &binding,
            dtab_changed_at,
        ))
        .await;
        tokio::select! {
            changed = dtab.changed() => {
                if changed.is_err() {
                    return;
                }
                dtab_changed_at = Some(Instant::now());
            }
            () = changes.next() => dtab_changed_at = None,
        }
    }
}

/// One bind of `key` through `full`, timed and traced, and its publication.
async fn bind_and_publish(
    inputs: &Inputs,
    key: &BindKey,
    full: Dtab,
    binding: &LiveBinding,
    dtab_changed_at: Option<Instant>,
) {
    let started = Instant::now();
    let mut span = l5d_trace::global_span("namerd.bind", None);
    let result = inputs
        .budget
        .bind(full, inputs.namers.clone(), key.name.clone())
        .await;
    metrics::histogram!("namerd_bind_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("namerd_binds_total").increment(1);
    if span.is_sampled() {
        describe(&mut span, key, &result, dtab_changed_at.is_some());
    }
    span.end();
    publish(binding.feed.sender(), key, result, dtab_changed_at);
}

/// A bind's span: what was bound, why (first bind, dtab or namer change)
/// and to what.
fn describe(
    span: &mut l5d_trace::Span,
    key: &BindKey,
    result: &Activity<NameTree<Bound>>,
    dtab_changed: bool,
) {
    span.set("l5d.namespace", key.ns.to_string());
    span.set("l5d.name", key.name.show());
    if !key.local.is_empty() {
        span.set("l5d.local_dtab", key.local.clone());
    }
    span.set(
        "l5d.trigger",
        if dtab_changed {
            "dtab change"
        } else {
            "first bind or namer change"
        },
    );
    match result {
        Activity::Ok(tree) => span.set(
            "l5d.bound",
            tree.show_with(|b, out| out.push_str(&b.id.show())),
        ),
        Activity::Failed(e) => span.fail(e.to_string()),
        Activity::Pending => span.set("l5d.bound", "pending"),
    }
}

fn publish(
    tx: &watch::Sender<Binding>,
    key: &BindKey,
    result: Activity<NameTree<Bound>>,
    dtab_changed_at: Option<Instant>,
) {
    tx.send_if_modified(|current| match (result, &current.tree) {
        (Activity::Ok(tree), Activity::Ok(old)) if **old == tree => {
            current.dtab_changed_at = None;
            current.stale.take().is_some()
        }
        (Activity::Ok(tree), _) => {
            current.tree = Activity::Ok(Arc::new(tree));
            current.updated = SystemTime::now();
            current.stale = None;
            current.dtab_changed_at = dtab_changed_at;
            true
        }
        (Activity::Failed(e), Activity::Ok(_)) => {
            tracing::warn!(ns = %key.ns, name = %key.name, error = %e, "binding failed; serving the last good tree");
            metrics::counter!("namerd_bind_failures_total").increment(1);
            current.stale = Some(e.to_string().into());
            false
        }
        (Activity::Failed(e), _) => {
            metrics::counter!("namerd_bind_failures_total").increment(1);
            let changed = !matches!(&current.tree, Activity::Failed(old) if *old == e);
            current.tree = Activity::Failed(e);
            current.updated = SystemTime::now();
            changed
        }
        // A namer that is pending again (re-listing) keeps what we had.
        (Activity::Pending, _) => false,
    });
}
