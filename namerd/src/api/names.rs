//! namerd's HTTP interpreter routes: `/api/1/bind`, `/addr`, `/resolve`,
//! `/delegate` and `/bound-names`, in the JSON shapes of Linkerd's
//! `DelegateApiHandler` (a node's `type` comes first).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use l5d_dtab::{Activity, Bound, DelegateNode, DelegateTree, Dtab, NameTree, Path};
use serde::Serialize;
use tokio_stream::wrappers::WatchStream;

use super::codec::{self, Media};
use super::{ApiState, stream};
use crate::interpreter::{Binding, InterpretError, Interpreter};
use crate::namer::Addr;
use crate::store::Namespace;

/// How long `/api/1/delegate` waits for namers, as namerd does.
const DELEGATE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a unary bind or resolve waits for a pending binding.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);

type Params = Query<HashMap<String, String>>;

/// A request parameter that did not parse: 400 with the reason.
#[derive(Debug)]
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

fn bad_request(msg: String) -> Response {
    BadRequest(msg).into_response()
}

/// The `path` parameter, for bind/addr/resolve: `Invalid path: <p> / <why>`.
fn path_param(params: &Params) -> Result<Path, BadRequest> {
    let raw = params.get("path").map(String::as_str).unwrap_or("");
    Path::read(raw).map_err(|e| BadRequest(format!("Invalid path: {raw} / {e}")))
}

fn dtab_param(params: &Params) -> Result<Dtab, BadRequest> {
    let raw = params.get("dtab").map(String::as_str).unwrap_or("");
    Dtab::read(raw).map_err(|e| BadRequest(format!("Invalid dtab: {e}")))
}

fn namespace(name: &str) -> Result<Namespace, BadRequest> {
    Namespace::new(name).map_err(|e| BadRequest(e.to_string()))
}

fn watching(params: &Params) -> bool {
    params.get("watch").is_some_and(|v| v == "true")
}

fn json<T: Serialize>(value: &T) -> String {
    format!(
        "{}\n",
        serde_json::to_string(value).expect("API JSON serializes")
    )
}

fn interpret_error(e: InterpretError) -> Response {
    let status = match e {
        InterpretError::TooManyBindings { .. } => StatusCode::SERVICE_UNAVAILABLE,
        InterpretError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        InterpretError::Name(_) => StatusCode::BAD_REQUEST,
        InterpretError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, e.to_string()).into_response()
}

/// Waits for a binding that is not pending.
async fn settled(
    mut binding: tokio::sync::watch::Receiver<Binding>,
) -> Result<Activity<Arc<NameTree<Bound>>>, Response> {
    let wait = binding.wait_for(|b| !matches!(b.tree, Activity::Pending));
    match tokio::time::timeout(BIND_TIMEOUT, wait).await {
        Ok(Ok(b)) => Ok(b.tree.clone()),
        _ => Err(interpret_error(InterpretError::Timeout)),
    }
}

/// Why a bind or resolve request could not start.
#[derive(Debug)]
enum Refused {
    Bad(BadRequest),
    Interpret(InterpretError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Bad(r) => r.into_response(),
            Refused::Interpret(e) => interpret_error(e),
        }
    }
}

/// The live binding a bind or resolve request names (`path`, `dtab`).
fn live_binding(
    state: &ApiState,
    ns: &str,
    params: &Params,
) -> Result<tokio::sync::watch::Receiver<Binding>, Refused> {
    let (ns, path, local) = match (namespace(ns), path_param(params), dtab_param(params)) {
        (Ok(ns), Ok(path), Ok(local)) => (ns, path, local),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return Err(Refused::Bad(r)),
    };
    state
        .interpreter
        .bind(&ns, &path, &local)
        .map_err(Refused::Interpret)
}

// === handlers ===

pub(super) async fn bind(
    State(state): State<ApiState>,
    UrlPath(ns): UrlPath<String>,
    params: Params,
) -> Response {
    let binding = match live_binding(&state, &ns, &params) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let interpreter = state.interpreter.clone();
    if watching(&params) {
        let docs = WatchStream::new(binding).filter_map(move |b| {
            let doc = match &b.tree {
                Activity::Pending => None,
                Activity::Ok(tree) => Some(json(&bound_tree_json(&interpreter, tree))),
                Activity::Failed(e) => Some(format!("{e}\n")),
            };
            futures::future::ready(doc)
        });
        return stream(&state, Media::Json, docs);
    }
    match settled(binding).await {
        Ok(Activity::Ok(tree)) => ok_json(&bound_tree_json(&interpreter, &tree)),
        Ok(Activity::Failed(e)) => interpret_error(InterpretError::Name(e)),
        Ok(Activity::Pending) => interpret_error(InterpretError::Timeout),
        Err(r) => r,
    }
}

pub(super) async fn addr(
    State(state): State<ApiState>,
    UrlPath(ns): UrlPath<String>,
    params: Params,
) -> Response {
    if let Err(r) = namespace(&ns) {
        return r.into_response();
    }
    let id = match path_param(&params) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let addr = state.interpreter.resolve(&id);
    if watching(&params) {
        let docs = WatchStream::new(addr).map(|a| json(&AddrJson::from(&a)));
        return stream(&state, Media::Json, docs);
    }
    let current = addr.borrow().clone();
    ok_json(&AddrJson::from(&current))
}

pub(super) async fn resolve(
    State(state): State<ApiState>,
    UrlPath(ns): UrlPath<String>,
    params: Params,
) -> Response {
    let binding = match live_binding(&state, &ns, &params) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let tree = match settled(binding).await {
        Ok(Activity::Ok(tree)) => tree,
        Ok(Activity::Failed(e)) => return interpret_error(InterpretError::Name(e)),
        Ok(Activity::Pending) => return interpret_error(InterpretError::Timeout),
        Err(r) => return r,
    };
    let addr = match pick(&tree, &mut seed()) {
        Some(leaf) => state.interpreter.resolve(&leaf.id).borrow().clone(),
        None => Addr::Neg,
    };
    ok_json(&AddrJson::from(&addr))
}

pub(super) async fn delegate_ns(
    State(state): State<ApiState>,
    UrlPath(ns): UrlPath<String>,
    params: Params,
) -> Response {
    let ns = match namespace(&ns) {
        Ok(ns) => ns,
        Err(r) => return r.into_response(),
    };
    let raw = params.get("path").map(String::as_str).unwrap_or("");
    let path = match Path::read(raw) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("Invalid path: {e}")),
    };
    let local = match dtab_param(&params) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
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
) -> Response {
    generic_delegate(&state, params.0).await
}

pub(super) async fn delegate_post(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/json",
        )
            .into_response();
    }
    match serde_json::from_slice::<DelegateRequest>(&body) {
        Ok(req) => generic_delegate(&state, req).await,
        Err(e) => bad_request(format!("Malformed delegation request: {e}")),
    }
}

async fn generic_delegate(state: &ApiState, req: DelegateRequest) -> Response {
    let (Some(dtab), Some(path)) = (req.dtab, req.path) else {
        return bad_request("Malformed delegation request: both dtab and path are required".into());
    };
    let local = match Dtab::read(&dtab) {
        Ok(d) => d,
        Err(e) => return bad_request(format!("Invalid dtab: {e}")),
    };
    let path = match Path::read(&path) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("Invalid path: {e}")),
    };
    let ns = match req
        .namespace
        .filter(|n| !n.is_empty())
        .map(|n| namespace(&n))
        .transpose()
    {
        Ok(ns) => ns,
        Err(r) => return r.into_response(),
    };
    delegate(&state.interpreter, ns.as_ref(), &path, &local).await
}

async fn delegate(
    interpreter: &Arc<Interpreter>,
    ns: Option<&Namespace>,
    path: &Path,
    local: &Dtab,
) -> Response {
    match interpreter
        .delegate(ns, &NameTree::Leaf(path.clone()), local, DELEGATE_TIMEOUT)
        .await
    {
        Ok(trace) => ok_json(&delegate_json(interpreter, &trace)),
        Err(e) => interpret_error(e),
    }
}

pub(super) async fn bound_names(State(state): State<ApiState>, params: Params) -> Response {
    let names = |i: &Interpreter| json(&i.bound_names().iter().map(Path::show).collect::<Vec<_>>());
    if watching(&params) {
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
        return stream(&state, Media::Json, docs);
    }
    ok_json(
        &state
            .interpreter
            .bound_names()
            .iter()
            .map(Path::show)
            .collect::<Vec<_>>(),
    )
}

fn ok_json<T: Serialize>(value: &T) -> Response {
    codec::respond(StatusCode::OK, Media::Json, json(value))
}

// === picking a leaf (resolve) ===

/// A small xorshift generator: resolve needs a weighted random choice, not
/// cryptographic randomness.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos | 1
}

fn next_f64(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// One leaf as a client would pick it: a weighted random union member
/// (uniform when the weights sum to 0), the first alternative with a leaf.
fn pick<'a>(tree: &'a NameTree<Bound>, rng: &mut u64) -> Option<&'a Bound> {
    match tree {
        NameTree::Leaf(b) => Some(b),
        NameTree::Alt(ts) => ts.iter().find_map(|t| pick(t, rng)),
        NameTree::Union(ws) => {
            let total: f64 = ws.iter().map(|w| w.weight).sum();
            let mut x = next_f64(rng) * if total > 0.0 { total } else { ws.len() as f64 };
            for w in ws {
                let share = if total > 0.0 { w.weight } else { 1.0 };
                if x < share {
                    return pick(&w.tree, rng);
                }
                x -= share;
            }
            ws.last().and_then(|w| pick(&w.tree, rng))
        }
        NameTree::Neg | NameTree::Fail | NameTree::Empty => None,
    }
}

// === JSON shapes ===

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum AddrJson {
    Bound {
        addrs: Vec<EndpointJson>,
        meta: BTreeMap<String, String>,
    },
    Neg,
    Pending,
    Failed {
        cause: String,
    },
}

#[derive(Debug, Serialize)]
struct EndpointJson {
    ip: String,
    port: u16,
    meta: BTreeMap<String, String>,
}

impl From<&Addr> for AddrJson {
    fn from(addr: &Addr) -> Self {
        match addr {
            Addr::Pending => AddrJson::Pending,
            Addr::Neg => AddrJson::Neg,
            Addr::Failed(cause) => AddrJson::Failed {
                cause: cause.to_string(),
            },
            Addr::Bound { endpoints, meta } => AddrJson::Bound {
                addrs: endpoints
                    .iter()
                    .map(|e| {
                        let mut meta = e.meta.clone();
                        if let Some(node) = &e.node_name {
                            meta.insert("nodeName".into(), node.clone());
                        }
                        if let Some(w) = e.weight {
                            meta.insert("endpoint_addr_weight".into(), w.to_string());
                        }
                        EndpointJson {
                            ip: e.addr.ip().to_string(),
                            port: e.addr.port(),
                            meta,
                        }
                    })
                    .collect(),
                meta: meta.clone(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct BoundJson {
    addr: AddrJson,
    id: String,
    path: String,
}

fn bound_json(interpreter: &Interpreter, b: &Bound) -> BoundJson {
    BoundJson {
        addr: AddrJson::from(&*interpreter.resolve(&b.id).borrow()),
        id: b.id.show(),
        path: b.residual.show(),
    }
}

#[derive(Debug, Serialize)]
struct WeightedJson {
    weight: f64,
    tree: NodeJson,
}

/// A delegation (or bound) tree node. `path` is absent for bound trees.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum NodeJson {
    Neg(Common),
    Fail(Common),
    Empty(Common),
    Exception {
        #[serde(flatten)]
        common: Common,
        message: String,
    },
    Delegate {
        #[serde(flatten)]
        common: Common,
        delegate: Box<NodeJson>,
    },
    Leaf {
        #[serde(flatten)]
        common: Common,
        bound: BoundJson,
    },
    Alt {
        #[serde(flatten)]
        common: Common,
        alt: Vec<NodeJson>,
    },
    Union {
        #[serde(flatten)]
        common: Common,
        union: Vec<WeightedJson>,
    },
    Transformation {
        #[serde(flatten)]
        common: Common,
        name: String,
        bound: BoundJson,
        tree: Box<NodeJson>,
    },
}

#[derive(Debug, Default, Serialize)]
struct Common {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dentry: Option<codec::DentryJson>,
}

fn bound_tree_json(interpreter: &Interpreter, tree: &NameTree<Bound>) -> NodeJson {
    let common = Common::default;
    match tree {
        NameTree::Neg => NodeJson::Neg(common()),
        NameTree::Fail => NodeJson::Fail(common()),
        NameTree::Empty => NodeJson::Empty(common()),
        NameTree::Leaf(b) => NodeJson::Leaf {
            common: common(),
            bound: bound_json(interpreter, b),
        },
        NameTree::Alt(ts) => NodeJson::Alt {
            common: common(),
            alt: ts.iter().map(|t| bound_tree_json(interpreter, t)).collect(),
        },
        NameTree::Union(ws) => NodeJson::Union {
            common: common(),
            union: ws
                .iter()
                .map(|w| WeightedJson {
                    weight: w.weight,
                    tree: bound_tree_json(interpreter, &w.tree),
                })
                .collect(),
        },
    }
}

fn delegate_json(interpreter: &Interpreter, t: &DelegateTree<Bound>) -> NodeJson {
    let dentry = t.dentry.as_deref().map(codec::dentry_json);
    let fail_path = Path::utf8(["$", "fail"]);
    let path = match &t.node {
        DelegateNode::Neg if t.path.is_empty() => "~".to_string(),
        DelegateNode::Fail if !t.path.starts_with(&fail_path) => "!".to_string(),
        _ => t.path.show(),
    };
    let common = Common {
        path: Some(path),
        dentry,
    };
    match &t.node {
        DelegateNode::Neg => NodeJson::Neg(common),
        DelegateNode::Fail => NodeJson::Fail(common),
        DelegateNode::Empty => NodeJson::Empty(common),
        DelegateNode::Exception(e) => NodeJson::Exception {
            common,
            message: e.to_string(),
        },
        DelegateNode::Delegate(child) => NodeJson::Delegate {
            common,
            delegate: Box::new(delegate_json(interpreter, child)),
        },
        DelegateNode::Leaf(b) => NodeJson::Leaf {
            common,
            bound: bound_json(interpreter, b),
        },
        DelegateNode::Alt(ts) => NodeJson::Alt {
            common,
            alt: ts.iter().map(|t| delegate_json(interpreter, t)).collect(),
        },
        DelegateNode::Union(ws) => NodeJson::Union {
            common,
            union: ws
                .iter()
                .map(|(w, t)| WeightedJson {
                    weight: *w,
                    tree: delegate_json(interpreter, t),
                })
                .collect(),
        },
        DelegateNode::Transformation(tr) => NodeJson::Transformation {
            common,
            name: tr.name.clone(),
            bound: bound_json(interpreter, &tr.value),
            tree: Box::new(delegate_json(interpreter, &tr.tree)),
        },
    }
}
