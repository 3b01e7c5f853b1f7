//! `namerctl dtab explain`: namerd's delegation of a path (the JSON of
//! `GET /api/1/delegate/<ns>`) as an indented tree, one node per line,
//! children two spaces deeper. Each line is the path reached, then what
//! happened to it in brackets (the dentry that rewrote it, a weight, an
//! alternative's position), and for a bound leaf its id and addresses.
//! Pure: the client fetches the JSON.

use serde_json::Value;

/// The tree as text, ending with a newline.
pub fn render(tree: &Value) -> String {
    let mut out = String::new();
    node(tree, 0, None, &mut out);
    out
}

fn node(v: &Value, depth: usize, label: Option<String>, out: &mut String) {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let indent = "  ".repeat(depth);
    let mut line = format!("{indent}{}", text("path"));
    if let Some(label) = label {
        line = format!("{indent}{label} {}", text("path"));
    }
    if let Some(d) = v.get("dentry").filter(|d| !d.is_null()) {
        let p = d.get("prefix").and_then(Value::as_str).unwrap_or("");
        let dst = d.get("dst").and_then(Value::as_str).unwrap_or("");
        line.push_str(&format!("  [{p} => {dst}]"));
    }
    let kind = text("type");
    match kind {
        "neg" | "fail" | "empty" => line.push_str(&format!("  ({kind})")),
        "exception" => line.push_str(&format!("  (error: {})", text("message"))),
        "leaf" => line.push_str(&bound(v.get("bound"))),
        "transformation" => {
            line.push_str(&format!(
                "  (transformed by {}){}",
                text("name"),
                bound(v.get("bound"))
            ));
        }
        _ => {}
    }
    out.push_str(line.trim_end());
    out.push('\n');
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    match kind {
        "delegate" => {
            if let Some(child) = v.get("delegate") {
                node(child, depth + 1, None, out);
            }
        }
        "transformation" => {
            if let Some(child) = v.get("tree") {
                node(child, depth + 1, None, out);
            }
        }
        "alt" => {
            for (i, child) in list("alt").iter().enumerate() {
                node(child, depth + 1, Some(format!("alt {}:", i + 1)), out);
            }
        }
        "union" => {
            for w in list("union") {
                let weight = w.get("weight").and_then(Value::as_f64).unwrap_or(0.0);
                let label = format!("weight {weight}:");
                if let Some(child) = w.get("tree") {
                    node(child, depth + 1, Some(label), out);
                }
            }
        }
        _ => {}
    }
}

/// `  -> /#/io.l5d.fs/world-v1 (2 addresses: 127.0.0.1:1, ...)`.
fn bound(b: Option<&Value>) -> String {
    let Some(b) = b else {
        return String::new();
    };
    let id = b.get("id").and_then(Value::as_str).unwrap_or("");
    let residual = b.get("path").and_then(Value::as_str).unwrap_or("/");
    let residual = if residual == "/" || residual.is_empty() {
        String::new()
    } else {
        format!(" residual {residual}")
    };
    let addr = b.get("addr").cloned().unwrap_or(Value::Null);
    let state = match addr.get("type").and_then(Value::as_str).unwrap_or("") {
        "bound" => {
            let addrs = addr
                .get("addrs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let list: Vec<String> = addrs
                .iter()
                .map(|a| {
                    let ip = a.get("ip").and_then(Value::as_str).unwrap_or("?");
                    let port = a.get("port").and_then(Value::as_u64).unwrap_or(0);
                    let weight = a
                        .get("meta")
                        .and_then(|m| m.get("endpoint_addr_weight"))
                        .and_then(Value::as_str)
                        .map(|w| format!(" weight {w}"))
                        .unwrap_or_default();
                    format!("{ip}:{port}{weight}")
                })
                .collect();
            format!("{} addresses: {}", list.len(), list.join(", "))
        }
        "failed" => format!(
            "failed: {}",
            addr.get("cause").and_then(Value::as_str).unwrap_or("")
        ),
        other if !other.is_empty() => other.to_string(),
        _ => "unknown".to_string(),
    };
    format!("  -> {id}{residual} ({state})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weighted_delegation() {
        let tree = serde_json::json!({
            "type": "delegate", "path": "/svc/world",
            "dentry": {"prefix": "/svc", "dst": "/host"},
            "delegate": {
                "type": "union", "path": "/host/world",
                "dentry": {"prefix": "/host/world", "dst": "99.00*/srv/a & /srv/b"},
                "union": [
                    {"weight": 99.0, "tree": {"type": "leaf", "path": "/#/io.l5d.fs/a",
                        "dentry": {"prefix": "/srv", "dst": "/#/io.l5d.fs"},
                        "bound": {"id": "/#/io.l5d.fs/a", "path": "/",
                            "addr": {"type": "bound", "addrs": [{"ip": "127.0.0.1", "port": 8080, "meta": {}}], "meta": {}}}}},
                    {"weight": 1.0, "tree": {"type": "neg", "path": "/srv/b",
                        "dentry": {"prefix": "/srv", "dst": "/#/io.l5d.fs"}}}
                ]
            }
        });
        let want = "\
/svc/world  [/svc => /host]
  /host/world  [/host/world => 99.00*/srv/a & /srv/b]
    weight 99: /#/io.l5d.fs/a  [/srv => /#/io.l5d.fs]  -> /#/io.l5d.fs/a (1 addresses: 127.0.0.1:8080)
    weight 1: /srv/b  [/srv => /#/io.l5d.fs]  (neg)
";
        assert_eq!(render(&tree), want);
    }
}
