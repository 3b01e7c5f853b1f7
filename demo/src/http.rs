//! The HTTP demo backend: HTTP/1.1 and HTTP/2 with prior knowledge on one
//! port (hyper-util's `auto` builder tells them apart by the HTTP/2
//! preface), keep-alive on.
//!
//! Every request is answered `200` with the backend's body and
//! `x-served-by: NAME`, and with what the backend received, so that tests
//! can see what a proxy forwarded: each `l5d-*` request header comes back as
//! `x-echo-l5d-*`, `Via` (one entry per proxy the request crossed) as
//! `x-echo-via`, the Host (or HTTP/2 `:authority`) as `x-echo-host`, the
//! path and query as `x-echo-path`. A gRPC request (POST with
//! `content-type: application/grpc...`), whatever its method, gets a valid
//! gRPC answer instead: `content-type: application/grpc`, one empty message
//! (5 zero bytes), trailers `grpc-status: 0`.
//!
//! # Control endpoints
//!
//! Three paths (any method, parameters in the query) change the backend at
//! run time. They are never delayed, faulted or logged.
//!
//! - `/delay?ms=N` sets the delay before every later answer; replies
//!   `delay=N`.
//! - `/fault?...` sets the fault for every later request and replies with
//!   the fault in force as one line, `fault status=503 fraction=0.2` (its
//!   words joined with `&` are a query that sets it again), or
//!   `fault none`. `/fault` alone or `/fault?clear` clears it. A bad
//!   parameter is a 400 naming it and what was expected, and leaves the
//!   fault in force. Parameters (see [`crate::fault`]):
//!   - `status=N` (200..=599): answer N with `x-fault: status` and the body
//!     `l5d-demo NAME: fault status=N`.
//!   - `reset=before_head`: answer nothing. HTTP/1.1: not a byte, then the
//!     connection closes with a TCP RST (`SO_LINGER` 0). HTTP/2: the stream
//!     is reset with `RST_STREAM` `INTERNAL_ERROR` (hyper's reset for a
//!     failed service); the connection goes on.
//!   - `reset=after_head`: the head (`status`, or 200, with
//!     `x-fault: reset_after_head`) and one line of body, then, 100 ms
//!     later, the body fails. HTTP/1.1: the body is chunked and the
//!     connection closes before the last chunk. HTTP/2: `RST_STREAM`
//!     `INTERNAL_ERROR` after the DATA frame.
//!   - `delay_ms=N`: wait N ms more before answering (`x-fault: delay` when
//!     nothing else changes the answer).
//!   - `grpc_status=N` (0..=16), for gRPC requests: 200 with
//!     `content-type: application/grpc`, `x-fault: grpc_status`, no
//!     message, and `grpc-status: N`, `grpc-message: fault`; in trailers
//!     (`grpc_in=trailers`, the default) or Trailers-Only, in the head with
//!     the end of the stream (`grpc_in=headers`). Other requests are not
//!     selected by a fault that sets only this.
//!   - `fraction=F` (0..=1, default 1): which selected requests are hit,
//!     counting from 0 when the fault is set: request i iff
//!     floor((i+1)F) > floor(iF), so exactly floor(nF) of the first n.
//!   - `method=M`, `path=/prefix`: select only requests with that method,
//!     or a path starting with the prefix.
//!
//!   When a fault sets several things, the delay comes first, then
//!   `reset=before_head` wins, then `grpc_status` (gRPC requests), then
//!   `reset=after_head`, then `status`.
//! - `/requests` answers the request log as JSON, oldest first: the last
//!   10,000 requests answered, each `{"seq", "method", "path" (with the
//!   query), "version", "at_ms" (since the backend started, monotonic, to
//!   the microsecond), "faulted" (`status`, `reset_before_head`,
//!   `reset_after_head`, `delay`, `grpc_status`, or null), "status" (null
//!   when reset before the head), "grpc_status" (gRPC requests), "headers"
//!   (the `l5d-*`, `grpc-timeout` and trace context request headers)}`.
//!   `seq` counts from 0 in the order answered. `?clear` answers the log
//!   and empties it (`seq` starts again at 0). The log is off unless the
//!   backend starts with `--log-requests` or gets `/requests?on` (`?off`
//!   stops it); while off, `/requests` is a 409.
//!
//! With no fault set and the log off, a request pays one atomic load for
//! them (the benchmarks use this backend): no lock, no allocation.
//!
//! [`HttpBackend::respond`] is the whole behaviour and takes any request
//! body, so it is tested without sockets; [`HttpBackend::serve`] only
//! accepts connections, and turns a [`ResetByFault`] into a TCP reset.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Body;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, VIA};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::Name;
use crate::control::{Control, Record, logged_headers};
use crate::fault::{Fault, GrpcIn};

mod answer;
mod body;
mod conn;

use answer::{Answer, TEXT_PLAIN, is_grpc};
pub use body::{Aborted, ReplyBody};
use conn::{ResetOnClose, Shared};

const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
const X_ECHO_HOST: HeaderName = HeaderName::from_static("x-echo-host");
const X_ECHO_PATH: HeaderName = HeaderName::from_static("x-echo-path");

/// The HTTP demo backend. Clones share the body, the delay, the fault and
/// the request log.
#[derive(Clone, Debug)]
pub struct HttpBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    served_by: HeaderValue,
    /// Built once; each response clones the handle, not the bytes.
    body: Bytes,
    /// Milliseconds, changed at run time by `/delay?ms=N`.
    delay_ms: AtomicU64,
    /// Whether answers echo the request's `l5d-*` headers, host and path.
    echo: bool,
    /// The fault in force and the request log (`/fault`, `/requests`).
    control: Arc<Control>,
}

/// What [`HttpBackend::respond`] returns for `reset=before_head`: served by
/// [`HttpBackend::serve`], it makes hyper reset the HTTP/2 stream or close
/// the HTTP/1.1 connection (with RST) without answering.
#[derive(Debug)]
pub struct ResetByFault;

// === impl HttpBackend ===

impl HttpBackend {
    /// A backend that answers `NAME\n`, or with `body_bytes: Some(n)`
    /// exactly `n` bytes that start with the name (padded with `.`, ending
    /// in a newline), after `delay`. No fault; the request log off.
    pub fn new(name: &Name, delay: Duration, body_bytes: Option<usize>) -> HttpBackend {
        let served_by =
            HeaderValue::from_str(name.as_str()).expect("a Name is a valid header value");
        HttpBackend {
            inner: Arc::new(Inner {
                served_by,
                body: body(name, body_bytes),
                delay_ms: AtomicU64::new(millis(delay)),
                echo: true,
                control: Arc::new(Control::new(false, false)),
            }),
        }
    }

    /// With `false`, answers echo nothing (see `--no-echo`).
    pub fn with_echo(self, echo: bool) -> HttpBackend {
        self.rebuilt(|inner| inner.echo = echo)
    }

    /// With `true`, the request log starts on (see `--log-requests`);
    /// `/requests?on` and `?off` switch it later. Any fault is cleared.
    pub fn with_request_log(self, on: bool) -> HttpBackend {
        self.rebuilt(|inner| inner.control = Arc::new(Control::new(on, false)))
    }

    fn rebuilt(self, change: impl FnOnce(&mut Inner)) -> HttpBackend {
        let inner = &self.inner;
        let mut rebuilt = Inner {
            served_by: inner.served_by.clone(),
            body: inner.body.clone(),
            delay_ms: AtomicU64::new(inner.delay_ms.load(Ordering::Relaxed)),
            echo: inner.echo,
            control: inner.control.clone(),
        };
        change(&mut rebuilt);
        HttpBackend {
            inner: Arc::new(rebuilt),
        }
    }

    /// The delay before each answer.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.inner.delay_ms.load(Ordering::Relaxed))
    }

    /// Answers one request. The request body is read and dropped first, so
    /// that an HTTP/1.1 connection stays reusable after a POST. An error is
    /// a fault's `reset=before_head`: the caller must answer nothing.
    pub async fn respond<B>(&self, req: Request<B>) -> Result<Response<ReplyBody>, ResetByFault>
    where
        B: Body + Unpin,
    {
        let control = &self.inner.control;
        // The only cost of the fault and the log while neither is set.
        let flags = control.flags();
        let arrived = flags.logging().then(Instant::now);
        let (head, mut body) = req.into_parts();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }

        let path = head.uri.path();
        if path == "/delay" {
            let rsp = self.set_delay(head.uri.query());
            return Ok(self.finish(&head, rsp));
        }
        if let Some(rsp) = control.answer(path, head.uri.query()) {
            return Ok(self.finish(&head, rsp.map(ReplyBody::full)));
        }

        // A method check first keeps the header lookup off GET requests.
        let grpc = head.method == Method::POST && is_grpc(&head.headers);
        let hit = control.hit(flags, &head.method, path, grpc);
        let delay = self.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let answer = match &hit {
            None if grpc => Answer::grpc(0, GrpcIn::Trailers),
            None => Answer::usual(self.inner.body.clone()),
            Some(hit) => self.faulted(hit.fault(), grpc).await,
        };
        control.record(flags, || Record {
            method: head.method.clone(),
            path: head
                .uri
                .path_and_query()
                .map_or_else(|| path.to_string(), |p| p.as_str().to_string()),
            version: head.version,
            arrived: arrived.unwrap_or_else(Instant::now),
            faulted: answer.faulted,
            status: answer.rsp.as_ref().map(Response::status),
            grpc_status: answer.grpc_status,
            headers: logged_headers(&head.headers),
        });
        let rsp = answer.rsp.ok_or(ResetByFault)?;
        Ok(self.finish(&head, rsp))
    }

    /// The answer to a request that `fault` hits, after its delay.
    async fn faulted(&self, fault: &Fault, grpc: bool) -> Answer {
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        let name = self.inner.served_by.to_str().unwrap_or_default();
        Answer::faulted(fault, grpc, name, &self.inner.body)
    }

    /// Adds what every answer carries: `x-served-by` and, unless echo is
    /// off, what the backend received.
    fn finish<T>(&self, head: &hyper::http::request::Parts, mut rsp: Response<T>) -> Response<T> {
        let headers = rsp.headers_mut();
        headers.insert(X_SERVED_BY, self.inner.served_by.clone());
        if !self.inner.echo {
            return rsp;
        }
        for (name, value) in &head.headers {
            if name.as_str().starts_with("l5d-") || name == VIA {
                headers.append(echo_name(name), value.clone());
            }
        }
        let host = match head.headers.get(HOST) {
            Some(host) => Some(host.clone()),
            // HTTP/2 carries it in `:authority`, which hyper puts in the URI.
            None => head
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        };
        if let Some(host) = host {
            headers.insert(X_ECHO_HOST, host);
        }
        if let Some(path) = head
            .uri
            .path_and_query()
            .and_then(|p| HeaderValue::from_str(p.as_str()).ok())
        {
            headers.insert(X_ECHO_PATH, path);
        }
        rsp
    }

    /// `/delay?ms=N`: sets the delay and answers `delay=N`, at once.
    fn set_delay(&self, query: Option<&str>) -> Response<ReplyBody> {
        let ms = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("ms="))
            .and_then(|ms| ms.parse::<u64>().ok());
        let (status, text) = match ms {
            Some(ms) => {
                self.inner.delay_ms.store(ms, Ordering::Relaxed);
                (StatusCode::OK, Bytes::from(format!("delay={ms}\n")))
            }
            None => (
                StatusCode::BAD_REQUEST,
                Bytes::from_static(b"/delay wants ?ms=N (milliseconds)\n"),
            ),
        };
        let mut rsp = Response::new(ReplyBody::full(text));
        *rsp.status_mut() = status;
        rsp.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
        rsp
    }

    /// Accepts connections on `listener` until `shutdown` completes, then
    /// lets the open connections finish their requests and close (HTTP/2
    /// with GOAWAY). The caller bounds how long that may take.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors: back off rather
                        // than spin, and keep serving the open connections.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Small responses: do not wait for Nagle.
            let _ = stream.set_nodelay(true);
            let shared = Arc::new(Shared::new(self.clone()));
            let io = ResetOnClose::new(stream, shared.clone());
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let http1 = req.version() < Version::HTTP_2;
                    let answer = shared.backend.respond(req).await;
                    if answer.is_err() && http1 {
                        shared.reset_on_close();
                    }
                    answer
                }
            });
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
    }
}

// === impl ResetByFault ===

impl fmt::Display for ResetByFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reset by the fault reset=before_head")
    }
}

impl std::error::Error for ResetByFault {}

/// `x-echo-` + the header's name, assembled on the stack: this runs for
/// every `l5d-*` header of every proxied request.
fn echo_name(name: &HeaderName) -> HeaderName {
    const PREFIX: &[u8] = b"x-echo-";
    let name = name.as_str().as_bytes();
    let mut buf = [0u8; 128];
    let echoed = match buf.get_mut(..PREFIX.len() + name.len()) {
        Some(dst) => {
            dst[..PREFIX.len()].copy_from_slice(PREFIX);
            dst[PREFIX.len()..].copy_from_slice(name);
            HeaderName::from_bytes(dst)
        }
        None => HeaderName::from_bytes(&[PREFIX, name].concat()),
    };
    echoed.expect("a valid header name with a valid prefix is valid")
}

/// The response body: `NAME\n`, or exactly `n` bytes starting with the name.
fn body(name: &Name, body_bytes: Option<usize>) -> Bytes {
    let name = name.as_str().as_bytes();
    let Some(n) = body_bytes else {
        return Bytes::from([name, b"\n"].concat());
    };
    let mut body = Vec::with_capacity(n);
    body.extend_from_slice(&name[..name.len().min(n)]);
    body.resize(n, b'.');
    if n > name.len() {
        body[n - 1] = b'\n';
    }
    Bytes::from(body)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_requested_size_and_start_with_the_name() {
        let name: Name = "web".parse().unwrap();
        let cases: &[(Option<usize>, &[u8])] = &[
            (None, b"web\n"),
            (Some(0), b""),
            (Some(2), b"we"),
            (Some(3), b"web"),
            (Some(4), b"web\n"),
            (Some(8), b"web....\n"),
        ];
        for &(n, want) in cases {
            assert_eq!(body(&name, n), want, "{n:?}");
        }
        assert_eq!(body(&name, Some(1024)).len(), 1024);
    }

    #[test]
    fn echo_names_keep_the_header_name() {
        let short = HeaderName::from_static("l5d-dst-service");
        assert_eq!(echo_name(&short).as_str(), "x-echo-l5d-dst-service");
        let long = HeaderName::from_bytes(format!("l5d-{}", "x".repeat(200)).as_bytes()).unwrap();
        assert_eq!(echo_name(&long).as_str(), format!("x-echo-{long}"));
    }

    #[tokio::test]
    async fn without_echo_every_answer_has_the_same_headers() {
        let name: Name = "web".parse().unwrap();
        let request = || {
            Request::get("/p?q")
                .header(HOST, "web")
                .header("l5d-dst-service", "/svc/web")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap()
        };
        let echoing = HttpBackend::new(&name, Duration::ZERO, None);
        let rsp = echoing.respond(request()).await.unwrap();
        assert!(rsp.headers().contains_key("x-echo-l5d-dst-service"));
        let quiet = echoing.with_echo(false);
        let rsp = quiet.respond(request()).await.unwrap();
        let names: Vec<&str> = rsp.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "x-served-by"]);
    }
}
