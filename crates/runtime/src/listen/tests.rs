//! The caps and the handshake timeout, over real loopback sockets.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::testing::TestPki;
use crate::tls::{ALPN_HTTP, ServerTls};

fn limits(max: usize, per_peer: usize) -> ListenerLimits {
    ListenerLimits {
        max_connections: max,
        max_connections_per_peer: per_peer,
        handshake_timeout: Duration::from_secs(30),
    }
}

/// Accepts in a task, handing every accepted connection over.
fn accepting(listener: Listener) -> mpsc::UnboundedReceiver<Accepted> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            if tx.send(listener.accept().await).is_err() {
                return;
            }
        }
    });
    rx
}

/// Whether the server closed `stream` without a byte (a refusal), within
/// a generous bound.
async fn refused(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn over_the_listener_cap_connections_are_closed_at_once() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), "test", None, limits(2, 100))
        .await
        .unwrap();
    let addr = listener.local_addr();
    let mut accepted = accepting(listener);
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    let first = accepted.recv().await.unwrap();
    let _second = accepted.recv().await.unwrap();
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(refused(&mut third).await);
    // A place is given back when a connection ends.
    drop(first);
    let _fourth = TcpStream::connect(addr).await.unwrap();
    assert!(accepted.recv().await.is_some());
}

#[tokio::test]
async fn one_peer_cannot_take_every_place() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), "test", None, limits(100, 2))
        .await
        .unwrap();
    let addr = listener.local_addr();
    let mut accepted = accepting(listener);
    let _a = connect_from("127.0.0.1", addr).await;
    let _b = connect_from("127.0.0.1", addr).await;
    let (a, b) = (
        accepted.recv().await.unwrap(),
        accepted.recv().await.unwrap(),
    );
    let mut c = connect_from("127.0.0.1", addr).await;
    assert!(refused(&mut c).await);
    // Another address is still welcome.
    let _d = connect_from("127.0.0.2", addr).await;
    let d = accepted.recv().await.unwrap();
    assert_eq!(d.peer().addr.ip().to_string(), "127.0.0.2");
    assert_eq!(a.peer().local, addr);
    drop((a, b));
}

#[tokio::test]
async fn a_silent_client_fails_the_handshake_at_the_timeout() {
    let pki = TestPki::new();
    let tls = ServerTls::load(&pki.server_tls(), ALPN_HTTP, "tls").unwrap();
    let mut limits = limits(10, 10);
    limits.handshake_timeout = Duration::from_millis(300);
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), "test", Some(tls), limits)
        .await
        .unwrap();
    let _silent = TcpStream::connect(listener.local_addr()).await.unwrap();
    let started = Instant::now();
    let err = listener.accept().await.handshake().await.unwrap_err();
    assert!(matches!(err, HandshakeError::Timeout { .. }), "{err}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}
