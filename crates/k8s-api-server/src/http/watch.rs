//! Watches: a chunked stream of JSON lines (`{"type":..,"object":..}`),
//! fed from the store's change log so a watch resumes exactly after the
//! version it names. Each watch is a task that wakes on every write, sends
//! the changes that concern it (filtered by namespace and selectors, with
//! objects entering or leaving the selector sent as ADDED or DELETED),
//! bookmarks on a timer, and ends on `timeoutSeconds`, on an injected close
//! or when the server stops.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;

use super::{Params, Target, flag, table};
use crate::faults::{OpenWatch, lock};
use crate::selector::Selector;
use crate::status::ApiError;
use crate::store::{Change, Event};
use crate::{Resource, Shared};

/// What one watch sends, decided before the stream starts.
struct Plan {
    target: Target,
    selector: Selector,
    as_table: bool,
    /// Synthetic ADDED events for the state the watch starts from.
    initial: Vec<Value>,
    /// End the initial events with a bookmark annotated
    /// `k8s.io/initial-events-end` (`sendInitialEvents=true`).
    initial_end: bool,
    bookmarks: bool,
    timeout: Option<Duration>,
    /// The version whose later changes the watch sends.
    position: u64,
    /// Set when the requested version is too old: the only event to send.
    expired: Option<Value>,
}

type Line = Result<Bytes, std::convert::Infallible>;

pub(super) fn watch(
    shared: Arc<Shared>,
    target: Target,
    params: &Params,
    as_table: bool,
) -> Result<Response, ApiError> {
    let plan = plan(&shared, target, params, as_table)?;
    let (tx, rx) = mpsc::channel::<Line>(64);
    let open = shared.faults.open_watch();
    tokio::spawn(run(shared, plan, open, tx));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("a static response is valid"))
}

fn plan(
    shared: &Shared,
    target: Target,
    params: &Params,
    as_table: bool,
) -> Result<Plan, ApiError> {
    let selector = Selector::parse(
        params.label_selector.as_deref(),
        params.field_selector.as_deref(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let bookmarks = flag(&params.allow_watch_bookmarks);
    let initial_end = flag(&params.send_initial_events);
    if initial_end
        && (!bookmarks || params.resource_version_match.as_deref() != Some("NotOlderThan"))
    {
        return Err(ApiError::invalid(
            target.resource,
            "",
            "sendInitialEvents",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks to true".into(),
        ));
    }
    let mut store = lock(&shared.store);
    let requested = params.resource_version.as_deref().unwrap_or("");
    let mut plan = Plan {
        target,
        selector,
        as_table,
        initial: Vec::new(),
        initial_end,
        bookmarks,
        timeout: params.timeout_seconds.map(Duration::from_secs),
        position: store.version(),
        expired: None,
    };
    if requested.is_empty() || requested == "0" || initial_end {
        // Start from the current state, sent as ADDED events.
        let items = store
            .list_at(plan.target.resource, plan.target.namespace.as_deref(), None)
            .unwrap_or_default();
        plan.initial = items
            .into_iter()
            .filter(|((r, ns, name), o)| {
                !shared.faults.is_hidden(*r, ns, name) && plan.selector.matches(o)
            })
            .map(|(_, o)| o)
            .collect();
        return Ok(plan);
    }
    let version = store
        .versions
        .parse(requested)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    match store.check_available(plan.target.resource, version) {
        Ok(()) => plan.position = version,
        Err(too_old) => {
            let oldest = store.versions.render(too_old.oldest);
            let message = format!("too old resource version: {requested} ({oldest})");
            plan.expired = Some(ApiError::expired(message).status());
        }
    }
    Ok(plan)
}

/// Runs one watch until it ends. It stops counting as open before its
/// stream ends (`tx`, dropped last), so a client that has seen the end sees
/// the count without it.
async fn run(shared: Arc<Shared>, plan: Plan, mut open: OpenWatch, tx: mpsc::Sender<Line>) {
    events(shared, plan, &mut open.closes, &tx).await;
    drop(open);
}

/// Sends the watch's events until it ends.
async fn events(
    shared: Arc<Shared>,
    mut plan: Plan,
    closes: &mut tokio::sync::watch::Receiver<u64>,
    tx: &mpsc::Sender<Line>,
) {
    let resource = plan.target.resource;
    let mut changes = shared.changes.subscribe();
    let mut stalled = shared.faults.stalled();
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = plan.timeout.map(|t| Instant::now() + t);
    let interval = shared.options.bookmark_interval;
    let mut next_bookmark = Instant::now() + interval;
    let mut started = false;
    loop {
        let is_stalled = *stalled.borrow_and_update();
        if is_stalled {
            // A stalled watch sends nothing and never times out; only an
            // explicit close, the server stopping or the client leaving
            // ends it.
            tokio::select! {
                _ = stalled.changed() => {}
                _ = closes.changed() => return,
                _ = stopped(&mut shutdown) => return,
                _ = tx.closed() => return,
            }
            continue;
        }
        if !started {
            started = true;
            if let Some(status) = plan.expired.take() {
                let _ = send(tx, "ERROR", status).await;
                return;
            }
            for object in std::mem::take(&mut plan.initial) {
                let object = wrap(&plan, object);
                if send(tx, "ADDED", object).await.is_err() {
                    return;
                }
            }
            if plan.initial_end {
                let version = lock(&shared.store).versions.render(plan.position);
                let mut bookmark = bookmark(resource, version);
                bookmark["metadata"]["annotations"] =
                    json!({ "k8s.io/initial-events-end": "true" });
                if send(tx, "BOOKMARK", bookmark).await.is_err() {
                    return;
                }
            }
        }
        changes.borrow_and_update();
        let (events, current) = {
            let store = lock(&shared.store);
            (store.events_after(resource, plan.position), store.version())
        };
        let events = match events {
            Ok(events) => events,
            Err(too_old) => {
                let status = ApiError::expired(too_old.to_string()).status();
                let _ = send(tx, "ERROR", status).await;
                return;
            }
        };
        for event in events {
            if let Some((kind, object)) = translate(&shared, &plan, &event)
                && send(tx, kind, wrap(&plan, object)).await.is_err()
            {
                return;
            }
        }
        plan.position = current;
        let bookmark_due = tokio::select! {
            _ = changes.changed() => false,
            _ = stalled.changed() => false,
            _ = tokio::time::sleep_until(next_bookmark), if plan.bookmarks => true,
            _ = sleep_until_deadline(deadline) => return,
            _ = closes.changed() => return,
            _ = stopped(&mut shutdown) => return,
            _ = tx.closed() => return,
        };
        if bookmark_due {
            next_bookmark = Instant::now() + interval;
            let version = lock(&shared.store).versions.render(plan.position);
            if send(tx, "BOOKMARK", bookmark(resource, version))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The event a watcher sees for a change, if any: ADDED when an object
/// enters its selector, DELETED (the previous state at the new version)
/// when it leaves, nothing for hidden objects or other namespaces.
fn translate(shared: &Shared, plan: &Plan, event: &Event) -> Option<(&'static str, Value)> {
    let resource = plan.target.resource;
    if plan
        .target
        .namespace
        .as_ref()
        .is_some_and(|ns| *ns != event.namespace)
        || shared
            .faults
            .is_hidden(resource, &event.namespace, &event.name)
    {
        return None;
    }
    let now = plan.selector.matches(&event.object);
    let before = event
        .prev
        .as_ref()
        .is_some_and(|p| plan.selector.matches(p));
    match event.change {
        Change::Added if now => Some(("ADDED", event.object.clone())),
        Change::Deleted if now => Some(("DELETED", event.object.clone())),
        Change::Modified => match (before, now) {
            (true, true) => Some(("MODIFIED", event.object.clone())),
            (false, true) => Some(("ADDED", event.object.clone())),
            (true, false) => {
                let mut prev = event.prev.clone().unwrap_or_default();
                prev["metadata"]["resourceVersion"] =
                    event.object["metadata"]["resourceVersion"].clone();
                Some(("DELETED", prev))
            }
            (false, false) => None,
        },
        _ => None,
    }
}

fn wrap(plan: &Plan, object: Value) -> Value {
    match plan.as_table {
        true => table::table(plan.target.resource, std::slice::from_ref(&object), None),
        false => object,
    }
}

/// A bookmark: an empty object of the watched kind carrying the version.
fn bookmark(resource: Resource, version: String) -> Value {
    json!({
        "kind": resource.kind(),
        "apiVersion": resource.api_version(),
        "metadata": { "resourceVersion": version, "creationTimestamp": null },
    })
}

async fn send(tx: &mpsc::Sender<Line>, kind: &str, object: Value) -> Result<(), ()> {
    let mut line = serde_json::to_vec(&json!({ "type": kind, "object": object }))
        .expect("a JSON value serialises");
    line.push(b'\n');
    tx.send(Ok(Bytes::from(line))).await.map_err(|_| ())
}
