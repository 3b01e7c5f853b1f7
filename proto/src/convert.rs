//! Conversions between the wire messages and the naming core's types.
//!
//! Messages from the network are untrusted: every conversion into `l5d-dtab`
//! types checks what the core's types guarantee (no empty labels, every
//! oneof set, every required sub-message present) and names the field that
//! was wrong. Conversions out of the core cannot fail. Address sets
//! (`Replicas`) are converted in [`replicas`](self::replicas).

use std::sync::Arc;

use l5d_dtab::{
    Bound, DelegateNode, DelegateTree, Dentry, Dtab, NameError, NameTree, Path, Prefix, PrefixElem,
    Transformation, Weighted,
};

use crate::mesh::{
    self, bound_delegate_tree as bdt, bound_name_tree as bnt, path_name_tree as pnt,
};
use mesh::dtab::dentry::prefix::elem;

mod replicas;

pub use replicas::{EndpointError, EndpointFault};

/// A message that does not describe a valid name, path, tree or dtab.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {message}: {reason}")]
pub struct ConvertError {
    /// The message type that was invalid, e.g. `PathNameTree`.
    pub message: &'static str,
    pub reason: &'static str,
}

fn invalid(message: &'static str, reason: &'static str) -> ConvertError {
    ConvertError { message, reason }
}

// === Path ===

impl From<&Path> for mesh::Path {
    fn from(p: &Path) -> Self {
        mesh::Path {
            elems: p.labels().map(<[u8]>::to_vec).collect(),
        }
    }
}

impl TryFrom<&mesh::Path> for Path {
    type Error = ConvertError;

    fn try_from(p: &mesh::Path) -> Result<Self, ConvertError> {
        Path::try_from_labels(&p.elems).map_err(|_| invalid("Path", "a label is empty"))
    }
}

/// A path field that must be present.
fn required_path(p: Option<&mesh::Path>, message: &'static str) -> Result<Path, ConvertError> {
    p.ok_or_else(|| invalid(message, "the path is missing"))?
        .try_into()
}

/// A path field where absence means the empty path (e.g. a residual).
fn optional_path(p: Option<&mesh::Path>) -> Result<Path, ConvertError> {
    p.map_or_else(|| Ok(Path::empty()), Path::try_from)
}

// === Dtab ===

impl From<&Prefix> for mesh::dtab::dentry::Prefix {
    fn from(p: &Prefix) -> Self {
        let elems = p
            .elems()
            .map(|e| mesh::dtab::dentry::prefix::Elem {
                value: Some(match e {
                    PrefixElem::Label(l) => elem::Value::Label(l.to_vec()),
                    PrefixElem::Any => elem::Value::Wildcard(elem::Wildcard {}),
                }),
            })
            .collect();
        mesh::dtab::dentry::Prefix { elems }
    }
}

impl TryFrom<&mesh::dtab::dentry::Prefix> for Prefix {
    type Error = ConvertError;

    fn try_from(p: &mesh::dtab::dentry::Prefix) -> Result<Self, ConvertError> {
        let elems = p
            .elems
            .iter()
            .map(|e| match &e.value {
                Some(elem::Value::Label(l)) => Ok(PrefixElem::Label(l)),
                Some(elem::Value::Wildcard(_)) => Ok(PrefixElem::Any),
                None => Err(invalid("Prefix.Elem", "neither label nor wildcard is set")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Prefix::new(elems).map_err(|_| invalid("Prefix", "a label is empty"))
    }
}

impl From<&Dentry> for mesh::dtab::Dentry {
    fn from(d: &Dentry) -> Self {
        mesh::dtab::Dentry {
            prefix: Some((&d.prefix).into()),
            dst: Some((&d.dst).into()),
        }
    }
}

impl TryFrom<&mesh::dtab::Dentry> for Dentry {
    type Error = ConvertError;

    fn try_from(d: &mesh::dtab::Dentry) -> Result<Self, ConvertError> {
        let prefix = d
            .prefix
            .as_ref()
            .ok_or_else(|| invalid("Dentry", "the prefix is missing"))?;
        let dst = d
            .dst
            .as_ref()
            .ok_or_else(|| invalid("Dentry", "the destination is missing"))?;
        Ok(Dentry::new(prefix.try_into()?, dst.try_into()?))
    }
}

impl From<&Dtab> for mesh::Dtab {
    fn from(d: &Dtab) -> Self {
        mesh::Dtab {
            dentries: d.dentries().iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<&mesh::Dtab> for Dtab {
    type Error = ConvertError;

    fn try_from(d: &mesh::Dtab) -> Result<Self, ConvertError> {
        d.dentries.iter().map(Dentry::try_from).collect()
    }
}

// === NameTree<Path> and NameTree<Bound> ===

/// `PathNameTree` and `BoundNameTree` are the same shape with different
/// leaves (and distinct generated types), so one definition serves both.
macro_rules! name_tree_wire {
    ($msg:ident, $node:ident, $leaf:ty, $name:literal, $to_leaf:expr, $from_leaf:expr) => {
        impl From<&NameTree<$leaf>> for mesh::$msg {
            fn from(t: &NameTree<$leaf>) -> Self {
                let node = match t {
                    NameTree::Neg => $node::Node::Neg($node::Neg {}),
                    NameTree::Fail => $node::Node::Fail($node::Fail {}),
                    NameTree::Empty => $node::Node::Empty($node::Empty {}),
                    NameTree::Leaf(l) => $node::Node::Leaf($to_leaf(l)),
                    NameTree::Alt(ts) => $node::Node::Alt($node::Alt {
                        trees: ts.iter().map(Into::into).collect(),
                    }),
                    NameTree::Union(ws) => $node::Node::Union($node::Union {
                        trees: ws
                            .iter()
                            .map(|w| $node::union::Weighted {
                                weight: w.weight,
                                tree: Some((&w.tree).into()),
                            })
                            .collect(),
                    }),
                };
                mesh::$msg { node: Some(node) }
            }
        }

        impl TryFrom<&mesh::$msg> for NameTree<$leaf> {
            type Error = ConvertError;

            fn try_from(t: &mesh::$msg) -> Result<Self, ConvertError> {
                let node = t
                    .node
                    .as_ref()
                    .ok_or_else(|| invalid($name, "no node is set"))?;
                Ok(match node {
                    $node::Node::Neg(_) => NameTree::Neg,
                    $node::Node::Fail(_) => NameTree::Fail,
                    $node::Node::Empty(_) => NameTree::Empty,
                    $node::Node::Leaf(l) => NameTree::Leaf($from_leaf(l)?),
                    $node::Node::Alt(a) => NameTree::Alt(
                        a.trees
                            .iter()
                            .map(TryInto::try_into)
                            .collect::<Result<_, _>>()?,
                    ),
                    $node::Node::Union(u) => NameTree::Union(
                        u.trees
                            .iter()
                            .map(|w| {
                                let tree = w
                                    .tree
                                    .as_ref()
                                    .ok_or_else(|| invalid($name, "a union member has no tree"))?;
                                Ok(Weighted::new(w.weight, tree.try_into()?))
                            })
                            .collect::<Result<_, ConvertError>>()?,
                    ),
                })
            }
        }
    };
}

name_tree_wire!(
    PathNameTree,
    pnt,
    Path,
    "PathNameTree",
    |p: &Path| pnt::Leaf { id: Some(p.into()) },
    |l: &pnt::Leaf| required_path(l.id.as_ref(), "PathNameTree.Leaf")
);

// Bound leaves carry no weight on the wire; union members do.
name_tree_wire!(
    BoundNameTree,
    bnt,
    Bound,
    "BoundNameTree",
    |b: &Bound| bnt::Leaf {
        id: Some((&b.id).into()),
        residual: Some((&b.residual).into()),
    },
    |l: &bnt::Leaf| -> Result<Bound, ConvertError> {
        Ok(Bound::new(
            required_path(l.id.as_ref(), "BoundNameTree.Leaf")?,
            optional_path(l.residual.as_ref())?,
        ))
    }
);

// === DelegateTree<Bound> ===

fn delegate_leaf(b: &Bound) -> bdt::Leaf {
    bdt::Leaf {
        id: Some((&b.id).into()),
        residual: Some((&b.residual).into()),
    }
}

fn bound_from_delegate_leaf(l: &bdt::Leaf) -> Result<Bound, ConvertError> {
    Ok(Bound::new(
        required_path(l.id.as_ref(), "BoundDelegateTree.Leaf")?,
        optional_path(l.residual.as_ref())?,
    ))
}

impl From<&DelegateTree<Bound>> for mesh::BoundDelegateTree {
    fn from(t: &DelegateTree<Bound>) -> Self {
        let node = match &t.node {
            DelegateNode::Neg => bdt::Node::Neg(bdt::Neg {}),
            DelegateNode::Fail => bdt::Node::Fail(bdt::Fail {}),
            DelegateNode::Empty => bdt::Node::Empty(bdt::Empty {}),
            DelegateNode::Exception(e) => bdt::Node::Exception(e.to_string()),
            DelegateNode::Delegate(child) => bdt::Node::Delegate(Box::new((&**child).into())),
            DelegateNode::Leaf(b) => bdt::Node::Leaf(delegate_leaf(b)),
            DelegateNode::Alt(ts) => bdt::Node::Alt(bdt::Alt {
                trees: ts.iter().map(Into::into).collect(),
            }),
            DelegateNode::Union(ws) => bdt::Node::Union(bdt::Union {
                trees: ws
                    .iter()
                    .map(|(w, t)| bdt::union::Weighted {
                        weight: *w,
                        tree: Some(t.into()),
                    })
                    .collect(),
            }),
            DelegateNode::Transformation(tr) => {
                bdt::Node::Transformation(Box::new(bdt::Transformation {
                    name: tr.name.clone(),
                    leaf: Some(delegate_leaf(&tr.value)),
                    tree: Some(Box::new((&tr.tree).into())),
                }))
            }
        };
        mesh::BoundDelegateTree {
            path: Some((&t.path).into()),
            dentry: t.dentry.as_deref().map(Into::into),
            node: Some(node),
        }
    }
}

impl TryFrom<&mesh::BoundDelegateTree> for DelegateTree<Bound> {
    type Error = ConvertError;

    /// An exception arrives as text only; it becomes a namer error at this
    /// node's path.
    fn try_from(t: &mesh::BoundDelegateTree) -> Result<Self, ConvertError> {
        const MSG: &str = "BoundDelegateTree";
        let path = optional_path(t.path.as_ref())?;
        let dentry = t
            .dentry
            .as_ref()
            .map(|d| Dentry::try_from(d).map(Arc::new))
            .transpose()?;
        let node = match t
            .node
            .as_ref()
            .ok_or_else(|| invalid(MSG, "no node is set"))?
        {
            bdt::Node::Neg(_) => DelegateNode::Neg,
            bdt::Node::Fail(_) => DelegateNode::Fail,
            bdt::Node::Empty(_) => DelegateNode::Empty,
            bdt::Node::Exception(msg) => {
                DelegateNode::Exception(NameError::namer(&path, msg.as_str()))
            }
            bdt::Node::Delegate(child) => DelegateNode::Delegate(Box::new((&**child).try_into()?)),
            bdt::Node::Leaf(l) => DelegateNode::Leaf(bound_from_delegate_leaf(l)?),
            bdt::Node::Alt(a) => DelegateNode::Alt(
                a.trees
                    .iter()
                    .map(TryInto::try_into)
                    .collect::<Result<_, _>>()?,
            ),
            bdt::Node::Union(u) => DelegateNode::Union(
                u.trees
                    .iter()
                    .map(|w| {
                        let tree = w
                            .tree
                            .as_ref()
                            .ok_or_else(|| invalid(MSG, "a union member has no tree"))?;
                        Ok((w.weight, tree.try_into()?))
                    })
                    .collect::<Result<_, ConvertError>>()?,
            ),
            bdt::Node::Transformation(tr) => {
                DelegateNode::Transformation(Box::new(Transformation {
                    name: tr.name.clone(),
                    value: bound_from_delegate_leaf(
                        tr.leaf
                            .as_ref()
                            .ok_or_else(|| invalid(MSG, "a transformation has no leaf"))?,
                    )?,
                    tree: tr
                        .tree
                        .as_deref()
                        .ok_or_else(|| invalid(MSG, "a transformation has no tree"))?
                        .try_into()?,
                }))
            }
        };
        Ok(DelegateTree::new(path, dentry, node))
    }
}
