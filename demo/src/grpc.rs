//! The gRPC demo backend: `l5d.demo.Greeter` (a unary call and a
//! bidirectional stream) and the standard `grpc.health.v1.Health` service,
//! so that scripts and tests can wait until it serves.
//!
//! [`GreeterBackend::routes`] builds the services, so tests can mount them
//! on any server; [`GreeterBackend::serve`] runs them on a listener.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt as _};
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use tonic_health::server::HealthReporter;

use crate::Name;
use crate::greeter::greeter_server::{Greeter, GreeterServer};
use crate::greeter::{HelloReply, HelloRequest};

/// The gRPC demo backend. Clones share the name.
#[derive(Clone, Debug)]
pub struct GreeterBackend {
    name: Arc<str>,
    delay: Duration,
}

// === impl GreeterBackend ===

impl GreeterBackend {
    /// A backend that greets as `name`, waiting `delay` before each reply.
    pub fn new(name: &Name, delay: Duration) -> GreeterBackend {
        GreeterBackend {
            name: Arc::from(name.as_str()),
            delay,
        }
    }

    /// The Greeter and health services, with `l5d.demo.Greeter` reported
    /// as serving; the reporter lets the caller change that.
    pub async fn routes(self) -> (Routes, HealthReporter) {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<GreeterServer<Self>>().await;
        let routes = Routes::new(GreeterServer::new(self)).add_service(health);
        (routes, reporter)
    }

    /// Serves on `listener` until `shutdown` completes; then reports
    /// `NOT_SERVING` and lets open calls finish (tonic sends HTTP/2 GOAWAY).
    /// The caller bounds how long that may take: a chat lasts as long as
    /// its client keeps it open.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        let (routes, reporter) = self.routes().await;
        let stop = async move {
            shutdown.await;
            reporter
                .set_not_serving::<GreeterServer<GreeterBackend>>()
                .await;
        };
        // Small messages: do not wait for Nagle.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop)
            .await
    }

    async fn reply(&self, req: &HelloRequest) -> HelloReply {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        HelloReply {
            message: format!("hello {} from {}", req.name, self.name),
            served_by: self.name.to_string(),
        }
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for GreeterBackend {
    async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(self.reply(req.get_ref()).await))
    }

    type ChatStream = ReplyStream;

    /// One reply per request, as each arrives; an error from the client's
    /// side of the stream ends the call with that status.
    async fn chat(
        &self,
        req: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let backend = self.clone();
        let replies = req.into_inner().then(move |req| {
            let backend = backend.clone();
            async move { Ok(backend.reply(&req?).await) }
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
