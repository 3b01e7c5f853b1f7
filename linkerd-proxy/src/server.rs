//! Servers: a router's listeners, served by `l5d-runtime`'s HTTP server
//! (TLS with ALPN, caps on connections per listener and per peer, header,
//! idle, body and stuck-write timeouts; the HTTP/2 preface and first
//! request count against the header timeout, which makes it the HTTP/2
//! handshake timeout too), with the proxy's own limits set explicitly on
//! hyper's builder: header count and size on HTTP/1.1; concurrent
//! streams, pending resets (Rapid Reset), header list size and
//! flow-control windows on HTTP/2; requests in flight per server.
//!
//! An HTTP router speaks HTTP/1.1 only and an h2 router HTTP/2 only, with
//! or without TLS (ALPN offers just that protocol). Every request carries
//! the caller's [`Peer`](l5d_runtime::Peer), with its certificate
//! identity on an mTLS server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use l5d_runtime::listen::Listener;
use l5d_runtime::serve::{self, HttpLimits, Tune};
use l5d_runtime::tls::ALPN_H2;
use tokio::sync::{Semaphore, watch};

use crate::client::{CONNECTION_WINDOW, RequestBody, STREAM_WINDOW};
use crate::config::{Protocol, ServerConfig};
use crate::error::ProxyError;
use crate::router::{Router, ServerPolicy};

/// ALPN of an HTTP/1.1 router's TLS servers.
pub const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];

/// One listening server of a router.
#[derive(Debug)]
pub struct Server {
    pub router: Arc<Router>,
    pub config: ServerConfig,
    pub protocol: Protocol,
    /// For HTTP/1.1: the request head size limit.
    pub max_head_bytes: usize,
}

impl Server {
    /// The ALPN protocols a TLS server of `protocol` offers.
    pub fn alpn(protocol: Protocol) -> &'static [&'static [u8]] {
        match protocol {
            Protocol::Http => ALPN_HTTP1,
            Protocol::H2 => ALPN_H2,
        }
    }

    /// Accepts until `shutdown` turns true, then lets open connections
    /// finish their requests.
    pub async fn serve(self, listener: Listener, shutdown: watch::Receiver<bool>) {
        let limits = self.limits();
        let tune = self.tune();
        let limit = self
            .config
            .max_concurrent_requests
            .map(|n| Arc::new(Semaphore::new(n)));
        let policy = Arc::new(ServerPolicy::new(&self.config));
        let router = self.router;
        let service = tower::service_fn(move |req: Request<RequestBody>| {
            let router = router.clone();
            let policy = policy.clone();
            let permit = match &limit {
                None => Ok(None),
                Some(s) => s.clone().try_acquire_owned().map(Some),
            };
            // Boxed: a request's future (routing, attempts, the endpoint's
            // exchange) is some kilobytes, which hyper would otherwise copy
            // each time it moves it; moving a box copies a pointer.
            Box::pin(async move {
                let rsp = match permit {
                    Ok(_permit) => router.route(req, &policy).await,
                    Err(_) => ProxyError::Overloaded
                        .to_response()
                        .map(crate::router::ResponseBody::Generated),
                };
                Ok::<_, Infallible>(rsp)
            })
        });
        serve::serve_tuned(listener, service, limits, tune, shutdown).await;
    }

    /// The timeouts of the shared server keys, and the HTTP/2 limits.
    fn limits(&self) -> HttpLimits {
        self.config.settings.http_limits(HttpLimits {
            h2_keep_alive_interval: Some(Duration::from_secs(20)),
            h2_keep_alive_timeout: Duration::from_secs(20),
            max_concurrent_streams: self.config.max_concurrent_streams,
            max_header_list_bytes: self.config.max_header_list_bytes,
            ..HttpLimits::default()
        })
    }

    /// The router's protocol only, and its limits on hyper's builder.
    fn tune(&self) -> Tune {
        let protocol = self.protocol;
        let max_headers = self.config.max_headers;
        // hyper's floor is 8 KiB.
        let max_buf = self.max_head_bytes.max(8192);
        let max_resets = self.config.max_pending_resets;
        Arc::new(move |builder| {
            // Without ALPN both are available; with it, ALPN (offering
            // only the router's protocol) has already chosen, and hyper
            // refuses to choose twice.
            let either = builder.is_http1_available() && builder.is_http2_available();
            let mut builder = match protocol {
                Protocol::Http if either => builder.http1_only(),
                Protocol::H2 if either => builder.http2_only(),
                _ => builder,
            };
            builder
                .http1()
                .max_headers(max_headers)
                .max_buf_size(max_buf);
            builder
                .http2()
                .max_pending_accept_reset_streams(max_resets)
                .max_local_error_reset_streams(Some(max_resets))
                // See client/h2.rs: fixed windows large enough that many
                // concurrent small gRPC messages do not trip h2's
                // small-frame flood protection.
                .initial_stream_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW);
            builder
        })
    }
}
