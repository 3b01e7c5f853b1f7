//! Round robin over an id's endpoints. tower has no round-robin balancer
//! (its balancers are load-aware by design), so this small one keeps the
//! endpoints from the same discovery stream in a list and takes the next.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use http::{Request, Response};
use tower::Service;
use tower::discover::Change;

use super::discover::EndpointDiscover;
use crate::client::{EndpointClient, PooledBody, RequestBody};
use crate::error::ProxyError;

#[derive(Debug)]
pub(crate) struct RoundRobin {
    discover: EndpointDiscover,
    endpoints: Vec<(SocketAddr, EndpointClient)>,
    next: usize,
}

impl RoundRobin {
    pub(crate) fn new(discover: EndpointDiscover) -> Self {
        RoundRobin {
            discover,
            endpoints: Vec::new(),
            next: 0,
        }
    }
}

impl Service<Request<RequestBody>> for RoundRobin {
    type Response = Response<PooledBody>;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<Response<PooledBody>, ProxyError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        while let Poll::Ready(Some(Ok(change))) = Pin::new(&mut self.discover).poll_next(cx) {
            match change {
                Change::Insert(addr, endpoint) => {
                    self.endpoints.retain(|(a, _)| *a != addr);
                    self.endpoints.push((addr, endpoint));
                }
                Change::Remove(addr) => self.endpoints.retain(|(a, _)| *a != addr),
            }
        }
        if self.endpoints.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let i = self.next % self.endpoints.len();
        self.next = self.next.wrapping_add(1);
        self.endpoints[i].1.call(req)
    }
}
