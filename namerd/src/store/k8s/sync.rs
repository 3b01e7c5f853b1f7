//! The Kubernetes store's housekeeping beside its watcher: expiring
//! pending writes and long-missing objects, and probing missing objects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tokio::time::Instant;

use super::index::Index;
use super::lock;

/// Expires pending writes and missing objects, and probes missing objects
/// with a GET: an object a relist did not show (hidden by a lagging API
/// server) is current again as soon as a GET returns it, with no write
/// needed to produce an event.
pub(super) async fn tick(index: Arc<Mutex<Index>>, api: Api<ConfigMap>) {
    let mut every = tokio::time::interval(TICK);
    let mut ticks = 0u64;
    loop {
        every.tick().await;
        ticks += 1;
        let missing = {
            let mut ix = lock(&index);
            ix.tick(Instant::now());
            if !ticks.is_multiple_of(PROBE_EVERY) {
                continue;
            }
            let names: Vec<String> = ix
                .missing()
                .iter()
                .map(|ns| ix.layout().object_name(ns))
                .collect();
            names
        };
        for name in missing {
            match api.get_opt(&name).await {
                Ok(Some(cm)) => lock(&index).apply(cm),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%name, %error, "probe of a missing dtab ConfigMap failed")
                }
            }
        }
    }
}

/// How often pending writes and missing objects are checked.
const TICK: Duration = Duration::from_millis(500);
/// Missing objects are probed every this many ticks.
const PROBE_EVERY: u64 = 4;
