//! Names as namers return them, the state of a lookup, and naming errors.

use std::fmt;
use std::sync::Arc;

use crate::path::Path;

/// A concrete name: an id that a resolver turns into addresses, plus the
/// residual path that the binding did not consume.
#[derive(Clone, PartialEq)]
pub struct Bound {
    /// E.g. `/#/io.l5d.fs/world-v1` or `/$/inet/127.0.0.1/8080`.
    pub id: Path,
    /// The labels after the id, forwarded to clients (`/` when none).
    pub residual: Path,
    /// The weight of the innermost union member this leaf was bound under
    /// (Finagle keeps it in the address metadata as `namer_nametree_weight`).
    pub weight: Option<f64>,
}

impl Bound {
    pub fn new(id: Path, residual: Path) -> Self {
        Bound {
            id,
            residual,
            weight: None,
        }
    }
}

impl fmt::Debug for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bound({}, {}", self.id, self.residual)?;
        if let Some(w) = self.weight {
            write!(f, ", weight={w}")?;
        }
        f.write_str(")")
    }
}

/// What a namer may answer for a path: a further path to look up through the
/// dtab again, or a concrete bound name.
#[derive(Clone, Debug, PartialEq)]
pub enum Name {
    Path(Path),
    Bound(Bound),
}

/// Borrowed view of a leaf during binding, so that the binder can walk trees
/// of paths (from dtabs) and trees of names (from namers) without converting.
#[derive(Clone, Copy, Debug)]
pub enum NameRef<'a> {
    Path(&'a Path),
    Bound(&'a Bound),
}

/// A leaf type the binder can walk.
pub trait AsName {
    fn as_name(&self) -> NameRef<'_>;
}

impl AsName for Path {
    fn as_name(&self) -> NameRef<'_> {
        NameRef::Path(self)
    }
}

impl AsName for Name {
    fn as_name(&self) -> NameRef<'_> {
        match self {
            Name::Path(p) => NameRef::Path(p),
            Name::Bound(b) => NameRef::Bound(b),
        }
    }
}

impl AsName for Bound {
    fn as_name(&self) -> NameRef<'_> {
        NameRef::Bound(self)
    }
}

/// The current state of something that changes over time: a namer's answer
/// for a path, or a binding. This is Finagle's `Activity.State`; whoever owns
/// the watching re-evaluates when an input changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Activity<T> {
    /// Not known yet (e.g. service discovery has not answered).
    Pending,
    Ok(T),
    Failed(NameError),
}

impl<T> Activity<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Activity<U> {
        match self {
            Activity::Pending => Activity::Pending,
            Activity::Ok(t) => Activity::Ok(f(t)),
            Activity::Failed(e) => Activity::Failed(e),
        }
    }

    pub fn ok(self) -> Option<T> {
        match self {
            Activity::Ok(t) => Some(t),
            _ => None,
        }
    }
}

/// Why naming failed. Messages match Linkerd's where Linkerd has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Binding followed more rewrites than the depth limit allows (a loop).
    MaxDepth { limit: usize },
    /// The delegation trace went deeper than its limit of 100.
    DelegateMaxDepth,
    /// Binding made more lookups in all than its budget allows (see
    /// `DEFAULT_MAX_LOOKUPS`); a dtab whose unions multiply at every step.
    TooManyLookups { limit: usize },
    /// `/$/<name>/...` names no built-in namer.
    UnknownNamer { namer: Arc<str>, path: Path },
    /// A namer failed; the message is the namer's own.
    Namer { path: Path, message: Arc<str> },
}

impl NameError {
    pub fn namer(path: &Path, message: impl Into<Arc<str>>) -> Self {
        NameError::Namer {
            path: path.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::MaxDepth { limit } => {
                write!(f, "Max recursion level: {limit} reached in Namer lookup")
            }
            NameError::DelegateMaxDepth => f.write_str("Max recursion level reached."),
            NameError::TooManyLookups { limit } => {
                write!(f, "Max lookups: {limit} reached in Namer lookup")
            }
            NameError::UnknownNamer { namer, path } => {
                write!(f, "Unknown namer: {namer} for path: {path}")
            }
            NameError::Namer { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for NameError {}
