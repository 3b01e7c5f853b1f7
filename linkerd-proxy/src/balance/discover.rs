//! Endpoint discovery for tower's balancer: turns an id's address-set
//! channel into `Change::Insert`/`Change::Remove` events.
//!
//! The channel is read synchronously each time the balancer polls (once
//! per request), never awaited: the stream answers `Pending` without
//! registering a waker. That is sound here because the balancer is only
//! ever polled by a request that is about to be dispatched, and it keeps
//! the request path free of task wake-ups.
//!
//! A failure or a pending state keeps the current endpoints (a failure is
//! never an empty set); `Neg` and an empty bound set remove them all.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use l5d_dtab::{Addr, Path};
use tokio::sync::watch;
use tower::discover::Change;

use crate::client::{Connector, EndpointClient};
use crate::interpreter::Resolution;
use crate::metrics::Metrics;

pub(crate) struct EndpointDiscover {
    id: Path,
    router: String,
    replicas: watch::Receiver<Resolution>,
    connector: Connector,
    metrics: Metrics,
    current: HashMap<SocketAddr, ()>,
    queue: VecDeque<Change<SocketAddr, EndpointClient>>,
    first: bool,
}

impl std::fmt::Debug for EndpointDiscover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointDiscover")
            .field("id", &self.id)
            .field("endpoints", &self.current.len())
            .finish()
    }
}

impl EndpointDiscover {
    pub(crate) fn new(
        id: Path,
        replicas: watch::Receiver<Resolution>,
        connector: Connector,
        metrics: Metrics,
        router: String,
    ) -> Self {
        EndpointDiscover {
            id,
            router,
            replicas,
            connector,
            metrics,
            current: HashMap::new(),
            queue: VecDeque::new(),
            first: true,
        }
    }

    /// Queues the changes from the current set to the channel's value.
    fn refresh(&mut self) {
        let state = self.replicas.borrow_and_update().clone();
        let wanted: Vec<SocketAddr> = match &state.addr {
            Addr::Bound(set) => set.endpoints().iter().map(|e| e.addr).collect(),
            Addr::Neg => Vec::new(),
            Addr::Pending | Addr::Failed(_) => return,
        };
        let removed: Vec<SocketAddr> = self
            .current
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in removed {
            self.current.remove(&addr);
            self.queue.push_back(Change::Remove(addr));
        }
        for addr in wanted {
            if self.current.insert(addr, ()).is_none() {
                let metrics = self.metrics.endpoint(&self.router, &self.id, addr);
                let client = self.connector.client(addr, metrics);
                self.queue.push_back(Change::Insert(addr, client));
            }
        }
    }
}

impl Stream for EndpointDiscover {
    type Item = Result<Change<SocketAddr, EndpointClient>, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.queue.is_empty() {
            let changed = this.replicas.has_changed().unwrap_or(false);
            if this.first || changed {
                this.first = false;
                this.refresh();
            }
        }
        match this.queue.pop_front() {
            Some(change) => Poll::Ready(Some(Ok(change))),
            None => Poll::Pending,
        }
    }
}
