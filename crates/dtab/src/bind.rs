//! Binding: following a name through a dtab and namers to concrete ids.
//!
//! The binder is synchronous and pure. It asks a [`Namer`] for the *current*
//! state of each path outside the dtab (which may be `Pending`), and returns
//! the current state of the whole binding. Whoever owns the watches (namerd's
//! interpreter) calls it again when the dtab or a namer's answer changes.

use std::cell::Cell;

use crate::dtab::Dtab;
use crate::global;
use crate::name::{Activity, AsName, Bound, Name, NameError, NameRef};
use crate::path::Path;
use crate::tree::{NameTree, Weighted};

/// Finagle's `namerMaxDepth` default: how many rewrites a binding may follow.
pub const DEFAULT_MAX_DEPTH: usize = 100;

/// How deeply binding may recurse in all: rewrite steps times the nesting of
/// the trees met on the way, in units of one binder call (a delegation step,
/// whose frames are larger, costs four). With the depth limit alone, a loop
/// through a 100-deep tree would recurse 10,000 times and overflow a thread's
/// stack; this bound keeps any binding well inside a 2 MiB thread stack,
/// even unoptimised. A loop that reaches it fails like any other loop.
pub const MAX_RECURSION: usize = 1000;

/// How many lookups one binding or delegation may make in all.
///
/// The depth limit alone does not bound the work: `/a => /a & /a` doubles at
/// every level, so Finagle would make 2^100 lookups for `/a`. Every branch of
/// a real dtab is far below this budget.
pub const DEFAULT_MAX_LOOKUPS: usize = 1_000;

/// Service discovery as the binder sees it: the current answer for a path
/// that the dtab does not rewrite. Answer `Neg` for paths you do not know;
/// the binder then tries the global `/$` namer.
pub trait Namer {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>>;
}

impl<N: Namer + ?Sized> Namer for &N {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        (**self).lookup(path)
    }
}

impl<N: Namer + ?Sized> Namer for Box<N> {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        (**self).lookup(path)
    }
}

/// No configured namers: only the global `/$` namespace binds.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNamers;

impl Namer for NoNamers {
    fn lookup(&self, _: &Path) -> Activity<NameTree<Name>> {
        Activity::Ok(NameTree::Neg)
    }
}

/// Configured namers, each answering for the paths under its prefix (e.g.
/// `/#/io.l5d.fs`) and given the path without that prefix. They are tried in
/// preference order; one that answers `Neg` passes to the next.
#[derive(Debug)]
pub struct NamerSet<N> {
    namers: Vec<(Path, N)>,
}

impl<N> NamerSet<N> {
    /// `namers` in preference order (Linkerd prefers the last configured
    /// namer, so a config loader reverses its list before calling this).
    pub fn new(namers: Vec<(Path, N)>) -> Self {
        NamerSet { namers }
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Path, N)> {
        self.namers.iter()
    }
}

impl<N: Namer> Namer for NamerSet<N> {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        for (prefix, namer) in &self.namers {
            if path.starts_with(prefix) {
                match namer.lookup(&path.drop(prefix.len())) {
                    Activity::Ok(NameTree::Neg) => continue,
                    other => return other,
                }
            }
        }
        Activity::Ok(NameTree::Neg)
    }
}

/// Binds names through a dtab, then configured namers, then the global
/// namer, as Linkerd's `ConfiguredNamersInterpreter` does.
#[derive(Debug)]
pub struct Binder<'a, N: ?Sized> {
    dtab: &'a Dtab,
    namer: &'a N,
    max_depth: usize,
    max_lookups: usize,
    lookups: Cell<usize>,
    frames: Cell<usize>,
}

/// One level of binder recursion; the level is given back when dropped.
pub(crate) struct Frame<'a>(&'a Cell<usize>, usize);

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - self.1);
    }
}

impl<'a, N: Namer + ?Sized> Binder<'a, N> {
    pub fn new(dtab: &'a Dtab, namer: &'a N) -> Self {
        Binder {
            dtab,
            namer,
            max_depth: DEFAULT_MAX_DEPTH,
            max_lookups: DEFAULT_MAX_LOOKUPS,
            lookups: Cell::new(0),
            frames: Cell::new(0),
        }
    }

    /// Enters one level of binder recursion, if the depth and recursion
    /// limits allow.
    pub(crate) fn enter(&self, depth: usize) -> Result<Frame<'_>, NameError> {
        if depth > self.max_depth {
            return Err(NameError::MaxDepth {
                limit: self.max_depth,
            });
        }
        self.enter_units(1).ok_or(NameError::MaxDepth {
            limit: self.max_depth,
        })
    }

    /// Takes `units` of the recursion budget until the frame is dropped.
    pub(crate) fn enter_units(&self, units: usize) -> Option<Frame<'_>> {
        let frames = self.frames.get() + units;
        if frames > MAX_RECURSION {
            return None;
        }
        self.frames.set(frames);
        Some(Frame(&self.frames, units))
    }

    pub fn with_max_lookups(mut self, max_lookups: usize) -> Self {
        self.max_lookups = max_lookups;
        self
    }

    /// Counts one lookup against the budget of the current call.
    pub(crate) fn spend_lookup(&self) -> Result<(), NameError> {
        let spent = self.lookups.get() + 1;
        self.lookups.set(spent);
        if spent > self.max_lookups {
            return Err(NameError::TooManyLookups {
                limit: self.max_lookups,
            });
        }
        Ok(())
    }

    /// Starts a new budget for a top-level call.
    pub(crate) fn reset_budget(&self) {
        self.lookups.set(0);
        self.frames.set(0);
    }

    pub(crate) fn dtab(&self) -> &Dtab {
        self.dtab
    }

    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// One step: the dtab's rewrite of `path`; when the dtab has exactly no
    /// match (`~`), the namers' answer; when they have none, the global one.
    ///
    /// A single matching dentry whose destination is `~` is also "exactly
    /// `~`" and so falls through to the namers, as in Linkerd.
    pub fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        match self.dtab.lookup(path) {
            NameTree::Neg => self.lookup_namers(path),
            tree => Activity::Ok(tree.map(&mut |p: &Path| Name::Path(p.clone()))),
        }
    }

    /// The configured namers, then the global namer.
    pub fn lookup_namers(&self, path: &Path) -> Activity<NameTree<Name>> {
        match self.namer.lookup(path) {
            Activity::Ok(NameTree::Neg) => global::lookup(path),
            other => other,
        }
    }

    /// Binds a path. The result has no alternations and is simplified.
    pub fn bind_path(&self, path: &Path) -> Activity<NameTree<Bound>> {
        self.reset_budget();
        let bound = self.bind_name(NameRef::Path(path), 0, None);
        self.within_budget(bound)
    }

    /// Binds a tree of paths or names.
    pub fn bind<T: AsName>(&self, tree: &NameTree<T>) -> Activity<NameTree<Bound>> {
        self.reset_budget();
        let bound = self.bind_tree(tree, 0, None);
        self.within_budget(bound)
    }

    /// A call that ran out of lookups fails as a whole, even where a union
    /// left the failed members out: a partial answer would look complete.
    pub(crate) fn within_budget<T>(&self, result: Activity<T>) -> Activity<T> {
        if self.lookups.get() > self.max_lookups {
            return Activity::Failed(NameError::TooManyLookups {
                limit: self.max_lookups,
            });
        }
        result
    }

    fn bind_name(
        &self,
        name: NameRef<'_>,
        depth: usize,
        weight: Option<f64>,
    ) -> Activity<NameTree<Bound>> {
        let _frame = match self.enter(depth) {
            Ok(frame) => frame,
            Err(e) => return Activity::Failed(e),
        };
        match name {
            NameRef::Path(path) => {
                if let Err(e) = self.spend_lookup() {
                    return Activity::Failed(e);
                }
                self.bind_rewrites(path, depth, weight)
            }
            NameRef::Bound(bound) => {
                let mut bound = bound.clone();
                bound.weight = weight.or(bound.weight);
                Activity::Ok(NameTree::Leaf(bound))
            }
        }
    }

    /// Binds the dtab's rewrite of `path` ([`Dtab::lookup`]), walked as a
    /// tree of paths without converting it into a tree of names first.
    ///
    /// Where several dentries match, the rewrite is an alternation that
    /// binding walks lazily, so it is not built: each match is rewritten
    /// only when the ones before it bound to `~`. The frames, depths and
    /// results are those of binding the built alternation.
    fn bind_rewrites(
        &self,
        path: &Path,
        depth: usize,
        weight: Option<f64>,
    ) -> Activity<NameTree<Bound>> {
        let mut matches = self.dtab.matching(path);
        let Some(first) = matches.next() else {
            return self.bind_namers(path, depth, weight);
        };
        let Some(second) = matches.next() else {
            return match first.rewrite_matched(path) {
                NameTree::Neg => self.bind_namers(path, depth, weight),
                tree => self.bind_tree(&tree, depth + 1, weight),
            };
        };
        // The frame `bind_tree` would enter for the alternation.
        let _frame = match self.enter(depth + 1) {
            Ok(frame) => frame,
            Err(e) => return Activity::Failed(e),
        };
        for dentry in [first, second].into_iter().chain(matches) {
            match self.bind_tree(&dentry.rewrite_matched(path), depth + 1, weight) {
                Activity::Ok(NameTree::Neg) => continue,
                other => return other,
            }
        }
        Activity::Ok(NameTree::Neg)
    }

    /// Binds the namers' answer for a path the dtab does not rewrite.
    fn bind_namers(
        &self,
        path: &Path,
        depth: usize,
        weight: Option<f64>,
    ) -> Activity<NameTree<Bound>> {
        match self.lookup_namers(path) {
            Activity::Ok(tree) => self.bind_tree(&tree, depth + 1, weight),
            Activity::Pending => Activity::Pending,
            Activity::Failed(e) => Activity::Failed(e),
        }
    }

    fn bind_tree<T: AsName>(
        &self,
        tree: &NameTree<T>,
        depth: usize,
        weight: Option<f64>,
    ) -> Activity<NameTree<Bound>> {
        let _frame = match self.enter(depth) {
            Ok(frame) => frame,
            Err(e) => return Activity::Failed(e),
        };
        match tree {
            NameTree::Leaf(name) => self.bind_name(name.as_name(), depth, weight),
            NameTree::Neg => Activity::Ok(NameTree::Neg),
            NameTree::Fail => Activity::Ok(NameTree::Fail),
            NameTree::Empty => Activity::Ok(NameTree::Empty),
            NameTree::Union(members) => match members.as_slice() {
                [] => Activity::Ok(NameTree::Neg),
                [one] => self.bind_tree(&one.tree, depth, Some(one.weight)),
                _ => self.bind_union(members, depth),
            },
            NameTree::Alt(trees) => match trees.as_slice() {
                [] => Activity::Ok(NameTree::Neg),
                [one] => self.bind_tree(one, depth, weight),
                _ => {
                    // Lazily, left to right: `~` falls through, anything else
                    // (including `!`, `$`, pending and failures) is the answer.
                    for t in trees {
                        match self.bind_tree(t, depth, weight) {
                            Activity::Ok(NameTree::Neg) => continue,
                            other => return other,
                        }
                    }
                    Activity::Ok(NameTree::Neg)
                }
            },
        }
    }

    /// Every member is bound. The union of those that bound is the answer;
    /// failed and pending members are left out. Only when none bound is the
    /// union failed (first failure) or pending.
    fn bind_union<T: AsName>(
        &self,
        members: &[Weighted<T>],
        depth: usize,
    ) -> Activity<NameTree<Bound>> {
        let mut ok = Vec::with_capacity(members.len());
        let mut failure = None;
        for w in members {
            match self.bind_tree(&w.tree, depth, Some(w.weight)) {
                Activity::Ok(t) => ok.push(Weighted::new(w.weight, t)),
                Activity::Failed(e) => {
                    failure.get_or_insert(e);
                }
                Activity::Pending => {}
            }
        }
        if !ok.is_empty() {
            return Activity::Ok(NameTree::Union(ok).simplified());
        }
        match failure {
            Some(e) => Activity::Failed(e),
            None => Activity::Pending,
        }
    }
}
