//! A delegation trace as the JSON of namerd's `/api/1/delegate` (Linkerd's
//! `DelegateApiHandler`): nodes discriminated by `type` (`neg`, `fail`,
//! `empty`, `exception`, `delegate`, `leaf`, `alt`, `union`,
//! `transformation`), each with `path` and, where a rule applied, `dentry`.
//! The fixed interpreter renders its local traces with it too.

use l5d_dtab::{Bound, DelegateNode, DelegateTree, Dentry, NameError, NameTree, Path, PrefixElem};
use serde_json::{Map, Value, json};

/// What namerd's mesh API prefixes exception messages with (Linkerd's
/// wire shape); the HTTP API shows them without it.
const EXCEPTION_PREFIX: &str = "BoundDelegateTree Exception: ";

/// Renders `t`. `addr` gives the current address set of a bound id as Addr
/// JSON if the interpreter already holds one; a leaf without it has no
/// `addr` field (the trace does not start resolutions of its own).
pub(crate) fn render(t: &DelegateTree<Bound>, addr: &dyn Fn(&Path) -> Option<Value>) -> Value {
    let mut m = Map::new();
    let path = match &t.node {
        DelegateNode::Neg if t.path.is_empty() => "~".to_owned(),
        DelegateNode::Fail if !t.path.starts_with(&Path::utf8(["$", "fail"])) => "!".to_owned(),
        _ => t.path.show(),
    };
    m.insert("path".into(), path.into());
    if let Some(d) = t.dentry.as_deref().filter(|d| !is_nop(d)) {
        m.insert(
            "dentry".into(),
            json!({"prefix": d.prefix.show(), "dst": d.dst.show()}),
        );
    }
    let kind = match &t.node {
        DelegateNode::Neg => "neg",
        DelegateNode::Fail => "fail",
        DelegateNode::Empty => "empty",
        DelegateNode::Exception(e) => {
            m.insert("message".into(), exception_message(e).into());
            "exception"
        }
        DelegateNode::Delegate(child) => {
            m.insert("delegate".into(), render(child, addr));
            "delegate"
        }
        DelegateNode::Leaf(b) => {
            m.insert("bound".into(), bound(b, addr));
            "leaf"
        }
        DelegateNode::Alt(ts) => {
            let alt = ts.iter().map(|t| render(t, addr)).collect::<Vec<_>>();
            m.insert("alt".into(), alt.into());
            "alt"
        }
        DelegateNode::Union(ws) => {
            let union = ws
                .iter()
                .map(|(w, t)| json!({"weight": w, "tree": render(t, addr)}))
                .collect::<Vec<_>>();
            m.insert("union".into(), union.into());
            "union"
        }
        DelegateNode::Transformation(tr) => {
            m.insert("name".into(), tr.name.clone().into());
            m.insert("bound".into(), bound(&tr.value, addr));
            m.insert("tree".into(), render(&tr.tree, addr));
            "transformation"
        }
    };
    m.insert("type".into(), kind.into());
    Value::Object(m)
}

fn bound(b: &Bound, addr: &dyn Fn(&Path) -> Option<Value>) -> Value {
    let mut m = Map::new();
    if let Some(a) = addr(&b.id) {
        m.insert("addr".into(), a);
    }
    m.insert("id".into(), b.id.show().into());
    m.insert("path".into(), b.residual.show().into());
    Value::Object(m)
}

/// Finagle's `Dentry.nop` (`/"/" => ~`), which namerd's mesh API puts on
/// every node no rule applied to; it is shown as no dentry.
fn is_nop(d: &Dentry) -> bool {
    let mut elems = d.prefix.elems();
    d.dst == NameTree::Neg
        && matches!(elems.next(), Some(PrefixElem::Label(b"/")))
        && elems.next().is_none()
}

fn exception_message(e: &NameError) -> String {
    match e {
        NameError::Namer { message, .. } => message
            .strip_prefix(EXCEPTION_PREFIX)
            .unwrap_or(message)
            .to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use l5d_dtab::{Dtab, Prefix};

    use super::*;

    fn p(s: &str) -> Path {
        Path::read(s).unwrap()
    }

    #[test]
    fn renders_namerds_shape() {
        let dentry =
            Arc::new(Dtab::read("/svc=>/$/inet/127.0.0.1/80").unwrap().dentries()[0].clone());
        let nop = Arc::new(Dentry::new(
            Prefix::new([PrefixElem::Label(b"/")]).unwrap(),
            NameTree::Neg,
        ));
        let leaf = DelegateTree::new(
            p("/$/inet/127.0.0.1/80/web"),
            Some(dentry),
            DelegateNode::Leaf(Bound::new(p("/$/inet/127.0.0.1/80"), p("/web"))),
        );
        let tree = DelegateTree::new(
            p("/svc/web"),
            Some(nop),
            DelegateNode::Delegate(Box::new(leaf)),
        );
        let json = render(&tree, &|_| Some(json!({"type": "pending"})));
        assert_eq!(
            json,
            json!({
                "type": "delegate",
                "path": "/svc/web",
                "delegate": {
                    "type": "leaf",
                    "path": "/$/inet/127.0.0.1/80/web",
                    "dentry": {"prefix": "/svc", "dst": "/$/inet/127.0.0.1/80"},
                    "bound": {"addr": {"type": "pending"}, "id": "/$/inet/127.0.0.1/80", "path": "/web"}
                }
            })
        );
    }

    #[test]
    fn neg_fail_and_exceptions() {
        let neg = DelegateTree::<Bound>::new(Path::empty(), None, DelegateNode::Neg);
        assert_eq!(render(&neg, &|_| None), json!({"type": "neg", "path": "~"}));
        let fail = DelegateTree::<Bound>::new(p("/x"), None, DelegateNode::Fail);
        assert_eq!(
            render(&fail, &|_| None),
            json!({"type": "fail", "path": "!"})
        );
        let exc = DelegateTree::<Bound>::new(
            p("/x"),
            None,
            DelegateNode::Exception(NameError::namer(
                &p("/x"),
                "BoundDelegateTree Exception: boom",
            )),
        );
        assert_eq!(
            render(&exc, &|_| None),
            json!({"type": "exception", "path": "/x", "message": "boom"})
        );
    }
}
