//! A namer seen through a list of transformers.
//!
//! Lookups are transformed synchronously. Each resolved id gets one
//! forwarding task that maps the inner namer's watch into a transformed
//! one, and maps it again when a transformer's own input changes (the
//! daemonset transformer's proxies); the task ends when nobody watches the result, and the table of
//! forwarded ids drops such entries whenever an id is added, so it never
//! grows beyond the ids being watched.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use l5d_dtab::{Activity, Addr, Bound, Name, NameTree, Path};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::Transformer;
use crate::namer::{Namer, NamerState};

/// `inner` with `transformers` applied in order; itself a [`Namer`] with
/// the same prefix.
pub struct TransformedNamer {
    inner: Arc<dyn Namer>,
    transformers: Arc<[Transformer]>,
    resolves: Mutex<HashMap<Path, Arc<watch::Sender<Addr>>>>,
    runtime: Handle,
}

impl fmt::Debug for TransformedNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransformedNamer")
            .field("inner", &self.inner)
            .field("transformers", &self.transformers)
            .finish_non_exhaustive()
    }
}

impl TransformedNamer {
    /// Must be called inside a tokio runtime, where the forwarding tasks
    /// will run.
    pub fn new(inner: Arc<dyn Namer>, transformers: Vec<Transformer>) -> Self {
        TransformedNamer {
            inner,
            transformers: transformers.into(),
            resolves: Mutex::new(HashMap::new()),
            runtime: Handle::current(),
        }
    }

    pub fn transformers(&self) -> &[Transformer] {
        &self.transformers
    }

    fn transform_tree(&self, tree: NameTree<Name>) -> NameTree<Name> {
        self.transformers
            .iter()
            .fold(tree, |tree, t| t.transform_tree(tree))
    }
}

/// Waits until one of `inputs` changes (forever if there are none) and
/// marks them all seen: the caller recomputes from every current value.
async fn any_changed(inputs: &mut [watch::Receiver<Addr>]) -> Result<(), watch::error::RecvError> {
    if inputs.is_empty() {
        return std::future::pending().await;
    }
    let changed = futures::future::select_all(inputs.iter_mut().map(|rx| Box::pin(rx.changed())));
    changed.await.0?;
    inputs.iter_mut().for_each(|rx| {
        rx.borrow_and_update();
    });
    Ok(())
}

fn transform_addr(transformers: &[Transformer], addr: Addr) -> Addr {
    transformers
        .iter()
        .fold(addr, |addr, t| t.transform_addr(addr))
}

impl Namer for TransformedNamer {
    fn prefix(&self) -> &Path {
        self.inner.prefix()
    }

    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        self.inner
            .lookup(path)
            .map(|tree| self.transform_tree(tree))
    }

    fn lookup_changes(&self) -> watch::Receiver<u64> {
        self.inner.lookup_changes()
    }

    fn resolve(&self, id: &Path) -> watch::Receiver<Addr> {
        let mut resolves = self.resolves.lock().expect("transformer lock");
        if let Some(tx) = resolves.get(id) {
            // Without receivers its task has ended (or is ending): replace.
            if tx.receiver_count() > 0 {
                return tx.subscribe();
            }
        }
        resolves.retain(|_, tx| tx.receiver_count() > 0);
        let mut inner = self.inner.resolve(id);
        let initial = transform_addr(&self.transformers, inner.borrow_and_update().clone());
        let tx = Arc::new(watch::Sender::new(initial));
        let rx = tx.subscribe();
        let transformers = self.transformers.clone();
        let mut inputs: Vec<watch::Receiver<Addr>> = transformers
            .iter()
            .filter_map(Transformer::addr_input)
            .collect();
        let forward = tx.clone();
        self.runtime.spawn(async move {
            loop {
                tokio::select! {
                    changed = inner.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    changed = any_changed(&mut inputs) => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = forward.closed() => return,
                }
                let addr = transform_addr(&transformers, inner.borrow_and_update().clone());
                forward.send_if_modified(|current| {
                    let changed = *current != addr;
                    *current = addr;
                    changed
                });
            }
        });
        resolves.insert(id.clone(), tx);
        rx
    }

    /// The inner namer's ids as they look after transformation.
    fn bound_names(&self) -> Vec<Path> {
        let mut out = Vec::new();
        for id in self.inner.bound_names() {
            let leaf = NameTree::Leaf(Name::Bound(Bound::new(id, Path::empty())));
            collect_ids(&self.transform_tree(leaf), &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    fn state(&self) -> NamerState {
        let mut state = self.inner.state();
        let prefixes: Vec<String> = self
            .transformers
            .iter()
            .map(|t| t.prefix().show())
            .collect();
        state
            .details
            .insert("transformers".to_string(), prefixes.join(" "));
        // What a transformer watches itself (the daemonset's proxies) can
        // be stale too; say so under the transformer's prefix.
        for t in self.transformers.iter() {
            let Some(own) = t.state() else { continue };
            let prefix = t.prefix().show();
            if own.stale {
                state.stale = true;
                state.last_error.get_or_insert_with(|| {
                    format!("{prefix}: {}", own.last_error.clone().unwrap_or_default())
                });
            }
            for (key, value) in own.details {
                state.details.insert(format!("{prefix}.{key}"), value);
            }
        }
        state
    }
}

fn collect_ids(tree: &NameTree<Name>, out: &mut Vec<Path>) {
    match tree {
        NameTree::Leaf(Name::Bound(b)) => out.push(b.id.clone()),
        NameTree::Alt(trees) => trees.iter().for_each(|t| collect_ids(t, out)),
        NameTree::Union(members) => members.iter().for_each(|w| collect_ids(&w.tree, out)),
        _ => {}
    }
}
