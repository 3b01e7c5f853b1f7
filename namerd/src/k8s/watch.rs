//! Keeps an index current with kube-runtime's `watcher`: list, then watch
//! from the list's `resourceVersion`, resume after a watch ends, bookmarks,
//! and a client-side idle timeout (`watcher::Config::timeout` plus 5 s)
//! that restarts a watch on which nothing, not even a bookmark, arrived.
//!
//! Where the `watcher` alone falls short for us, this driver adds:
//! - **Atomic relists.** `InitApply` objects are buffered until `InitDone`
//!   and handed over as one [`Update::Reset`], so an index never sees half
//!   a list.
//! - **Staleness that clears.** After a failed watch *start* the watcher
//!   resumes without emitting anything, so nothing would tell the index it
//!   is current again. The driver therefore restarts the watcher (a fresh
//!   list) after every error; the `Reset` that follows is the proof of
//!   health. A `410 Gone` is not reported as a failure: it is the normal
//!   signal to relist.
//! - **Backoff that does not reset too early.** A server that lists fine
//!   but fails every watch would otherwise be hammered; the backoff resets
//!   only after a watcher ran for [`HEALTHY_AFTER`].
//!
//! It knows nothing of what the objects mean.

use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt as _;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use l5d_runtime::Backoff;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// What the index is told.
#[derive(Debug)]
pub(crate) enum Update<K> {
    /// A complete list: objects not in it are gone (or hidden; the index
    /// decides how much to trust absence). `started` is taken before the
    /// list was requested: the list is newer than anything done before it.
    Reset {
        objects: Vec<K>,
        started: Instant,
    },
    Apply(K),
    Delete(K),
    /// The API server failed; the index keeps what it has.
    Failed(String),
}

/// A watcher that ran this long before failing resets the backoff.
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// The kube-runtime `watcher::Config` for a label selector and an idle
/// timeout: the server ends each watch after `idle - 5 s` and the watcher
/// gives up on a silent one after `idle`, so `idle` is at least 6 s.
pub(crate) fn config(label_selector: Option<&str>, idle_timeout: Duration) -> watcher::Config {
    let server_timeout = idle_timeout.as_secs().saturating_sub(5).max(1);
    let mut config =
        watcher::Config::default().timeout(u32::try_from(server_timeout).unwrap_or(u32::MAX));
    if let Some(selector) = label_selector {
        config = config.labels(selector);
    }
    config
}

/// Runs forever (until the task is aborted), handing every change to `on`.
pub(crate) async fn drive<K, F>(
    api: Api<K>,
    config: watcher::Config,
    max_backoff: Duration,
    mut on: F,
) where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: FnMut(Update<K>) + Send,
{
    let mut backoff = Backoff::new(crate::RETRY_BASE, max_backoff);
    loop {
        let started = Instant::now();
        let mut stream = std::pin::pin!(watcher::watcher(api.clone(), config.clone()));
        let mut buffer = Vec::new();
        let mut list_started = started;
        while let Some(item) = stream.next().await {
            match item {
                // The watcher yields `Init` before it sends the list request.
                Ok(Event::Init) => {
                    buffer.clear();
                    list_started = Instant::now();
                }
                Ok(Event::InitApply(object)) => buffer.push(object),
                Ok(Event::InitDone) => on(Update::Reset {
                    objects: std::mem::take(&mut buffer),
                    started: list_started,
                }),
                Ok(Event::Apply(object)) => on(Update::Apply(object)),
                Ok(Event::Delete(object)) => on(Update::Delete(object)),
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    tracing::debug!(%status, "watch expired (410 Gone); relisting");
                    break;
                }
                Err(error) => {
                    on(Update::Failed(error.to_string()));
                    break;
                }
            }
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeout_sets_the_server_timeout() {
        assert_eq!(config(None, Duration::from_secs(60)).timeout, Some(55));
        assert_eq!(config(None, Duration::from_secs(6)).timeout, Some(1));
        let c = config(Some("a=b"), Duration::from_secs(1));
        assert_eq!(
            (c.timeout, c.label_selector.as_deref()),
            (Some(1), Some("a=b"))
        );
    }
}
