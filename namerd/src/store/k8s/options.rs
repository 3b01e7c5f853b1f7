//! The Kubernetes store's settings (the `io.l5d.k8s` storage keys after
//! parsing) and why opening it can fail. No I/O.

use std::time::Duration;

use crate::k8s::{ClientError, Connection};
use crate::store::{Retention, StoreError};

/// How a [`K8sStore`](super::K8sStore) is set up (the `io.l5d.k8s` storage keys).
#[derive(Clone, Debug, PartialEq)]
pub struct K8sOptions {
    pub connection: Connection,
    /// The Kubernetes namespace of the ConfigMaps.
    pub namespace: String,
    /// ConfigMap names are this followed by the dtab namespace.
    pub name_prefix: String,
    /// `key=value[,key=value]`: put on every object, and the only objects
    /// listed and watched.
    pub label_selector: String,
    /// The data key holding the dtab text.
    pub data_key: String,
    /// A watch on which nothing (not even a bookmark) arrives this long is
    /// restarted; at least 6 s.
    pub idle_timeout: Duration,
    /// The longest pause between attempts to reach the API server again.
    pub max_backoff: Duration,
    /// How long an object missing from the API server's lists keeps its
    /// last good dtab before it is believed deleted.
    pub missing_grace: Duration,
    /// How long the index waits for the watcher to confirm a write of ours
    /// before it trusts the watcher again.
    pub pending_ttl: Duration,
    /// How long `open` waits for the first complete list.
    pub open_timeout: Duration,
    /// The history kept in each object, within its own bound of
    /// [`MAX_HISTORY`](super::object::MAX_HISTORY) earlier versions and 1 MiB.
    pub retention: Retention,
}

impl Default for K8sOptions {
    fn default() -> Self {
        K8sOptions {
            connection: Connection::Infer,
            namespace: "default".into(),
            name_prefix: "dtab-".into(),
            label_selector: "l5d.io/dtab=true".into(),
            data_key: "dtab".into(),
            idle_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(10),
            missing_grace: Duration::from_secs(300),
            pending_ttl: Duration::from_secs(10),
            open_timeout: Duration::from_secs(10),
            retention: Retention::default(),
        }
    }
}

/// Why a [`K8sStore`](super::K8sStore) could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum K8sOpenError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("invalid labelSelector {selector:?}: expected key=value pairs separated by commas")]
    Selector { selector: String },
    #[error(
        "cannot list dtab ConfigMaps in Kubernetes namespace {namespace} within {timeout:?}: {message}"
    )]
    Load {
        namespace: String,
        timeout: Duration,
        message: String,
    },
}

impl From<K8sOpenError> for StoreError {
    fn from(e: K8sOpenError) -> Self {
        StoreError::unavailable(e)
    }
}

/// `key=value` pairs of a selector, which the store also writes as labels.
pub fn selector_labels(selector: &str) -> Option<std::collections::BTreeMap<String, String>> {
    selector
        .split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let (k, v) = (k.trim(), v.trim().trim_start_matches('='));
            (!k.is_empty() && !k.contains('!')).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}
