//! The one HTTP/2 channel to namerd: plain TCP, or TLS with the
//! interpreter's `tls` block.
//!
//! TLS goes through tonic's custom-connector hook rather than tonic's own
//! TLS (which takes PEM bytes once): each new connection takes the
//! current configuration of `l5d-runtime`'s [`ClientTls`], so a rotated
//! client certificate or CA bundle is used from the next reconnect on, and
//! the TLS stack (rustls with ring) is the rest of the proxy's. The URI
//! keeps its `http` scheme so that tonic does not look for TLS of its own.
//! A failed handshake is counted by reason
//! (`linkerd_namerd_tls_failures_total`) and fails the connection attempt
//! with rustls' reason, which the reconnect loop logs.

use std::io;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use l5d_runtime::tls::{ClientTls, ServerName};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use super::shared::{MeshOptions, TlsFailures};

/// A lazily connecting channel to `opts.dst`; failed TLS handshakes are
/// counted in `failures`.
pub(super) fn channel(opts: &MeshOptions, failures: Arc<TlsFailures>) -> Channel {
    let endpoint = Endpoint::from_shared(opts.dst.uri())
        .expect("a Dst is a valid authority")
        .connect_timeout(opts.connect_timeout)
        .http2_keep_alive_interval(opts.keepalive_interval)
        .keep_alive_timeout(opts.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let Some(tls) = opts.tls.clone() else {
        return endpoint.connect_lazy();
    };
    let host = opts.dst.host.clone();
    let port = opts.dst.port;
    // The connect timeout (set above) bounds TCP and the handshake
    // together: tonic wraps this connector in it.
    endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
        let tls = tls.clone();
        let host = host.clone();
        let failures = failures.clone();
        async move {
            // Checked when the proxy starts; a name that cannot be used
            // fails every connection, saying why.
            let name = tls
                .server_name(&host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            connect(&tls, &host, port, name, &failures).await
        }
    }))
}

async fn connect(
    tls: &ClientTls,
    host: &str,
    port: u16,
    name: ServerName<'static>,
    failures: &TlsFailures,
) -> Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>, io::Error> {
    let tcp = TcpStream::connect((host, port)).await?;
    let _ = tcp.set_nodelay(true);
    let stream = tls.connector().connect(name, tcp).await.map_err(|e| {
        let reason = failures.count(&e);
        io::Error::new(
            e.kind(),
            format!("TLS handshake with namerd failed ({reason}): {e}"),
        )
    })?;
    Ok(TokioIo::new(stream))
}
