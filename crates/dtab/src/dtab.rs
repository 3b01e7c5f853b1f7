//! Delegation tables: ordered dentries in which later entries win.

use std::fmt;
use std::sync::Arc;

use crate::dentry::Dentry;
use crate::parse::{self, ParseError};
use crate::path::Path;
use crate::tree::NameTree;

/// An ordered list of dentries, cheap to clone.
///
/// Lookup walks the entries from last to first: an entry appended later takes
/// precedence over an earlier one whatever the prefix lengths, and earlier
/// matches remain as fallbacks.
#[derive(Clone, PartialEq, Default)]
pub struct Dtab {
    dentries: Arc<[Dentry]>,
}

// === impl Dtab ===

impl Dtab {
    pub fn new(dentries: Vec<Dentry>) -> Self {
        Dtab {
            dentries: dentries.into(),
        }
    }

    pub fn empty() -> Self {
        Dtab::default()
    }

    /// Parses `;`-separated dentries; whitespace and `#` comments may appear
    /// around every token, one trailing `;` is allowed.
    pub fn read(s: &str) -> Result<Self, ParseError> {
        parse::dtab(s)
    }

    pub fn dentries(&self) -> &[Dentry] {
        &self.dentries
    }

    pub fn len(&self) -> usize {
        self.dentries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dentries.is_empty()
    }

    /// `prefix=>dst;prefix=>dst`, the form Linkerd sends and stores.
    pub fn show(&self) -> String {
        let mut out = String::new();
        for (i, d) in self.dentries.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(&d.show());
        }
        out
    }

    /// `self ++ other`: the entries of `other` come after (and so override)
    /// those of `self`. A request's local dtab is appended to the base.
    pub fn concat(&self, other: &Dtab) -> Dtab {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        Dtab {
            dentries: self
                .dentries
                .iter()
                .chain(other.dentries.iter())
                .cloned()
                .collect(),
        }
    }

    /// Removes `prefix` when it is an exact leading run of this dtab's
    /// entries, so that a base dtab is not propagated again.
    pub fn strip_prefix(&self, prefix: &Dtab) -> Dtab {
        if prefix.is_empty() || !self.dentries.starts_with(&prefix.dentries) {
            return self.clone();
        }
        Dtab {
            dentries: self.dentries[prefix.len()..].into(),
        }
    }

    /// One rewriting step: the rewrites of every matching entry, last entry
    /// first, as an alternation (`~` when nothing matches, the rewrite itself
    /// when one entry matches).
    pub fn lookup(&self, path: &Path) -> NameTree<Path> {
        let mut matches = self.matching(path).map(|d| d.rewrite_matched(path));
        let Some(first) = matches.next() else {
            return NameTree::Neg;
        };
        // Most lookups match one dentry: allocate a list only for more.
        match matches.next() {
            None => first,
            Some(second) => {
                let mut all = vec![first, second];
                all.extend(matches);
                NameTree::Alt(all)
            }
        }
    }

    /// The entries whose prefix matches `path`, in the order their rewrites
    /// are tried (last entry first).
    pub(crate) fn matching<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a Dentry> {
        let (head, _) = path.head();
        self.dentries
            .iter()
            .rev()
            .filter(move |d| d.prefix.may_match(head) && d.prefix.matches(path))
    }

    /// The entry that rewrites `path` first (the last matching one).
    pub fn first_match(&self, path: &Path) -> Option<&Dentry> {
        self.dentries.iter().rev().find(|d| d.prefix.matches(path))
    }
}

impl FromIterator<Dentry> for Dtab {
    fn from_iter<I: IntoIterator<Item = Dentry>>(iter: I) -> Self {
        Dtab {
            dentries: iter.into_iter().collect(),
        }
    }
}

impl fmt::Debug for Dtab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dtab({})", self.show())
    }
}

impl fmt::Display for Dtab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show())
    }
}

impl std::str::FromStr for Dtab {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dtab::read(s)
    }
}

/// The request-local dtab Linkerd builds from a request's headers: the
/// existing local dtab, then every `l5d-ctx-dtab` value, then every
/// `l5d-dtab` value, so the user's own overrides take precedence. Any value
/// that does not parse rejects the request (HTTP 400).
pub fn request_local_dtab<'a>(
    existing: &Dtab,
    ctx_dtab: impl IntoIterator<Item = &'a str>,
    user_dtab: impl IntoIterator<Item = &'a str>,
) -> Result<Dtab, ParseError> {
    let mut local = existing.clone();
    for value in ctx_dtab.into_iter().chain(user_dtab) {
        local = local.concat(&Dtab::read(value)?);
    }
    Ok(local)
}
