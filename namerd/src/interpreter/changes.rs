//! Waiting for any namer's set of names to change.

use std::sync::Arc;

use futures::future::select_all;
use tokio::sync::watch;

use crate::namer::Namer;

/// The `lookup_changes` channels of a set of namers. Channels whose namer
/// can never change (closed) are dropped, so waiting never spins.
#[derive(Debug)]
pub(super) struct NamerChanges {
    open: Vec<watch::Receiver<u64>>,
}

impl NamerChanges {
    pub(super) fn new(namers: &[Arc<dyn Namer>]) -> Self {
        NamerChanges {
            open: namers.iter().map(|n| n.lookup_changes()).collect(),
        }
    }

    /// Completes when any namer reports a change; never, if none can.
    pub(super) async fn next(&mut self) {
        loop {
            if self.open.is_empty() {
                return std::future::pending().await;
            }
            let (result, index) = {
                let waits = self.open.iter_mut().map(|rx| Box::pin(rx.changed()));
                let (result, index, _rest) = select_all(waits).await;
                (result, index)
            };
            match result {
                Ok(()) => return,
                Err(_) => {
                    self.open.swap_remove(index);
                }
            }
        }
    }
}
