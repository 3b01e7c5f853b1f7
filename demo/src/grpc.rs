//! The gRPC demo backend: `l5d.demo.Greeter` (a unary call and a
//! bidirectional stream) and the standard `grpc.health.v1.Health` service,
//! so that scripts and tests can wait until it serves.
//!
//! The same port answers `/fault` and `/requests` (any method, HTTP/1.1 or
//! HTTP/2; see [`crate::http`]), so a test drives both backends alike. Here
//! a fault can set `grpc_status` and `delay_ms` (plus `fraction`, `method`,
//! `path`; a call's path is `/l5d.demo.Greeter/SayHello` or `.../Chat`);
//! `status` and `reset` are refused with 400. A faulted call fails with
//! that gRPC status and the message `fault`: SayHello always Trailers-Only
//! (how tonic answers an error from a unary call), Chat as `grpc_in` says
//! (`trailers`: a head, then the status in trailers without a message).
//! With the request log on, each Greeter call is logged when it is
//! answered (a Chat when it starts, with `grpc_status` null unless
//! faulted); health checks are not.
//!
//! [`GreeterBackend::routes`] builds the services, so tests can mount them
//! on any server; [`GreeterBackend::serve`] runs them on a listener.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Version};
use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt as _};
use tonic::codegen::Service;
use tonic::metadata::MetadataMap;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_health::server::HealthReporter;

use crate::Name;
use crate::control::{Control, Record, logged_headers};
use crate::fault::GrpcIn;
use crate::greeter::greeter_server::{Greeter, GreeterServer};
use crate::greeter::{HelloReply, HelloRequest};

const SAY_HELLO: &str = "/l5d.demo.Greeter/SayHello";
const CHAT: &str = "/l5d.demo.Greeter/Chat";

/// The gRPC demo backend. Clones share the name, the fault and the log.
#[derive(Clone, Debug)]
pub struct GreeterBackend {
    name: Arc<str>,
    delay: Duration,
    control: Arc<Control>,
}

/// `/fault` and `/requests` on the gRPC port: a tower service for tonic's
/// router, which takes any request body and ignores it.
#[derive(Clone, Debug)]
struct ControlService(Arc<Control>);

// === impl GreeterBackend ===

impl GreeterBackend {
    /// A backend that greets as `name`, waiting `delay` before each reply.
    pub fn new(name: &Name, delay: Duration) -> GreeterBackend {
        GreeterBackend {
            name: Arc::from(name.as_str()),
            delay,
            control: Arc::new(Control::new(false, true)),
        }
    }

    /// With `true`, the request log starts on (see `--log-requests`);
    /// `/requests?on` and `?off` switch it later. Any fault is cleared.
    pub fn with_request_log(self, on: bool) -> GreeterBackend {
        GreeterBackend {
            control: Arc::new(Control::new(on, true)),
            ..self
        }
    }

    /// The Greeter and health services, with `l5d.demo.Greeter` reported
    /// as serving (the reporter lets the caller change that), and the
    /// control endpoints `/fault` and `/requests`.
    pub async fn routes(self) -> (Routes, HealthReporter) {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<GreeterServer<Self>>().await;
        let control = ControlService(self.control.clone());
        let router = Routes::new(GreeterServer::new(self))
            .add_service(health)
            .into_axum_router()
            .route_service("/fault", control.clone())
            .route_service("/requests", control);
        (Routes::from(router), reporter)
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
        // HTTP/1.1 too, for `/fault` and `/requests` from any client.
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop)
            .await
    }

    /// Carries out the fault in force on a call to `path`, if it hits, and
    /// logs the call (when the log is on). `Err`: fail the call with that
    /// status, in trailers if `Ok` from the caller would still send them.
    async fn fault(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
    ) -> Result<(), (Status, GrpcIn)> {
        let flags = self.control.flags();
        let arrived = flags.logging().then(Instant::now);
        let hit = self.control.hit(flags, &Method::POST, path, true);
        let mut outcome = Ok(());
        if let Some(hit) = &hit {
            let fault = hit.fault();
            if let Some(delay) = fault.delay {
                tokio::time::sleep(delay).await;
            }
            if let Some(code) = fault.grpc_status {
                let status = Status::new(Code::from_i32(i32::from(code)), "fault");
                outcome = Err((status, fault.grpc_in));
            }
        }
        self.control.record(flags, || Record {
            method: Method::POST,
            path: path.to_string(),
            version: Version::HTTP_2,
            arrived: arrived.unwrap_or_else(Instant::now),
            faulted: hit.as_ref().map(|hit| match hit.fault().grpc_status {
                Some(_) => "grpc_status",
                None => "delay",
            }),
            status: Some(hyper::StatusCode::OK),
            grpc_status: match (&hit, &outcome) {
                (_, Err((status, _))) => u8::try_from(status.code() as i32).ok(),
                // A Chat's status is known only when it ends.
                _ if path == CHAT => None,
                _ => Some(0),
            },
            headers: logged_headers(metadata.as_ref()),
        });
        outcome
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
        self.fault(SAY_HELLO, req.metadata())
            .await
            .map_err(|(status, _)| status)?;
        Ok(Response::new(self.reply(req.get_ref()).await))
    }

    type ChatStream = ReplyStream;

    /// One reply per request, as each arrives; an error from the client's
    /// side of the stream ends the call with that status.
    async fn chat(
        &self,
        req: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        match self.fault(CHAT, req.metadata()).await {
            Ok(()) => {}
            Err((status, GrpcIn::Headers)) => return Err(status),
            Err((status, GrpcIn::Trailers)) => {
                let failed = tokio_stream::once(Err(status));
                return Ok(Response::new(Box::pin(failed)));
            }
        }
        let backend = self.clone();
        let replies = req.into_inner().then(move |req| {
            let backend = backend.clone();
            async move { Ok(backend.reply(&req?).await) }
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

// === impl ControlService ===

impl<B> Service<hyper::Request<B>> for ControlService {
    type Response = hyper::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: hyper::Request<B>) -> Self::Future {
        let rsp = self
            .0
            .answer(req.uri().path(), req.uri().query())
            .expect("routed here for /fault and /requests only");
        std::future::ready(Ok(rsp.map(Full::new)))
    }
}
