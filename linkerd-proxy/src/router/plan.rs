//! A bound tree made ready for routing: every leaf holds its id's
//! balancer, and [`Plan::pick`] chooses one leaf per request: a weighted
//! random choice across union members, the first usable branch of an
//! alternation.

use std::sync::Arc;

use http::HeaderValue;
use l5d_dtab::{Bound, NameTree, Path};

use crate::balance::Balancer;
use crate::headers;

/// What a logical name currently routes to.
#[derive(Debug)]
pub enum Plan {
    /// No binding yet.
    Pending,
    /// The binding failed (for example namerd was unreachable before it
    /// ever answered for this name).
    Failed(Arc<str>),
    /// The name is bound to no destination (`~`, `!` or `$`).
    Unroutable(&'static str),
    Ready(Node),
}

/// A bound tree whose leaves hold balancers.
#[derive(Debug)]
pub enum Node {
    Leaf(Leaf),
    /// Members with positive weights, and the sum of the weights.
    Union(Vec<(f64, Node)>, f64),
    Alt(Vec<Node>),
}

#[derive(Debug)]
pub struct Leaf {
    pub id: Path,
    pub residual: Path,
    pub balancer: Arc<Balancer>,
    /// `l5d-dst-client` and `l5d-dst-residual`, made once.
    pub id_header: HeaderValue,
    pub residual_header: Option<HeaderValue>,
}

impl Plan {
    /// Converts a bound tree, asking `balancer` for each id's balancer.
    pub fn from_tree(
        tree: &NameTree<Bound>,
        balancer: &mut impl FnMut(&Path) -> Arc<Balancer>,
    ) -> Plan {
        match Node::from_tree(tree, balancer) {
            Ok(node) => Plan::Ready(node),
            Err(why) => Plan::Unroutable(why),
        }
    }

    /// Every leaf of the plan.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        if let Plan::Ready(node) = self {
            node.leaves(&mut out);
        }
        out
    }
}

impl Node {
    fn from_tree(
        tree: &NameTree<Bound>,
        balancer: &mut impl FnMut(&Path) -> Arc<Balancer>,
    ) -> Result<Node, &'static str> {
        match tree {
            NameTree::Leaf(bound) => Ok(Node::Leaf(Leaf {
                id: bound.id.clone(),
                residual: bound.residual.clone(),
                balancer: balancer(&bound.id),
                id_header: headers::path_value(&bound.id),
                residual_header: (!bound.residual.is_empty())
                    .then(|| headers::path_value(&bound.residual)),
            })),
            NameTree::Union(members) => {
                let mut out = Vec::with_capacity(members.len());
                let mut total = 0.0;
                for member in members {
                    if member.weight <= 0.0 || !member.weight.is_finite() {
                        continue;
                    }
                    if let Ok(node) = Node::from_tree(&member.tree, balancer) {
                        total += member.weight;
                        out.push((member.weight, node));
                    }
                }
                match out.len() {
                    0 => Err("a union with no routable member"),
                    1 => Ok(out.pop().expect("one member").1),
                    _ => Ok(Node::Union(out, total)),
                }
            }
            NameTree::Alt(branches) => {
                let mut out = Vec::with_capacity(branches.len());
                for branch in branches {
                    match branch {
                        // `!` stops an alternation.
                        NameTree::Fail => break,
                        _ => {
                            if let Ok(node) = Node::from_tree(branch, balancer) {
                                out.push(node);
                            }
                        }
                    }
                }
                match out.len() {
                    0 => Err("an alternation with no routable branch"),
                    1 => Ok(out.pop().expect("one branch")),
                    _ => Ok(Node::Alt(out)),
                }
            }
            NameTree::Neg => Err("the name is bound to nothing (~)"),
            NameTree::Fail => Err("the name is bound to failure (!)"),
            NameTree::Empty => Err("the name is bound to an empty set ($)"),
        }
    }

    /// The leaf for one request: by weight across a union (among members
    /// that currently have endpoints, if any do), the first branch of an
    /// alternation that has endpoints (else its first branch).
    pub fn pick(&self) -> &Leaf {
        match self {
            Node::Leaf(leaf) => leaf,
            Node::Union(members, total) => {
                let usable: f64 = members
                    .iter()
                    .filter(|(_, n)| n.usable())
                    .map(|(w, _)| *w)
                    .sum();
                let (only_usable, total) = if usable > 0.0 {
                    (true, usable)
                } else {
                    (false, *total)
                };
                let mut point = fastrand::f64() * total;
                for (weight, node) in members {
                    if only_usable && !node.usable() {
                        continue;
                    }
                    if point < *weight {
                        return node.pick();
                    }
                    point -= weight;
                }
                // Rounding left the point past the end: take the last.
                members.last().expect("a union has members").1.pick()
            }
            Node::Alt(branches) => branches
                .iter()
                .find(|n| n.usable())
                .unwrap_or(&branches[0])
                .pick(),
        }
    }

    fn usable(&self) -> bool {
        match self {
            Node::Leaf(leaf) => leaf.balancer.has_endpoints(),
            Node::Union(members, _) => members.iter().any(|(_, n)| n.usable()),
            Node::Alt(branches) => branches.iter().any(Node::usable),
        }
    }

    fn leaves<'a>(&'a self, out: &mut Vec<&'a Leaf>) {
        match self {
            Node::Leaf(leaf) => out.push(leaf),
            Node::Union(members, _) => members.iter().for_each(|(_, n)| n.leaves(out)),
            Node::Alt(branches) => branches.iter().for_each(|n| n.leaves(out)),
        }
    }
}
