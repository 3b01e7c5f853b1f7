//! The weighted choice of one leaf of a bound tree, as a client routes one
//! request: a union sends it to one member at random by weight, an
//! alternation to its first branch that can take it.
//!
//! This is the one place that decides; namerd's `/api/1/resolve` and the
//! proxy's per-request pick both call [`NameTree::pick`]. The crate has no
//! source of randomness: the caller passes a generator of uniform numbers
//! in `[0, 1)`. Picking allocates nothing.
//!
//! # The rule
//!
//! - A union member's share is its weight when that is positive and finite.
//!   A member of weight 0 (or negative or non-finite, which no dtab parses
//!   to but a wire message may carry) is never chosen while any member has
//!   a positive weight; when none has, every member gets the same share, as
//!   Finagle's `Drv.fromWeights` does.
//! - Members that are *usable* (a leaf the caller accepts, e.g. an id that
//!   currently has endpoints) are preferred: the choice is among the usable
//!   members with a share when there are any, else among all members with
//!   a share. `~`, `!` and `$` are never usable.
//! - An alternation takes its first usable branch, else the first branch
//!   that has a leaf at all; `!` stops it, as in [`NameTree::eval`].
//! - When rounding leaves the random point past the last share, the last
//!   member that could be chosen is.

use crate::tree::{NameTree, Weighted};

impl<T> NameTree<T> {
    /// One leaf for one request (see the [module rule](self)), or `None`
    /// when the tree leads to no leaf (`~`, `!`, `$`). `random` is called
    /// once per union on the way down.
    pub fn pick(
        &self,
        random: &mut impl FnMut() -> f64,
        usable: &impl Fn(&T) -> bool,
    ) -> Option<&T> {
        match self {
            NameTree::Leaf(leaf) => Some(leaf),
            NameTree::Alt(branches) => {
                let live = || branches.iter().take_while(|b| !matches!(b, NameTree::Fail));
                match live().find(|b| b.is_usable(usable)) {
                    Some(branch) => branch.pick(random, usable),
                    None => live().find_map(|b| b.pick(random, usable)),
                }
            }
            NameTree::Union(members) => {
                let point = random();
                choose(members, point, usable)?.tree.pick(random, usable)
            }
            NameTree::Neg | NameTree::Fail | NameTree::Empty => None,
        }
    }

    /// Whether [`NameTree::pick`] can reach a usable leaf: a union through a
    /// member with a share, an alternation before its first `!`.
    pub fn is_usable(&self, usable: &impl Fn(&T) -> bool) -> bool {
        match self {
            NameTree::Leaf(leaf) => usable(leaf),
            NameTree::Alt(branches) => branches
                .iter()
                .take_while(|b| !matches!(b, NameTree::Fail))
                .any(|b| b.is_usable(usable)),
            NameTree::Union(members) => {
                union_shares(members).any(|(_, m)| m.tree.is_usable(usable))
            }
            NameTree::Neg | NameTree::Fail | NameTree::Empty => false,
        }
    }
}

/// The members of a union that the weight rule lets a request go to, each
/// with its share: those of positive weight by their weight, or, when no
/// member has a positive weight, every member alike. A caller that prepares
/// a tree for many picks (the proxy's routing plan) can drop the other
/// members up front.
pub fn union_shares<T>(
    members: &[Weighted<T>],
) -> impl Iterator<Item = (f64, &Weighted<T>)> + Clone {
    let any_positive = members.iter().any(|m| has_share(m.weight));
    members.iter().filter_map(move |m| {
        if !any_positive {
            Some((1.0, m))
        } else if has_share(m.weight) {
            Some((m.weight, m))
        } else {
            None
        }
    })
}

fn has_share(weight: f64) -> bool {
    weight > 0.0 && weight.is_finite()
}

/// The member of `members` that `point` (uniform in `[0, 1)`) selects.
fn choose<'a, T>(
    members: &'a [Weighted<T>],
    point: f64,
    usable: &impl Fn(&T) -> bool,
) -> Option<&'a Weighted<T>> {
    let shares = union_shares(members);
    let usable_total: f64 = shares
        .clone()
        .filter(|(_, m)| m.tree.is_usable(usable))
        .map(|(share, _)| share)
        .sum();
    let only_usable = usable_total > 0.0;
    let total = if only_usable {
        usable_total
    } else {
        shares.clone().map(|(share, _)| share).sum()
    };
    let mut point = point * total;
    let mut last = None;
    for (share, member) in shares {
        if only_usable && !member.tree.is_usable(usable) {
            continue;
        }
        if point < share {
            return Some(member);
        }
        point -= share;
        last = Some(member);
    }
    // Rounding left the point past the end.
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union(members: &[(f64, &'static str)]) -> NameTree<&'static str> {
        NameTree::Union(
            members
                .iter()
                .map(|(w, leaf)| Weighted::new(*w, NameTree::Leaf(*leaf)))
                .collect(),
        )
    }

    /// The leaves picked for each random point, everything usable but `unusable`.
    fn picks(
        tree: &NameTree<&'static str>,
        points: &[f64],
        unusable: &[&str],
    ) -> Vec<Option<&'static str>> {
        points
            .iter()
            .map(|p| {
                let mut random = || *p;
                tree.pick(&mut random, &|l: &&str| !unusable.contains(l))
                    .copied()
            })
            .collect()
    }

    #[test]
    fn a_union_splits_by_weight() {
        let t = union(&[(1.0, "a"), (3.0, "b")]);
        assert_eq!(
            picks(&t, &[0.0, 0.24, 0.25, 0.99], &[]),
            [Some("a"), Some("a"), Some("b"), Some("b")]
        );
    }

    #[test]
    fn zero_weights_are_never_chosen_beside_a_positive_one() {
        let t = union(&[(0.0, "zero"), (2.0, "a"), (-1.0, "neg"), (f64::NAN, "nan")]);
        assert_eq!(picks(&t, &[0.0, 0.5, 0.999], &[]), [Some("a"); 3]);
        // Not even when the positive member is unusable.
        assert_eq!(picks(&t, &[0.0, 0.999], &["a"]), [Some("a"); 2]);
        let t = union(&[(f64::INFINITY, "inf"), (1.0, "a")]);
        assert_eq!(picks(&t, &[0.0, 0.999], &[]), [Some("a"); 2]);
    }

    #[test]
    fn all_zero_weights_split_uniformly() {
        let t = union(&[(0.0, "a"), (0.0, "b"), (0.0, "c")]);
        assert_eq!(
            picks(&t, &[0.0, 0.34, 0.67, 0.99], &[]),
            [Some("a"), Some("b"), Some("c"), Some("c")]
        );
        // Usability still narrows the choice.
        assert_eq!(picks(&t, &[0.0, 0.99], &["a", "c"]), [Some("b"); 2]);
    }

    #[test]
    fn usable_members_are_preferred_else_any_member_by_weight() {
        let t = union(&[(1.0, "a"), (1.0, "b"), (2.0, "c")]);
        assert_eq!(
            picks(&t, &[0.0, 0.49, 0.5, 0.99], &["c"]),
            [Some("a"), Some("a"), Some("b"), Some("b")]
        );
        assert_eq!(
            picks(&t, &[0.0, 0.3, 0.6], &["a", "b", "c"]),
            [Some("a"), Some("b"), Some("c")]
        );
    }

    #[test]
    fn rounding_past_the_end_takes_the_last_candidate() {
        let t = union(&[(0.1, "a"), (0.2, "b"), (0.3, "c")]);
        // 0.1 + 0.2 + 0.3 != 0.6 in binary; a point of 1.0 is past any sum.
        assert_eq!(picks(&t, &[1.0], &[]), [Some("c")]);
        assert_eq!(picks(&t, &[1.0], &["c"]), [Some("b")]);
    }

    #[test]
    fn members_without_leaves_are_avoided_while_others_have_leaves() {
        let t = NameTree::Union(vec![
            Weighted::new(1.0, NameTree::Neg),
            Weighted::new(1.0, NameTree::Leaf("a")),
            Weighted::new(1.0, NameTree::Empty),
        ]);
        assert_eq!(picks(&t, &[0.0, 0.99], &[]), [Some("a"); 2]);
        let t = NameTree::<&str>::Union(vec![Weighted::new(1.0, NameTree::Neg)]);
        assert_eq!(picks(&t, &[0.5], &[]), [None]);
        assert_eq!(picks(&NameTree::Union(vec![]), &[0.5], &[]), [None]);
    }

    #[test]
    fn an_alternation_takes_its_first_usable_branch_and_stops_at_fail() {
        let t = NameTree::Alt(vec![
            NameTree::Neg,
            NameTree::Leaf("a"),
            NameTree::Leaf("b"),
            NameTree::Fail,
            NameTree::Leaf("c"),
        ]);
        assert_eq!(picks(&t, &[0.5], &[]), [Some("a")]);
        assert_eq!(picks(&t, &[0.5], &["a"]), [Some("b")]);
        // Nothing usable before `!`: the first branch with a leaf.
        assert_eq!(picks(&t, &[0.5], &["a", "b"]), [Some("a")]);
        let t = NameTree::Alt(vec![NameTree::Fail, NameTree::Leaf("a")]);
        assert_eq!(picks(&t, &[0.5], &[]), [None]);
    }

    #[test]
    fn nested_unions_draw_one_number_each() {
        let inner = union(&[(1.0, "a"), (1.0, "b")]);
        let t = NameTree::Union(vec![
            Weighted::new(1.0, inner),
            Weighted::new(1.0, NameTree::Leaf("c")),
        ]);
        let mut draws = [0.0, 0.75].into_iter();
        let mut random = || draws.next().expect("two draws");
        assert_eq!(t.pick(&mut random, &|_| true), Some(&"b"));
        // A union is usable through a usable member only.
        assert!(!union(&[(1.0, "a")]).is_usable(&|l: &&str| *l != "a"));
    }
}
