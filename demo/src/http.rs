//! The HTTP demo backend: HTTP/1.1 and HTTP/2 with prior knowledge on one
//! port (hyper-util's `auto` builder tells them apart by the HTTP/2
//! preface), keep-alive on.
//!
//! Every request is answered `200` with the backend's body and
//! `x-served-by: NAME`, and with what the backend received, so that tests
//! can see what a proxy forwarded: each `l5d-*` request header comes back as
//! `x-echo-l5d-*`, the Host (or HTTP/2 `:authority`) as `x-echo-host`, the
//! path and query as `x-echo-path`. `/delay?ms=N` (any method) sets the
//! delay before every later answer and replies `delay=N`.
//!
//! [`HttpBackend::respond`] is the whole behaviour and takes any request
//! body, so it is tested without sockets; [`HttpBackend::serve`] only
//! accepts connections.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Body;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::Name;

const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
const X_ECHO_HOST: HeaderName = HeaderName::from_static("x-echo-host");
const X_ECHO_PATH: HeaderName = HeaderName::from_static("x-echo-path");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// The HTTP demo backend. Clones share the body and the delay.
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
}

// === impl HttpBackend ===

impl HttpBackend {
    /// A backend that answers `NAME\n`, or with `body_bytes: Some(n)`
    /// exactly `n` bytes that start with the name (padded with `.`, ending
    /// in a newline), after `delay`.
    pub fn new(name: &Name, delay: Duration, body_bytes: Option<usize>) -> HttpBackend {
        let served_by =
            HeaderValue::from_str(name.as_str()).expect("a Name is a valid header value");
        HttpBackend {
            inner: Arc::new(Inner {
                served_by,
                body: body(name, body_bytes),
                delay_ms: AtomicU64::new(millis(delay)),
                echo: true,
            }),
        }
    }

    /// With `false`, answers echo nothing (see `--no-echo`).
    pub fn with_echo(self, echo: bool) -> HttpBackend {
        let inner = &self.inner;
        HttpBackend {
            inner: Arc::new(Inner {
                served_by: inner.served_by.clone(),
                body: inner.body.clone(),
                delay_ms: AtomicU64::new(inner.delay_ms.load(Ordering::Relaxed)),
                echo,
            }),
        }
    }

    /// The delay before each answer.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.inner.delay_ms.load(Ordering::Relaxed))
    }

    /// Answers one request. The request body is read and dropped first, so
    /// that an HTTP/1.1 connection stays reusable after a POST.
    pub async fn respond<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body + Unpin,
    {
        let (head, mut body) = req.into_parts();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }

        let mut rsp = if head.uri.path() == "/delay" {
            self.set_delay(head.uri.query())
        } else {
            let delay = self.delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Response::new(Full::new(self.inner.body.clone()))
        };

        let headers = rsp.headers_mut();
        headers.insert(CONTENT_TYPE, TEXT_PLAIN);
        headers.insert(X_SERVED_BY, self.inner.served_by.clone());
        if !self.inner.echo {
            return rsp;
        }
        for (name, value) in &head.headers {
            if name.as_str().starts_with("l5d-") {
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
    fn set_delay(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        let ms = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("ms="))
            .and_then(|ms| ms.parse::<u64>().ok());
        match ms {
            Some(ms) => {
                self.inner.delay_ms.store(ms, Ordering::Relaxed);
                Response::new(Full::new(Bytes::from(format!("delay={ms}\n"))))
            }
            None => {
                let mut rsp = Response::new(Full::new(Bytes::from_static(
                    b"/delay wants ?ms=N (milliseconds)\n",
                )));
                *rsp.status_mut() = StatusCode::BAD_REQUEST;
                rsp
            }
        }
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
            let backend = self.clone();
            let service = service_fn(move |req| {
                let backend = backend.clone();
                async move { Ok::<_, Infallible>(backend.respond(req).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
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
        let rsp = echoing.respond(request()).await;
        assert!(rsp.headers().contains_key("x-echo-l5d-dst-service"));
        let quiet = echoing.with_echo(false);
        let rsp = quiet.respond(request()).await;
        let names: Vec<&str> = rsp.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "x-served-by"]);
    }
}
