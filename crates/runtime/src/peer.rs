//! Who is on the other end of an accepted connection, as the listener saw
//! it. Servers put a [`Peer`] into every request's extensions, so that
//! authorisation (namerd's dtab writes), per-client limits and logs all read
//! the caller from one place rather than each from its transport.

use std::net::SocketAddr;
use std::sync::Arc;

/// The peer of an accepted connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The address of the listener that accepted the connection.
    pub local: SocketAddr,
    /// The verified client certificate, when the connection is TLS and the
    /// client presented one that the configured CA signed.
    pub identity: Option<Arc<ClientIdentity>>,
}

/// The names a verified client certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Subject alternative names (DNS names, then URIs such as SPIFFE ids),
    /// in certificate order. The common name is not used: RFC 6125 and
    /// every modern verifier rely on the SANs alone.
    pub names: Vec<String>,
}

impl Peer {
    /// A peer without TLS.
    pub fn plain(addr: SocketAddr, local: SocketAddr) -> Peer {
        Peer {
            addr,
            local,
            identity: None,
        }
    }
}
