//! Injected failures: stalled and closed watches, failed requests and
//! hidden objects, switched on by tests through
//! [`ApiServer::faults`](crate::ApiServer::faults) to reproduce what a real control plane does
//! on a bad day.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::Resource;
use crate::store::Key;

/// The fault switches of a running server.
#[derive(Debug)]
pub struct Faults {
    stall: watch::Sender<bool>,
    close: watch::Sender<u64>,
    open: Arc<AtomicUsize>,
    fail: Mutex<Option<(usize, u16)>>,
    hidden: Mutex<HashSet<Key>>,
}

impl Faults {
    pub(crate) fn new() -> Self {
        Faults {
            stall: watch::Sender::new(false),
            close: watch::Sender::new(0),
            open: Arc::new(AtomicUsize::new(0)),
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

    /// How many watch streams are open: counted from the moment a watch
    /// request is answered, so a [`close_watches`](Self::close_watches)
    /// made after this counts one is sure to end it. Tests wait on it
    /// instead of guessing when a client's watch has arrived.
    pub fn open_watches(&self) -> usize {
        self.open.load(Ordering::SeqCst)
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

    /// Registers an open watch: its receiver of closes (subscribed now, so
    /// a close from here on ends it) and its place in the count, given
    /// back when the guard drops.
    pub(crate) fn open_watch(&self) -> OpenWatch {
        let closes = self.close.subscribe();
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenWatch {
            open: self.open.clone(),
            closes,
        }
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

/// One open watch stream, as [`Faults::open_watch`] counted it.
pub(crate) struct OpenWatch {
    open: Arc<AtomicUsize>,
    pub(crate) closes: watch::Receiver<u64>,
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not turn
/// every later request into a second panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
