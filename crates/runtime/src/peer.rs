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

/// The names a verified client certificate carries (hashable, so that
/// per-client limits can count by it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// Subject alternative names (DNS names, then URIs such as SPIFFE ids),
    /// in certificate order. The common name is not used: RFC 6125 and
    /// every modern verifier rely on the SANs alone.
    pub names: Vec<String>,
}

// === impl Peer ===

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

// === impl ClientIdentity ===

impl ClientIdentity {
    /// The one name that stands for the caller: its first URI SAN (a
    /// SPIFFE id, say), else its first DNS SAN. Told apart by the names
    /// alone: a URI always has a scheme followed by `:` (RFC 3986 3.1),
    /// which a DNS name never contains.
    pub fn primary(&self) -> Option<&str> {
        self.names
            .iter()
            .find(|n| n.contains(':'))
            .or_else(|| self.names.first())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::ClientIdentity;

    fn primary(names: &[&str]) -> Option<String> {
        let identity = ClientIdentity {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        identity.primary().map(str::to_string)
    }

    #[test]
    fn the_first_uri_else_the_first_dns_name() {
        for (names, expected) in [
            (
                &["a.test", "spiffe://l5d.test/a", "urn:x"][..],
                Some("spiffe://l5d.test/a"),
            ),
            (&["a.test", "b.test"], Some("a.test")),
            (&["spiffe://l5d.test/only"], Some("spiffe://l5d.test/only")),
            (&[], None),
        ] {
            assert_eq!(primary(names).as_deref(), expected, "{names:?}");
        }
    }
}
