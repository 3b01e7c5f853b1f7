//! Entry points for the fuzz targets (`crates/fuzz-targets`, run by
//! `fuzz/`): the decoding of Kubernetes objects by the ConfigMap store and
//! the EndpointSlice namer, whose indexes are crate-private because they
//! are no API. Hidden from the documentation; nothing but the fuzz
//! targets and their replay test may call it.
//!
//! Objects arrive as JSON and are decoded with serde, as kube decodes the
//! API server's answers (k8s-openapi checks `apiVersion` and `kind`).

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::namer::k8s::index::{NamespaceIndex, PortSpec};

/// A ConfigMap, as the dtab store's watcher hands it over.
pub fn config_map(json: &[u8]) {
    if let Ok(cm) = serde_json::from_slice::<ConfigMap>(json) {
        crate::store::k8s::read_for_fuzzing(cm);
    }
}

/// A JSON array of Services and EndpointSlices (by their `kind`), as the
/// namer's two watchers hand them over: applied, asked for the address
/// set of every Service on every port it or a slice names, then relisted
/// and deleted.
pub fn endpoints(json: &[u8]) {
    let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(json) else {
        return;
    };
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for item in items {
        match item.get("kind").and_then(|k| k.as_str()) {
            Some("Service") => services.extend(serde_json::from_value::<Service>(item).ok()),
            Some("EndpointSlice") => {
                slices.extend(serde_json::from_value::<EndpointSlice>(item).ok());
            }
            _ => {}
        }
    }
    let mut index = NamespaceIndex::default();
    for svc in &services {
        index.apply_service(svc);
    }
    for slice in &slices {
        index.apply_slice(slice);
    }
    let mut ports: Vec<PortSpec> = vec![PortSpec::parse("http"), PortSpec::parse("80")];
    for svc in &services {
        for p in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            ports.push(PortSpec::parse(&p.port.to_string()));
            ports.extend(p.name.as_deref().map(PortSpec::parse));
        }
    }
    for slice in &slices {
        ports.extend(
            slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| p.name.as_deref().map(PortSpec::parse)),
        );
    }
    let names: Vec<String> = index.service_names().map(str::to_string).collect();
    for name in &names {
        for port in &ports {
            let _ = index.addr(name, port);
        }
        let _ = index.has_service_labelled(name, Some(("app", "x")));
    }
    index.reset_services(&services);
    index.reset_slices(&slices);
    for slice in &slices {
        index.delete_slice(slice);
    }
    for svc in &services {
        index.delete_service(svc);
    }
}
