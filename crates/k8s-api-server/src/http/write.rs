//! Writes: POST (create), PUT (replace, with optimistic concurrency on
//! `metadata.resourceVersion`), PATCH (JSON merge patch; strategic merge
//! patch is treated as a merge patch, which is the same for maps) and
//! DELETE (with a `preconditions.resourceVersion`). `dryRun` validates and
//! answers without storing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::{Params, Target, json};
use crate::Shared;
use crate::object::{self, Meta};
use crate::status::{self, ApiError};
use crate::{Resource, store::Store};

fn body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

/// Rejects unknown fields under `fieldValidation=Strict`, with the real
/// server's message; other modes accept them (no warnings are sent).
fn check_fields(resource: Resource, params: &Params, object: &Value) -> Result<(), ApiError> {
    if params.field_validation.as_deref() != Some("Strict") {
        return Ok(());
    }
    let unknown = object::unknown_fields(resource, object);
    if unknown.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        fields.join(", ")
    )))
}

fn dry_run(params: &Params) -> bool {
    params.dry_run.as_deref() == Some("All")
}

pub(super) fn create(
    shared: &Arc<Shared>,
    resource: Resource,
    namespace: &str,
    params: &Params,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let mut object = body(bytes)?;
    check_fields(resource, params, &object)?;
    object::prepare(resource, namespace, None, &mut object)?;
    if Meta::of(&object).resource_version.is_some() {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if dry_run(params) {
        return Ok(json(StatusCode::CREATED, &object));
    }
    let created = shared.write(|store| store.create(resource, object))?;
    Ok(json(StatusCode::CREATED, &created))
}

pub(super) fn replace(
    shared: &Arc<Shared>,
    target: &Target,
    name: &str,
    params: &Params,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let namespace = namespace(target)?;
    let mut object = body(bytes)?;
    check_fields(resource, params, &object)?;
    object::prepare(resource, namespace, Some(name), &mut object)?;
    let replaced = shared.write(|store| {
        visible(shared, store, resource, namespace, name)?;
        if dry_run(params) {
            return Ok(object);
        }
        store.replace(resource, object, true)
    })?;
    Ok(json(StatusCode::OK, &replaced))
}

pub(super) fn patch(
    shared: &Arc<Shared>,
    target: &Target,
    name: &str,
    content_type: &str,
    params: &Params,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let namespace = namespace(target)?;
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(
        media,
        "application/merge-patch+json" | "application/strategic-merge-patch+json"
    ) {
        return Err(ApiError::unsupported_media_type(
            content_type,
            "application/merge-patch+json, application/strategic-merge-patch+json",
        ));
    }
    let patch = body(bytes)?;
    check_fields(resource, params, &patch)?;
    let patched = shared.write(|store| {
        let mut object = visible(shared, store, resource, namespace, name)?.clone();
        merge(&mut object, &patch);
        object::prepare(resource, namespace, Some(name), &mut object)?;
        if dry_run(params) {
            return Ok(object);
        }
        store.replace(resource, object, true)
    })?;
    Ok(json(StatusCode::OK, &patched))
}

pub(super) fn delete(
    shared: &Arc<Shared>,
    target: &Target,
    name: &str,
    params: &Params,
    bytes: &Bytes,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let namespace = namespace(target)?;
    let options = if bytes.is_empty() {
        Value::Null
    } else {
        body(bytes)?
    };
    let precondition = options["preconditions"]["resourceVersion"].as_str();
    let dry = dry_run(params)
        || options["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let deleted = shared.write(|store| {
        let current = visible(shared, store, resource, namespace, name)?.clone();
        if dry {
            return Ok(current);
        }
        store.delete(resource, namespace, name, precondition)
    })?;
    Ok(json(
        StatusCode::OK,
        &status::deleted(resource, name, &deleted["metadata"]["uid"]),
    ))
}

fn namespace(target: &Target) -> Result<&str, ApiError> {
    target
        .namespace
        .as_deref()
        .ok_or_else(ApiError::method_not_allowed)
}

/// The stored object as the API shows it: hidden objects are not found.
fn visible<'a>(
    shared: &Shared,
    store: &'a Store,
    resource: Resource,
    namespace: &str,
    name: &str,
) -> Result<&'a Value, ApiError> {
    store
        .get(&(resource, namespace.to_owned(), name.to_owned()))
        .filter(|_| !shared.faults.is_hidden(resource, namespace, name))
        .ok_or_else(|| ApiError::not_found(resource, name))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}
