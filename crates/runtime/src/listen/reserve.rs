//! A spare file descriptor, so that a process out of descriptors can
//! still refuse a connection cleanly instead of leaving it in the kernel's
//! backlog, where the client waits with no answer until it gives up (the
//! trick of libev, nginx and Netty): on EMFILE the listener closes the
//! spare, accepts one pending connection, closes that at once (the client
//! sees its connection end) and opens the spare again.

use std::fs::File;
use std::io;
use std::sync::Mutex;

#[derive(Debug)]
pub(super) struct Reserve(Mutex<Option<File>>);

impl Reserve {
    pub(super) fn new() -> Self {
        Reserve(Mutex::new(File::open("/dev/null").ok()))
    }

    /// Whether `e` says the process (or the system) is out of descriptors.
    pub(super) fn is_exhaustion(e: &io::Error) -> bool {
        matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
    }

    /// Frees the spare descriptor for one accept; `false` if there was
    /// none to free (it could not be opened again last time).
    pub(super) fn release(&self) -> bool {
        self.0.lock().expect("never poisoned").take().is_some()
    }

    /// Takes a spare descriptor again (fails quietly while the process is
    /// still out of them; the next exhaustion tries again).
    pub(super) fn restore(&self) {
        let mut spare = self.0.lock().expect("never poisoned");
        if spare.is_none() {
            *spare = File::open("/dev/null").ok();
        }
    }
}

/// Linux's `EMFILE` (the process's limit) and `ENFILE` (the system's).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
