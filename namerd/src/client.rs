//! Who asks namerd for live values, and how much each one holds: the
//! accounting behind namerd's per-client limits.
//!
//! A [`Client`] is who is on the other end of a connection as the
//! listener saw it ([`l5d_runtime::Peer`]): its IP address and, on TLS
//! with a verified client certificate, that certificate's identity. Every
//! open stream (`StreamBoundTree`, `StreamReplicas`, `StreamDtab`, an HTTP
//! `?watch=true`) holds a [`StreamLease`], and every binding a client
//! watches or waits for holds a [`BindingHold`]; both give their count back
//! when dropped, which is when the stream or request ends however it ends
//! (the client cancels, its connection drops, namerd shuts down). A client
//! at a limit is refused with a [`LimitError`] naming the limit, and nobody
//! else is affected.
//!
//! What one connection may hold is the listener's business, not this
//! module's: `maxConnectionsPerPeer` caps a peer's connections and each
//! connection's HTTP/2 streams are capped (`maxConcurrentStreams` on the
//! mesh), and every binding a connection holds is held by one of its
//! streams.
//!
//! [`Clients::fair_share`] says which clients hold more than their share of
//! the global binding cap, so that the interpreter can evict their bindings
//! first when the cap is reached.
//!
//! Knows nothing of bindings or streams beyond their counts; reads the
//! caller from request extensions in [`Client::of`] and nowhere else.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use l5d_runtime::{ClientIdentity, Peer};

#[cfg(test)]
mod tests;

/// How much one client may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Bindings one client may watch or wait for at once.
    pub max_bindings_per_client: usize,
    /// Streams one client may hold open, over both APIs.
    pub max_streams_per_client: usize,
}

impl Default for ClientLimits {
    /// A proxy holds one binding stream per name and one replicas stream
    /// per bound id, and keeps up to 10,000 routes per router
    /// (`bindingCache.paths`): namerd must not refuse it what its own
    /// cache may keep. With namerd's default cap of 10,000 bindings, the
    /// fair share at the cap, not this limit, is what makes room for other
    /// clients; this limit bounds one client where the cap is raised.
    fn default() -> Self {
        ClientLimits {
            max_bindings_per_client: 10_000,
            max_streams_per_client: 20_000,
        }
    }
}

/// A client was refused: it is at one of its limits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "client {client} holds {limit} bindings, its limit (interpreter.maxBindingsPerClient); close some streams before binding more names"
    )]
    BindingsPerClient { client: Client, limit: usize },
    #[error(
        "client {client} holds {limit} open streams, its limit (interpreter.maxStreamsPerClient); close some before opening more"
    )]
    StreamsPerClient { client: Client, limit: usize },
}

impl LimitError {
    /// The limit's name, as a metric label.
    fn label(&self) -> &'static str {
        match self {
            LimitError::BindingsPerClient { .. } => "maxBindingsPerClient",
            LimitError::StreamsPerClient { .. } => "maxStreamsPerClient",
        }
    }
}

/// A client of namerd's APIs, by which its limits are counted: the peer's
/// IP address and, if it presented a verified client certificate, its
/// identity. Both, because neither alone is one client: the proxies of a
/// DaemonSet may share one certificate across nodes, and several proxies
/// with certificates of their own may reach namerd through one NAT
/// address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    ip: IpAddr,
    identity: Option<Arc<ClientIdentity>>,
}

impl Client {
    /// Requests whose peer is unknown (a router called in-process, without
    /// a listener) count as this one client.
    pub const UNKNOWN: Client = Client {
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        identity: None,
    };

    /// A client without a certificate.
    pub fn new(ip: IpAddr) -> Client {
        Client::identified(ip, None)
    }

    pub fn identified(ip: IpAddr, identity: Option<Arc<ClientIdentity>>) -> Client {
        // An IPv4 client of a dual-stack listener is one peer however it
        // is written.
        Client {
            ip: ip.to_canonical(),
            identity,
        }
    }

    /// The client of a request: the listener's [`Peer`] in its extensions.
    /// The one place namerd reads who is calling for its limits.
    pub fn of(extensions: &http::Extensions) -> Client {
        extensions.get::<Peer>().map_or(Client::UNKNOWN, |peer| {
            Client::identified(peer.addr.ip(), peer.identity.clone())
        })
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ip)?;
        // The name that stands for the caller, as in `l5d-client-id`.
        match self.identity.as_deref().and_then(ClientIdentity::primary) {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// What every client holds now. See the module documentation.
#[derive(Debug)]
pub struct Clients {
    limits: ClientLimits,
    holding: Mutex<HashMap<Client, Usage>>,
}

/// What one client holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bindings: usize,
    pub streams: usize,
}

/// Who holds more than a fair share of the global binding cap: the cap
/// divided among the clients that hold bindings.
#[derive(Debug)]
pub struct FairShare {
    pub share: usize,
    /// Clients holding more than `share` bindings.
    pub over: HashSet<Client>,
}

/// An open stream, counted until dropped.
#[derive(Debug)]
#[must_use = "the stream is counted until the lease is dropped"]
pub struct StreamLease {
    clients: Arc<Clients>,
    client: Client,
}

/// A binding a client holds (watches or waits for), counted until dropped.
#[derive(Debug)]
#[must_use = "the binding is counted until the hold is dropped"]
pub struct BindingHold {
    clients: Arc<Clients>,
    client: Client,
}

// === impl Clients ===

impl Clients {
    pub fn new(limits: ClientLimits) -> Arc<Clients> {
        Arc::new(Clients {
            limits,
            holding: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> ClientLimits {
        self.limits
    }

    /// Counts a new stream of `client`, unless it is at its limit.
    pub fn open_stream(self: &Arc<Self>, client: &Client) -> Result<StreamLease, LimitError> {
        let limit = self.limits.max_streams_per_client;
        if !self.take(client, |u| &mut u.streams, limit) {
            let client = client.clone();
            return Err(refuse(LimitError::StreamsPerClient { client, limit }));
        }
        Ok(StreamLease {
            clients: self.clone(),
            client: client.clone(),
        })
    }

    /// Counts a binding `client` holds, unless it is at its limit.
    pub fn hold_binding(self: &Arc<Self>, client: &Client) -> Result<BindingHold, LimitError> {
        let limit = self.limits.max_bindings_per_client;
        if !self.take(client, |u| &mut u.bindings, limit) {
            let client = client.clone();
            return Err(refuse(LimitError::BindingsPerClient { client, limit }));
        }
        Ok(BindingHold {
            clients: self.clone(),
            client: client.clone(),
        })
    }

    /// What `client` holds now.
    pub fn usage(&self, client: &Client) -> Usage {
        self.lock().get(client).copied().unwrap_or_default()
    }

    /// Each client's fair share of `capacity` bindings, and who holds more.
    pub fn fair_share(&self, capacity: usize) -> FairShare {
        let holding = self.lock();
        let binding = holding.values().filter(|u| u.bindings > 0).count();
        let share = capacity / binding.max(1);
        let over = holding
            .iter()
            .filter(|(_, u)| u.bindings > share)
            .map(|(client, _)| client.clone())
            .collect();
        FairShare { share, over }
    }

    /// Adds one to `client`'s `count` unless it is at `limit`; whether it
    /// did.
    fn take(
        &self,
        client: &Client,
        count: impl Fn(&mut Usage) -> &mut usize,
        limit: usize,
    ) -> bool {
        let mut holding = self.lock();
        let mut usage = holding.get(client).copied().unwrap_or_default();
        if *count(&mut usage) >= limit {
            return false;
        }
        *count(&mut usage) += 1;
        holding.insert(client.clone(), usage);
        true
    }

    /// Gives back one of `client`'s `count`; a client that holds nothing
    /// is forgotten, so the table grows with the clients holding something
    /// now, never with every client that ever asked.
    fn give_back(&self, client: &Client, count: impl Fn(&mut Usage) -> &mut usize) {
        let mut holding = self.lock();
        if let Some(usage) = holding.get_mut(client) {
            let n = count(usage);
            *n = n.saturating_sub(1);
            if *usage == Usage::default() {
                holding.remove(client);
            }
        }
    }

    // A poisoned lock only means a panic elsewhere; the counts are intact.
    fn lock(&self) -> MutexGuard<'_, HashMap<Client, Usage>> {
        self.holding.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn refuse(e: LimitError) -> LimitError {
    metrics::counter!("namerd_client_limit_refusals_total", "limit" => e.label()).increment(1);
    tracing::debug!(error = %e, "refused");
    e
}

// === impl StreamLease ===

impl Drop for StreamLease {
    fn drop(&mut self) {
        self.clients.give_back(&self.client, |u| &mut u.streams);
    }
}

// === impl BindingHold ===

impl BindingHold {
    /// The client that holds the binding.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Drop for BindingHold {
    fn drop(&mut self) {
        self.clients.give_back(&self.client, |u| &mut u.bindings);
    }
}
