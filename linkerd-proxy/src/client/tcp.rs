//! The TCP connection under both the HTTP/1.1 pool and the HTTP/2
//! connection. A leaf beside them, so neither reaches back into its parent.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::ProxyError;

/// A TCP connection to an endpoint, with Nagle off (requests and
/// responses are small and latency-bound).
pub(super) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ProxyError> {
    let connect_error = |message: String| ProxyError::Connect {
        addr: addr.to_string(),
        message,
    };
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| connect_error(format!("timed out after {timeout:?}")))?
        .map_err(|e| connect_error(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
