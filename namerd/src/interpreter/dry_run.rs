//! What a dtab change would do before it is made: the names namerd is
//! streaming for a namespace, bound again through a proposed dtab, beside
//! the tree each streams now. Nothing is written and no binding changes.
//!
//! The work is bounded as a client's own is: at most the client's
//! binding limit of names are bound (the busiest first), each through the
//! bind budget, off the async runtime when large (`budget.rs`).

use std::cmp::Reverse;
use std::sync::Arc;

use l5d_dtab::{Activity, Bound, Dtab, NameTree, Path};

use super::{BindKey, Interpreter};
use crate::store::Namespace;

/// A binding's tree, as its watchers are sent it.
type BoundTree = Activity<Arc<NameTree<Bound>>>;

/// The answer of [`Interpreter::dry_run`].
#[derive(Debug)]
pub struct DryRun {
    /// Names streamed for the namespace now (bindings with a watcher).
    pub streamed: usize,
    /// Those that were bound through the proposed dtab; fewer than
    /// `streamed` when the client's binding limit cut the list.
    pub evaluated: Vec<DryRunName>,
}

/// One streamed name, its tree now and through the proposed dtab.
#[derive(Debug)]
pub struct DryRunName {
    pub name: Path,
    /// The local dtab of the binding (`""` for none), as shown.
    pub local: String,
    /// Open watches of the binding.
    pub watchers: usize,
    pub before: BoundTree,
    pub after: BoundTree,
}

impl DryRunName {
    /// Whether the proposed dtab would change what watchers are sent.
    pub fn changed(&self) -> bool {
        match (&self.before, &self.after) {
            (Activity::Ok(a), Activity::Ok(b)) => a != b,
            (Activity::Pending, Activity::Pending) => false,
            (Activity::Failed(a), Activity::Failed(b)) => a.to_string() != b.to_string(),
            _ => true,
        }
    }
}

impl Interpreter {
    /// Binds each name streamed for `ns` (at most `max_names`, those with
    /// the most watchers first, then by name as shown, then by local
    /// dtab) through `proposed ++` its
    /// local dtab.
    pub async fn dry_run(&self, ns: &Namespace, proposed: &Dtab, max_names: usize) -> DryRun {
        let mut streamed: Vec<(BindKey, usize, BoundTree)> = self
            .bindings
            .snapshot()
            .into_iter()
            .filter(|(key, _)| key.ns == *ns)
            .filter_map(|(key, binding)| {
                let watchers = binding.watches();
                let tree = binding.feed().sender().borrow().tree.clone();
                (watchers > 0).then_some((key, watchers, tree))
            })
            .collect();
        // `Path`'s own order is of its encoding (shorter labels first);
        // the shown name is the order an operator reads.
        streamed.sort_by_cached_key(|(key, watchers, _)| {
            (Reverse(*watchers), key.name.show(), key.local.clone())
        });
        let total = streamed.len();
        let mut evaluated = Vec::with_capacity(total.min(max_names));
        for (key, watchers, before) in streamed.into_iter().take(max_names) {
            // The key holds the local dtab as shown, which reads back.
            let local = Dtab::read(&key.local).unwrap_or_default();
            let after = self
                .budget
                .bind(
                    proposed.concat(&local),
                    self.namers.clone(),
                    key.name.clone(),
                )
                .await
                .map(Arc::new);
            evaluated.push(DryRunName {
                name: key.name,
                local: key.local,
                watchers,
                before,
                after,
            });
        }
        DryRun {
            streamed: total,
            evaluated,
        }
    }
}
