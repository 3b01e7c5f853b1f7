//! Dentries (`prefix => tree`) and their prefixes, which may hold `*`.

use std::fmt;

use crate::parse::{self, ParseError};
use crate::path::{Path, write_label};
use crate::tree::NameTree;

/// One element of a dentry prefix: a literal label or the `*` wildcard,
/// which matches exactly one label.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PrefixElem {
    Label(Box<[u8]>),
    Any,
}

impl fmt::Debug for PrefixElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_show(&mut s);
        f.write_str(&s)
    }
}

impl PrefixElem {
    fn write_show(&self, out: &mut String) {
        match self {
            PrefixElem::Label(l) => write_label(l, out),
            PrefixElem::Any => out.push('*'),
        }
    }
}

/// The left-hand side of a dentry: `/svc`, `/host/*/http`, or `/`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Prefix {
    elems: Vec<PrefixElem>,
    /// The prefix as a path when it has no wildcard, so that matching is one
    /// byte comparison in the common case.
    literal: Option<Path>,
}

// === impl Prefix ===

impl Prefix {
    pub fn new(elems: Vec<PrefixElem>) -> Self {
        let literal = elems
            .iter()
            .map(|e| match e {
                PrefixElem::Label(l) => Some(&**l),
                PrefixElem::Any => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|labels| Path::try_from_labels(labels).expect("prefix labels are never empty"));
        Prefix { elems, literal }
    }

    /// Parses a prefix such as `/svc/*/http`.
    pub fn read(s: &str) -> Result<Self, ParseError> {
        parse::prefix(s)
    }

    pub fn elems(&self) -> &[PrefixElem] {
        &self.elems
    }

    pub fn len(&self) -> usize {
        self.elems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// True when every element matches the label at the same position of
    /// `path` (which may be longer).
    pub fn matches(&self, path: &Path) -> bool {
        if let Some(literal) = &self.literal {
            return path.starts_with(literal);
        }
        self.elems.len() <= path.len()
            && self.elems.iter().zip(path.labels()).all(|(e, l)| match e {
                PrefixElem::Any => true,
                PrefixElem::Label(want) => **want == *l,
            })
    }

    pub fn show(&self) -> String {
        let mut s = String::new();
        self.write_show(&mut s);
        s
    }

    fn write_show(&self, out: &mut String) {
        if self.elems.is_empty() {
            out.push('/');
        }
        for e in &self.elems {
            out.push('/');
            e.write_show(out);
        }
    }
}

impl From<&Path> for Prefix {
    fn from(path: &Path) -> Self {
        Prefix::new(path.labels().map(|l| PrefixElem::Label(l.into())).collect())
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
        let suffix = path.drop(self.prefix.len());
        Some(self.dst.map(&mut |p: &Path| p.concat(&suffix)))
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
