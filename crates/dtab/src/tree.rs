//! Name trees: the destinations of dentries and the results of binding.
//!
//! `/a | /b` (alternation: the first that is not negative), `3*/a & 1*/b`
//! (weighted union), `~` (negative: not here), `!` (fail: stop) and `$`
//! (empty: exists, no members).

use std::collections::BTreeSet;

use crate::parse::{self, ParseError};
use crate::path::Path;

/// A tree of names combined by alternation and weighted union.
#[derive(Clone, Debug, PartialEq)]
pub enum NameTree<T> {
    Leaf(T),
    /// Fallbacks, most preferred first.
    Alt(Vec<NameTree<T>>),
    /// Weighted members among which traffic is split.
    Union(Vec<Weighted<T>>),
    /// `~`: no such name here; an alternation tries the next member.
    Neg,
    /// `!`: definitively failed; an alternation stops.
    Fail,
    /// `$`: the name exists but has no members.
    Empty,
}

/// A union member and its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted<T> {
    pub weight: f64,
    pub tree: NameTree<T>,
}

impl<T> Weighted<T> {
    pub const DEFAULT_WEIGHT: f64 = 1.0;

    pub fn new(weight: f64, tree: NameTree<T>) -> Self {
        Weighted { weight, tree }
    }
}

// === impl NameTree<Path> ===

impl NameTree<Path> {
    /// Parses `/a & 2*/b | ~`.
    pub fn read(s: &str) -> Result<Self, ParseError> {
        parse::tree(s)
    }

    /// The round-trippable text form, e.g. `/a & 2.00*/b | ~`.
    pub fn show(&self) -> String {
        self.show_with(|p, out| p.write_show(out))
    }
}

// === impl NameTree ===

impl<T> NameTree<T> {
    /// Applies `f` to every leaf.
    pub fn map<U>(&self, f: &mut impl FnMut(&T) -> U) -> NameTree<U> {
        match self {
            NameTree::Leaf(v) => NameTree::Leaf(f(v)),
            NameTree::Alt(trees) => NameTree::Alt(trees.iter().map(|t| t.map(f)).collect()),
            NameTree::Union(trees) => NameTree::Union(
                trees
                    .iter()
                    .map(|w| Weighted::new(w.weight, w.tree.map(f)))
                    .collect(),
            ),
            NameTree::Neg => NameTree::Neg,
            NameTree::Fail => NameTree::Fail,
            NameTree::Empty => NameTree::Empty,
        }
    }

    /// Applies `f` to every leaf in place.
    pub(crate) fn for_each_leaf_mut(&mut self, f: &mut impl FnMut(&mut T)) {
        match self {
            NameTree::Leaf(v) => f(v),
            NameTree::Alt(trees) => trees.iter_mut().for_each(|t| t.for_each_leaf_mut(f)),
            NameTree::Union(trees) => trees.iter_mut().for_each(|w| w.tree.for_each_leaf_mut(f)),
            NameTree::Neg | NameTree::Fail | NameTree::Empty => {}
        }
    }

    /// Every leaf, left to right, in every alternative and union member
    /// (whether or not binding would reach it).
    pub fn leaves(&self) -> Vec<&T> {
        fn walk<'a, T>(tree: &'a NameTree<T>, out: &mut Vec<&'a T>) {
            match tree {
                NameTree::Leaf(v) => out.push(v),
                NameTree::Alt(trees) => trees.iter().for_each(|t| walk(t, out)),
                NameTree::Union(trees) => trees.iter().for_each(|w| walk(&w.tree, out)),
                NameTree::Neg | NameTree::Fail | NameTree::Empty => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// Shows the tree with `leaf` writing each leaf. The parenthesisation is
    /// Finagle's: a union inside an alternation needs none, an alternation
    /// inside anything does, and a one-member node shows as its member.
    pub fn show_with(&self, mut leaf: impl FnMut(&T, &mut String)) -> String {
        let mut out = String::new();
        self.show_top(&mut leaf, &mut out);
        out
    }

    fn show_top(&self, leaf: &mut impl FnMut(&T, &mut String), out: &mut String) {
        match self {
            NameTree::Alt(trees) if trees.len() != 1 => {
                for (i, t) in trees.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" | ");
                    }
                    t.show_member(leaf, out);
                }
            }
            _ => match self.single_child() {
                Some(child) => child.show_top(leaf, out),
                None => self.show_member(leaf, out),
            },
        }
    }

    /// A member of an alternation: a union shows bare.
    fn show_member(&self, leaf: &mut impl FnMut(&T, &mut String), out: &mut String) {
        if let Some(child) = self.single_child() {
            return child.show_member(leaf, out);
        }
        match self {
            NameTree::Union(trees) => {
                for (i, w) in trees.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" & ");
                    }
                    if w.weight != 1.0 {
                        write_weight(w.weight, out);
                        out.push('*');
                    }
                    w.tree.show_simple(leaf, out);
                }
            }
            _ => self.show_simple(leaf, out),
        }
    }

    fn show_simple(&self, leaf: &mut impl FnMut(&T, &mut String), out: &mut String) {
        if let Some(child) = self.single_child() {
            return child.show_simple(leaf, out);
        }
        match self {
            NameTree::Leaf(v) => leaf(v, out),
            NameTree::Fail => out.push('!'),
            NameTree::Neg => out.push('~'),
            NameTree::Empty => out.push('$'),
            NameTree::Alt(_) | NameTree::Union(_) => {
                out.push('(');
                self.show_top(leaf, out);
                out.push(')');
            }
        }
    }

    fn single_child(&self) -> Option<&NameTree<T>> {
        match self {
            NameTree::Alt(trees) if trees.len() == 1 => Some(&trees[0]),
            NameTree::Union(trees) if trees.len() == 1 => Some(&trees[0].tree),
            _ => None,
        }
    }
}

impl<T: Clone> NameTree<T> {
    /// Finagle's `simplified`: an alternation drops `~` members and stops at
    /// the first `!`; a union drops `~` and `!` members; empty nodes become
    /// `~` and one-member nodes become their member (losing its weight).
    /// Nested nodes are not flattened and leaves are not deduplicated.
    pub fn simplified(&self) -> NameTree<T> {
        match self {
            NameTree::Alt(trees) => {
                let mut kept = Vec::with_capacity(trees.len());
                for t in trees {
                    match t.simplified() {
                        NameTree::Fail => {
                            kept.push(NameTree::Fail);
                            break;
                        }
                        NameTree::Neg => {}
                        t => kept.push(t),
                    }
                }
                collapse(kept, NameTree::Alt)
            }
            NameTree::Union(trees) => {
                let kept = trees
                    .iter()
                    .filter_map(|w| match w.tree.simplified() {
                        NameTree::Neg | NameTree::Fail => None,
                        t => Some(Weighted::new(w.weight, t)),
                    })
                    .collect::<Vec<_>>();
                match kept.len() {
                    0 => NameTree::Neg,
                    1 => kept.into_iter().next().expect("one member").tree,
                    _ => NameTree::Union(kept),
                }
            }
            t => t.clone(),
        }
    }
}

/// Turns a list of alternatives into `~`, the only member, or `alt(list)`.
fn collapse<T>(
    mut trees: Vec<NameTree<T>>,
    alt: impl FnOnce(Vec<NameTree<T>>) -> NameTree<T>,
) -> NameTree<T> {
    match trees.len() {
        0 => NameTree::Neg,
        1 => trees.pop().expect("one tree"),
        _ => alt(trees),
    }
}

impl<T: Ord + Clone> NameTree<T> {
    /// The set of leaves the tree denotes, or `None` when it is negative or
    /// failed. Weights are ignored. `$` denotes the empty set.
    pub fn eval(&self) -> Option<BTreeSet<T>> {
        match self.eval_state() {
            Eval::Set(set) => Some(set),
            Eval::Neg | Eval::Fail => None,
        }
    }

    /// Finagle's evaluation: an alternation takes its first member that does
    /// not evaluate negative, and stops at one that evaluates failed; a union
    /// joins the sets of its members and ignores negative and failed ones.
    fn eval_state(&self) -> Eval<T> {
        match self {
            NameTree::Leaf(v) => Eval::Set(BTreeSet::from([v.clone()])),
            NameTree::Empty => Eval::Set(BTreeSet::new()),
            NameTree::Neg => Eval::Neg,
            NameTree::Fail => Eval::Fail,
            NameTree::Union(trees) => {
                let mut all: Option<BTreeSet<T>> = None;
                for w in trees {
                    if let Eval::Set(vs) = w.tree.eval_state() {
                        all.get_or_insert_with(BTreeSet::new).extend(vs);
                    }
                }
                all.map_or(Eval::Neg, Eval::Set)
            }
            NameTree::Alt(trees) => {
                for t in trees {
                    match t.eval_state() {
                        Eval::Neg => continue,
                        other => return other,
                    }
                }
                Eval::Neg
            }
        }
    }
}

enum Eval<T> {
    Neg,
    Fail,
    Set(BTreeSet<T>),
}

/// Writes a weight as the JVM's `"%.2f".format(w)` does: the shortest decimal
/// that round-trips, rounded half-up to two places.
pub(crate) fn write_weight(w: f64, out: &mut String) {
    if w.is_nan() {
        out.push_str("NaN");
        return;
    }
    if w.is_infinite() {
        out.push_str(if w > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Rust's `Display` for f64 is the shortest round-tripping decimal and
    // never uses an exponent.
    let repr = w.abs().to_string();
    let (int, frac) = repr.split_once('.').unwrap_or((&repr, ""));
    let mut digits: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().chain("00".bytes()).take(2))
        .collect();
    if frac.as_bytes().get(2).is_some_and(|&d| d >= b'5') {
        // Half-up: carry through the digits from the right.
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - 2;
    // The JVM keeps the sign even when the rounded value is zero.
    if w.is_sign_negative() {
        out.push('-');
    }
    out.extend(digits[..split].iter().map(|&d| d as char));
    out.push('.');
    out.extend(digits[split..].iter().map(|&d| d as char));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(w: f64) -> String {
        let mut s = String::new();
        write_weight(w, &mut s);
        s
    }

    #[test]
    fn leaves_are_every_leaf_of_every_branch() {
        let tree = NameTree::read("/a | (2*/b & (/c | ~)) | ! | $").unwrap();
        let shown: Vec<String> = tree.leaves().iter().map(|p| p.show()).collect();
        assert_eq!(shown, ["/a", "/b", "/c"]);
        assert!(NameTree::<Path>::Neg.leaves().is_empty());
    }

    #[test]
    fn weights_round_half_up_like_the_jvm() {
        assert_eq!(weight(1.0), "1.00");
        assert_eq!(weight(0.125), "0.13");
        assert_eq!(weight(1.005), "1.01");
        assert_eq!(weight(9.995), "10.00");
        assert_eq!(weight(0.0), "0.00");
        assert_eq!(weight(123456.789), "123456.79");
        assert_eq!(weight(1e-7), "0.00");
        assert_eq!(weight(-0.5), "-0.50");
        assert_eq!(weight(-0.001), "-0.00");
    }
}
