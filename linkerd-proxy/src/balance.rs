//! TEMPORARY (branch `retries` only, replaced by the balancer of branch
//! `wt/balancer` before merging): a uniform random choice with the API the
//! router uses, so that the attempt loop builds and runs meanwhile.

use std::net::SocketAddr;
use std::sync::Mutex;

use l5d_dtab::{Addr, Path};
use tokio::sync::watch;

use crate::classify::ResponseClass;
use crate::client::{Connector, EndpointClient};
use crate::config::BalancerKind;
use crate::error::ProxyError;
use crate::interpreter::Resolution;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct Balancer {
    id: Path,
    router: String,
    replicas: watch::Receiver<Resolution>,
    connector: Connector,
    metrics: Metrics,
    endpoints: Mutex<Vec<EndpointClient>>,
}

#[derive(Debug)]
pub struct Picked(EndpointClient);

#[derive(Debug)]
pub struct Outcome;

impl Picked {
    pub fn addr(&self) -> SocketAddr {
        self.0.addr()
    }
    pub fn client(&self) -> &EndpointClient {
        &self.0
    }
    pub fn responded(self) -> Outcome {
        Outcome
    }
}

impl Outcome {
    pub fn record(self, _class: ResponseClass) {}
}

impl Balancer {
    pub fn new(
        id: Path,
        replicas: watch::Receiver<Resolution>,
        _kind: BalancerKind,
        connector: Connector,
        metrics: Metrics,
        router: &str,
    ) -> Self {
        Balancer {
            id,
            router: router.to_string(),
            replicas,
            connector,
            metrics,
            endpoints: Mutex::new(Vec::new()),
        }
    }

    pub fn id(&self) -> &Path {
        &self.id
    }

    pub fn replicas(&self) -> watch::Receiver<Resolution> {
        self.replicas.clone()
    }

    pub fn has_endpoints(&self) -> bool {
        matches!(&self.replicas.borrow().addr, Addr::Bound(set) if !set.is_empty())
    }

    pub fn pick(&self, avoid: Option<SocketAddr>, name: &Path) -> Result<Picked, ProxyError> {
        let mut eps = self.endpoints.lock().unwrap();
        if let Addr::Bound(set) = &self.replicas.borrow().addr {
            let wanted: Vec<SocketAddr> = set.endpoints().iter().map(|e| e.addr).collect();
            eps.retain(|e| wanted.contains(&e.addr()));
            for a in wanted {
                if !eps.iter().any(|e| e.addr() == a) {
                    let m = self.metrics.endpoint(&self.router, &self.id, a);
                    eps.push(self.connector.client(a, m));
                }
            }
        }
        let usable: Vec<&EndpointClient> = eps.iter().filter(|e| Some(e.addr()) != avoid).collect();
        let pool: Vec<&EndpointClient> = if usable.is_empty() {
            eps.iter().collect()
        } else {
            usable
        };
        if pool.is_empty() {
            return Err(ProxyError::NoEndpoints {
                name: name.clone(),
                id: self.id.clone(),
                why: "the address set is empty".into(),
            });
        }
        Ok(Picked(pool[fastrand::usize(..pool.len())].clone()))
    }
}
