//! The NetworkPolicies (`50-network-policies.yaml`): who may connect to
//! each named port of namerd and of the l5d DaemonSet, as a table. A port
//! added to either workload fails here until someone decides who may
//! reach it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{container_ports, object, objects};

const ANY_POD: &str = "any pod of the cluster";
const L5D: &str = "pods app.kubernetes.io/name=l5d";
const SEED_JOB: &str = "pods app.kubernetes.io/name=namerd-seed-dtabs";
const OPERATORS: &str = "namespaces l5d.io/namerd-operators=true";
const MONITORING: &str = "namespaces l5d.io/monitoring=true";
const ANYONE: &str = "any address (0.0.0.0/0 and ::/0)";

/// (workload kind, name, port name, who may connect).
const EXPECTED: &[(&str, &str, &str, &[&str])] = &[
    ("Deployment", "namerd", "http", &[SEED_JOB, OPERATORS]),
    ("Deployment", "namerd", "mesh", &[L5D]),
    ("Deployment", "namerd", "admin", &[MONITORING]),
    ("DaemonSet", "l5d", "http-outgoing", &[ANY_POD]),
    ("DaemonSet", "l5d", "h2-outgoing", &[ANY_POD]),
    ("DaemonSet", "l5d", "grpc-outgoing", &[ANY_POD]),
    ("DaemonSet", "l5d", "http-incoming", &[L5D]),
    ("DaemonSet", "l5d", "h2-incoming", &[L5D]),
    ("DaemonSet", "l5d", "grpc-incoming", &[L5D]),
    ("DaemonSet", "l5d", "ingress", &[ANYONE]),
    ("DaemonSet", "l5d", "admin", &[MONITORING]),
];

/// `k=v` of a selector's `matchLabels` (the only form used here).
fn labels(selector: &Value) -> String {
    assert!(
        selector.get("matchExpressions").is_none(),
        "only matchLabels is read here: {selector}"
    );
    let map = selector["matchLabels"].as_object();
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().expect("a label value")))
        .collect::<Vec<_>>()
        .join(",")
}

/// One `from` entry as the table names it.
fn peer(from: &Value) -> String {
    if let Some(block) = from.get("ipBlock") {
        // Only the edge admits addresses, and then every one of them.
        let cidr = block["cidr"].as_str().expect("a cidr");
        assert!(
            matches!(cidr, "0.0.0.0/0" | "::/0") && block.get("except").is_none(),
            "no rule admits some addresses only: {from}"
        );
        return ANYONE.to_string();
    }
    match (from.get("namespaceSelector"), from.get("podSelector")) {
        (Some(ns), None) if labels(ns).is_empty() => ANY_POD.to_string(),
        (Some(ns), None) => format!("namespaces {}", labels(ns)),
        (None, Some(pods)) => format!("pods {}", labels(pods)),
        _ => panic!("a peer this test does not read: {from}"),
    }
}

/// Port name -> who may connect, over every policy selecting `pod_labels`.
fn admitted(pod_labels: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, policy) in objects("NetworkPolicy") {
        assert_eq!(policy["metadata"]["namespace"], "linkerd");
        let selects = policy["spec"]["podSelector"]["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| pod_labels[k] == *v);
        if !selects {
            continue;
        }
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            let from = rule["from"].as_array().expect("every rule says from whom");
            assert!(!from.is_empty(), "an empty `from` admits everyone: {rule}");
            for port in rule["ports"].as_array().expect("every rule names ports") {
                let name = port["port"].as_str().expect("ports by name");
                out.entry(name.to_string())
                    .or_default()
                    .extend(from.iter().map(peer));
            }
        }
    }
    out
}

#[test]
fn each_port_admits_only_who_needs_it() {
    // Everything in the namespace is closed unless a policy opens it.
    let deny = object("NetworkPolicy", "default-deny-ingress");
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    assert!(deny["spec"]["ingress"].is_null());

    let mut workloads = BTreeSet::new();
    for (kind, name, _, _) in EXPECTED {
        workloads.insert((*kind, *name));
    }
    for (kind, name) in workloads {
        let workload = object(kind, name);
        let pod_labels = &workload["spec"]["template"]["metadata"]["labels"];
        let got = admitted(pod_labels);
        let want: BTreeMap<String, BTreeSet<String>> = EXPECTED
            .iter()
            .filter(|(k, n, _, _)| (*k, *n) == (kind, name))
            .map(|(_, _, port, peers)| {
                (
                    port.to_string(),
                    peers.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{kind} {name}: who may reach which port");
        let ports: BTreeSet<String> = container_ports(&workload).into_keys().collect();
        let covered: BTreeSet<String> = want.into_keys().collect();
        assert_eq!(ports, covered, "{kind} {name}: every port has a rule");
    }
    // The selectors name the pods they mean.
    for (kind, name, label) in [
        ("DaemonSet", "l5d", L5D),
        ("Job", "namerd-seed-dtabs", SEED_JOB),
    ] {
        let (key, value) = label
            .strip_prefix("pods ")
            .and_then(|l| l.split_once('='))
            .unwrap();
        let pod_labels = &object(kind, name)["spec"]["template"]["metadata"]["labels"];
        assert_eq!(pod_labels[key], value, "{kind} {name}'s pods carry {label}");
    }
}
