//! The answers that are not the backend's usual text: gRPC answers, and
//! what a fault makes of a request.

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::ReplyBody;
use crate::fault::{Fault, GrpcIn, Reset};

const X_FAULT: HeaderName = HeaderName::from_static("x-fault");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub(super) const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
/// An empty gRPC message: not compressed, length 0. Any message type
/// decodes it (to its defaults), so it answers any method.
const EMPTY_GRPC_MESSAGE: &[u8] = &[0; 5];

/// An answer, and what the request log says of it.
pub(super) struct Answer {
    /// `None`: reset before the head.
    pub(super) rsp: Option<Response<ReplyBody>>,
    pub(super) faulted: Option<&'static str>,
    pub(super) grpc_status: Option<u8>,
}

/// Whether a request is gRPC: `content-type: application/grpc[+proto|...]`.
pub(super) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

// === impl Answer ===

impl Answer {
    /// The answer to a request that `fault` hits, from the backend `name`
    /// whose usual body is `usual`. What wins when a fault sets several
    /// things: `reset=before_head`; then `grpc_status` for gRPC requests;
    /// then `reset=after_head` (with the head `status` or 200); then
    /// `status`; a delay alone answers as usual.
    pub(super) fn faulted(fault: &Fault, grpc: bool, name: &str, usual: &Bytes) -> Answer {
        match (fault.reset, fault.grpc_status) {
            (Some(Reset::BeforeHead), _) => Answer {
                rsp: None,
                faulted: Some("reset_before_head"),
                grpc_status: None,
            },
            (_, Some(code)) if grpc => Answer::grpc(code, fault.grpc_in).marked("grpc_status"),
            (Some(Reset::AfterHead), _) => {
                let line = format!("l5d-demo {name}: fault reset=after_head, then an error\n");
                let mut rsp = Response::new(ReplyBody::aborted(Bytes::from(line)));
                *rsp.status_mut() = fault.status.unwrap_or(StatusCode::OK);
                rsp.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
                Answer::from(rsp).marked("reset_after_head")
            }
            _ => match fault.status {
                Some(status) => {
                    let line = format!("l5d-demo {name}: fault status={}\n", status.as_u16());
                    let mut answer = Answer::usual(Bytes::from(line)).marked("status");
                    if let Some(rsp) = &mut answer.rsp {
                        *rsp.status_mut() = status;
                    }
                    answer
                }
                None if grpc => Answer::grpc(0, GrpcIn::Trailers).marked("delay"),
                None => Answer::usual(usual.clone()).marked("delay"),
            },
        }
    }

    /// `200` with `body` as text.
    pub(super) fn usual(body: Bytes) -> Answer {
        let mut rsp = Response::new(ReplyBody::full(body));
        rsp.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
        Answer::from(rsp)
    }

    /// A gRPC answer with status `code`: `0` with an empty message and then
    /// trailers; another code with no message, in trailers or (Trailers-Only)
    /// in the head with the end of the stream.
    pub(super) fn grpc(code: u8, place: GrpcIn) -> Answer {
        let mut status = HeaderMap::new();
        status.insert(GRPC_STATUS, HeaderValue::from(u16::from(code)));
        if code != 0 {
            status.insert(GRPC_MESSAGE, HeaderValue::from_static("fault"));
        }
        let mut rsp = match (code, place) {
            (0, _) => Response::new(ReplyBody::with_trailers(
                Bytes::from_static(EMPTY_GRPC_MESSAGE),
                status,
            )),
            (_, GrpcIn::Trailers) => Response::new(ReplyBody::with_trailers(Bytes::new(), status)),
            (_, GrpcIn::Headers) => {
                let mut rsp = Response::new(ReplyBody::full(Bytes::new()));
                rsp.headers_mut().extend(status);
                rsp
            }
        };
        rsp.headers_mut().insert(CONTENT_TYPE, APPLICATION_GRPC);
        Answer {
            rsp: Some(rsp),
            faulted: None,
            grpc_status: Some(code),
        }
    }

    /// Marks the answer as the work of a fault, in `x-fault` and the log.
    fn marked(mut self, fault: &'static str) -> Answer {
        if let Some(rsp) = &mut self.rsp {
            rsp.headers_mut()
                .insert(X_FAULT, HeaderValue::from_static(fault));
        }
        self.faulted = Some(fault);
        self
    }
}

impl From<Response<ReplyBody>> for Answer {
    fn from(rsp: Response<ReplyBody>) -> Answer {
        Answer {
            rsp: Some(rsp),
            faulted: None,
            grpc_status: None,
        }
    }
}
