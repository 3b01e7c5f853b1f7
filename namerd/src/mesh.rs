//! The `io.l5d.mesh` interface: Linkerd 1.x's `io.linkerd.mesh` gRPC API
//! (`Interpreter`, `Resolver`, `Delegator`, `Codec`) over namerd's
//! interpreter and dtab store, plus the standard `grpc.health.v1.Health`
//! and server-reflection services.
//!
//! Linkerd 1.x proxies configured with the `io.l5d.mesh` interpreter hold
//! one `StreamBoundTree` per name and one `StreamReplicas` per bound id on
//! a single HTTP/2 connection, for as long as they run. So the server is
//! tuned for many long-lived streams: HTTP/2 keep-alive pings detect
//! half-dead connections (the lesson of Linkerd #1346 and #2249), a
//! connection may hold thousands of streams, and every stream is a watch
//! channel polled in place, holding one value however slow its client
//! (see `mesh/stream.rs`). On shutdown every stream ends with
//! `UNAVAILABLE`, so that clients reconnect, and the server drains.
//!
//! Argument checks, status codes and messages follow Linkerd's namerd
//! exactly; `mesh/error.rs` maps every failure to its status in one place.
//!
//! Connections come from `l5d-runtime`'s [`Listener`] (caps, TLS with ALPN
//! `h2`, optional client certificates), through `mesh/incoming.rs`: each
//! handshake runs in its own task, the client must send its HTTP/2
//! preface within the header read timeout, request bodies that stall are
//! cut off, and every request carries the connection's [`l5d_runtime::Peer`].
//!
//! This module knows the interpreter and the store only through their
//! public APIs, and nothing of HTTP beyond tonic's server settings.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use l5d_proto::mesh as pb;
use l5d_runtime::listen::Listener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::{Response, Status};

use crate::interpreter::Interpreter;

mod codec;
mod delegator;
mod error;
mod incoming;
mod interpreter;
mod metrics;
mod request;
mod resolver;
mod stream;

use error::MeshError;

/// Settings of the mesh server. The defaults suit a namerd serving a fleet
/// of Linkerd proxies.
#[derive(Clone, Debug)]
pub struct MeshOptions {
    /// How often to send an HTTP/2 PING on an idle connection.
    pub keep_alive_interval: Duration,
    /// How long to wait for the PING's acknowledgement before closing the
    /// connection (and with it every stream on it).
    pub keep_alive_timeout: Duration,
    /// Streams one connection may hold open. A proxy holds one per name and
    /// one per bound id; hyper's default of 200 would starve it.
    pub max_concurrent_streams: u32,
    /// The largest request header list accepted (hyper's default).
    pub max_header_list_size: u32,
    /// The largest request message accepted; requests carry a name and a
    /// local dtab, never much.
    pub max_request_bytes: usize,
    /// How long a unary `Get*` waits for a value that is still pending.
    pub pending_timeout: Duration,
    /// How long `GetDelegateTree` waits for namers that have not answered.
    pub delegate_timeout: Duration,
    /// How long a client may take to send its HTTP/2 preface (after TLS).
    pub preface_timeout: Duration,
    /// How long a request body may send nothing while it is read.
    pub body_read_timeout: Duration,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            keep_alive_interval: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(10),
            max_concurrent_streams: 10_000,
            max_header_list_size: 16 * 1024,
            max_request_bytes: 1024 * 1024,
            pending_timeout: Duration::from_secs(10),
            delegate_timeout: Duration::from_secs(10),
            preface_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves the mesh API on `listener` until `shutdown` becomes true, then
/// ends every stream, stops accepting and waits for connections to drain.
///
/// The listener is bound by the caller (so a port conflict fails at
/// start-up, and tests can bind port 0).
pub async fn serve(
    listener: Listener,
    interpreter: Arc<Interpreter>,
    shutdown: watch::Receiver<bool>,
    opts: MeshOptions,
) -> Result<(), tonic::transport::Error> {
    let routes = routes(interpreter, shutdown.clone(), &opts).await;
    let name: Arc<str> = Arc::from(listener.name());
    let incoming = incoming::incoming(listener, opts.preface_timeout, shutdown.clone());
    let mut stop = shutdown;
    Server::builder()
        .layer(incoming::TimedBodyLayer::new(opts.body_read_timeout, name))
        .http2_keepalive_interval(Some(opts.keep_alive_interval))
        .http2_keepalive_timeout(Some(opts.keep_alive_timeout))
        .max_concurrent_streams(opts.max_concurrent_streams)
        .http2_max_header_list_size(opts.max_header_list_size)
        // h2's Rapid Reset guards, at their defaults, set so that a
        // change of defaults upstream does not silently turn them off.
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_local_error_reset_streams(Some(1024))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move {
            stream::shutdown_signal(&mut stop).await;
        })
        .await
}

/// The mesh services, health and reflection, for a tonic server (or an
/// axum router via [`Routes::into_axum_router`]).
///
/// Health reports `SERVING` for `""` and each `io.linkerd.mesh` service
/// until `shutdown` becomes true, then `NOT_SERVING` (to `Watch` streams,
/// which then end). Must be called inside a tokio runtime.
pub async fn routes(
    interpreter: Arc<Interpreter>,
    shutdown: watch::Receiver<bool>,
    opts: &MeshOptions,
) -> Routes {
    use pb::codec_server::CodecServer;
    use pb::delegator_server::DelegatorServer;
    use pb::interpreter_server::InterpreterServer;
    use pb::resolver_server::ResolverServer;

    let ctx = Context {
        interpreter,
        shutdown: shutdown.clone(),
        pending_timeout: opts.pending_timeout,
        delegate_timeout: opts.delegate_timeout,
    };
    let max = opts.max_request_bytes;
    let health = health(shutdown).await;
    let (reflection_v1, reflection_v1alpha) = reflection();
    Routes::new(
        InterpreterServer::new(interpreter::InterpreterService::new(ctx.clone()))
            .max_decoding_message_size(max),
    )
    .add_service(
        ResolverServer::new(resolver::ResolverService::new(ctx.clone()))
            .max_decoding_message_size(max),
    )
    .add_service(
        DelegatorServer::new(delegator::DelegatorService::new(ctx)).max_decoding_message_size(max),
    )
    .add_service(CodecServer::new(codec::CodecService).max_decoding_message_size(max))
    .add_service(health)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha)
    .prepare()
}

/// The fully qualified names of the mesh services, as health and
/// reflection know them.
pub const SERVICE_NAMES: [&str; 4] = [
    "io.linkerd.mesh.Interpreter",
    "io.linkerd.mesh.Resolver",
    "io.linkerd.mesh.Delegator",
    "io.linkerd.mesh.Codec",
];

async fn health(
    mut shutdown: watch::Receiver<bool>,
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    use tonic_health::ServingStatus;

    let (reporter, service) = tonic_health::server::health_reporter();
    for name in SERVICE_NAMES {
        reporter
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    // Load balancers and probes stop sending new streams while we drain.
    tokio::spawn(async move {
        stream::shutdown_signal(&mut shutdown).await;
        let names: Vec<&str> = std::iter::once("").chain(SERVICE_NAMES).collect();
        for name in &names {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        // A `Watch` stream of tonic-health ends only when its status is
        // removed; a client watching health would otherwise keep the server
        // from draining. (`Check` then answers NOT_FOUND while we drain.)
        let mut reporter = reporter;
        for name in &names {
            reporter.clear_service_status(name).await;
        }
    });
    service
}

/// Reflection (both protocol versions: grpcurl speaks v1, older tools
/// v1alpha) over the checked-in descriptor sets of the mesh API and of the
/// health service.
fn reflection() -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(l5d_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // The descriptor sets are compiled in and decoded by tests; a failure
    // here is a build defect, not a runtime condition.
    let v1 = builder()
        .build_v1()
        .expect("the compiled-in descriptor sets decode");
    let v1alpha = builder()
        .build_v1alpha()
        .expect("the compiled-in descriptor sets decode");
    (v1, v1alpha)
}

/// What every mesh service needs.
#[derive(Clone, Debug)]
struct Context {
    interpreter: Arc<Interpreter>,
    shutdown: watch::Receiver<bool>,
    pending_timeout: Duration,
    delegate_timeout: Duration,
}

impl Context {
    /// The value of `rx` once `ready` holds for it, or its latest value
    /// after the pending timeout (or at once if it can no longer change).
    async fn settled<T: Clone>(
        &self,
        mut rx: watch::Receiver<T>,
        ready: impl FnMut(&T) -> bool,
    ) -> Result<T, MeshError> {
        let mut shutdown = self.shutdown.clone();
        let wait = async {
            // The guard `wait_for` returns must not outlive this line.
            let _ = tokio::time::timeout(self.pending_timeout, rx.wait_for(ready))
                .await
                .map(|r| r.map(|_| ()));
            rx.borrow().clone()
        };
        tokio::select! {
            biased;
            () = stream::shutdown_signal(&mut shutdown) => Err(MeshError::ShuttingDown),
            value = wait => Ok(value),
        }
    }
}

/// Runs a unary request and counts it by outcome.
async fn unary<T>(
    rpc: &'static str,
    request: impl Future<Output = Result<T, MeshError>>,
) -> Result<Response<T>, Status> {
    match request.await {
        Ok(rsp) => {
            metrics::record_request(rpc, tonic::Code::Ok);
            Ok(Response::new(rsp))
        }
        Err(e) => Err(refuse(rpc, e)),
    }
}

/// Counts a request that failed before it could answer (or open its
/// stream) and turns its error into a status.
fn refuse(rpc: &'static str, e: MeshError) -> Status {
    metrics::record_request(rpc, e.code());
    e.into()
}
