//! `dtab update --dry-run`: namerd's answer to `POST
//! /api/1/dtabs/<name>/dry-run` as text. For each streamed name whose
//! bound tree would change, its open watchers and the tree before and
//! after (ids and weights, as namerd's admin shows them). Pure.

use serde_json::Value;

pub fn render(name: &str, answer: &Value) -> String {
    let count = |k: &str| answer.get(k).and_then(Value::as_u64).unwrap_or(0);
    let changed = answer
        .get("changed")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = format!(
        "Dry run of dtab {name}: {} of {} streamed names would change; nothing was written\n",
        changed.len(),
        count("streamed")
    );
    if answer.get("truncated").and_then(Value::as_bool) == Some(true) {
        out.push_str(&format!(
            "  (only {} names were evaluated: the client's binding limit)\n",
            count("evaluated")
        ));
    }
    for n in &changed {
        let text = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("");
        let local = match text("localDtab") {
            "" => String::new(),
            local => format!(" (local dtab {local})"),
        };
        let watchers = n.get("watchers").and_then(Value::as_u64).unwrap_or(0);
        out.push_str(&format!("{}{local}: {watchers} watchers\n", text("name")));
        out.push_str(&format!("  before: {}\n", tree(n.get("before"))));
        out.push_str(&format!("  after:  {}\n", tree(n.get("after"))));
    }
    out
}

fn tree(t: Option<&Value>) -> String {
    let state = t
        .and_then(|t| t.get("state"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let text = t.and_then(|t| t.get("tree")).and_then(Value::as_str);
    match (state, text) {
        ("bound", Some(tree)) => tree.to_string(),
        (state, Some(text)) => format!("{state}: {text}"),
        (state, None) => state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_names_with_their_watchers() {
        let answer = serde_json::json!({
            "namespace": "internal", "streamed": 3, "evaluated": 3, "truncated": false,
            "changed": [{"name": "/svc/world", "localDtab": "", "watchers": 2,
                "before": {"state": "bound", "tree": "/#/io.l5d.fs/world-v1"},
                "after": {"state": "bound", "tree": "0.99*/#/io.l5d.fs/world-v1 & 0.01*/#/io.l5d.fs/world-v2"}}]
        });
        let want = "\
Dry run of dtab internal: 1 of 3 streamed names would change; nothing was written
/svc/world: 2 watchers
  before: /#/io.l5d.fs/world-v1
  after:  0.99*/#/io.l5d.fs/world-v1 & 0.01*/#/io.l5d.fs/world-v2
";
        assert_eq!(render("internal", &answer), want);
    }
}
