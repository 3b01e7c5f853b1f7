//! The namer index's answers, from Services and EndpointSlices as JSON.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use l5d_dtab::Addr;
use serde_json::json;

use super::{NamespaceIndex, PortCheck, PortSpec};

fn service(name: &str, ports: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": ports}
    }))
    .unwrap()
}

fn slice(name: &str, svc: &str, endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9990}],
        "endpoints": endpoints
    }))
    .unwrap()
}

/// (address, node) of a bound set; `None` for anything but a bound set.
fn addrs(addr: &Addr) -> Option<Vec<(String, Option<String>)>> {
    match addr {
        Addr::Bound(set) => Some(
            set.endpoints()
                .iter()
                .map(|e| (e.addr.to_string(), e.node_name.as_deref().map(String::from)))
                .collect(),
        ),
        _ => None,
    }
}

fn world() -> NamespaceIndex {
    let mut ix = NamespaceIndex::default();
    let changed = ix.reset_services(&[service(
        "world",
        json!([
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "admin", "port": 9990, "targetPort": 9990},
            {"name": "raw", "port": 7000}
        ]),
    )]);
    assert!(changed);
    ix.reset_slices(&[
        slice(
            "world-a",
            "world",
            json!([
                {"addresses": ["10.0.1.5"], "nodeName": "n1", "zone": "z1"},
                {"addresses": ["10.0.2.5"], "nodeName": "n2", "conditions": {"ready": true}},
                {"addresses": ["10.0.3.5"], "nodeName": "n3", "conditions": {"ready": false}}
            ]),
        ),
        slice("other-a", "other", json!([{"addresses": ["10.9.9.9"]}])),
    ]);
    ix
}

#[test]
fn ports_by_name_and_number() {
    let ix = world();
    let want = |port: u16| {
        Some(vec![
            (format!("10.0.1.5:{port}"), Some("n1".to_string())),
            (format!("10.0.2.5:{port}"), Some("n2".to_string())),
        ])
    };
    let cases = [
        (PortSpec::parse("http"), want(8080)),
        // 80 -> targetPort "http" -> the slices' http port.
        (PortSpec::parse("80"), want(8080)),
        (PortSpec::parse("9990"), want(9990)),
        // No targetPort: the port itself.
        (PortSpec::parse("7000"), want(7000)),
        // A number no Service port has is used as is.
        (PortSpec::parse("1234"), want(1234)),
        // A name the slices do not have: no endpoints, but the service exists.
        (PortSpec::parse("grpc"), Some(vec![])),
    ];
    for (port, expected) in cases {
        assert_eq!(addrs(&ix.addr("world", &port)), expected, "{port:?}");
    }
}

#[test]
fn missing_service_is_neg_and_no_ready_endpoints_is_empty() {
    let mut ix = world();
    assert_eq!(ix.addr("nowhere", &PortSpec::parse("http")), Addr::Neg);
    // `other` has a slice but no Service: Neg.
    assert_eq!(ix.addr("other", &PortSpec::parse("http")), Addr::Neg);
    ix.apply_service(&service("empty", json!([{"name": "http", "port": 80}])));
    assert_eq!(
        addrs(&ix.addr("empty", &PortSpec::parse("http"))),
        Some(vec![])
    );
}

#[test]
fn metadata_and_changes() {
    let mut ix = world();
    let Addr::Bound(set) = ix.addr("world", &PortSpec::parse("http")) else {
        panic!("bound");
    };
    assert_eq!(
        set.endpoints()[0].meta.get("zone").map(String::as_str),
        Some("z1")
    );
    // A slice changes: the set follows.
    ix.apply_slice(&slice(
        "world-a",
        "world",
        json!([{"addresses": ["10.0.4.5"], "nodeName": "n4"}]),
    ));
    assert_eq!(
        addrs(&ix.addr("world", &PortSpec::parse("http"))),
        Some(vec![("10.0.4.5:8080".to_string(), Some("n4".to_string()))])
    );
    ix.delete_slice(&slice("world-a", "world", json!([])));
    assert_eq!(
        addrs(&ix.addr("world", &PortSpec::parse("http"))),
        Some(vec![])
    );
    // A change is a Service coming or going or its ports changing (an
    // Ingress backend names a Service port); the same Service again is none.
    assert!(ix.apply_service(&service("world", json!([]))));
    assert!(!ix.apply_service(&service("world", json!([]))));
    assert_eq!(
        ix.service_port("world", &PortSpec::parse("http")),
        PortCheck::NoPort
    );
    assert!(ix.apply_service(&service("world", json!([{"name": "http", "port": 80}]))));
    assert_eq!(
        ix.service_port("world", &PortSpec::parse("http")),
        PortCheck::Found
    );
    assert_eq!(
        ix.service_port("world", &PortSpec::parse("80")),
        PortCheck::Found
    );
    assert_eq!(
        ix.service_port("world", &PortSpec::parse("81")),
        PortCheck::NoPort
    );
    assert!(ix.delete_service(&service("world", json!([]))));
    assert_eq!(
        ix.service_port("world", &PortSpec::parse("http")),
        PortCheck::NoService
    );
    assert!(!ix.has_service_labelled("world", None));
    assert_eq!(ix.service_names().count(), 0);
}

/// Labels (for the namer's `labelSelector` key) are kept and a change of
/// them is a change of names, as a Service coming or going is.
#[test]
fn service_labels_select_and_their_changes_count() {
    let labelled = |value: &str| -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "world", "labels": {"version": value}},
            "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap()
    };
    let mut ix = NamespaceIndex::default();
    assert!(ix.apply_service(&labelled("v1")));
    assert!(ix.has_service_labelled("world", Some(("version", "v1"))));
    assert!(!ix.has_service_labelled("world", Some(("version", "v2"))));
    assert!(!ix.has_service_labelled("world", Some(("track", "v1"))));
    assert!(!ix.apply_service(&labelled("v1")), "same labels: no change");
    assert!(
        ix.apply_service(&labelled("v2")),
        "new label value: a change"
    );
    assert!(!ix.reset_services(&[labelled("v2")]));
    assert!(ix.reset_services(&[labelled("v3")]));
}
