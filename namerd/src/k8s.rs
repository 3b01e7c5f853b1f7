//! What namerd's Kubernetes store, namer and transformer share: how to reach
//! the API server ([`Connection`]) and how to keep a local view of a
//! resource current (`k8s/watch.rs`, a thin driver around kube-runtime's
//! `watcher` that feeds a pure index).
//!
//! The connection is, as in Linkerd 1.x, a plain-HTTP `kubectl proxy`
//! (`host` + `port`), or a kubeconfig file (`kubeconfig`), or, when neither
//! is set, whatever `kube::Config::infer` finds: the `KUBECONFIG`
//! environment variable, `~/.kube/config`, or the pod's service account.
//! This module knows nothing of dtabs, namers or namerd's configuration
//! file; the indexes live with their users.

use std::path::PathBuf;

pub(crate) mod watch;

/// How to reach the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// A plain-HTTP proxy to the API server (`kubectl proxy`), no TLS and no
    /// credentials, as Linkerd 1.x's `host`/`port` keys.
    Proxy { host: String, port: u16 },
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
    /// `KUBECONFIG`, `~/.kube/config` or the in-cluster service account.
    Infer,
}

/// Linkerd 1.x's `kubectl proxy` port.
pub const DEFAULT_PROXY_PORT: u16 = 8001;
/// Linkerd 1.x's `kubectl proxy` host.
pub const DEFAULT_PROXY_HOST: &str = "localhost";

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid Kubernetes API address http://{host}:{port}: {message}")]
    Address {
        host: String,
        port: u16,
        message: String,
    },
    #[error("cannot read kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "cannot find Kubernetes credentials (KUBECONFIG, ~/.kube/config, service account): {0}"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

impl Connection {
    /// Builds a client. Reads the kubeconfig or service account now; makes
    /// no request. Must run inside a tokio runtime.
    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        let config = match self {
            Connection::Proxy { host, port } => {
                let url = format!("http://{host}:{port}");
                let uri = url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| ClientError::Address {
                        host: host.clone(),
                        port: *port,
                        message: e.to_string(),
                    })?;
                kube::Config::new(uri)
            }
            Connection::Kubeconfig(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    ClientError::Kubeconfig {
                        path: path.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|source| ClientError::Kubeconfig {
                        path: path.clone(),
                        source,
                    })?
            }
            Connection::Infer => kube::Config::infer().await.map_err(ClientError::Infer)?,
        };
        kube::Client::try_from(config).map_err(ClientError::Client)
    }
}

/// Whether an API error is the server's `code` (404, 409, ...).
pub(crate) fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Whether an API error is a 409 whose reason is `AlreadyExists` (a create
/// lost), as opposed to `Conflict` (a stale `resourceVersion`).
pub(crate) fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}
