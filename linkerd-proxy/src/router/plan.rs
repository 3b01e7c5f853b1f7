//! A bound tree made ready for routing: every leaf holds its id's
//! balancer, and [`RoutableTree::pick`] chooses one leaf per request with
//! the naming core's weighted choice ([`NameTree::pick`]): by weight across
//! a union's members, preferring those whose ids currently have endpoints,
//! and the first such branch of an alternation.

use std::sync::Arc;

use http::HeaderValue;
use l5d_dtab::{Bound, NameTree, Path, Weighted, union_shares};

use super::policy::IdClient;
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
    Ready(RoutableTree),
}

/// A bound tree whose leaves hold balancers, pruned to what can take a
/// request: union members the weight rule can choose and that lead to a
/// leaf, alternation branches before the first `!` that lead to a leaf.
/// Pruning once per binding keeps balancers from being made for ids no
/// request can reach, and leaves every node with a leaf to pick.
#[derive(Debug)]
pub struct RoutableTree(NameTree<Leaf>);

#[derive(Debug)]
pub struct Leaf {
    pub id: Path,
    pub residual: Path,
    /// The id's balancer and attempt policies.
    pub client: Arc<IdClient>,
    /// `l5d-dst-client` and `l5d-dst-residual`, made once.
    pub id_header: HeaderValue,
    pub residual_header: Option<HeaderValue>,
}

impl Plan {
    /// Converts a bound tree, asking `balancer` for each id's balancer.
    pub fn from_tree(
        tree: &NameTree<Bound>,
        balancer: &mut impl FnMut(&Path) -> Arc<IdClient>,
    ) -> Plan {
        match prune(tree, balancer) {
            Ok(tree) => Plan::Ready(RoutableTree(tree)),
            Err(why) => Plan::Unroutable(why),
        }
    }

    /// Every leaf of the plan.
    pub fn leaves(&self) -> Vec<&Leaf> {
        match self {
            Plan::Ready(RoutableTree(tree)) => tree.leaves(),
            _ => Vec::new(),
        }
    }
}

impl RoutableTree {
    /// The leaf for one request.
    pub fn pick(&self) -> &Leaf {
        self.0
            .pick(&mut fastrand::f64, &|leaf: &Leaf| {
                leaf.client.balancer.has_endpoints()
            })
            .expect("every node of a routable tree leads to a leaf")
    }
}

fn prune(
    tree: &NameTree<Bound>,
    balancer: &mut impl FnMut(&Path) -> Arc<IdClient>,
) -> Result<NameTree<Leaf>, &'static str> {
    match tree {
        NameTree::Leaf(bound) => Ok(NameTree::Leaf(Leaf {
            id: bound.id.clone(),
            residual: bound.residual.clone(),
            client: balancer(&bound.id),
            id_header: headers::path_value(&bound.id),
            residual_header: (!bound.residual.is_empty())
                .then(|| headers::path_value(&bound.residual)),
        })),
        NameTree::Union(members) => {
            let mut out = Vec::with_capacity(members.len());
            for (_, member) in union_shares(members) {
                if let Ok(tree) = prune(&member.tree, balancer) {
                    out.push(Weighted::new(member.weight, tree));
                }
            }
            match out.len() {
                0 => Err("a union with no routable member"),
                1 => Ok(out.pop().expect("one member").tree),
                _ => Ok(NameTree::Union(out)),
            }
        }
        NameTree::Alt(branches) => {
            let mut out = Vec::with_capacity(branches.len());
            for branch in branches {
                match branch {
                    // `!` stops an alternation.
                    NameTree::Fail => break,
                    _ => {
                        if let Ok(tree) = prune(branch, balancer) {
                            out.push(tree);
                        }
                    }
                }
            }
            match out.len() {
                0 => Err("an alternation with no routable branch"),
                1 => Ok(out.pop().expect("one branch")),
                _ => Ok(NameTree::Alt(out)),
            }
        }
        NameTree::Neg => Err("the name is bound to nothing (~)"),
        NameTree::Fail => Err("the name is bound to failure (!)"),
        NameTree::Empty => Err("the name is bound to an empty set ($)"),
    }
}

#[cfg(test)]
mod tests {
    use l5d_dtab::{Addr, Endpoint};
    use tokio::sync::watch;

    use super::*;
    use crate::balance::Balancer;
    use crate::client::Connector;
    use crate::config::{ClientConfig, Protocol};
    use crate::interpreter::Resolution;
    use crate::metrics::Metrics;
    use crate::retry::RetryBudget;

    /// The plan of `tree`, ids under `/empty` without endpoints, and the ids
    /// it made balancers for.
    fn plan_of(tree: &str) -> (Plan, Vec<String>) {
        let tree = NameTree::read(tree)
            .unwrap()
            .map(&mut |p| Bound::new(p.clone(), Path::empty()));
        let config = ClientConfig::default();
        let connector = Connector::new(Protocol::Http, &config, None);
        let mut made = Vec::new();
        let plan = Plan::from_tree(&tree, &mut |id| {
            made.push(id.show());
            let endpoints = if id.show().starts_with("/empty") {
                vec![]
            } else {
                vec![Endpoint::new("127.0.0.1:1".parse().unwrap())]
            };
            let (_, replicas) = watch::channel(Resolution::now(Addr::bound(endpoints)));
            let balancer = Balancer::new(
                id.clone(),
                replicas,
                config.balancer(),
                connector.clone(),
                Metrics::new(),
                "test",
            );
            IdClient::new(balancer, None, RetryBudget::new(&config.requeue_budget))
        });
        (plan, made)
    }

    /// The ids 200 picks went to, each once, in first-picked order.
    fn picked(plan: &Plan) -> Vec<String> {
        let Plan::Ready(tree) = plan else {
            panic!("not routable: {plan:?}");
        };
        fastrand::seed(7);
        let mut ids: Vec<String> = Vec::new();
        for _ in 0..200 {
            let id = tree.pick().id.show();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.sort();
        ids
    }

    #[test]
    fn members_the_weights_never_choose_get_no_balancer() {
        let (plan, made) = plan_of("1 * /a & 0 * /b");
        assert_eq!(made, ["/a"]);
        assert_eq!(picked(&plan), ["/a"]);
    }

    #[test]
    fn a_union_of_zero_weights_splits_uniformly() {
        let (plan, made) = plan_of("0 * /a & 0 * /b");
        assert_eq!(made, ["/a", "/b"]);
        assert_eq!(picked(&plan), ["/a", "/b"]);
    }

    #[test]
    fn ids_with_endpoints_are_preferred() {
        let (plan, _) = plan_of("/empty/a & /b");
        assert_eq!(picked(&plan), ["/b"]);
        let (plan, _) = plan_of("/empty/a | /b");
        assert_eq!(picked(&plan), ["/b"]);
        // Nothing has endpoints: the weights still choose.
        let (plan, _) = plan_of("/empty/a & /empty/b");
        assert_eq!(picked(&plan), ["/empty/a", "/empty/b"]);
    }

    #[test]
    fn trees_without_a_leaf_are_unroutable() {
        for (tree, why) in [
            ("~ & !", "a union with no routable member"),
            ("! | /a", "an alternation with no routable branch"),
            ("$", "the name is bound to an empty set ($)"),
        ] {
            let (plan, made) = plan_of(tree);
            assert!(
                matches!(plan, Plan::Unroutable(w) if w == why),
                "{tree}: {plan:?}"
            );
            assert!(made.is_empty(), "{tree}");
        }
    }
}
