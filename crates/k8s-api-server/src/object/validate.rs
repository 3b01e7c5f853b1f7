//! The validation the real server applies to our types, with its wording:
//! object names (DNS-1123 subdomains; DNS-1035 labels for Services),
//! ConfigMap keys and the 1 MiB ConfigMap limit, and EndpointSlice address
//! types.

use base64::Engine;
use serde_json::Value;

use crate::Resource;
use crate::status::ApiError;

/// The most data a ConfigMap may hold (keys plus values), as in
/// `k8s.io/api/core/v1.MaxSecretSize`.
const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_1035_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const KEY_MESSAGE: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

pub(super) fn object(resource: Resource, object: &Value) -> Result<(), ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::invalid(
            resource,
            name,
            "metadata.name",
            "FieldValueRequired",
            "Required value: name or generateName is required".into(),
        ));
    }
    let name_error = match resource {
        Resource::Services => dns1035_label(name),
        _ => dns1123_subdomain(name),
    };
    if let Some(detail) = name_error {
        return Err(ApiError::invalid(
            resource,
            name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: {name:?}: {detail}"),
        ));
    }
    match resource {
        Resource::ConfigMaps => config_map(object, name),
        Resource::EndpointSlices => endpoint_slice(object, name),
        Resource::Ingresses => ingress(object, name),
        Resource::Services => Ok(()),
    }
}

fn config_map(object: &Value, name: &str) -> Result<(), ApiError> {
    let resource = Resource::ConfigMaps;
    let mut total = 0;
    for (field, binary) in [("data", false), ("binaryData", true)] {
        let Some(entries) = object[field].as_object() else {
            continue;
        };
        for (key, value) in entries {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                && key != "."
                && key != ".."
                && !key.starts_with("..");
            if !valid {
                return Err(ApiError::invalid(
                    resource,
                    name,
                    &format!("{field}[{key}]"),
                    "FieldValueInvalid",
                    format!("Invalid value: {key:?}: {KEY_MESSAGE}"),
                ));
            }
            let text = value.as_str().unwrap_or("");
            let size = if binary {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(|b| b.len())
                    .unwrap_or(text.len())
            } else {
                text.len()
            };
            total += key.len() + size;
        }
    }
    if total > MAX_CONFIG_MAP_BYTES {
        return Err(ApiError::invalid(
            resource,
            name,
            "[]",
            "FieldValueTooLong",
            format!("Too long: must have at most {MAX_CONFIG_MAP_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn endpoint_slice(object: &Value, name: &str) -> Result<(), ApiError> {
    let resource = Resource::EndpointSlices;
    match object["addressType"].as_str() {
        Some("IPv4" | "IPv6" | "FQDN") => Ok(()),
        None => Err(ApiError::invalid(
            resource,
            name,
            "addressType",
            "FieldValueRequired",
            "Required value".into(),
        )),
        Some(other) => Err(ApiError::invalid(
            resource,
            name,
            "addressType",
            "FieldValueNotSupported",
            format!("Unsupported value: {other:?}: supported values: \"FQDN\", \"IPv4\", \"IPv6\""),
        )),
    }
}

/// The checks of the real server's Ingress validation that clients are
/// likely to trip: rules or a default backend, every path has a `pathType` the API knows, `Exact` and
/// `Prefix` paths are absolute, and every backend names a Service with a
/// port by name or by number (not both). Which Services exist is not
/// checked (the real server does not either).
fn ingress(object: &Value, name: &str) -> Result<(), ApiError> {
    let resource = Resource::Ingresses;
    let invalid = |field: String, reason: &str, detail: String| {
        Err(ApiError::invalid(resource, name, &field, reason, detail))
    };
    let spec = &object["spec"];
    let no_rules = spec["rules"].as_array().is_none_or(Vec::is_empty);
    if no_rules && spec["defaultBackend"].is_null() {
        return invalid(
            "spec".into(),
            "FieldValueInvalid",
            "Invalid value: \"\": either `defaultBackend` or `rules` must be specified".into(),
        );
    }
    let mut backends = vec![("spec.defaultBackend".to_string(), &spec["defaultBackend"])];
    for (r, rule) in spec["rules"].as_array().into_iter().flatten().enumerate() {
        for (p, path) in rule["http"]["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("spec.rules[{r}].http.paths[{p}]");
            match path["pathType"].as_str() {
                None => {
                    return invalid(
                        format!("{field}.pathType"),
                        "FieldValueRequired",
                        "Required value: pathType must be specified".into(),
                    );
                }
                Some("Exact" | "Prefix")
                    if !path["path"].as_str().is_some_and(|s| s.starts_with('/')) =>
                {
                    return invalid(
                        format!("{field}.path"),
                        "FieldValueInvalid",
                        format!("Invalid value: {}: must be an absolute path", path["path"]),
                    );
                }
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(other) => {
                    return invalid(
                        format!("{field}.pathType"),
                        "FieldValueNotSupported",
                        format!(
                            "Unsupported value: {other:?}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
                        ),
                    );
                }
            }
            backends.push((format!("{field}.backend"), &path["backend"]));
        }
    }
    for (field, backend) in backends {
        if backend.is_null() {
            continue;
        }
        let port = &backend["service"]["port"];
        let by_name = port["name"].as_str().is_some_and(|n| !n.is_empty());
        let by_number = port["number"].as_i64().is_some_and(|n| n > 0);
        if backend["service"]["name"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return invalid(
                format!("{field}.service.name"),
                "FieldValueRequired",
                "Required value".into(),
            );
        }
        if by_name == by_number {
            return invalid(
                format!("{field}.service.port"),
                "FieldValueInvalid",
                "Invalid value: exactly one of name or number must be set".into(),
            );
        }
    }
    Ok(())
}

fn dns1123_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn dns1123_subdomain(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    (!name.split('.').all(dns1123_label)).then(|| SUBDOMAIN_MESSAGE.into())
}

fn dns1035_label(name: &str) -> Option<String> {
    if name.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    let starts_alpha = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    (!(starts_alpha && dns1123_label(name))).then(|| LABEL_1035_MESSAGE.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("a.b-c.d1").is_none());
        for bad in ["A", "-a", "a-", "a..b", "a_b", ""] {
            assert!(dns1123_subdomain(bad).is_some(), "{bad}");
        }
        assert!(dns1123_subdomain(&"a".repeat(254)).is_some());
        assert!(dns1035_label("web-1").is_none());
        assert!(dns1035_label("1web").is_some());
        assert!(dns1035_label("a.b").is_some());
    }
}
