//! `io.linkerd.mesh.Resolver`: the replica set (address set) of a concrete
//! id from a bound tree, once (`GetReplicas`) or live (`StreamReplicas`,
//! one per leaf id in a Linkerd 1.x proxy).
//!
//! This service only forwards what the interpreter's namers publish: a
//! namer that loses its source keeps its last good set, so nothing here
//! ever turns an error into an empty set. The messages are written by
//! `l5d-proto`'s conversion from the core's `Addr`.

use l5d_dtab::Addr;
use l5d_proto::mesh as pb;
use pb::resolver_server::Resolver as ResolverRpc;
use tonic::{Request, Response, Status};

use super::error::MeshError;
use super::stream::{self, MeshStream, OnClose, Step};
use super::{Context, refuse, request, unary};
use crate::client::Client;
use crate::namer::fixed;

const GET_REPLICAS: &str = "GetReplicas";
const STREAM_REPLICAS: &str = "StreamReplicas";

/// Linkerd's answer to an empty id, a normal message rather than an error.
const NO_ID: &str = "No ID provided";

#[derive(Debug)]
pub(crate) struct ResolverService {
    ctx: Context,
}

impl ResolverService {
    pub(crate) fn new(ctx: Context) -> Self {
        ResolverService { ctx }
    }

    /// Waits up to the pending timeout for an answer; a set that is still
    /// pending then is answered as `pending` (a state the message has,
    /// unlike a bound tree).
    async fn get(&self, req: pb::ReplicasReq) -> Result<pb::Replicas, MeshError> {
        (self.ctx.interpreter).check_key_size(request::id_size(req.id.as_ref()))?;
        let Some(id) = request::id(req.id.as_ref())? else {
            return Ok(no_id());
        };
        let addr = self.ctx.interpreter.resolve(&id);
        let addr = self
            .ctx
            .settled(addr, |a| !matches!(a, Addr::Pending))
            .await?;
        Ok((&addr).into())
    }
}

#[tonic::async_trait]
impl ResolverRpc for ResolverService {
    async fn get_replicas(
        &self,
        request: Request<pb::ReplicasReq>,
    ) -> Result<Response<pb::Replicas>, Status> {
        unary(GET_REPLICAS, self.get(request.into_inner())).await
    }

    type StreamReplicasStream = MeshStream<pb::Replicas>;

    async fn stream_replicas(
        &self,
        request: Request<pb::ReplicasReq>,
    ) -> Result<Response<Self::StreamReplicasStream>, Status> {
        let client = Client::of(request.extensions());
        let id = request.get_ref().id.as_ref();
        let opened = (self.ctx.interpreter)
            .check_key_size(request::id_size(id))
            .map_err(MeshError::from)
            .and_then(|()| request::id(id))
            .and_then(|id| {
                let lease = self.ctx.interpreter.clients().open_stream(&client)?;
                Ok((id, lease))
            });
        let (id, lease) = opened.map_err(|e| refuse(STREAM_REPLICAS, e))?;
        let addr = match id {
            Some(id) => self.ctx.interpreter.resolve(&id),
            None => fixed(Addr::Failed(NO_ID.into())),
        };
        // Namers answer fixed states (`neg`, an id that is not concrete)
        // with a watch whose sender is gone: such a value is final, and the
        // stream stays open with it.
        Ok(Response::new(stream::from_watch(
            STREAM_REPLICAS,
            addr,
            (lease, None),
            self.ctx.shutdown.clone(),
            OnClose::Hold,
            |addr: &Addr| Step::Send(addr.clone()),
            |addr: &Addr| addr.into(),
        )))
    }
}

fn no_id() -> pb::Replicas {
    (&Addr::Failed(NO_ID.into())).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::replicas;

    #[test]
    fn an_empty_id_is_answered_as_linkerd_does() {
        assert_eq!(
            no_id().result,
            Some(replicas::Result::Failed(replicas::Failed {
                message: "No ID provided".into()
            }))
        );
    }
}
