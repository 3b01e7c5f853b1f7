//! `io.linkerd.mesh.Interpreter`: the bound tree of a name in a namespace,
//! once (`GetBoundTree`) or live (`StreamBoundTree`, which is what Linkerd
//! 1.x proxies open, one per distinct name and local dtab).
//!
//! Bindings are shared: every stream of the same (namespace, name, local
//! dtab) watches the same binding in [`crate::interpreter::Interpreter`].

use std::sync::Arc;

use l5d_dtab::{Activity, Bound, NameTree};
use l5d_proto::mesh as pb;
use pb::interpreter_server::Interpreter as InterpreterRpc;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::error::MeshError;
use super::stream::{self, Leases, MeshStream, OnClose, Step};
use super::{Context, refuse, request, unary};
use crate::client::Client;
use crate::interpreter::{Binding, InterpretError};
use crate::store::Namespace;

const GET_BOUND_TREE: &str = "GetBoundTree";
const STREAM_BOUND_TREE: &str = "StreamBoundTree";

#[derive(Debug)]
pub(crate) struct InterpreterService {
    ctx: Context,
}

impl InterpreterService {
    pub(crate) fn new(ctx: Context) -> Self {
        InterpreterService { ctx }
    }

    async fn get(&self, client: Client, req: pb::BindReq) -> Result<pb::BoundTreeRsp, MeshError> {
        let interpreter = &self.ctx.interpreter;
        interpreter.check_key_size(request::bind_key_size(&req))?;
        let bind = request::bind(&req)?;
        // The binding is held (and counted) until the answer is sent.
        let (binding, _lease) = interpreter
            .bind(&client, &bind.ns, &bind.name, &bind.local)?
            .into_parts();
        let binding = self.ctx.settled(binding, Binding::settled).await?;
        match step(&binding) {
            Step::Send(tree) => Ok(bound_tree_rsp(&tree)),
            Step::End(e) => Err(e),
            Step::Wait => Err(MeshError::StillPending),
        }
    }

    /// The binding a stream follows, what it holds against `client`, and
    /// its namespace.
    fn open(
        &self,
        client: Client,
        req: &pb::BindReq,
    ) -> Result<(watch::Receiver<Binding>, Leases, Namespace), MeshError> {
        let interpreter = &self.ctx.interpreter;
        interpreter.check_key_size(request::bind_key_size(req))?;
        let bind = request::bind(req)?;
        let stream = interpreter.clients().open_stream(&client)?;
        let (binding, lease) = interpreter
            .bind(&client, &bind.ns, &bind.name, &bind.local)?
            .into_parts();
        Ok((binding, (stream, Some(lease)), bind.ns))
    }
}

#[tonic::async_trait]
impl InterpreterRpc for InterpreterService {
    async fn get_bound_tree(
        &self,
        request: Request<pb::BindReq>,
    ) -> Result<Response<pb::BoundTreeRsp>, Status> {
        let client = Client::of(request.extensions());
        unary(GET_BOUND_TREE, self.get(client, request.into_inner())).await
    }

    type StreamBoundTreeStream = MeshStream<pb::BoundTreeRsp>;

    async fn stream_bound_tree(
        &self,
        request: Request<pb::BindReq>,
    ) -> Result<Response<Self::StreamBoundTreeStream>, Status> {
        let client = Client::of(request.extensions());
        let (binding, leases, ns) = self
            .open(client, request.get_ref())
            .map_err(|e| refuse(STREAM_BOUND_TREE, e))?;
        let propagation = self.ctx.interpreter.propagation().clone();
        Ok(Response::new(stream::from_watch(
            STREAM_BOUND_TREE,
            binding,
            leases,
            self.ctx.shutdown.clone(),
            OnClose::End { what: "binding" },
            move |binding: &Binding| {
                let step = step(binding);
                // Each stream sees each new tree once: from the dtab change
                // this replica saw to this stream's write of the tree it
                // produced.
                if let (Step::Send(_), Some(at)) = (&step, binding.dtab_changed_at) {
                    propagation.record(ns.as_str(), at);
                }
                step
            },
            bound_tree_rsp,
        )))
    }
}

/// What a binding sends: nothing while pending; the tree once bound
/// (after a good tree, the interpreter keeps it through failures, so a
/// failure here means the name never bound).
fn step(binding: &Binding) -> Step<Arc<NameTree<Bound>>> {
    if binding.evicted {
        return Step::End(InterpretError::Evicted.into());
    }
    match &binding.tree {
        Activity::Pending => Step::Wait,
        Activity::Ok(tree) => Step::Send(tree.clone()),
        Activity::Failed(e) => Step::End(MeshError::BindingFailed {
            message: e.to_string(),
        }),
    }
}

/// Linkerd sends a leaf whose id is not a path as `neg`; our bound ids are
/// always paths, so every leaf is sent as a leaf.
fn bound_tree_rsp(tree: &Arc<NameTree<Bound>>) -> pb::BoundTreeRsp {
    pb::BoundTreeRsp {
        tree: Some(pb::BoundNameTree::from(&**tree)),
    }
}
