//! Service discovery as namerd sees it: namers that answer, for paths under
//! their prefix (`/#/io.l5d.fs/...`), which names exist and which addresses
//! an id has, and keep those answers current.
//!
//! A namer answers synchronously from its current state: the binder in
//! `l5d-dtab` is pure and asks for *current* answers. Change is signalled
//! separately: [`Namer::lookup_changes`] ticks whenever any lookup answer may
//! have changed, and [`Namer::resolve`] hands out a watch channel per id. A
//! namer that cannot reach its source keeps its last good answers and says
//! so in [`Namer::state`]; it never turns an error into an empty set.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use l5d_dtab::{Activity, Addr, Name, NameTree, Path};
use tokio::sync::watch;

/// What a namer reports about itself for the admin state pages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamerState {
    /// Whether the last attempt to read the source failed (answers are the
    /// last good ones).
    pub stale: bool,
    pub last_error: Option<String>,
    /// When the source was last read successfully.
    pub last_update: Option<SystemTime>,
    /// Namer-specific details (watched names, counts, ...).
    pub details: BTreeMap<String, String>,
}

/// A configured namer (`namers:` in namerd's configuration).
///
/// Paths given to it have its prefix removed (`/#/io.l5d.fs/web/x` reaches
/// the `io.l5d.fs` namer as `/web/x`); ids it returns are complete
/// (`/#/io.l5d.fs/web`).
pub trait Namer: Send + Sync + 'static {
    /// The prefix it serves, e.g. `/#/io.l5d.fs`.
    fn prefix(&self) -> &Path;

    /// The current answer for `path` (prefix removed): `~` for names it
    /// does not have, a bound leaf `(id, residual)` for those it has, or a
    /// path to look up again (rewriting namers). May be `Pending` while the
    /// source has not answered yet; the namer then starts watching it.
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>>;

    /// Ticks (the value is a generation counter) whenever any `lookup`
    /// answer may have changed.
    fn lookup_changes(&self) -> watch::Receiver<u64>;

    /// The addresses of `id` (an id this namer bound, prefix removed), kept
    /// current. Unknown ids give `Addr::Neg`.
    fn resolve(&self, id: &Path) -> watch::Receiver<Addr>;

    /// Enumerable namers (fs, Kubernetes) list the ids they know, for
    /// `/api/1/bound-names`.
    fn bound_names(&self) -> Vec<Path> {
        Vec::new()
    }

    fn state(&self) -> NamerState;
}

impl fmt::Debug for dyn Namer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namer({})", self.prefix())
    }
}

/// A watch channel that always holds `value` (for fixed answers).
pub fn fixed<T: Send + Sync + 'static>(value: T) -> watch::Receiver<T> {
    watch::Sender::new(value).subscribe()
}

mod addr_file;
pub mod fs;
pub mod inet;
pub mod ingress;
pub mod k8s;
pub mod rewrite;
