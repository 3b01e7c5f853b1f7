//! The JSON the admin shows of an interpreter's entries, shared by every
//! kind so that `interpreter_state` reads the same whatever the source.
//! Address sets use the shape of namerd's `/api/1/addr` (Linkerd's
//! `DelegateApiHandler` Addr JSON) so the dashboard's code can read both.

use std::time::{SystemTime, UNIX_EPOCH};

use l5d_dtab::{Addr, Bound, NameTree, Path};
use serde_json::{Value, json};

use super::cache::{BindKey, Cache, Entry, Status};
use super::{BindState, Resolution};

/// Milliseconds since the Unix epoch.
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A bound tree as namerd's admin shows it: ids with their residuals.
pub(crate) fn show_bound_tree(tree: &NameTree<Bound>) -> String {
    tree.show_with(|b, out| {
        out.push_str(&b.id.show());
        if !b.residual.is_empty() {
            out.push_str(&b.residual.show());
        }
    })
}

/// An address set as namerd's `/api/1/addr` answers it.
pub(crate) fn addr_json(addr: &Addr) -> Value {
    match addr {
        Addr::Pending => json!({"type": "pending"}),
        Addr::Neg => json!({"type": "neg"}),
        Addr::Failed(message) => json!({"type": "failed", "cause": &**message}),
        Addr::Bound(set) => {
            let addrs: Vec<Value> = set
                .endpoints()
                .iter()
                .map(|e| {
                    let mut meta = serde_json::Map::new();
                    for (k, v) in &e.meta {
                        meta.insert(k.clone(), Value::String(v.clone()));
                    }
                    if let Some(node) = &e.node_name {
                        meta.insert("nodeName".into(), Value::String(node.to_string()));
                    }
                    json!({"ip": e.addr.ip().to_string(), "port": e.addr.port(), "meta": meta})
                })
                .collect();
            json!({"type": "bound", "addrs": addrs, "meta": set.meta()})
        }
    }
}

fn common(status: &Status, receivers: usize) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "lastUpdate".into(),
        status
            .last_update
            .map(millis)
            .map_or(Value::Null, Value::from),
    );
    m.insert(
        "lastError".into(),
        status.last_error.clone().map_or(Value::Null, Value::String),
    );
    m.insert("rejected".into(), status.rejected.into());
    m.insert("receivers".into(), receivers.into());
    m
}

/// One binding: its key, state and tree.
pub(crate) fn bind_json(key: &BindKey, entry: &Entry<BindState>) -> Value {
    let mut m = common(&entry.status(), entry.receivers());
    m.insert("kind".into(), "bind".into());
    m.insert("dtab".into(), key.local.show().into());
    m.insert("name".into(), key.name.show().into());
    let (state, detail) = match &*entry.current() {
        BindState::Pending => ("pending", Value::Null),
        BindState::Bound { tree, .. } if **tree == NameTree::Neg => {
            ("neg", show_bound_tree(tree).into())
        }
        BindState::Bound { tree, .. } => ("bound", show_bound_tree(tree).into()),
        BindState::Failed { message } => ("failed", Value::String(message.to_string())),
    };
    m.insert("state".into(), state.into());
    m.insert("tree".into(), detail);
    Value::Object(m)
}

/// One address set: its id, state and endpoints.
pub(crate) fn resolve_json(id: &Path, entry: &Entry<Resolution>) -> Value {
    let mut m = common(&entry.status(), entry.receivers());
    m.insert("kind".into(), "resolve".into());
    m.insert("id".into(), id.show().into());
    let current = entry.current().clone();
    let state = match &current.addr {
        Addr::Pending => "pending",
        Addr::Neg => "neg",
        Addr::Failed(_) => "failed",
        Addr::Bound(_) => "bound",
    };
    m.insert("state".into(), state.into());
    m.insert("addr".into(), addr_json(&current.addr));
    Value::Object(m)
}

/// Every binding and resolution an interpreter holds, for its state page.
pub(crate) fn streams(
    binds: &Cache<BindKey, BindState>,
    resolves: &Cache<Path, Resolution>,
) -> Vec<Value> {
    let mut streams: Vec<Value> = binds
        .snapshot()
        .iter()
        .map(|(k, e)| bind_json(k, e))
        .collect();
    streams.extend(
        resolves
            .snapshot()
            .iter()
            .map(|(id, e)| resolve_json(id, e)),
    );
    streams
}
