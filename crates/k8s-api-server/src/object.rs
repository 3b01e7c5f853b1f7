//! What the server does to an object on its way into the store: the type
//! and namespace checked against the request, names and sizes validated,
//! server-owned metadata (uid, creationTimestamp, generation) filled and the
//! real server's defaults applied, so clients see objects shaped as a real
//! cluster returns them.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Resource;
use crate::status::ApiError;

mod validate;

/// The metadata fields the server reads.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) resource_version: Option<String>,
}

impl Meta {
    pub(crate) fn of(object: &Value) -> Meta {
        let meta = &object["metadata"];
        let text = |field: &str| meta[field].as_str().map(str::to_owned);
        Meta {
            name: text("name").unwrap_or_default(),
            namespace: text("namespace").unwrap_or_default(),
            resource_version: text("resourceVersion").filter(|v| !v.is_empty()),
        }
    }
}

/// Checks an incoming object against the request (`namespace` from the
/// path, `name` from the path on PUT) and validates it; fills in `kind`,
/// `apiVersion`, the namespace and a name from `generateName`.
pub(crate) fn prepare(
    resource: Resource,
    namespace: &str,
    name: Option<&str>,
    object: &mut Value,
) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    check_type(resource, object)?;
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    match meta["namespace"].as_str() {
        None | Some("") => meta["namespace"] = json!(namespace),
        Some(ns) if ns != namespace => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Some(_) => {}
    }
    if let Some(url_name) = name
        && meta["name"].as_str().is_some_and(|n| n != url_name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({url_name})",
            meta["name"].as_str().unwrap_or_default()
        )));
    }
    if meta["name"].as_str().unwrap_or("").is_empty()
        && name.is_none()
        && let Some(prefix) = meta["generateName"].as_str().filter(|p| !p.is_empty())
    {
        meta["name"] = json!(format!("{prefix}{}", random_suffix()));
    }
    // Decoding into the typed object drops fields the type does not have.
    for field in unknown_fields(resource, object) {
        let (parent, key) = match field.strip_prefix("metadata.") {
            Some(key) => (&mut object["metadata"], key),
            None => (&mut *object, field.as_str()),
        };
        if let Some(map) = parent.as_object_mut() {
            map.remove(key);
        }
    }
    validate::object(resource, object)
}

fn check_type(resource: Resource, object: &mut Value) -> Result<(), ApiError> {
    match object["apiVersion"].as_str() {
        None | Some("") => object["apiVersion"] = json!(resource.api_version()),
        Some(v) if v != resource.api_version() => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                resource.api_version()
            )));
        }
        Some(_) => {}
    }
    match object["kind"].as_str() {
        None | Some("") => object["kind"] = json!(resource.kind()),
        Some(k) if k != resource.kind() => {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {k:?}",
                resource.kind()
            )));
        }
        Some(_) => {}
    }
    Ok(())
}

/// The fields of `object` its type does not have, as strict field
/// validation (`fieldValidation=Strict`) reports them. Only the top level
/// and `metadata` are checked: the server keeps no schemas for the rest.
pub(crate) fn unknown_fields(resource: Resource, object: &Value) -> Vec<String> {
    const META: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ];
    let top: &[&str] = match resource {
        Resource::ConfigMaps => &["data", "binaryData", "immutable"],
        Resource::Services => &["spec", "status"],
        Resource::EndpointSlices => &["addressType", "endpoints", "ports"],
        Resource::Ingresses => &["spec", "status"],
    };
    let mut unknown = Vec::new();
    for key in object.as_object().into_iter().flat_map(|m| m.keys()) {
        if !["apiVersion", "kind", "metadata"].contains(&key.as_str())
            && !top.contains(&key.as_str())
        {
            unknown.push(key.clone());
        }
    }
    for key in object["metadata"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
    {
        if !META.contains(&key.as_str()) {
            unknown.push(format!("metadata.{key}"));
        }
    }
    unknown
}

/// Fills server-owned metadata and defaults of a new object.
pub(crate) fn fill_created(resource: Resource, object: &mut Value, serial: u64) {
    let meta = &mut object["metadata"];
    meta["uid"] = json!(uid(serial));
    meta["creationTimestamp"] = json!(now());
    if let Some(meta) = meta.as_object_mut() {
        for field in ["resourceVersion", "deletionTimestamp", "generation"] {
            meta.remove(field);
        }
    }
    if resource.has_generation() {
        object["metadata"]["generation"] = json!(1);
    }
    apply_defaults(resource, object, None, serial);
}

/// Carries server-owned metadata over from the stored object to its
/// replacement and bumps the generation when more than metadata changed.
pub(crate) fn fill_updated(resource: Resource, object: &mut Value, current: &Value) {
    for field in ["uid", "creationTimestamp", "resourceVersion"] {
        object["metadata"][field] = current["metadata"][field].clone();
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("generation");
    }
    apply_defaults(resource, object, Some(current), 0);
    if resource.has_generation() {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        let body_changed = without_metadata(object) != without_metadata(current);
        object["metadata"]["generation"] = json!(generation + i64::from(body_changed));
    }
}

fn without_metadata(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("metadata");
    }
    object
}

/// The defaults the real server's registry strategies apply.
fn apply_defaults(resource: Resource, object: &mut Value, current: Option<&Value>, serial: u64) {
    match resource {
        Resource::ConfigMaps => {}
        Resource::Services => {
            let spec = &mut object["spec"];
            if spec["type"].as_str().is_none() {
                spec["type"] = json!("ClusterIP");
            }
            if spec["sessionAffinity"].as_str().is_none() {
                spec["sessionAffinity"] = json!("None");
            }
            // The cluster IP is allocated once and kept when a replacement
            // leaves it out, as the real allocator does.
            if spec["clusterIP"].as_str().is_none() && spec["type"] != "ExternalName" {
                let ip = match current {
                    Some(current) => current["spec"]["clusterIP"].clone(),
                    None => json!(format!(
                        "10.96.{}.{}",
                        (serial / 250) % 256,
                        serial % 250 + 1
                    )),
                };
                spec["clusterIP"] = ip.clone();
                spec["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = spec["ports"].as_array_mut() {
                for port in ports {
                    if port["protocol"].as_str().is_none() {
                        port["protocol"] = json!("TCP");
                    }
                    if port["targetPort"].is_null() {
                        port["targetPort"] = port["port"].clone();
                    }
                }
            }
            if object["status"].is_null() {
                object["status"] = json!({ "loadBalancer": {} });
            }
        }
        Resource::Ingresses => {
            if object["status"].is_null() {
                object["status"] = json!({ "loadBalancer": {} });
            }
        }
        Resource::EndpointSlices => {
            if let Some(ports) = object["ports"].as_array_mut() {
                for port in ports {
                    if port["protocol"].as_str().is_none() {
                        port["protocol"] = json!("TCP");
                    }
                    if port["name"].as_str().is_none() {
                        port["name"] = json!("");
                    }
                }
            }
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn seed() -> &'static RandomState {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    SEED.get_or_init(RandomState::new)
}

fn uid(serial: u64) -> String {
    let a = seed().hash_one((serial, 1u8));
    let b = seed().hash_one((serial, 2u8));
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// Five characters like the real server's generateName suffix.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut value = seed().hash_one(SystemTime::now());
    (0..5)
        .map(|_| {
            let c = ALPHABET[(value % ALPHABET.len() as u64) as usize] as char;
            value /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
