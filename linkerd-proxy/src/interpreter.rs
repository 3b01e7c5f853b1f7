//! Interpreters: where the proxy learns what a logical name is bound to and
//! which addresses a bound id has.
//!
//! The router never talks to namerd or DNS itself. It asks an
//! [`Interpreter`] for a watch channel per binding (`bind`) and per bound id
//! (`resolve`) and reads the *current* value from it on every request; the
//! interpreter keeps those values current in the background. Two kinds
//! exist: `io.l5d.mesh` (namerd's gRPC streams, [`mesh`]) and `default`
//! (a fixed dtab bound locally with the `/$` namers only, [`fixed`]).
//!
//! Invariants every interpreter keeps:
//! - A value that was `Bound` stays `Bound` (the last good value) when its
//!   source fails; the failure is reported in [`Interpreter::state`], never
//!   turned into an empty set.
//! - A name never seen before does not hang while the source is
//!   unreachable: its channel moves from `Pending` to `Failed` as soon as a
//!   connection attempt has failed, and to `Bound` once one succeeds.
//! - Channels are shared: every request for the same key gets a receiver of
//!   the same channel, backed by one upstream stream.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use l5d_dtab::{Addr, Bound, Dtab, NameTree, Path};
use tokio::sync::watch;

mod cache;
pub mod fixed;
pub mod localnode;
pub mod mesh;
mod state_json;

/// The current binding of a (local dtab, name) pair.
#[derive(Clone, Debug)]
pub enum BindState {
    /// No answer yet.
    Pending,
    /// The bound tree (ids with residuals and weights), and when this value
    /// was received.
    Bound {
        tree: Arc<NameTree<Bound>>,
        at: SystemTime,
    },
    /// No answer could be had (the source is unreachable and never
    /// answered for this key, or it answered with an error).
    Failed { message: Arc<str> },
}

/// The current address set of a bound id, as the naming core's [`Addr`],
/// and when it was received (the admin's `updatedAt`). Cloning shares the
/// set.
#[derive(Clone, Debug)]
pub struct Resolution {
    pub addr: Addr,
    pub at: SystemTime,
}

impl Resolution {
    /// `addr`, received now.
    pub fn now(addr: Addr) -> Self {
        Resolution {
            addr,
            at: SystemTime::now(),
        }
    }
}

/// Why the delegator could not explain a path.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DelegateError {
    pub message: String,
}

/// A source of bindings and address sets. Implementations are cheap to
/// call: `bind` and `resolve` return a receiver of a shared channel and
/// start the background work only for a key seen for the first time.
pub trait Interpreter: Send + Sync + fmt::Debug + 'static {
    /// The binding of `name` through the interpreter's dtab followed by
    /// `local` (the request's `l5d-ctx-dtab` and `l5d-dtab`).
    fn bind(&self, local: &Dtab, name: &Path) -> watch::Receiver<BindState>;

    /// The address set of a bound id, as it appears in a bound tree
    /// (transformer prefixes `/%/...` included).
    fn resolve(&self, id: &Path) -> watch::Receiver<Resolution>;

    /// The caller dropped its receivers of `bind(local, name)` and will not
    /// ask again soon (its route was evicted): stop the binding now, with
    /// its namerd stream, unless someone else still holds it, rather than
    /// after the idle TTL. So a proxy's evicted routes stop loading namerd.
    fn release(&self, local: &Dtab, name: &Path) {
        let _ = (local, name);
    }

    /// The same for `resolve(id)`'s address set.
    fn release_resolution(&self, id: &Path) {
        let _ = id;
    }

    /// The delegation trace of `path` through the interpreter's dtab and
    /// `local`, as the JSON of namerd's `/api/1/delegate` (Linkerd's
    /// `/delegator.json`).
    fn delegate(
        &self,
        local: &Dtab,
        path: &Path,
    ) -> futures::future::BoxFuture<'static, Result<serde_json::Value, DelegateError>>;

    /// What the interpreter holds, for the admin `interpreter_state`
    /// endpoint: per stream, its key, state, last update time and
    /// connection status.
    fn state(&self) -> serde_json::Value;
}
