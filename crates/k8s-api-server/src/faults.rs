//! Injected failures: stalled and closed watches, failed requests and
//! hidden objects, switched on by tests through
//! [`ApiServer::faults`](crate::ApiServer::faults) to reproduce what a real control plane does
//! on a bad day.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::Resource;
use crate::store::Key;

/// The fault switches of a running server.
#[derive(Debug)]
pub struct Faults {
    stall: watch::Sender<bool>,
    close: watch::Sender<u64>,
    fail: Mutex<Option<(usize, u16)>>,
    hidden: Mutex<HashSet<Key>>,
}

impl Faults {
    pub(crate) fn new() -> Self {
        Faults {
            stall: watch::Sender::new(false),
            close: watch::Sender::new(0),
            fail: Mutex::new(None),
            hidden: Mutex::new(HashSet::new()),
        }
    }

    /// While on, open watches (and new ones) send nothing at all, not even
    /// bookmarks, nor end at their timeout, but stay open; turned off, they
    /// catch up with what happened meanwhile.
    pub fn stall_watches(&self, on: bool) {
        self.stall.send_replace(on);
    }

    /// Ends every open watch stream now with a clean end of the body.
    pub fn close_watches(&self) {
        self.close.send_modify(|generation| *generation += 1);
    }

    /// The next `n` API requests (not discovery) answer `status` with a
    /// `Status` body.
    pub fn fail_next(&self, n: usize, status: u16) {
        *lock(&self.fail) = (n > 0).then_some((n, status));
    }

    /// While hidden, a GET of the object answers 404, lists leave it out and
    /// watches send nothing about it; it still exists and can be written.
    pub fn hide(&self, resource: Resource, namespace: &str, name: &str, hidden: bool) {
        let key = (resource, namespace.to_owned(), name.to_owned());
        let mut set = lock(&self.hidden);
        if hidden {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    pub(crate) fn stalled(&self) -> watch::Receiver<bool> {
        self.stall.subscribe()
    }

    pub(crate) fn closes(&self) -> watch::Receiver<u64> {
        self.close.subscribe()
    }

    /// Consumes one injected failure, if any are left.
    pub(crate) fn take_failure(&self) -> Option<u16> {
        let mut fail = lock(&self.fail);
        let (left, status) = fail.as_mut()?;
        let status = *status;
        *left -= 1;
        if *left == 0 {
            *fail = None;
        }
        Some(status)
    }

    pub(crate) fn is_hidden(&self, resource: Resource, namespace: &str, name: &str) -> bool {
        let set = lock(&self.hidden);
        !set.is_empty() && set.contains(&(resource, namespace.to_owned(), name.to_owned()))
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not turn
/// every later request into a second panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
