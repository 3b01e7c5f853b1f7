//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get`
//! asks for (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with
//! the columns the real server prints for our types.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Resource;

/// A Table of `objects`; `list_metadata` for a list (resourceVersion,
/// continue).
pub(crate) fn table(resource: Resource, objects: &[Value], list_metadata: Option<Value>) -> Value {
    let columns: Vec<Value> = columns(resource)
        .iter()
        .map(|(name, kind)| {
            json!({
                "name": name,
                "type": kind,
                "format": if *name == "Name" { "name" } else { "" },
                "description": "",
                "priority": 0,
            })
        })
        .collect();
    let rows: Vec<Value> = objects.iter().map(|o| row(resource, o)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata.unwrap_or_else(|| json!({})),
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn columns(resource: Resource) -> &'static [(&'static str, &'static str)] {
    match resource {
        Resource::ConfigMaps => &[("Name", "string"), ("Data", "string"), ("Age", "string")],
        Resource::Services => &[
            ("Name", "string"),
            ("Type", "string"),
            ("Cluster-IP", "string"),
            ("Ports", "string"),
            ("Age", "string"),
        ],
        Resource::Ingresses => &[
            ("Name", "string"),
            ("Class", "string"),
            ("Hosts", "string"),
            ("Age", "string"),
        ],
        Resource::EndpointSlices => &[
            ("Name", "string"),
            ("AddressType", "string"),
            ("Ports", "string"),
            ("Endpoints", "string"),
            ("Age", "string"),
        ],
    }
}

fn row(resource: Resource, object: &Value) -> Value {
    let name = object["metadata"]["name"].clone();
    let age = age(object["metadata"]["creationTimestamp"].as_str());
    let cells = match resource {
        Resource::ConfigMaps => {
            let count = |f: &str| object[f].as_object().map_or(0, |m| m.len());
            json!([name, count("data") + count("binaryData"), age])
        }
        Resource::Services => {
            let ports = join(object["spec"]["ports"].as_array(), |p| {
                format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
            });
            json!([
                name,
                object["spec"]["type"],
                object["spec"]["clusterIP"],
                none_if_empty(ports),
                age
            ])
        }
        Resource::Ingresses => {
            let hosts = join(object["spec"]["rules"].as_array(), |r| {
                r["host"].as_str().unwrap_or("*").to_owned()
            });
            let class = object["spec"]["ingressClassName"]
                .as_str()
                .unwrap_or("<none>");
            json!([name, class, none_if_empty(hosts), age])
        }
        Resource::EndpointSlices => {
            let ports = join(object["ports"].as_array(), |p| p["port"].to_string());
            let endpoints = join(object["endpoints"].as_array(), |e| {
                join(e["addresses"].as_array(), |a| {
                    a.as_str().unwrap_or("").to_owned()
                })
            });
            json!([
                name,
                object["addressType"],
                none_if_empty(ports),
                none_if_empty(endpoints),
                age
            ])
        }
    };
    let mut metadata = object["metadata"].clone();
    if let Some(map) = metadata.as_object_mut() {
        map.remove("managedFields");
    }
    json!({
        "cells": cells,
        "object": { "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata },
    })
}

fn join(items: Option<&Vec<Value>>, f: impl Fn(&Value) -> String) -> String {
    items
        .map(|items| items.iter().map(f).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn none_if_empty(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// Age as kubectl prints it (`5s`, `3m`, `2h`, `4d`).
fn age(created: Option<&str>) -> String {
    let Some(created) = created.and_then(|c| humantime::parse_rfc3339(c).ok()) else {
        return "<unknown>".into();
    };
    let secs = SystemTime::now()
        .duration_since(created)
        .map_or(0, |d| d.as_secs());
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
