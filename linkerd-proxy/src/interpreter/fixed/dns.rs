//! Keeps a host name's addresses current: a lookup every `refresh`, the
//! last good set kept (and the error recorded) when one fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::{Addr, Endpoint};
use l5d_runtime::Backoff;

use crate::interpreter::Resolution;
use crate::interpreter::cache::Entry;

/// A lookup that takes longer than this counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves `host` until the task is aborted. After a failure the next
/// lookup comes sooner than `refresh` (backoff from one second), so that a
/// name that never resolved does not wait a whole refresh period.
pub(super) async fn run(host: String, port: u16, entry: Arc<Entry<Resolution>>, refresh: Duration) {
    let mut backoff = Backoff::new(Duration::from_secs(1).min(refresh), refresh);
    loop {
        let lookup = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        );
        let delay = match lookup.await {
            Ok(Ok(addrs)) => {
                backoff.reset();
                entry.set_error(None);
                let new = bound(addrs);
                entry.publish_if(new, differs);
                refresh
            }
            Ok(Err(e)) => failed(
                &entry,
                format!("DNS lookup of {host} failed: {e}"),
                &mut backoff,
            ),
            Err(_) => failed(
                &entry,
                format!("DNS lookup of {host} timed out after {LOOKUP_TIMEOUT:?}"),
                &mut backoff,
            ),
        };
        tokio::time::sleep(delay).await;
    }
}

fn failed(entry: &Entry<Resolution>, message: String, backoff: &mut Backoff) -> Duration {
    tracing::debug!(%message, "keeping the last addresses");
    if !matches!(entry.current().addr, Addr::Bound(_)) {
        entry.set(Resolution::now(Addr::Failed(message.as_str().into())));
    }
    entry.set_error(Some(message));
    backoff.next_delay()
}

fn differs(cur: &Resolution, new: &Resolution) -> bool {
    match (&cur.addr, &new.addr) {
        (Addr::Bound(a), Addr::Bound(b)) => a != b,
        _ => true,
    }
}

/// A resolved address set, received now.
pub(super) fn bound(addrs: impl IntoIterator<Item = SocketAddr>) -> Resolution {
    Resolution::now(Addr::bound(addrs.into_iter().map(Endpoint::new)))
}
