//! The listener every server of both binaries accepts on: bind, accept
//! without ever spinning on EMFILE, refuse cleanly over a connection cap
//! per listener and per peer IP, and complete TLS (when configured) in the
//! connection's own task under a handshake timeout.
//!
//! [`Listener::accept`] returns an [`Accepted`] connection that already
//! holds its place under the caps; the caller moves it into a task and
//! calls [`Accepted::handshake`] there, so that one slow or silent client
//! never holds up the accept loop. The resulting [`Connection`] carries an
//! IO ([`ServerIo`], plain or TLS) and the [`Peer`], with the identity of a
//! verified client certificate. Its place under the caps is given back when
//! the IO is dropped, wherever that happens (our HTTP server, tonic's).
//!
//! Metrics (labelled `listener`): `listener_connections_open`,
//! `listener_connections_refused_total{reason}` (`max_connections`,
//! `max_connections_per_peer`, `fd_limit`: out of descriptors, the
//! connection closed with a spare one, see `listen/reserve.rs`),
//! `listener_accept_errors_total`,
//! `listener_handshake_failures_total{reason}` (`timeout`, or the reason
//! of [`handshake_failure_reason`]: `no_certificate`, `expired`,
//! `unknown_ca`, `protocol`, ...). A failed handshake is logged at warn
//! with the peer and rustls' reason (at most one line a second per
//! listener, saying how many were not logged; a reset or a timeout at
//! debug only).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::tls::{ServerTls, handshake_failure_reason};
use crate::{Backoff, ClientIdentity, Peer};

mod refusals;
mod reserve;
mod stream;

use refusals::Refusals;
use reserve::Reserve;
pub use stream::{FirstBytesDeadline, ServerIo};

/// The caps and the handshake timeout of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Open connections at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Open connections at once from one IP address.
    pub max_connections_per_peer: usize,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
}

/// A bound listener with its caps and optional TLS.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    /// A spare descriptor for refusing connections when out of them.
    reserve: Reserve,
    name: Arc<str>,
    local: SocketAddr,
    tls: Option<ServerTls>,
    limits: ListenerLimits,
    open: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize>>>,
    refusals: Arc<Refusals>,
}

/// A connection accepted under the caps, before its TLS handshake.
#[derive(Debug)]
pub struct Accepted {
    stream: TcpStream,
    peer: Peer,
    tls: Option<ServerTls>,
    handshake_timeout: Duration,
    slot: Slot,
    name: Arc<str>,
    refusals: Arc<Refusals>,
    /// When it was accepted: the first request's deadline counts from here.
    pub accepted_at: Instant,
}

/// A connection ready for a protocol: handshake done, peer known.
#[derive(Debug)]
pub struct Connection {
    pub io: ServerIo,
    pub peer: Peer,
    /// The protocol the client and server agreed on by ALPN, if any.
    pub alpn: Option<Vec<u8>>,
    pub accepted_at: Instant,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake with {peer} timed out after {timeout:?}")]
    Timeout { peer: SocketAddr, timeout: Duration },
    #[error("TLS handshake with {peer} failed: {source}")]
    Tls { peer: SocketAddr, source: io::Error },
}

/// A connection's place under the caps, given back on drop.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
    name: Arc<str>,
}

// === impl Listener ===

impl Listener {
    /// Binds `addr`. `name` labels metrics and logs (`admin`,
    /// `io.l5d.mesh`, ...).
    pub async fn bind(
        addr: SocketAddr,
        name: &str,
        tls: Option<ServerTls>,
        limits: ListenerLimits,
    ) -> io::Result<Listener> {
        Self::from_tcp(TcpListener::bind(addr).await?, name, tls, limits)
    }

    /// A listener on an already bound socket.
    pub fn from_tcp(
        tcp: TcpListener,
        name: &str,
        tls: Option<ServerTls>,
        limits: ListenerLimits,
    ) -> io::Result<Listener> {
        let name: Arc<str> = Arc::from(name);
        Ok(Listener {
            local: tcp.local_addr()?,
            tcp,
            refusals: Arc::new(Refusals::new(name.clone())),
            name,
            tls,
            open: Arc::new(Semaphore::new(limits.max_connections)),
            per_peer: Arc::default(),
            limits,
            reserve: Reserve::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The next connection within the caps. Connections over a cap are
    /// closed at once and counted; errors that a later accept may not have
    /// (EMFILE, ENOBUFS, ...) back off before the next try, so that the
    /// loop never spins.
    pub async fn accept(&self) -> Accepted {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) if Reserve::is_exhaustion(&e) && self.shed_one() => continue,
                Err(e) => {
                    let delay = backoff.next_delay();
                    metrics::counter!("listener_accept_errors_total", "listener" => self.name.to_string())
                        .increment(1);
                    self.refusals.accept_error(&e, delay);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
            let Some(slot) = self.slot(addr.ip()) else {
                // Dropping the stream closes it: the client sees the
                // connection end before anything is read from it.
                continue;
            };
            let _ = stream.set_nodelay(true);
            return Accepted {
                stream,
                peer: Peer::plain(addr, self.local),
                tls: self.tls.clone(),
                handshake_timeout: self.limits.handshake_timeout,
                slot,
                name: self.name.clone(),
                refusals: self.refusals.clone(),
                accepted_at: Instant::now(),
            };
        }
    }

    /// Out of descriptors: refuses one pending connection with the spare
    /// descriptor (see `listen/reserve.rs`) and counts it as
    /// `reason="fd_limit"`; `false` when there is no spare to use.
    fn shed_one(&self) -> bool {
        if !self.reserve.release() {
            return false;
        }
        // The connection that made accept fail is pending: this accept
        // completes at once (or there is nothing to refuse). Nothing waits
        // on a wake-up here, so a no-op waker will do.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if let std::task::Poll::Ready(Ok((stream, addr))) = self.tcp.poll_accept(&mut cx) {
            drop(stream);
            self.refusals.refused("fd_limit", addr.ip());
        }
        self.reserve.restore();
        true
    }

    /// A place under both caps for a connection from `ip`, or `None` (and
    /// the refusal counted) when either is full.
    fn slot(&self, ip: IpAddr) -> Option<Slot> {
        let Ok(permit) = self.open.clone().try_acquire_owned() else {
            self.refusals.refused("max_connections", ip);
            return None;
        };
        {
            let mut per_peer = self
                .per_peer
                .lock()
                .expect("per-peer counts are never poisoned");
            let count = per_peer.entry(ip).or_insert(0);
            if *count >= self.limits.max_connections_per_peer {
                drop(per_peer);
                self.refusals.refused("max_connections_per_peer", ip);
                return None;
            }
            *count += 1;
        }
        metrics::gauge!("listener_connections_open", "listener" => self.name.to_string())
            .increment(1);
        Some(Slot {
            _permit: permit,
            per_peer: self.per_peer.clone(),
            ip,
            name: self.name.clone(),
        })
    }
}

/// Raises the soft limit on open files to the hard limit, so that the
/// connection caps, not the descriptor table, decide when connections are
/// refused (many systems start processes at 1,024 soft with a far higher
/// hard limit). Returns the limit now in force; failures are logged and
/// leave the limit as it was.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::debug!(limit, "open files limit");
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open files limit");
            None
        }
    }
}

/// Errors about one connection (the client gave up before we accepted):
/// the next accept is unaffected.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

// === impl Accepted ===

impl Accepted {
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Completes the TLS handshake, if the listener has TLS, within the
    /// handshake timeout. Call it in the connection's task.
    pub async fn handshake(self) -> Result<Connection, HandshakeError> {
        let Accepted {
            stream,
            mut peer,
            tls,
            handshake_timeout,
            slot,
            name,
            refusals,
            accepted_at,
        } = self;
        let Some(tls) = tls else {
            return Ok(Connection {
                io: ServerIo::plain(stream, slot),
                peer,
                alpn: None,
                accepted_at,
            });
        };
        let failed = |reason: &'static str| {
            metrics::counter!(
                "listener_handshake_failures_total",
                "listener" => name.to_string(),
                "reason" => reason
            )
            .increment(1);
        };
        let addr = peer.addr;
        let tls_stream =
            match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => {
                    let reason = handshake_failure_reason(&source);
                    failed(reason);
                    refusals.handshake_failed(reason, addr, &source);
                    return Err(HandshakeError::Tls { peer: addr, source });
                }
                Err(_) => {
                    failed("timeout");
                    return Err(HandshakeError::Timeout {
                        peer: addr,
                        timeout: handshake_timeout,
                    });
                }
            };
        let session = &tls_stream.get_ref().1;
        // rustls keeps only a certificate its verifier accepted.
        peer.identity = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| ClientIdentity::from_certificate(leaf))
            .map(Arc::new);
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        Ok(Connection {
            io: ServerIo::tls(tls_stream, slot),
            peer,
            alpn,
            accepted_at,
        })
    }
}

// === impl Slot ===

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_peer = self
            .per_peer
            .lock()
            .expect("per-peer counts are never poisoned");
        if let Some(count) = per_peer.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_peer.remove(&self.ip);
            }
        }
        metrics::gauge!("listener_connections_open", "listener" => self.name.to_string())
            .decrement(1);
    }
}

#[cfg(test)]
mod tests;
