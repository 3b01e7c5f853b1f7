//! The delegation trace: every rewrite a name goes through, for operators.
//!
//! This is Linkerd's `DelegateTree`, behind the dtab playground, namerd's
//! `/api/1/delegate` and the mesh `Delegator` service. Unlike binding, every
//! branch of an alternation or union is expanded, and failures are recorded
//! in the tree instead of ending it.

use crate::bind::{Binder, Namer};
use std::sync::Arc;

use crate::dentry::Dentry;
use crate::name::{Activity, Bound, Name, NameError};
use crate::path::Path;
use crate::tree::NameTree;

/// How deep a trace may go before it fails with `Max recursion level reached.`
pub const MAX_DELEGATE_DEPTH: usize = 100;

/// A delegation step's share of the binder's recursion budget: its frames
/// are about four times a binding step's.
const DELEGATE_FRAME_UNITS: usize = 4;

/// One step of a trace: the path that was looked up at this step, the dentry
/// that produced that path (`None` for the input itself), and what came of it.
#[derive(Clone, Debug, PartialEq)]
pub struct DelegateTree<T> {
    pub path: Path,
    /// Shared: one dentry labels every node its rewrite produced.
    pub dentry: Option<Arc<Dentry>>,
    pub node: DelegateNode<T>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DelegateNode<T> {
    Neg,
    Fail,
    Empty,
    Exception(NameError),
    /// The path was rewritten by one dentry into `tree`.
    Delegate(Box<DelegateTree<T>>),
    Leaf(T),
    Alt(Vec<DelegateTree<T>>),
    Union(Vec<(f64, DelegateTree<T>)>),
    /// A transformer changed a bound leaf.
    Transformation(Box<Transformation<T>>),
}

/// A transformer (`name`) turned the bound leaf `value` into `tree`.
#[derive(Clone, Debug, PartialEq)]
pub struct Transformation<T> {
    pub name: String,
    pub value: T,
    pub tree: DelegateTree<T>,
}

// === impl DelegateTree ===

impl<T> DelegateTree<T> {
    pub fn new(path: Path, dentry: Option<Arc<Dentry>>, node: DelegateNode<T>) -> Self {
        DelegateTree { path, dentry, node }
    }

    fn with_dentry(mut self, dentry: Option<Arc<Dentry>>) -> Self {
        if !matches!(self.node, DelegateNode::Transformation(_)) {
            self.dentry = dentry;
        }
        self
    }

    /// Linkerd's `simplified`: a delegation to a node at the same path
    /// collapses into that node (unless it is `~`, `!` or `$`); an alternation
    /// splices in child alternations at the same path; one-branch
    /// alternations and unions become delegations, empty ones `~`.
    pub fn simplified(self) -> Self {
        let DelegateTree { path, dentry, node } = self;
        match node {
            DelegateNode::Delegate(child) => {
                let child = child.simplified();
                let collapse = !matches!(
                    child.node,
                    DelegateNode::Neg | DelegateNode::Fail | DelegateNode::Empty
                ) && child.path == path;
                if collapse {
                    child.with_dentry(dentry)
                } else {
                    DelegateTree::new(path, dentry, DelegateNode::Delegate(Box::new(child)))
                }
            }
            DelegateNode::Alt(mut trees) if trees.len() <= 1 => match trees.pop() {
                None => DelegateTree::new(path, dentry, DelegateNode::Neg),
                Some(t) => DelegateTree::new(path, dentry, DelegateNode::Delegate(Box::new(t)))
                    .simplified(),
            },
            DelegateNode::Alt(trees) => {
                let mut kept = Vec::with_capacity(trees.len());
                for t in trees {
                    let t = t.simplified();
                    match t.node {
                        DelegateNode::Alt(children) if t.path == path => kept.extend(children),
                        node => kept.push(DelegateTree::new(t.path, t.dentry, node)),
                    }
                }
                DelegateTree::new(path, dentry, DelegateNode::Alt(kept))
            }
            DelegateNode::Union(mut trees) if trees.len() <= 1 => match trees.pop() {
                None => DelegateTree::new(path, dentry, DelegateNode::Neg),
                Some((_, t)) => {
                    DelegateTree::new(path, dentry, DelegateNode::Delegate(Box::new(t)))
                        .simplified()
                }
            },
            DelegateNode::Union(trees) => {
                let trees = trees
                    .into_iter()
                    .map(|(w, t)| (w, t.simplified()))
                    .collect();
                DelegateTree::new(path, dentry, DelegateNode::Union(trees))
            }
            node => DelegateTree::new(path, dentry, node),
        }
    }

    /// The chain of `(path, dentry)` from the root to the first leaf whose
    /// value satisfies `pred` (depth first, in order).
    pub fn find(
        &self,
        pred: &mut impl FnMut(&T) -> bool,
    ) -> Option<Vec<(Path, Option<Arc<Dentry>>)>> {
        let found = match &self.node {
            DelegateNode::Leaf(v) => pred(v).then(Vec::new),
            DelegateNode::Delegate(child) => child.find(pred),
            DelegateNode::Transformation(t) => t.tree.find(pred),
            DelegateNode::Alt(trees) => trees.iter().find_map(|t| t.find(pred)),
            DelegateNode::Union(trees) => trees.iter().find_map(|(_, t)| t.find(pred)),
            DelegateNode::Neg
            | DelegateNode::Fail
            | DelegateNode::Empty
            | DelegateNode::Exception(_) => None,
        };
        found.map(|mut chain| {
            chain.insert(0, (self.path.clone(), self.dentry.clone()));
            chain
        })
    }

    /// The same tree seen as a name tree (exceptions become failures).
    pub fn to_name_tree(&self) -> Result<NameTree<T>, NameError>
    where
        T: Clone,
    {
        Ok(match &self.node {
            DelegateNode::Neg => NameTree::Neg,
            DelegateNode::Fail => NameTree::Fail,
            DelegateNode::Empty => NameTree::Empty,
            DelegateNode::Exception(e) => return Err(e.clone()),
            DelegateNode::Delegate(t) => t.to_name_tree()?,
            DelegateNode::Transformation(t) => t.tree.to_name_tree()?,
            DelegateNode::Leaf(v) => NameTree::Leaf(v.clone()),
            DelegateNode::Alt(ts) => NameTree::Alt(
                ts.iter()
                    .map(|t| t.to_name_tree())
                    .collect::<Result<_, _>>()?,
            ),
            DelegateNode::Union(ts) => NameTree::Union(
                ts.iter()
                    .map(|(w, t)| Ok(crate::tree::Weighted::new(*w, t.to_name_tree()?)))
                    .collect::<Result<_, NameError>>()?,
            ),
        })
    }
}

/// Converts a name tree found at `path` through `dentry` into trace nodes.
/// A `~` destination gets the empty path (it shows as `~`).
fn from_name_tree<T: Clone>(
    path: &Path,
    dentry: &Option<Arc<Dentry>>,
    tree: &NameTree<T>,
) -> DelegateTree<T> {
    let node = match tree {
        NameTree::Neg => {
            return DelegateTree::new(Path::empty(), dentry.clone(), DelegateNode::Neg);
        }
        NameTree::Fail => DelegateNode::Fail,
        NameTree::Empty => DelegateNode::Empty,
        NameTree::Leaf(v) => DelegateNode::Leaf(v.clone()),
        NameTree::Alt(ts) => {
            DelegateNode::Alt(ts.iter().map(|t| from_name_tree(path, dentry, t)).collect())
        }
        NameTree::Union(ws) => DelegateNode::Union(
            ws.iter()
                .map(|w| (w.weight, from_name_tree(path, dentry, &w.tree)))
                .collect(),
        ),
    };
    DelegateTree::new(path.clone(), dentry.clone(), node)
}

// === impl Binder (delegation) ===

impl<N: Namer + ?Sized> Binder<'_, N> {
    /// The delegation trace of `path`, simplified.
    pub fn delegate_path(&self, path: &Path) -> Activity<DelegateTree<Bound>> {
        self.delegate(&NameTree::Leaf(path.clone()))
    }

    /// The delegation trace of a tree of paths, simplified.
    pub fn delegate(&self, tree: &NameTree<Path>) -> Activity<DelegateTree<Bound>> {
        let names = tree.map(&mut |p: &Path| Name::Path(p.clone()));
        let start = from_name_tree(&Path::empty(), &None, &names);
        self.reset_budget();
        let trace = self.delegate_bind(start, 0);
        self.within_budget(trace).map(DelegateTree::simplified)
    }

    /// One delegate lookup of `path`, reached through `dentry`; `None` while
    /// a namer's answer is pending.
    fn delegate_lookup(
        &self,
        dentry: &Option<Arc<Dentry>>,
        path: &Path,
    ) -> Option<DelegateTree<Name>> {
        let mut matches = Vec::new();
        for d in self.dtab().dentries().iter().rev() {
            if let Some(tree) = d.rewrite(path) {
                let names = tree.map(&mut |p: &Path| Name::Path(p.clone()));
                matches.push(from_name_tree(path, &Some(Arc::new(d.clone())), &names));
            }
        }
        let node = match matches.len() {
            0 => match self.lookup_namers(path) {
                Activity::Ok(NameTree::Neg) => DelegateNode::Neg,
                Activity::Ok(tree) => return Some(from_name_tree(path, dentry, &tree)),
                Activity::Failed(e) => DelegateNode::Exception(e),
                Activity::Pending => return None,
            },
            1 => DelegateNode::Delegate(Box::new(matches.pop().expect("one match"))),
            _ => DelegateNode::Alt(matches),
        };
        Some(DelegateTree::new(path.clone(), dentry.clone(), node))
    }

    /// Expands every unbound leaf. The recursive path goes through this
    /// function and the small helpers below only, each kept out of line so
    /// that one level of recursion costs little stack.
    fn delegate_bind(
        &self,
        tree: DelegateTree<Name>,
        depth: usize,
    ) -> Activity<DelegateTree<Bound>> {
        if depth > MAX_DELEGATE_DEPTH {
            return Activity::Failed(NameError::DelegateMaxDepth);
        }
        let Some(_frame) = self.enter_units(DELEGATE_FRAME_UNITS) else {
            return Activity::Failed(NameError::DelegateMaxDepth);
        };
        let DelegateTree { path, dentry, node } = tree;
        let node = match node {
            DelegateNode::Neg => DelegateNode::Neg,
            DelegateNode::Fail => DelegateNode::Fail,
            DelegateNode::Empty => DelegateNode::Empty,
            DelegateNode::Exception(e) => DelegateNode::Exception(e),
            DelegateNode::Leaf(Name::Bound(b)) => DelegateNode::Leaf(b),
            DelegateNode::Leaf(Name::Path(p)) => return self.delegate_leaf(&dentry, &p, depth),
            DelegateNode::Delegate(child) => match self.delegate_bind(*child, depth) {
                Activity::Ok(t) => DelegateNode::Delegate(Box::new(t)),
                other => return other,
            },
            DelegateNode::Transformation(t) => match self.delegate_transformation(*t, depth) {
                Ok(t) => DelegateNode::Transformation(Box::new(t)),
                Err(other) => return other,
            },
            DelegateNode::Alt(trees) => match self.delegate_alt(trees, depth, &path, &dentry) {
                Ok(node) => node,
                Err(other) => return other,
            },
            DelegateNode::Union(trees) => match self.delegate_union(trees, depth, &path, &dentry) {
                Ok(node) => node,
                Err(other) => return other,
            },
        };
        Activity::Ok(DelegateTree::new(path, dentry, node))
    }

    #[inline(never)]
    fn delegate_leaf(
        &self,
        dentry: &Option<Arc<Dentry>>,
        path: &Path,
        depth: usize,
    ) -> Activity<DelegateTree<Bound>> {
        if let Err(e) = self.spend_lookup() {
            return Activity::Failed(e);
        }
        match self.delegate_lookup(dentry, path) {
            Some(next) => self.delegate_bind(next, depth + 1),
            None => Activity::Pending,
        }
    }

    #[inline(never)]
    fn delegate_transformation(
        &self,
        t: Transformation<Name>,
        depth: usize,
    ) -> Result<Transformation<Bound>, Activity<DelegateTree<Bound>>> {
        let value = match t.value {
            Name::Bound(b) => b,
            Name::Path(p) => Bound::new(p, Path::empty()),
        };
        match self.delegate_bind(t.tree, depth) {
            Activity::Ok(tree) => Ok(Transformation {
                name: t.name,
                value,
                tree,
            }),
            other => Err(other),
        }
    }

    /// Every branch is expanded; a failing branch becomes an exception node
    /// at the alternation's own path and dentry. One branch is a delegation.
    #[inline(never)]
    fn delegate_alt(
        &self,
        mut trees: Vec<DelegateTree<Name>>,
        depth: usize,
        path: &Path,
        dentry: &Option<Arc<Dentry>>,
    ) -> Result<DelegateNode<Bound>, Activity<DelegateTree<Bound>>> {
        if trees.len() <= 1 {
            return self.delegate_only(trees.pop(), depth);
        }
        let mut out = Vec::with_capacity(trees.len());
        for t in trees {
            out.push(
                self.delegate_branch(t, depth, path, dentry)
                    .ok_or(Activity::Pending)?,
            );
        }
        Ok(DelegateNode::Alt(out))
    }

    #[inline(never)]
    fn delegate_union(
        &self,
        mut trees: Vec<(f64, DelegateTree<Name>)>,
        depth: usize,
        path: &Path,
        dentry: &Option<Arc<Dentry>>,
    ) -> Result<DelegateNode<Bound>, Activity<DelegateTree<Bound>>> {
        if trees.len() <= 1 {
            return self.delegate_only(trees.pop().map(|(_, t)| t), depth);
        }
        let mut out = Vec::with_capacity(trees.len());
        for (w, t) in trees {
            out.push((
                w,
                self.delegate_branch(t, depth, path, dentry)
                    .ok_or(Activity::Pending)?,
            ));
        }
        Ok(DelegateNode::Union(out))
    }

    /// An alternation or union with at most one branch: `~`, or a delegation
    /// to that branch.
    fn delegate_only(
        &self,
        tree: Option<DelegateTree<Name>>,
        depth: usize,
    ) -> Result<DelegateNode<Bound>, Activity<DelegateTree<Bound>>> {
        let Some(tree) = tree else {
            return Ok(DelegateNode::Neg);
        };
        match self.delegate_bind(tree, depth) {
            Activity::Ok(t) => Ok(DelegateNode::Delegate(Box::new(t))),
            other => Err(other),
        }
    }

    /// A branch of an alternation or union; `None` when it is pending.
    fn delegate_branch(
        &self,
        tree: DelegateTree<Name>,
        depth: usize,
        path: &Path,
        dentry: &Option<Arc<Dentry>>,
    ) -> Option<DelegateTree<Bound>> {
        match self.delegate_bind(tree, depth) {
            Activity::Ok(t) => Some(t),
            Activity::Failed(e) => Some(DelegateTree::new(
                path.clone(),
                dentry.clone(),
                DelegateNode::Exception(e),
            )),
            Activity::Pending => None,
        }
    }
}
