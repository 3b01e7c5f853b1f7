//! What the dashboard reads besides the API: every namespace with its
//! version, size, live bindings and watchers, last change and last
//! propagation (`/admin/namespaces.json`), and the naming core's verdict
//! on a dtab being typed (`POST /admin/dtab/parse`), so the editor shows
//! the parser's own message at its position before anything is saved.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use l5d_dtab::Dtab;
use serde_json::{Value, json};

use super::{AdminState, json_response, time};
use crate::store::HistoryPage;

/// Every namespace, in name order.
pub(super) async fn namespaces(State(state): State<AdminState>) -> Response {
    let interpreter = state.interpreter.borrow().clone();
    let Some(interpreter) = interpreter else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not started yet\n").into_response();
    };
    let store = interpreter.store().clone();
    let list = match store.list().await {
        Ok(list) => list,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    let mut watchers = std::collections::HashMap::<_, (usize, usize)>::new();
    for ((ns, _, _), watching) in interpreter.binding_watchers() {
        let entry = watchers.entry(ns).or_default();
        entry.0 += 1;
        entry.1 += watching;
    }
    let mut out = Vec::with_capacity(list.len());
    for ns in list {
        let (version, dentries, bytes) = match store.get(&ns).await {
            Ok(Some(v)) => (
                Some(v.version.to_etag()),
                v.dtab.dentries().len(),
                v.dtab.show().len(),
            ),
            Ok(None) => (None, 0, 0),
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        };
        let last_change = match store
            .history_page(
                &ns,
                &HistoryPage {
                    before: None,
                    limit: 1,
                },
            )
            .await
        {
            Ok(page) => page.first().map(|e| {
                json!({
                    "at": time(Some(e.committed_at)),
                    "op": e.op.as_str(),
                    "author": e.author,
                    "version": e.version.to_etag(),
                })
            }),
            Err(_) => None,
        };
        let (bindings, watching) = watchers.get(&ns).copied().unwrap_or_default();
        let propagation = interpreter
            .propagation()
            .last(ns.as_str())
            .map(|p| json!({"at": time(Some(p.written_at)), "seconds": p.seconds}));
        out.push(json!({
            "namespace": ns.to_string(),
            "version": version,
            "dentries": dentries,
            "bytes": bytes,
            "bindings": bindings,
            "watchers": watching,
            "lastChange": last_change,
            "lastPropagation": propagation,
        }));
    }
    json_response(json!({ "namespaces": out }))
}

/// Parses the posted text as a dtab: `{"ok": true, "dentries": n}`, or the
/// parser's message with where it failed (byte offset, line and column
/// from 1, and the offset in UTF-16 units a browser's text area counts).
pub(super) async fn parse(body: String) -> Response {
    json_response(verdict(&body))
}

fn verdict(text: &str) -> Value {
    match Dtab::read(text) {
        Ok(dtab) => json!({"ok": true, "dentries": dtab.dentries().len()}),
        Err(e) => {
            let pos = e.position().min(text.len());
            let before = &text[..pos];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            json!({
                "ok": false,
                "message": e.to_string(),
                "position": pos,
                "utf16Offset": before.encode_utf16().count(),
                "line": line,
                "column": before[line_start..].chars().count() + 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_dtab_counts_its_dentries() {
        assert_eq!(
            verdict("/svc => /#/io.l5d.fs;\n/a => /b"),
            json!({"ok": true, "dentries": 2})
        );
    }

    #[test]
    fn an_error_says_where_in_lines_and_columns() {
        let v = verdict("/svc => /#/io.l5d.fs;\n/a => /b;\n/x =>> /y");
        assert_eq!(v["ok"], false);
        assert_eq!(v["line"], 3);
        assert_eq!(v["column"], 6);
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("expected but '>' found"), "{message}");
        assert_eq!(v["position"], v["utf16Offset"]);
    }

    #[test]
    fn a_character_no_path_may_hold_is_an_error_where_it_stands() {
        // "é" is two bytes and one UTF-16 unit: the editor's offset is
        // the UTF-16 one, the column counts characters.
        let v = verdict("/svc => /#/io.l5d.fs;\n/é => /b;");
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["line"], 2, "{v}");
        assert_eq!(v["column"], 2, "{v}");
    }
}
