//! Checking the fields of mesh requests, in the order Linkerd 1.x's namerd
//! checks them (`InterpreterService.scala`, `DelegatorService.scala`): the
//! root first, then the name, then the root's shape, then everything else.
//!
//! Messages from the network are untrusted; everything returned here is a
//! valid core type (`Namespace`, `Path`, `Dtab`, `NameTree`).

use l5d_dtab::{Dtab, NameTree, Path};
use l5d_proto::mesh as pb;
use prost::Message as _;

use super::error::MeshError;
use crate::store::Namespace;

/// The root of a request as a namespace: present, one segment, a valid
/// namespace name.
pub(crate) fn namespace(root: Option<&pb::Path>) -> Result<Namespace, MeshError> {
    let root = root.ok_or(MeshError::NoNamespace)?;
    root_namespace(root)
}

/// A root already known to be present.
fn root_namespace(root: &pb::Path) -> Result<Namespace, MeshError> {
    let root = Path::try_from(root).map_err(MeshError::invalid("root"))?;
    match root.labels().next() {
        Some(label) if root.len() == 1 => {
            // A label that is not UTF-8 is not a valid namespace either; the
            // store's message names it.
            Ok(Namespace::new(&String::from_utf8_lossy(label))?)
        }
        _ => Err(MeshError::InvalidRoot { root }),
    }
}

/// The namespace, name and local dtab of a `BindReq`.
#[derive(Debug)]
pub(crate) struct Bind {
    pub(crate) ns: Namespace,
    pub(crate) name: Path,
    pub(crate) local: Dtab,
}

pub(crate) fn bind(req: &pb::BindReq) -> Result<Bind, MeshError> {
    let root = req.root.as_ref().ok_or(MeshError::NoNamespace)?;
    let name = match &req.name {
        Some(name) if !name.elems.is_empty() => name,
        _ => return Err(MeshError::NoName),
    };
    Ok(Bind {
        ns: root_namespace(root)?,
        name: Path::try_from(name).map_err(MeshError::invalid("name"))?,
        local: local_dtab(req.dtab.as_ref())?,
    })
}

/// The bytes of a bind request's name and local dtab as sent, for the key
/// size limit (checked before either is parsed).
pub(crate) fn bind_key_size(req: &pb::BindReq) -> usize {
    req.name.as_ref().map_or(0, |n| n.encoded_len())
        + req.dtab.as_ref().map_or(0, |d| d.encoded_len())
}

/// The bytes of a delegation's tree and local dtab as sent.
pub(crate) fn delegate_key_size(req: &pb::DelegateTreeReq) -> usize {
    req.tree.as_ref().map_or(0, |t| t.encoded_len())
        + req.dtab.as_ref().map_or(0, |d| d.encoded_len())
}

/// The bytes of a resolver id as sent.
pub(crate) fn id_size(id: Option<&pb::Path>) -> usize {
    id.map_or(0, |p| p.encoded_len())
}

/// The namespace, tree and local dtab of a `DelegateTreeReq`.
#[derive(Debug)]
pub(crate) struct Delegate {
    pub(crate) ns: Namespace,
    pub(crate) tree: NameTree<Path>,
    pub(crate) local: Dtab,
}

pub(crate) fn delegate(req: &pb::DelegateTreeReq) -> Result<Delegate, MeshError> {
    let root = req.root.as_ref().ok_or(MeshError::NoNamespace)?;
    let tree = req.tree.as_ref().ok_or(MeshError::NoName)?;
    Ok(Delegate {
        ns: root_namespace(root)?,
        tree: NameTree::try_from(tree).map_err(MeshError::invalid("tree"))?,
        local: local_dtab(req.dtab.as_ref())?,
    })
}

/// A resolver id; `None` when it is absent or empty (which the resolver
/// answers with a normal `failed` message, not an error).
pub(crate) fn id(id: Option<&pb::Path>) -> Result<Option<Path>, MeshError> {
    match id {
        Some(id) if !id.elems.is_empty() => {
            Ok(Some(Path::try_from(id).map_err(MeshError::invalid("id"))?))
        }
        _ => Ok(None),
    }
}

/// An absent dtab is the empty dtab.
fn local_dtab(dtab: Option<&pb::Dtab>) -> Result<Dtab, MeshError> {
    dtab.map_or_else(
        || Ok(Dtab::empty()),
        |d| Dtab::try_from(d).map_err(MeshError::invalid("dtab")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn path(labels: &[&str]) -> pb::Path {
        pb::Path {
            elems: labels.iter().map(|l| l.as_bytes().to_vec()).collect(),
        }
    }

    fn bind_req(root: Option<&[&str]>, name: Option<&[&str]>) -> pb::BindReq {
        pb::BindReq {
            root: root.map(path),
            name: name.map(path),
            dtab: None,
        }
    }

    #[test]
    fn bind_checks_fields_in_linkerds_order() {
        let bad_dtab = pb::BindReq {
            dtab: Some(pb::Dtab {
                dentries: vec![pb::dtab::Dentry::default()],
            }),
            ..bind_req(Some(&["default"]), Some(&["svc"]))
        };
        let cases: Vec<(pb::BindReq, Code, &str)> = vec![
            (
                bind_req(None, None),
                Code::InvalidArgument,
                "No namespace specified",
            ),
            (
                bind_req(Some(&["a", "b"]), None),
                Code::NotFound,
                "No name given",
            ),
            (
                bind_req(Some(&["default"]), Some(&[])),
                Code::NotFound,
                "No name given",
            ),
            (
                bind_req(Some(&["a", "b"]), Some(&["svc"])),
                Code::InvalidArgument,
                "Invalid root: `/a/b` must have exactly one segment",
            ),
            (
                bind_req(Some(&[]), Some(&["svc"])),
                Code::InvalidArgument,
                "Invalid root: `/` must have exactly one segment",
            ),
            (
                bind_req(Some(&[""]), Some(&["svc"])),
                Code::InvalidArgument,
                "Invalid root: invalid Path: a label is empty",
            ),
            (
                bind_req(Some(&["no.dots"]), Some(&["svc"])),
                Code::InvalidArgument,
                "invalid dtab namespace no.dots: namespace must contain only letter, number, '_' or '-' characters (at most 128)",
            ),
            (
                bind_req(Some(&["default"]), Some(&["svc", ""])),
                Code::InvalidArgument,
                "Invalid name: invalid Path: a label is empty",
            ),
            (
                bad_dtab,
                Code::InvalidArgument,
                "Invalid dtab: invalid Dentry: the prefix is missing",
            ),
        ];
        for (req, code, message) in cases {
            let status = tonic::Status::from(bind(&req).expect_err("invalid request"));
            assert_eq!(
                (status.code(), status.message()),
                (code, message),
                "{req:?}"
            );
        }
        let ok = bind(&bind_req(Some(&["default"]), Some(&["svc", "a"]))).unwrap();
        assert_eq!(
            (ok.ns.as_str(), ok.name.show()),
            ("default", "/svc/a".into())
        );
        assert!(ok.local.is_empty());
    }

    #[test]
    fn empty_or_missing_id_is_no_id() {
        assert!(id(None).unwrap().is_none());
        assert!(id(Some(&path(&[]))).unwrap().is_none());
        assert_eq!(
            id(Some(&path(&["$", "inet"]))).unwrap().unwrap().show(),
            "/$/inet"
        );
    }
}
