//! The Kubernetes dtab store set up against a test API server, shared by
//! the conformance suite and the Kubernetes acceptance tests.

use l5d_k8s_api_server::ApiServer;
use namerd::k8s::Connection;
use namerd::store::k8s::K8sOptions;

/// The store's options for a test API server: its plain-HTTP address, as a
/// `kubectl proxy` would be.
pub(crate) fn k8s_options(server: &ApiServer) -> K8sOptions {
    K8sOptions {
        connection: Connection::Proxy {
            host: server.addr().ip().to_string(),
            port: server.addr().port(),
        },
        ..K8sOptions::default()
    }
}
