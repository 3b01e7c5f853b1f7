//! Dentries (`prefix => tree`) and their prefixes, which may hold `*`.

use std::fmt;

use crate::parse::{self, ParseError};
use crate::path::{EmptyLabel, Path, PathBuilder, write_label};
use crate::tree::NameTree;

/// One element of a dentry prefix: a literal label or the `*` wildcard,
/// which matches exactly one label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrefixElem<'a> {
    Label(&'a [u8]),
    Any,
}

/// The left-hand side of a dentry: `/svc`, `/host/*/http`, or `/`.
///
/// Stored in the path encoding with a wildcard as an empty label (which no
/// real label can be), so that a prefix without wildcards matches with one
/// byte comparison, which is what a dtab lookup does per dentry.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Prefix {
    elems: Path,
    has_wildcard: bool,
    /// The start of `elems` and its mask ([`Path::head`]), which a path it
    /// matches starts with. A zero mask (a prefix with a wildcard, or one
    /// being parsed) rules nothing out.
    head: u64,
    head_mask: u64,
}

// === impl Prefix ===

impl Prefix {
    /// A prefix from its elements; fails if a label is empty.
    pub fn new<'a>(elems: impl IntoIterator<Item = PrefixElem<'a>>) -> Result<Self, EmptyLabel> {
        let mut b = PathBuilder::default();
        let mut has_wildcard = false;
        for e in elems {
            match e {
                PrefixElem::Label([]) => return Err(EmptyLabel),
                PrefixElem::Label(l) => b.push_raw(l),
                PrefixElem::Any => {
                    has_wildcard = true;
                    b.push_raw(&[]);
                }
            }
        }
        Ok(Prefix::from_parts(b.finish(), has_wildcard))
    }

    pub(crate) fn from_parts(elems: Path, has_wildcard: bool) -> Self {
        let mut prefix = Prefix::pending(elems, has_wildcard);
        prefix.set_head();
        prefix
    }

    /// A prefix whose path is not yet rebased onto its buffer.
    pub(crate) fn pending(elems: Path, has_wildcard: bool) -> Self {
        Prefix {
            elems,
            has_wildcard,
            head: 0,
            head_mask: 0,
        }
    }

    fn set_head(&mut self) {
        if !self.has_wildcard {
            (self.head, self.head_mask) = self.elems.head();
        }
    }

    pub(crate) fn rebase(&mut self, buf: &std::sync::Arc<[u8]>) {
        self.elems.rebase(buf);
        self.set_head();
    }

    /// False when `path_head` (a path's [`Path::head`]) shows that the path
    /// cannot match; true when it may.
    #[inline]
    pub(crate) fn may_match(&self, path_head: u64) -> bool {
        path_head & self.head_mask == self.head
    }

    /// Parses a prefix such as `/svc/*/http`.
    pub fn read(s: &str) -> Result<Self, ParseError> {
        parse::prefix(s)
    }

    pub fn elems(&self) -> impl Iterator<Item = PrefixElem<'_>> {
        self.elems.labels().map(|l| {
            if l.is_empty() {
                PrefixElem::Any
            } else {
                PrefixElem::Label(l)
            }
        })
    }

    pub fn len(&self) -> usize {
        self.elems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// True when every element matches the label at the same position of
    /// `path` (which may be longer).
    #[inline]
    pub fn matches(&self, path: &Path) -> bool {
        if !self.has_wildcard {
            return path.starts_with(&self.elems);
        }
        self.elems.len() <= path.len()
            && self
                .elems
                .labels()
                .zip(path.labels())
                .all(|(want, got)| want.is_empty() || want == got)
    }

    pub fn show(&self) -> String {
        let mut s = String::new();
        if self.elems.is_empty() {
            s.push('/');
        }
        for e in self.elems() {
            s.push('/');
            match e {
                PrefixElem::Label(l) => write_label(l, &mut s),
                PrefixElem::Any => s.push('*'),
            }
        }
        s
    }
}

impl From<&Path> for Prefix {
    fn from(path: &Path) -> Self {
        Prefix::from_parts(path.clone(), false)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({})", self.show())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show())
    }
}

/// A delegation rule: names under `prefix` are rewritten to `dst`.
#[derive(Clone, PartialEq)]
pub struct Dentry {
    pub prefix: Prefix,
    pub dst: NameTree<Path>,
}

// === impl Dentry ===

impl Dentry {
    pub fn new(prefix: Prefix, dst: NameTree<Path>) -> Self {
        Dentry { prefix, dst }
    }

    /// Points every path of a freshly parsed dentry at their shared buffer.
    pub(crate) fn rebase(&mut self, buf: &std::sync::Arc<[u8]>) {
        self.prefix.rebase(buf);
        self.dst.for_each_leaf_mut(&mut |p| p.rebase(buf));
    }

    /// Parses `prefix => tree`.
    pub fn read(s: &str) -> Result<Self, ParseError> {
        parse::dentry(s)
    }

    /// `prefix=>dst`, without spaces around the arrow.
    pub fn show(&self) -> String {
        let mut s = self.prefix.show();
        s.push_str("=>");
        s.push_str(&self.dst.show());
        s
    }

    /// The rewrite of `path` by this dentry, if its prefix matches: every
    /// leaf of `dst` followed by the labels the prefix did not consume.
    pub fn rewrite(&self, path: &Path) -> Option<NameTree<Path>> {
        if !self.prefix.matches(path) {
            return None;
        }
        Some(self.rewrite_matched(path))
    }

    /// The rewrite of `path`, whose prefix is known to match.
    pub(crate) fn rewrite_matched(&self, path: &Path) -> NameTree<Path> {
        let consumed = self.prefix.len();
        match &self.dst {
            // The common case, without walking a tree.
            NameTree::Leaf(p) => NameTree::Leaf(p.concat_tail(path, consumed)),
            dst => dst.map(&mut |p: &Path| p.concat_tail(path, consumed)),
        }
    }
}

impl fmt::Debug for Dentry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dentry({})", self.show())
    }
}

impl fmt::Display for Dentry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show())
    }
}
