//! `POST /api/1/dtabs/{ns}/dry-run`: what writing the posted dtab to the
//! namespace would change for the names namerd streams now. A read
//! (`access.rs`): nothing is stored and no binding changes.
//!
//! The answer is JSON: `streamed` (names with a watcher now), `evaluated`
//! (how many were bound again; fewer when the client's binding limit cut
//! the list, `truncated`), and `changed`, the names whose tree would
//! change, each with its local dtab, its open watches and its tree before
//! and after (`{"state": "bound", "tree": "0.99*/#/io.l5d.fs/a & ..."}`,
//! or `neg`, `pending`, `failed` with the error as `tree`). The request
//! holds one of the client's streams while it runs, so a client cannot run
//! more of them at once than it may hold streams.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use l5d_dtab::{Activity, Bound, NameTree};
use serde::Serialize;

use super::ApiState;
use super::codec::{self, Media};
use super::error::ApiError;
use super::extract::{Caller, DtabBody, Ns};
use crate::interpreter::{DryRunName, InterpretError};

#[derive(Debug, Serialize)]
struct DryRunJson {
    namespace: String,
    streamed: usize,
    evaluated: usize,
    truncated: bool,
    changed: Vec<NameJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NameJson {
    name: String,
    local_dtab: String,
    watchers: usize,
    before: TreeJson,
    after: TreeJson,
}

#[derive(Debug, Serialize)]
struct TreeJson {
    state: &'static str,
    tree: Option<String>,
}

pub(super) async fn dry_run(
    State(state): State<ApiState>,
    Caller(client): Caller,
    Ns(ns): Ns,
    DtabBody(proposed): DtabBody,
) -> Result<Response, ApiError> {
    let clients = state.interpreter.clients();
    let _lease = clients.open_stream(&client).map_err(InterpretError::from)?;
    let max = clients.limits().max_bindings_per_client;
    let run = state.interpreter.dry_run(&ns, &proposed, max).await;
    let evaluated = run.evaluated.len();
    let changed = run
        .evaluated
        .iter()
        .filter(|n| n.changed())
        .map(name_json)
        .collect();
    let body = DryRunJson {
        namespace: ns.to_string(),
        streamed: run.streamed,
        evaluated,
        truncated: evaluated < run.streamed,
        changed,
    };
    let text = format!(
        "{}\n",
        serde_json::to_string(&body).expect("API JSON serializes")
    );
    Ok(codec::respond(StatusCode::OK, Media::Json, text))
}

fn name_json(n: &DryRunName) -> NameJson {
    NameJson {
        name: n.name.show(),
        local_dtab: n.local.clone(),
        watchers: n.watchers,
        before: tree_json(&n.before),
        after: tree_json(&n.after),
    }
}

/// A tree as namerd's admin page shows it: ids (with residuals) and
/// weights.
fn tree_json(tree: &Activity<Arc<NameTree<Bound>>>) -> TreeJson {
    match tree {
        Activity::Pending => TreeJson {
            state: "pending",
            tree: None,
        },
        Activity::Failed(e) => TreeJson {
            state: "failed",
            tree: Some(e.to_string()),
        },
        Activity::Ok(tree) => TreeJson {
            state: if **tree == NameTree::Neg {
                "neg"
            } else {
                "bound"
            },
            tree: Some(tree.show_with(|b, out| {
                out.push_str(&b.id.show());
                if !b.residual.is_empty() {
                    out.push_str(&b.residual.show());
                }
            })),
        },
    }
}
