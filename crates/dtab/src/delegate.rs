//! The delegation trace: every rewrite a name goes through, for operators.
//!
//! This is Linkerd's `DelegateTree`, behind the dtab playground, namerd's
//! `/api/1/delegate` and the mesh `Delegator` service. Unlike binding, every
//! branch of an alternation or union is expanded, and failures are recorded
//! in the tree instead of ending it.

use crate::bind::{Binder, Namer};
use crate::dentry::Dentry;
use crate::name::{Activity, Bound, Name, NameError};
use crate::path::Path;
use crate::tree::NameTree;

/// How deep a trace may go before it fails with `Max recursion level reached.`
pub const MAX_DELEGATE_DEPTH: usize = 100;

/// One step of a trace: the path that was looked up at this step, the dentry
/// that produced that path (`None` for the input itself), and what came of it.
#[derive(Clone, Debug, PartialEq)]
pub struct DelegateTree<T> {
    pub path: Path,
    pub dentry: Option<Dentry>,
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
    /// A transformer changed a bound leaf (`name` says which).
    Transformation {
        name: String,
        value: T,
        tree: Box<DelegateTree<T>>,
    },
}

// === impl DelegateTree ===

impl<T> DelegateTree<T> {
    pub fn new(path: Path, dentry: Option<Dentry>, node: DelegateNode<T>) -> Self {
        DelegateTree { path, dentry, node }
    }

    fn with_dentry(mut self, dentry: Option<Dentry>) -> Self {
        if !matches!(self.node, DelegateNode::Transformation { .. }) {
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
    pub fn find(&self, pred: &mut impl FnMut(&T) -> bool) -> Option<Vec<(Path, Option<Dentry>)>> {
        let found = match &self.node {
            DelegateNode::Leaf(v) => pred(v).then(Vec::new),
            DelegateNode::Delegate(child) => child.find(pred),
            DelegateNode::Transformation { tree, .. } => tree.find(pred),
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
            DelegateNode::Delegate(t) | DelegateNode::Transformation { tree: t, .. } => {
                t.to_name_tree()?
            }
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
    dentry: &Option<Dentry>,
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
        let start = from_name_tree(
            &Path::empty(),
            &None,
            &tree.map(&mut |p: &Path| Name::Path(p.clone())),
        );
        self.delegate_bind(start, 0).map(DelegateTree::simplified)
    }

    /// One delegate lookup of `path`, reached through `dentry`; `None` while
    /// a namer's answer is pending.
    fn delegate_lookup(&self, dentry: &Option<Dentry>, path: &Path) -> Option<DelegateTree<Name>> {
        let mut matches = self
            .dtab()
            .dentries()
            .iter()
            .rev()
            .filter_map(|d| {
                let tree = d.rewrite(path)?;
                let d = Some(d.clone());
                Some(from_name_tree(
                    path,
                    &d,
                    &tree.map(&mut |p: &Path| Name::Path(p.clone())),
                ))
            })
            .collect::<Vec<_>>();
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

    fn delegate_bind(
        &self,
        tree: DelegateTree<Name>,
        depth: usize,
    ) -> Activity<DelegateTree<Bound>> {
        if depth > MAX_DELEGATE_DEPTH {
            return Activity::Failed(NameError::DelegateMaxDepth);
        }
        let DelegateTree { path, dentry, node } = tree;
        let node = match node {
            DelegateNode::Neg => DelegateNode::Neg,
            DelegateNode::Fail => DelegateNode::Fail,
            DelegateNode::Empty => DelegateNode::Empty,
            DelegateNode::Exception(e) => DelegateNode::Exception(e),
            DelegateNode::Leaf(Name::Bound(b)) => DelegateNode::Leaf(b),
            DelegateNode::Leaf(Name::Path(p)) => {
                return match self.delegate_lookup(&dentry, &p) {
                    Some(next) => self.delegate_bind(next, depth + 1),
                    None => Activity::Pending,
                };
            }
            DelegateNode::Delegate(child) => match self.delegate_bind(*child, depth) {
                Activity::Ok(t) => DelegateNode::Delegate(Box::new(t)),
                other => return other,
            },
            DelegateNode::Transformation { name, value, tree } => {
                let value = match value {
                    Name::Bound(b) => b,
                    Name::Path(p) => Bound::new(p, Path::empty()),
                };
                match self.delegate_bind(*tree, depth) {
                    Activity::Ok(t) => DelegateNode::Transformation {
                        name,
                        value,
                        tree: Box::new(t),
                    },
                    other => return other,
                }
            }
            DelegateNode::Alt(mut trees) if trees.len() <= 1 => match trees.pop() {
                None => DelegateNode::Neg,
                Some(t) => match self.delegate_bind(t, depth) {
                    Activity::Ok(t) => DelegateNode::Delegate(Box::new(t)),
                    other => return other,
                },
            },
            DelegateNode::Union(mut trees) if trees.len() <= 1 => match trees.pop() {
                None => DelegateNode::Neg,
                Some((_, t)) => match self.delegate_bind(t, depth) {
                    Activity::Ok(t) => DelegateNode::Delegate(Box::new(t)),
                    other => return other,
                },
            },
            // Every branch is expanded; a failing branch becomes an
            // exception node at the alternation's own path and dentry.
            DelegateNode::Alt(trees) => {
                let mut out = Vec::with_capacity(trees.len());
                for t in trees {
                    match self.delegate_branch(t, depth, &path, &dentry) {
                        Some(t) => out.push(t),
                        None => return Activity::Pending,
                    }
                }
                DelegateNode::Alt(out)
            }
            DelegateNode::Union(trees) => {
                let mut out = Vec::with_capacity(trees.len());
                for (w, t) in trees {
                    match self.delegate_branch(t, depth, &path, &dentry) {
                        Some(t) => out.push((w, t)),
                        None => return Activity::Pending,
                    }
                }
                DelegateNode::Union(out)
            }
        };
        Activity::Ok(DelegateTree::new(path, dentry, node))
    }

    /// A branch of an alternation or union; `None` when it is pending.
    fn delegate_branch(
        &self,
        tree: DelegateTree<Name>,
        depth: usize,
        path: &Path,
        dentry: &Option<Dentry>,
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
