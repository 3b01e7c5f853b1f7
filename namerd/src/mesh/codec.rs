//! `io.linkerd.mesh.Codec`: stateless conversions between the text syntax
//! of paths and dtabs and their messages, for clients that have no parser.
//!
//! Text that does not parse is `INVALID_ARGUMENT` with the parser's own
//! message (Finagle's format, e.g. `'/' expected but 'x' found at '[x]'`).
//! Empty text reads as the empty path or dtab: proto3 cannot tell an empty
//! string from an absent one, and Linkerd reads an absent one that way.

use l5d_dtab::{Dtab, Path};
use l5d_proto::mesh as pb;
use pb::codec_server::Codec as CodecRpc;
use tonic::{Request, Response, Status};

use super::error::MeshError;
use super::unary;

#[derive(Debug, Default)]
pub(crate) struct CodecService;

#[tonic::async_trait]
impl CodecRpc for CodecService {
    async fn read_dtab(
        &self,
        request: Request<pb::ReadDtabReq>,
    ) -> Result<Response<pb::ReadDtabRsp>, Status> {
        unary("ReadDtab", async move {
            let text = request.into_inner().text;
            let dtab = if text.is_empty() {
                Dtab::empty()
            } else {
                Dtab::read(&text)?
            };
            Ok(pb::ReadDtabRsp {
                dtab: Some((&dtab).into()),
            })
        })
        .await
    }

    async fn show_dtab(
        &self,
        request: Request<pb::ShowDtabReq>,
    ) -> Result<Response<pb::ShowDtabRsp>, Status> {
        unary("ShowDtab", async move {
            let text = match &request.get_ref().dtab {
                Some(dtab) => Dtab::try_from(dtab)
                    .map_err(MeshError::invalid("dtab"))?
                    .show(),
                None => String::new(),
            };
            Ok(pb::ShowDtabRsp { text })
        })
        .await
    }

    async fn read_path(
        &self,
        request: Request<pb::ReadPathReq>,
    ) -> Result<Response<pb::ReadPathRsp>, Status> {
        unary("ReadPath", async move {
            let text = request.into_inner().text;
            let path = if text.is_empty() {
                Path::empty()
            } else {
                Path::read(&text)?
            };
            Ok(pb::ReadPathRsp {
                path: Some((&path).into()),
            })
        })
        .await
    }

    async fn show_path(
        &self,
        request: Request<pb::ShowPathReq>,
    ) -> Result<Response<pb::ShowPathRsp>, Status> {
        unary("ShowPath", async move {
            let text = match &request.get_ref().path {
                Some(path) => Path::try_from(path)
                    .map_err(MeshError::invalid("path"))?
                    .show(),
                None => String::new(),
            };
            Ok(pb::ShowPathRsp { text })
        })
        .await
    }
}
