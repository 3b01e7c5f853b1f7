//! `namerctl dtab diff`: two dtabs compared dentry by dentry. A dentry is
//! known by its prefix and, when a prefix occurs more than once, by which
//! occurrence it is (the second `/host` rule is matched with the second).
//! Matched dentries whose destination differs are *changed*; matched ones
//! that kept their destination but left the longest common order are
//! *reordered* (order decides which rule wins); the rest were *added* or
//! *removed*. Pure: the caller reads both sides.

use std::collections::HashMap;

use crate::dentries::Located;

/// One difference, with the lines of both sides where it has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change<'a> {
    Added(&'a Located),
    Removed(&'a Located),
    Changed { old: &'a Located, new: &'a Located },
    Reordered { old: &'a Located, new: &'a Located },
}

/// The differences from `old` to `new`, in the order of `new` (removals
/// where they were, after what preceded them).
pub fn diff<'a>(old: &'a [Located], new: &'a [Located]) -> Vec<Change<'a>> {
    let old_keys = keys(old);
    let new_keys = keys(new);
    let old_at: HashMap<_, usize> = old_keys.iter().cloned().zip(0..).collect();
    // Pairs (old index, new index) of matched dentries, in new's order.
    let pairs: Vec<(usize, usize)> = new_keys
        .iter()
        .enumerate()
        .filter_map(|(j, k)| old_at.get(k).map(|&i| (i, j)))
        .collect();
    let in_order = longest_increasing(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let mut matched_old = vec![false; old.len()];
    let mut by_new: Vec<Option<Change<'a>>> = vec![None; new.len()];
    for (n, &(i, j)) in pairs.iter().enumerate() {
        matched_old[i] = true;
        let (o, w) = (&old[i], &new[j]);
        by_new[j] = if o.dentry.dst != w.dentry.dst {
            Some(Change::Changed { old: o, new: w })
        } else if !in_order[n] {
            Some(Change::Reordered { old: o, new: w })
        } else {
            None
        };
    }
    for (j, slot) in by_new.iter_mut().enumerate() {
        if slot.is_none() && !old_at.contains_key(&new_keys[j]) {
            *slot = Some(Change::Added(&new[j]));
        }
    }
    // A removal goes after the last new dentry matched to an old one
    // before it.
    let new_of_old: HashMap<usize, usize> = pairs.iter().copied().collect();
    let mut out = Vec::new();
    let mut removals: Vec<(Option<usize>, Change<'a>)> = Vec::new();
    let mut last = None;
    for (i, o) in old.iter().enumerate() {
        if let Some(&j) = new_of_old.get(&i) {
            last = Some(last.map_or(j, |l: usize| l.max(j)));
        } else if !matched_old[i] {
            removals.push((last, Change::Removed(o)));
        }
    }
    let mut removals = removals.into_iter().peekable();
    while let Some((None, _)) = removals.peek() {
        out.push(removals.next().expect("peeked").1);
    }
    for (j, change) in by_new.into_iter().enumerate() {
        out.extend(change);
        while let Some((Some(at), _)) = removals.peek() {
            if *at != j {
                break;
            }
            out.push(removals.next().expect("peeked").1);
        }
    }
    out.extend(removals.map(|r| r.1));
    out
}

/// Each dentry's key: its prefix and its occurrence among equal prefixes.
fn keys(dtab: &[Located]) -> Vec<(String, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    dtab.iter()
        .map(|l| {
            let n = seen.entry(l.dentry.prefix.as_str()).or_default();
            *n += 1;
            (l.dentry.prefix.clone(), *n)
        })
        .collect()
}

/// Which elements of `seq` are in one longest strictly increasing
/// subsequence (patience sorting; dtabs are short, so O(n²) would do, but
/// this is as simple).
fn longest_increasing(seq: &[usize]) -> Vec<bool> {
    let mut tails: Vec<usize> = Vec::new(); // indices into seq
    let mut prev = vec![None; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let at = tails.partition_point(|&t| seq[t] < v);
        prev[i] = at.checked_sub(1).map(|a| tails[a]);
        if at == tails.len() {
            tails.push(i);
        } else {
            tails[at] = i;
        }
    }
    let mut keep = vec![false; seq.len()];
    let mut next = tails.last().copied();
    while let Some(i) = next {
        keep[i] = true;
        next = prev[i];
    }
    keep
}

/// The differences as text: a header naming both sides, then for each
/// an `@@` line saying what and where, and the dentries, `-` old and `+`
/// new (a reordered one once, unmarked). Empty when there are none.
pub fn render(old_name: &str, new_name: &str, changes: &[Change<'_>]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let show = |l: &Located| format!("{} => {}", l.dentry.prefix, l.dentry.dst);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    for c in changes {
        let text = match c {
            Change::Added(n) => format!(
                "@@ added {}, line {}\n+ {}\n",
                n.dentry.prefix,
                n.line,
                show(n)
            ),
            Change::Removed(o) => format!(
                "@@ removed {}, line {}\n- {}\n",
                o.dentry.prefix,
                o.line,
                show(o)
            ),
            Change::Changed { old, new } => format!(
                "@@ changed {}, line {} -> {}\n- {}\n+ {}\n",
                new.dentry.prefix,
                old.line,
                new.line,
                show(old),
                show(new)
            ),
            Change::Reordered { old, new } => format!(
                "@@ reordered {}, line {} -> {}\n  {}\n",
                new.dentry.prefix,
                old.line,
                new.line,
                show(new)
            ),
        };
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Dentry;

    fn dtab(rules: &[(&str, &str)]) -> Vec<Located> {
        rules
            .iter()
            .enumerate()
            .map(|(i, (p, d))| Located {
                dentry: Dentry::new(*p, *d),
                line: i + 1,
            })
            .collect()
    }

    #[test]
    fn every_kind_of_change() {
        let old = dtab(&[
            ("/srv", "/#/io.l5d.fs"),
            ("/host", "/srv"),
            ("/tmp", "/srv"),
            ("/svc", "/host"),
            ("/host/world", "/srv/world-v1"),
        ]);
        let new = dtab(&[
            ("/svc", "/host"),
            ("/srv", "/#/io.l5d.fs"),
            ("/host", "/srv"),
            ("/host/world", "/srv/world-v2"),
            ("/new", "/srv/new"),
        ]);
        let want = "\
--- a
+++ b
@@ reordered /svc, line 4 -> 1
  /svc => /host
@@ removed /tmp, line 3
- /tmp => /srv
@@ changed /host/world, line 5 -> 4
- /host/world => /srv/world-v1
+ /host/world => /srv/world-v2
@@ added /new, line 5
+ /new => /srv/new
";
        assert_eq!(render("a", "b", &diff(&old, &new)), want);
        assert_eq!(render("a", "a", &diff(&old, &old)), "");
        assert!(diff(&[], &[]).is_empty());
    }

    #[test]
    fn repeated_prefixes_match_by_occurrence() {
        let old = dtab(&[("/a", "/x"), ("/a", "/y")]);
        let new = dtab(&[("/a", "/x")]);
        let changes = diff(&old, &new);
        assert_eq!(changes, [Change::Removed(&old[1])]);
    }
}
