//! namerd's HTTP interpreter routes: `/api/1/bind`, `/addr`, `/resolve`,
//! `/delegate` and `/bound-names`, in the JSON shapes of Linkerd's
//! `DelegateApiHandler` (`names/json.rs`; a node's `type` comes first).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use l5d_dtab::{Activity, Addr, Bound, Dtab, NameTree, Path};
use serde::Serialize;
use tokio_stream::wrappers::WatchStream;

use super::codec::{self, Media};
use super::error::ApiError;
use super::extract::{Caller, Ns, Params, Watch};
use super::{ApiState, stream};
use crate::client::Client;
use crate::interpreter::{Binding, BindingWatch, InterpretError, Interpreter};
use crate::store::Namespace;

mod json;

use json::{AddrJson, bound_tree_json, delegate_json};

/// How long `/api/1/delegate` waits for namers, as namerd does.
const DELEGATE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a unary bind or resolve waits for a pending binding.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// The `path` parameter, for bind/addr/resolve: `Invalid path: <p> / <why>`.
fn path_param(params: &Params) -> Result<Path, ApiError> {
    let raw = params.get("path").map(String::as_str).unwrap_or("");
    Path::read(raw).map_err(|e| ApiError::BadRequest(format!("Invalid path: {raw} / {e}")))
}

/// A path of the delegator: `Invalid path: <why>`.
fn delegate_path(raw: &str) -> Result<Path, ApiError> {
    Path::read(raw).map_err(|e| ApiError::BadRequest(format!("Invalid path: {e}")))
}

fn local_dtab(raw: &str) -> Result<Dtab, ApiError> {
    Dtab::read(raw).map_err(|e| ApiError::BadRequest(format!("Invalid dtab: {e}")))
}

/// A local dtab that may be long (a delegation's), parsed off the async
/// runtime if it is.
async fn read_local_dtab(state: &ApiState, text: String) -> Result<Dtab, ApiError> {
    (state.interpreter)
        .parse_input(text.len(), move || Dtab::read(&text))
        .await
        .map_err(|e| ApiError::BadRequest(format!("Invalid dtab: {e}")))
}

fn dtab_param(params: &Params) -> Result<Dtab, ApiError> {
    local_dtab(params.get("dtab").map(String::as_str).unwrap_or(""))
}

fn json<T: Serialize>(value: &T) -> String {
    format!(
        "{}\n",
        serde_json::to_string(value).expect("API JSON serializes")
    )
}

fn ok_json<T: Serialize>(value: &T) -> Response {
    codec::respond(StatusCode::OK, Media::Json, json(value))
}

/// Refuses `path` and `dtab` parameters over the key size limit, before
/// they are parsed.
fn check_key_size(state: &ApiState, params: &Params) -> Result<(), ApiError> {
    let size = ["path", "dtab"]
        .iter()
        .map(|k| params.get(*k).map_or(0, String::len))
        .sum();
    Ok(state.interpreter.check_key_size(size)?)
}

/// The live binding a bind or resolve request names (`path`, `dtab`),
/// held for `client`.
fn live_binding(
    state: &ApiState,
    client: &Client,
    ns: &Namespace,
    params: &Params,
) -> Result<BindingWatch, ApiError> {
    check_key_size(state, params)?;
    let path = path_param(params)?;
    let local = dtab_param(params)?;
    Ok(state.interpreter.bind(client, ns, &path, &local)?)
}

/// Waits for a binding that is not pending: its tree, or why it failed.
/// The binding is held until then.
async fn settled(binding: BindingWatch) -> Result<Arc<NameTree<Bound>>, ApiError> {
    let (mut binding, _lease) = binding.into_parts();
    let wait = binding.wait_for(Binding::settled);
    let tree = match tokio::time::timeout(BIND_TIMEOUT, wait).await {
        Ok(Ok(b)) if b.evicted => return Err(InterpretError::Evicted.into()),
        Ok(Ok(b)) => b.tree.clone(),
        _ => Activity::Pending,
    };
    match tree {
        Activity::Ok(tree) => Ok(tree),
        Activity::Failed(e) => Err(InterpretError::Name(e).into()),
        Activity::Pending => Err(InterpretError::Timeout.into()),
    }
}

// === handlers ===

pub(super) async fn bind(
    State(state): State<ApiState>,
    Caller(client): Caller,
    Ns(ns): Ns,
    Watch(watch): Watch,
    params: Params,
) -> Result<Response, ApiError> {
    let binding = live_binding(&state, &client, &ns, &params)?;
    let interpreter = state.interpreter.clone();
    if let Some(lease) = watch {
        let (binding, binding_lease) = binding.into_parts();
        let docs = binding_docs(binding, interpreter);
        return Ok(stream(&state, Media::Json, docs, (lease, binding_lease)));
    }
    let tree = settled(binding).await?;
    Ok(ok_json(&bound_tree_json(&interpreter, &tree)))
}

/// A document per bound tree (or failure) of a binding, until it is
/// evicted: then the eviction's message, and the end.
fn binding_docs(
    binding: tokio::sync::watch::Receiver<Binding>,
    interpreter: Arc<Interpreter>,
) -> impl futures::Stream<Item = String> + Send + 'static {
    let doc = move |b: &Binding| match &b.tree {
        _ if b.evicted => Some(format!("{}\n", InterpretError::Evicted)),
        Activity::Pending => None,
        Activity::Ok(tree) => Some(json(&bound_tree_json(&interpreter, tree))),
        Activity::Failed(e) => Some(format!("{e}\n")),
    };
    let docs = WatchStream::new(binding)
        .filter_map(move |b| futures::future::ready(doc(&b).map(|d| (d, b.evicted))));
    // The eviction's document is the last.
    docs.scan(false, |ended, (doc, evicted)| {
        let item = (!*ended).then_some(doc);
        *ended |= evicted;
        futures::future::ready(item)
    })
}

pub(super) async fn addr(
    State(state): State<ApiState>,
    Ns(_): Ns,
    Watch(watch): Watch,
    params: Params,
) -> Result<Response, ApiError> {
    check_key_size(&state, &params)?;
    let id = path_param(&params)?;
    let addr = state.interpreter.resolve(&id);
    if let Some(lease) = watch {
        let docs = WatchStream::new(addr).map(|a| json(&AddrJson::from(&a)));
        return Ok(stream(&state, Media::Json, docs, lease));
    }
    let current = addr.borrow().clone();
    Ok(ok_json(&AddrJson::from(&current)))
}

pub(super) async fn resolve(
    State(state): State<ApiState>,
    Caller(client): Caller,
    Ns(ns): Ns,
    params: Params,
) -> Result<Response, ApiError> {
    let tree = settled(live_binding(&state, &client, &ns, &params)?).await?;
    // Every leaf is a candidate: namerd does not know which ids a client
    // can reach.
    let addr = match tree.pick(&mut fastrand::f64, &|_| true) {
        Some(leaf) => state.interpreter.resolve(&leaf.id).borrow().clone(),
        None => Addr::Neg,
    };
    Ok(ok_json(&AddrJson::from(&addr)))
}

pub(super) async fn delegate_ns(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    params: Params,
) -> Result<Response, ApiError> {
    check_key_size(&state, &params)?;
    let path = delegate_path(params.get("path").map(String::as_str).unwrap_or(""))?;
    let dtab = params.get("dtab").cloned().unwrap_or_default();
    let local = read_local_dtab(&state, dtab).await?;
    delegate(&state.interpreter, Some(&ns), &path, &local).await
}

/// The request of the generic delegator (query or JSON body).
#[derive(Debug, serde::Deserialize)]
pub(super) struct DelegateRequest {
    namespace: Option<String>,
    dtab: Option<String>,
    path: Option<String>,
}

pub(super) async fn delegate_get(
    State(state): State<ApiState>,
    params: Query<DelegateRequest>,
) -> Result<Response, ApiError> {
    generic_delegate(&state, params.0).await
}

pub(super) async fn delegate_post(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(ApiError::NotJson);
    }
    let req = (state.interpreter)
        .parse_input(body.len(), move || {
            serde_json::from_slice::<DelegateRequest>(&body)
        })
        .await
        .map_err(|e| ApiError::BadRequest(format!("Malformed delegation request: {e}")))?;
    generic_delegate(&state, req).await
}

async fn generic_delegate(state: &ApiState, req: DelegateRequest) -> Result<Response, ApiError> {
    let (Some(dtab), Some(path)) = (req.dtab, req.path) else {
        return Err(ApiError::BadRequest(
            "Malformed delegation request: both dtab and path are required".into(),
        ));
    };
    state.interpreter.check_key_size(dtab.len() + path.len())?;
    let local = read_local_dtab(state, dtab).await?;
    let path = delegate_path(&path)?;
    let ns = req
        .namespace
        .filter(|n| !n.is_empty())
        .map(|n| Namespace::new(&n))
        .transpose()?;
    delegate(&state.interpreter, ns.as_ref(), &path, &local).await
}

async fn delegate(
    interpreter: &Arc<Interpreter>,
    ns: Option<&Namespace>,
    path: &Path,
    local: &Dtab,
) -> Result<Response, ApiError> {
    let trace = interpreter
        .delegate(ns, &NameTree::Leaf(path.clone()), local, DELEGATE_TIMEOUT)
        .await?;
    Ok(ok_json(&delegate_json(interpreter, &trace)))
}

pub(super) async fn bound_names(
    State(state): State<ApiState>,
    Watch(watch): Watch,
) -> Result<Response, ApiError> {
    let names = |i: &Interpreter| json(&i.bound_names().iter().map(Path::show).collect::<Vec<_>>());
    if let Some(lease) = watch {
        let interpreter = state.interpreter.clone();
        let changes = crate::interpreter::namer_changes(&interpreter);
        let docs = futures::stream::once(futures::future::ready(()))
            .chain(changes)
            .map(move |()| names(&interpreter));
        // Consecutive equal lists are sent once.
        let mut last = None;
        let docs = docs.filter(move |doc| {
            let new = last.as_ref() != Some(doc);
            last = Some(doc.clone());
            futures::future::ready(new)
        });
        return Ok(stream(&state, Media::Json, docs, lease));
    }
    Ok(ok_json(
        &state
            .interpreter
            .bound_names()
            .iter()
            .map(Path::show)
            .collect::<Vec<_>>(),
    ))
}
