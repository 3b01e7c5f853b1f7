//! The JSON shapes of the interpreter routes, as Linkerd's
//! `DelegateApiHandler` writes them: address sets, bound trees and
//! delegation traces, with a node's `type` first. Must not depend on the
//! handlers.

use std::collections::BTreeMap;

use l5d_dtab::{Addr, Bound, DelegateNode, DelegateTree, NameTree, Path};
use serde::Serialize;

use crate::api::codec;
use crate::interpreter::Interpreter;

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum AddrJson {
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
pub(super) struct EndpointJson {
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
            Addr::Bound(set) => AddrJson::Bound {
                addrs: set
                    .endpoints()
                    .iter()
                    .map(|e| {
                        let mut meta = e.meta.clone();
                        if let Some(node) = &e.node_name {
                            meta.insert("nodeName".into(), node.to_string());
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
                meta: set.meta().clone(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct BoundJson {
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
pub(super) struct WeightedJson {
    weight: f64,
    tree: NodeJson,
}

/// A delegation (or bound) tree node. `path` is absent for bound trees.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum NodeJson {
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
pub(super) struct Common {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dentry: Option<codec::DentryJson>,
}

pub(super) fn bound_tree_json(interpreter: &Interpreter, tree: &NameTree<Bound>) -> NodeJson {
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

pub(super) fn delegate_json(interpreter: &Interpreter, t: &DelegateTree<Bound>) -> NodeJson {
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
