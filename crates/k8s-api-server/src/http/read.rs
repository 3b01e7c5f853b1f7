//! GET of one object and lists: selectors, `limit`/`continue` pagination
//! and the `resourceVersion`/`resourceVersionMatch` semantics of the API
//! concepts page (unset or "0": newest; NotOlderThan: newest, never 410;
//! Exact, or a version with `limit` and no match: that version or 410).

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde_json::{Value, json};

use super::{Params, Target, json, table};
use crate::Shared;
use crate::faults::lock;
use crate::selector::Selector;
use crate::status::ApiError;

pub(super) fn get(
    shared: &Arc<Shared>,
    target: &Target,
    name: &str,
    as_table: bool,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let namespace = target.namespace.as_deref().unwrap_or("");
    let store = lock(&shared.store);
    let object = store
        .get(&(resource, namespace.to_owned(), name.to_owned()))
        .filter(|_| !shared.faults.is_hidden(resource, namespace, name))
        .ok_or_else(|| ApiError::not_found(resource, name))?;
    let body = match as_table {
        true => table::table(resource, std::slice::from_ref(object), None),
        false => object.clone(),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Where a paginated list resumes: the list's version and the last key.
struct Continue {
    version: u64,
    namespace: String,
    name: String,
}

impl Continue {
    fn encode(&self) -> String {
        let start = format!("{}/{}", self.namespace, self.name);
        let token = json!({ "v": "meta.k8s.io/v1", "rv": self.version, "start": start });
        STANDARD.encode(token.to_string())
    }

    fn decode(token: &str) -> Result<Continue, ApiError> {
        let invalid = || ApiError::bad_request(format!("invalid continue token {token:?}"));
        let bytes = STANDARD.decode(token).map_err(|_| invalid())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let version = value["rv"].as_u64().ok_or_else(invalid)?;
        let (namespace, name) = value["start"]
            .as_str()
            .and_then(|s| s.split_once('/'))
            .ok_or_else(invalid)?;
        Ok(Continue {
            version,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

pub(super) fn list(
    shared: &Arc<Shared>,
    target: &Target,
    params: &Params,
    as_table: bool,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let selector = Selector::parse(
        params.label_selector.as_deref(),
        params.field_selector.as_deref(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = params.limit.filter(|l| *l > 0).map(|l| l as usize);
    let resume = params
        .continue_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(Continue::decode)
        .transpose()?;
    let mut store = lock(&shared.store);
    let at = match &resume {
        Some(resume) => Some(resume.version),
        None => list_version(&store, params, limit.is_some())?,
    };
    let items = store
        .list_at(resource, target.namespace.as_deref(), at)
        .map_err(|_| match resume {
            Some(_) => ApiError::expired(CONTINUE_EXPIRED),
            None => ApiError::expired("The resourceVersion for the provided list is too old."),
        })?;
    let version = at.unwrap_or(store.version());
    let after = resume
        .as_ref()
        .map(|r| (r.namespace.as_str(), r.name.as_str()));
    let matching = items.into_iter().filter(|((_, ns, name), object)| {
        after.is_none_or(|after| (ns.as_str(), name.as_str()) > after)
            && !shared.faults.is_hidden(resource, ns, name)
            && selector.matches(object)
    });
    let mut page: Vec<(crate::store::Key, Value)> = Vec::new();
    let mut remaining = 0usize;
    for item in matching {
        if limit.is_some_and(|l| page.len() >= l) {
            remaining += 1;
        } else {
            page.push(item);
        }
    }
    let mut metadata = json!({ "resourceVersion": store.versions.render(version) });
    if remaining > 0
        && let Some(((_, namespace, name), _)) = page.last()
    {
        let token = Continue {
            version,
            namespace: namespace.clone(),
            name: name.clone(),
        };
        metadata["continue"] = json!(token.encode());
        // The real server counts the rest only when no selector filters it.
        if params.label_selector.as_deref().unwrap_or("").is_empty()
            && params.field_selector.as_deref().unwrap_or("").is_empty()
        {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    drop(store);
    let objects: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    let body = if as_table {
        table::table(resource, &objects, Some(metadata))
    } else {
        // Items of a typed list carry no kind or apiVersion on the wire.
        let items: Vec<Value> = objects
            .into_iter()
            .map(|mut o| {
                if let Some(map) = o.as_object_mut() {
                    map.remove("kind");
                    map.remove("apiVersion");
                }
                o
            })
            .collect();
        json!({
            "kind": format!("{}List", resource.kind()),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        })
    };
    Ok(json(StatusCode::OK, &body))
}

/// The version a list reads at: `None` for the newest state.
fn list_version(
    store: &crate::store::Store,
    params: &Params,
    paginated: bool,
) -> Result<Option<u64>, ApiError> {
    let requested = params.resource_version.as_deref().unwrap_or("");
    let matching = params.resource_version_match.as_deref().unwrap_or("");
    if requested.is_empty() {
        if !matching.is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        return Ok(None);
    }
    if requested == "0" {
        if matching == "Exact" {
            return Err(ApiError::bad_request(
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        return Ok(None);
    }
    let version = store
        .versions
        .parse(requested)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let exact = match matching {
        "Exact" => true,
        "NotOlderThan" => false,
        // Before resourceVersionMatch, a version with a limit meant exact.
        "" => paginated,
        other => {
            return Err(ApiError::bad_request(format!(
                "unsupported resourceVersionMatch {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    };
    if version > store.version() {
        return Err(too_large(store.version()));
    }
    Ok(exact.then_some(version))
}

fn too_large(current: u64) -> ApiError {
    let mut error = ApiError::internal(format!(
        "Too large resource version: requested version is newer than current ({current})"
    ));
    error.code = 504;
    error.reason = "Timeout";
    error.details = Some(
        json!({ "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }], "retryAfterSeconds": 1 }),
    );
    error
}
