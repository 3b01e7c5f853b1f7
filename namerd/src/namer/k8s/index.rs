//! The Kubernetes namer's view of one Kubernetes namespace: its Services
//! (which names exist, their ports) and EndpointSlices (addresses by
//! service), fed by two watchers and asked for the address set of
//! `(service, port)`. Pure: no I/O, so every rule is tested without a
//! server.
//!
//! - A Service that does not exist is `Neg`; one without ready endpoints is
//!   an empty bound set (Linkerd 1.x's answer too).
//! - Only ready endpoints count (`conditions.ready` absent means ready, as
//!   the API defines it).
//! - The port segment is a port *name*, looked up in each slice's ports
//!   (slices carry the Service's port names), or a *number*: the Service
//!   port with that number gives its `targetPort` (a number, or a name to
//!   look up in the slices); a number no Service port has is used as the
//!   endpoint port as is.
//! - `nodeName` becomes [`Endpoint::node_name`]; zone, hostname and the
//!   target pod go into the endpoint's metadata.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use l5d_dtab::{Addr, Endpoint};

/// The label linking an EndpointSlice to its Service.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service an EndpointSlice belongs to.
pub(crate) fn slice_service(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)
        .map(String::as_str)
}

/// How a name asks for a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum PortSpec {
    Name(String),
    Number(u16),
}

impl PortSpec {
    pub(crate) fn parse(segment: &str) -> PortSpec {
        match segment.parse() {
            Ok(n) => PortSpec::Number(n),
            Err(_) => PortSpec::Name(segment.to_string()),
        }
    }
}

/// What [`NamespaceIndex::service_port`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PortCheck {
    NoService,
    NoPort,
    Found,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct NamespaceIndex {
    /// Service name -> its ports and labels.
    services: BTreeMap<String, ServiceEntry>,
    /// Slice name -> what it says.
    slices: BTreeMap<String, Slice>,
}

#[derive(Clone, Debug, PartialEq)]
struct ServiceEntry {
    ports: Vec<ServicePort>,
    /// Kept for the namer's `labelSelector` (Linkerd's label *key*: names
    /// then carry the value the Service must have).
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
struct ServicePort {
    name: Option<String>,
    port: u16,
    target: Option<IntOrString>,
}

#[derive(Clone, Debug, PartialEq)]
struct Slice {
    service: String,
    /// Port name ("" for an unnamed port) -> number.
    ports: BTreeMap<String, u16>,
    endpoints: Vec<SliceEndpoint>,
}

#[derive(Clone, Debug, PartialEq)]
struct SliceEndpoint {
    ips: Vec<IpAddr>,
    node: Option<Arc<str>>,
    meta: BTreeMap<String, String>,
}

impl NamespaceIndex {
    // === Services ===

    /// Applies a Service; true if the set of names or a Service's labels
    /// or ports changed (which names exist, and which ports an Ingress
    /// backend may use).
    pub(crate) fn apply_service(&mut self, svc: &Service) -> bool {
        let Some(name) = svc.metadata.name.clone() else {
            return false;
        };
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| {
                        Some(ServicePort {
                            name: p.name.clone(),
                            port: u16::try_from(p.port).ok()?,
                            target: p.target_port.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let labels = svc.metadata.labels.clone().unwrap_or_default();
        let entry = ServiceEntry { ports, labels };
        let changed = self.services.get(&name) != Some(&entry);
        self.services.insert(name, entry);
        changed
    }

    pub(crate) fn delete_service(&mut self, svc: &Service) -> bool {
        svc.metadata
            .name
            .as_ref()
            .is_some_and(|n| self.services.remove(n).is_some())
    }

    /// Replaces every Service; true if the set of names (or labels, or
    /// ports) changed.
    pub(crate) fn reset_services(&mut self, services: &[Service]) -> bool {
        let before = std::mem::take(&mut self.services);
        for svc in services {
            self.apply_service(svc);
        }
        before != self.services
    }

    /// Whether Service `name` exists and has `port`: a port of that name,
    /// or of that number (Ingress backends name Service ports, not
    /// endpoint ports).
    pub(crate) fn service_port(&self, name: &str, port: &PortSpec) -> PortCheck {
        let Some(entry) = self.services.get(name) else {
            return PortCheck::NoService;
        };
        let found = entry.ports.iter().any(|p| match port {
            PortSpec::Name(n) => p.name.as_deref() == Some(n.as_str()),
            PortSpec::Number(n) => p.port == *n,
        });
        match found {
            true => PortCheck::Found,
            false => PortCheck::NoPort,
        }
    }

    /// Whether `name` exists and, if `label` is given, carries that label
    /// with that value.
    pub(crate) fn has_service_labelled(&self, name: &str, label: Option<(&str, &str)>) -> bool {
        self.services.get(name).is_some_and(|e| match label {
            None => true,
            Some((key, value)) => e.labels.get(key).map(String::as_str) == Some(value),
        })
    }

    pub(crate) fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    // === EndpointSlices ===

    pub(crate) fn apply_slice(&mut self, slice: &EndpointSlice) {
        let (Some(name), Some(service)) = (
            slice.metadata.name.clone(),
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .cloned(),
        ) else {
            return;
        };
        let ports = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let port = u16::try_from(p.port?).ok()?;
                Some((p.name.clone().unwrap_or_default(), port))
            })
            .collect();
        let endpoints = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .map(|e| {
                let mut meta = BTreeMap::new();
                if let Some(zone) = &e.zone {
                    meta.insert("zone".to_string(), zone.clone());
                }
                if let Some(host) = &e.hostname {
                    meta.insert("hostname".to_string(), host.clone());
                }
                if let Some(pod) = e.target_ref.as_ref().and_then(|r| r.name.clone()) {
                    meta.insert("pod".to_string(), pod);
                }
                SliceEndpoint {
                    ips: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                    node: e.node_name.as_deref().map(Arc::from),
                    meta,
                }
            })
            .collect();
        self.slices.insert(
            name,
            Slice {
                service,
                ports,
                endpoints,
            },
        );
    }

    pub(crate) fn delete_slice(&mut self, slice: &EndpointSlice) {
        if let Some(name) = &slice.metadata.name {
            self.slices.remove(name);
        }
    }

    pub(crate) fn reset_slices(&mut self, slices: &[EndpointSlice]) {
        self.slices.clear();
        for slice in slices {
            self.apply_slice(slice);
        }
    }

    // === answers ===

    /// The addresses of `service` on `port`.
    pub(crate) fn addr(&self, service: &str, port: &PortSpec) -> Addr {
        let Some(ServiceEntry {
            ports: service_ports,
            ..
        }) = self.services.get(service)
        else {
            return Addr::Neg;
        };
        // What to look for in the slices: a port name, or a fixed number.
        let wanted = match port {
            PortSpec::Name(name) => PortSpec::Name(name.clone()),
            PortSpec::Number(n) => match service_ports.iter().find(|p| p.port == *n) {
                Some(ServicePort {
                    target: Some(IntOrString::String(target)),
                    ..
                }) => PortSpec::Name(target.clone()),
                Some(ServicePort {
                    target: Some(IntOrString::Int(target)),
                    ..
                }) => PortSpec::Number(u16::try_from(*target).unwrap_or(*n)),
                // No targetPort: it defaults to the port itself.
                Some(ServicePort { port, .. }) => PortSpec::Number(*port),
                None => PortSpec::Number(*n),
            },
        };
        let mut endpoints = Vec::new();
        for slice in self.slices.values().filter(|s| s.service == service) {
            let number = match &wanted {
                PortSpec::Number(n) => Some(*n),
                PortSpec::Name(name) => slice.ports.get(name).copied(),
            };
            let Some(number) = number else { continue };
            for e in &slice.endpoints {
                for ip in &e.ips {
                    endpoints.push(Endpoint {
                        addr: SocketAddr::new(*ip, number),
                        node_name: e.node.clone(),
                        weight: None,
                        meta: e.meta.clone(),
                    });
                }
            }
        }
        Addr::bound(endpoints)
    }
}

#[cfg(test)]
mod tests;
