//! The JSON encodings of the vector schema, to and from the crate's types.

use l5d_dtab::{Bound, DelegateNode, DelegateTree, Dentry, Name, NameTree, Path, Prefix};
use std::sync::Arc;

use serde_json::{Map, Value, json};

pub(crate) type Result<T> = std::result::Result<T, String>;

pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("vector field `{key}` is missing or not a string"))
}

pub(crate) fn path(s: &str) -> Result<Path> {
    Path::read(s).map_err(|e| format!("bad path {s:?} in vector: {e}"))
}

/// The AST of a tree, with `leaf` encoding each leaf's fields.
pub(crate) fn tree_to<T>(t: &NameTree<T>, leaf: &impl Fn(&T) -> Map<String, Value>) -> Value {
    match t {
        NameTree::Leaf(v) => {
            let mut m = leaf(v);
            m.insert("type".into(), json!("leaf"));
            Value::Object(m)
        }
        NameTree::Neg => json!({"type": "neg"}),
        NameTree::Fail => json!({"type": "fail"}),
        NameTree::Empty => json!({"type": "empty"}),
        NameTree::Alt(ts) => {
            json!({"type": "alt", "trees": ts.iter().map(|t| tree_to(t, leaf)).collect::<Vec<_>>()})
        }
        NameTree::Union(ws) => json!({"type": "union", "trees": ws
            .iter()
            .map(|w| json!({"weight": w.weight, "tree": tree_to(&w.tree, leaf)}))
            .collect::<Vec<_>>()}),
    }
}

pub(crate) fn path_leaf(p: &Path) -> Map<String, Value> {
    Map::from_iter([("path".to_string(), json!(p.show()))])
}

/// A bound leaf as the `bind` kind encodes it.
pub(crate) fn bound_leaf(b: &Bound) -> Map<String, Value> {
    let mut m = Map::from_iter([
        ("id".to_string(), json!(b.id.show())),
        ("path".to_string(), json!(b.residual.show())),
    ]);
    if let Some(w) = b.weight {
        m.insert("weight".into(), json!(w));
    }
    m
}

/// A namer's answer as the `global_lookup` kind encodes it.
pub(crate) fn name_leaf(n: &Name) -> Map<String, Value> {
    match n {
        Name::Path(p) => path_leaf(p),
        Name::Bound(b) => Map::from_iter([(
            "bound".to_string(),
            json!({"id": b.id.show(), "path": b.residual.show()}),
        )]),
    }
}

pub(crate) fn dentry_from(v: &Value) -> Result<Dentry> {
    let prefix = str_field(v, "prefix")?;
    let dst = str_field(v, "dst")?;
    Ok(Dentry::new(
        Prefix::read(prefix).map_err(|e| format!("bad prefix in vector: {e}"))?,
        NameTree::read(dst).map_err(|e| format!("bad dst in vector: {e}"))?,
    ))
}

pub(crate) fn dentry_to(d: &Dentry) -> Value {
    json!({"prefix": d.prefix.show(), "dst": d.dst.show()})
}

/// A delegate tree of paths in the transcription format of the
/// `delegate_simplify` and `delegate_find` kinds (leaf payload in `value`).
pub(crate) fn delegate_from(v: &Value) -> Result<DelegateTree<Path>> {
    let p = match str_field(v, "path")? {
        "~" | "!" => Path::empty(),
        s => path(s)?,
    };
    let dentry = v.get("dentry").map(dentry_from).transpose()?.map(Arc::new);
    let node = match str_field(v, "type")? {
        "neg" => DelegateNode::Neg,
        "fail" => DelegateNode::Fail,
        "empty" => DelegateNode::Empty,
        "leaf" => DelegateNode::Leaf(path(str_field(v, "value")?)?),
        "delegate" => DelegateNode::Delegate(Box::new(delegate_from(
            v.get("delegate").ok_or("delegate without child")?,
        )?)),
        "alt" => DelegateNode::Alt(
            v.get("alt")
                .and_then(Value::as_array)
                .ok_or("alt without `alt`")?
                .iter()
                .map(delegate_from)
                .collect::<Result<_>>()?,
        ),
        "union" => DelegateNode::Union(
            v.get("union")
                .and_then(Value::as_array)
                .ok_or("union without `union`")?
                .iter()
                .map(|w| {
                    let weight = w
                        .get("weight")
                        .and_then(Value::as_f64)
                        .ok_or("union member without weight")?;
                    Ok((
                        weight,
                        delegate_from(w.get("tree").ok_or("union member without tree")?)?,
                    ))
                })
                .collect::<Result<_>>()?,
        ),
        other => return Err(format!("unsupported delegate node type {other:?} in input")),
    };
    Ok(DelegateTree::new(p, dentry, node))
}

/// How a delegate tree is rendered: the transcription format shows every
/// path literally and leaf payloads as `value`; the API format follows
/// Linkerd's `DelegateApiHandler`.
pub(crate) enum Style<'a> {
    Transcription,
    Api {
        addr: &'a dyn Fn(&Bound) -> Option<Value>,
    },
}

pub(crate) fn delegate_to<T>(
    t: &DelegateTree<T>,
    style: &Style<'_>,
    leaf: &dyn Fn(&T, &Style<'_>) -> (String, Value),
) -> Value {
    let api = matches!(style, Style::Api { .. });
    let (kind, path) = match &t.node {
        DelegateNode::Neg if api && t.path.is_empty() => ("neg", "~".to_string()),
        DelegateNode::Neg => ("neg", t.path.show()),
        DelegateNode::Fail if api && !t.path.starts_with(&Path::utf8(["$", "fail"])) => {
            ("fail", "!".to_string())
        }
        DelegateNode::Fail => ("fail", t.path.show()),
        DelegateNode::Empty => ("empty", t.path.show()),
        DelegateNode::Exception(_) => ("exception", t.path.show()),
        DelegateNode::Delegate(_) => ("delegate", t.path.show()),
        DelegateNode::Leaf(_) => ("leaf", t.path.show()),
        DelegateNode::Alt(_) => ("alt", t.path.show()),
        DelegateNode::Union(_) => ("union", t.path.show()),
        DelegateNode::Transformation(_) => ("transformation", t.path.show()),
    };
    let mut m = Map::from_iter([
        ("type".to_string(), json!(kind)),
        ("path".to_string(), json!(path)),
    ]);
    if let Some(d) = &t.dentry {
        m.insert("dentry".into(), dentry_to(d));
    }
    match &t.node {
        DelegateNode::Exception(e) => {
            m.insert("message".into(), json!(e.to_string()));
        }
        DelegateNode::Delegate(child) => {
            m.insert("delegate".into(), delegate_to(child, style, leaf));
        }
        DelegateNode::Leaf(v) => {
            let (key, value) = leaf(v, style);
            m.insert(key, value);
        }
        DelegateNode::Alt(ts) => {
            m.insert(
                "alt".into(),
                ts.iter().map(|t| delegate_to(t, style, leaf)).collect(),
            );
        }
        DelegateNode::Union(ws) => {
            m.insert(
                "union".into(),
                ws.iter()
                    .map(|(w, t)| json!({"weight": w, "tree": delegate_to(t, style, leaf)}))
                    .collect(),
            );
        }
        DelegateNode::Transformation(t) => {
            let (_, bound) = leaf(&t.value, style);
            m.insert("name".into(), json!(t.name));
            m.insert("bound".into(), bound);
            m.insert("tree".into(), delegate_to(&t.tree, style, leaf));
        }
        DelegateNode::Neg | DelegateNode::Fail | DelegateNode::Empty => {}
    }
    Value::Object(m)
}

pub(crate) fn path_value(p: &Path, _: &Style<'_>) -> (String, Value) {
    ("value".to_string(), json!(p.show()))
}

pub(crate) fn bound_value(b: &Bound, style: &Style<'_>) -> (String, Value) {
    let mut m = Map::from_iter([
        ("id".to_string(), json!(b.id.show())),
        ("path".to_string(), json!(b.residual.show())),
    ]);
    if let Style::Api { addr } = style
        && let Some(a) = addr(b)
    {
        m.insert("addr".into(), a);
    }
    ("bound".to_string(), Value::Object(m))
}

/// JSON equality with numbers compared as floats.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Leaves a delegate leaf's `addr` out of the comparison where either side
/// lacks it: the schema compares `addr` only when the expected output has
/// one (`shared/spec/dtab.md`, delegate tree format), and the runner cannot
/// resolve the addresses of the vector namers, only `/$/inet` literals.
pub(crate) fn strip_uncompared_addrs(expected: &mut Value, actual: &mut Value) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            if let (Some(Value::Object(eb)), Some(Value::Object(ab))) =
                (e.get_mut("bound"), a.get_mut("bound"))
                && !(eb.contains_key("addr") && ab.contains_key("addr"))
            {
                eb.remove("addr");
                ab.remove("addr");
            }
            for (k, v) in e.iter_mut() {
                if let Some(av) = a.get_mut(k) {
                    strip_uncompared_addrs(v, av);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (ev, av) in e.iter_mut().zip(a) {
                strip_uncompared_addrs(ev, av);
            }
        }
        _ => {}
    }
}

/// The comparison rule for `addr` checked on hand-made trees, since the
/// vector file may not exercise every side of it: an `addr` only the actual
/// output has is ignored, one on both sides is compared.
pub(crate) fn check_addr_rule() -> Result<()> {
    let leaf = |addr: Option<Value>| {
        let mut bound = json!({"id": "/$/inet/1.2.3.4/80", "path": "/"});
        if let Some(a) = addr {
            bound["addr"] = a;
        }
        json!({"type": "leaf", "bound": bound})
    };
    let a = json!({"type": "neg"});
    let b = json!({"type": "pending"});
    let cases = [
        (leaf(None), leaf(Some(a.clone())), true),
        (leaf(Some(a.clone())), leaf(None), true),
        (leaf(Some(a.clone())), leaf(Some(a.clone())), true),
        (leaf(Some(a)), leaf(Some(b)), false),
    ];
    for (mut want, mut got, equal) in cases {
        let before = (want.clone(), got.clone());
        strip_uncompared_addrs(&mut want, &mut got);
        if json_eq(&want, &got) != equal {
            return Err(format!("the addr rule compares {before:?} wrongly"));
        }
    }
    Ok(())
}
