//! `io.linkerd.mesh.Delegator` (experimental upstream): the stored dtab of
//! a namespace with its version, once or live, and the delegation trace of
//! a name. `StreamDelegateTree` is deprecated upstream and sends exactly
//! one trace, then ends.

use l5d_proto::mesh as pb;
use pb::bound_delegate_tree::Node;
use pb::delegator_server::Delegator as DelegatorRpc;
use tonic::{Request, Response, Status};

use super::error::MeshError;
use super::stream::{self, MeshStream, OnClose, Step};
use super::{Context, refuse, request, unary};
use crate::client::Client;
use crate::store::VersionedDtab;

const GET_DTAB: &str = "GetDtab";
const STREAM_DTAB: &str = "StreamDtab";
const GET_DELEGATE_TREE: &str = "GetDelegateTree";
const STREAM_DELEGATE_TREE: &str = "StreamDelegateTree";

#[derive(Debug)]
pub(crate) struct DelegatorService {
    ctx: Context,
}

impl DelegatorService {
    pub(crate) fn new(ctx: Context) -> Self {
        DelegatorService { ctx }
    }

    async fn get_dtab(&self, req: pb::DtabReq) -> Result<pb::DtabRsp, MeshError> {
        let ns = request::namespace(req.root.as_ref())?;
        match self.ctx.interpreter.store().get(&ns).await? {
            Some(dtab) => Ok(dtab_rsp(&dtab)),
            None => Err(MeshError::RootNotFound),
        }
    }

    /// A namespace that does not exist delegates through an empty dtab,
    /// as it binds.
    async fn get_delegate_tree(
        &self,
        req: pb::DelegateTreeReq,
    ) -> Result<pb::DelegateTreeRsp, MeshError> {
        (self.ctx.interpreter).check_key_size(request::delegate_key_size(&req))?;
        let req = request::delegate(&req)?;
        let trace = self
            .ctx
            .interpreter
            .delegate(
                Some(&req.ns),
                &req.tree,
                &req.local,
                self.ctx.delegate_timeout,
            )
            .await?;
        let mut tree = pb::BoundDelegateTree::from(&trace);
        as_linkerd_sends(&mut tree);
        Ok(pb::DelegateTreeRsp { tree: Some(tree) })
    }
}

#[tonic::async_trait]
impl DelegatorRpc for DelegatorService {
    async fn get_dtab(
        &self,
        request: Request<pb::DtabReq>,
    ) -> Result<Response<pb::DtabRsp>, Status> {
        unary(GET_DTAB, self.get_dtab(request.into_inner())).await
    }

    type StreamDtabStream = MeshStream<pb::DtabRsp>;

    async fn stream_dtab(
        &self,
        request: Request<pb::DtabReq>,
    ) -> Result<Response<Self::StreamDtabStream>, Status> {
        let client = Client::of(request.extensions());
        let (ns, lease) = request::namespace(request.get_ref().root.as_ref())
            .and_then(|ns| Ok((ns, self.ctx.interpreter.clients().open_stream(&client)?)))
            .map_err(|e| refuse(STREAM_DTAB, e))?;
        let dtab = self.ctx.interpreter.store().watch(&ns);
        Ok(Response::new(stream::from_watch(
            STREAM_DTAB,
            dtab,
            (lease, None),
            self.ctx.shutdown.clone(),
            OnClose::End { what: "dtab" },
            |dtab: &Option<VersionedDtab>| match dtab {
                Some(dtab) => Step::Send(dtab.clone()),
                None => Step::End(MeshError::RootNotFound),
            },
            dtab_rsp,
        )))
    }

    async fn get_delegate_tree(
        &self,
        request: Request<pb::DelegateTreeReq>,
    ) -> Result<Response<pb::DelegateTreeRsp>, Status> {
        unary(
            GET_DELEGATE_TREE,
            self.get_delegate_tree(request.into_inner()),
        )
        .await
    }

    type StreamDelegateTreeStream = MeshStream<pb::DelegateTreeRsp>;

    async fn stream_delegate_tree(
        &self,
        request: Request<pb::DelegateTreeReq>,
    ) -> Result<Response<Self::StreamDelegateTreeStream>, Status> {
        let rsp = self
            .get_delegate_tree(request.into_inner())
            .await
            .map_err(|e| refuse(STREAM_DELEGATE_TREE, e))?;
        Ok(Response::new(stream::once(STREAM_DELEGATE_TREE, rsp)))
    }
}

/// The raw store version bytes (not base64) and the dtab.
fn dtab_rsp(dtab: &VersionedDtab) -> pb::DtabRsp {
    pb::DtabRsp {
        dtab: Some(pb::VersionedDtab {
            version: Some(pb::versioned_dtab::Version {
                id: dtab.version.as_bytes().to_vec(),
            }),
            dtab: Some((&dtab.dtab).into()),
        }),
    }
}

/// Rewrites a trace into the shape Linkerd's namerd sends, which Linkerd
/// proxies depend on:
///
/// * Finagle gives every node a dentry, `Dentry.nop` (prefix: the single
///   label `/`; destination `~`) where no rule applied, and Linkerd's mesh
///   client refuses a node without one ("illegal delegate tree"). Our trace
///   has no dentry there, so `nop` is filled in; transformation nodes stay
///   without one, as upstream sends them.
/// * Exceptions are sent as `BoundDelegateTree Exception: <message>`.
///
/// This belongs in the wire conversion of `l5d-proto` eventually (with
/// `nop` read back as no dentry); it is here because that conversion is
/// shared with our own clients, which do not need it.
fn as_linkerd_sends(tree: &mut pb::BoundDelegateTree) {
    let transformation = matches!(tree.node, Some(Node::Transformation(_)));
    if tree.dentry.is_none() && !transformation {
        tree.dentry = Some(nop_dentry());
    }
    match &mut tree.node {
        Some(Node::Exception(message)) => {
            *message = format!("BoundDelegateTree Exception: {message}");
        }
        Some(Node::Delegate(child)) => as_linkerd_sends(child),
        Some(Node::Alt(alt)) => alt.trees.iter_mut().for_each(as_linkerd_sends),
        Some(Node::Union(union)) => union
            .trees
            .iter_mut()
            .filter_map(|w| w.tree.as_mut())
            .for_each(as_linkerd_sends),
        Some(Node::Transformation(t)) => {
            if let Some(child) = t.tree.as_mut() {
                as_linkerd_sends(child);
            }
        }
        Some(Node::Neg(_) | Node::Fail(_) | Node::Empty(_) | Node::Leaf(_)) | None => {}
    }
}

/// Finagle's `Dentry.nop`: `Dentry(Path.Utf8("/"), NameTree.Neg)`.
fn nop_dentry() -> pb::dtab::Dentry {
    use pb::dtab::dentry::{Prefix, prefix::Elem, prefix::elem::Value};
    pb::dtab::Dentry {
        prefix: Some(Prefix {
            elems: vec![Elem {
                value: Some(Value::Label(b"/".to_vec())),
            }],
        }),
        dst: Some(pb::PathNameTree {
            node: Some(pb::path_name_tree::Node::Neg(pb::path_name_tree::Neg {})),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l5d_dtab::{DelegateNode, DelegateTree, Dentry, NameError, Path};
    use std::sync::Arc;

    #[test]
    fn every_node_gets_a_dentry_and_exceptions_their_prefix() {
        let path = Path::read("/svc/a").unwrap();
        let rule = Arc::new(Dentry::read("/svc=>/x").unwrap());
        let trace = DelegateTree::new(
            path.clone(),
            None,
            DelegateNode::Delegate(Box::new(DelegateTree::new(
                path.clone(),
                Some(rule.clone()),
                DelegateNode::Exception(NameError::namer(&path, "boom")),
            ))),
        );
        let mut tree = pb::BoundDelegateTree::from(&trace);
        as_linkerd_sends(&mut tree);
        assert_eq!(tree.dentry, Some(nop_dentry()));
        let Some(Node::Delegate(child)) = &tree.node else {
            panic!("delegate");
        };
        assert_eq!(child.dentry, Some((&*rule).into()));
        assert_eq!(
            child.node,
            Some(Node::Exception("BoundDelegateTree Exception: boom".into()))
        );
    }
}
