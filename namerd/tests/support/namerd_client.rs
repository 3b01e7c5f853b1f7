//! Clients of a running namerd for scenario tests: its HTTP endpoints (the
//! dtab API and the admin pages, through hyper) and `StreamBoundTree`
//! watches of the `io.linkerd.mesh` Interpreter (through the generated tonic
//! client), every call bounded in time. It knows namerd only by its wire
//! protocols, so it serves an in-process namerd and a namerd process alike.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use l5d_dtab::{Bound, NameTree, Path};
use l5d_proto::mesh as pb;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};

/// A bound on every HTTP call and on every wait for a stream's first item.
/// Generous: a read while PostgreSQL is down waits for a connection (5 s by
/// default) before it answers from the last good value.
pub(crate) const CALL_LIMIT: Duration = Duration::from_secs(15);

/// The namespace and name every scenario watches, as a Linkerd proxy with
/// the `io.l5d.mesh` interpreter and `root: /internal` asks for them.
pub(crate) const ROOT: &str = "/internal";
pub(crate) const NAME: &str = "/svc/web";

/// `/svc => /$/inet/127.0.0.1/<port>`: what `/svc/web` binds to is the
/// port, so each version of the dtab has a tree of its own.
pub(crate) fn svc_dtab(port: u16) -> String {
    format!("/svc => /$/inet/127.0.0.1/{port}")
}

/// The bound id `/$/inet/127.0.0.1/<port>`.
pub(crate) fn inet_id(port: u16) -> String {
    format!("/$/inet/127.0.0.1/{port}")
}

/// One answer of namerd's HTTP server.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// The dtab's version, on dtab reads and successful writes.
    pub(crate) etag: Option<String>,
    /// `l5d-stale: true`: served from the last good value while storage
    /// is unreachable.
    pub(crate) stale: bool,
    pub(crate) body: String,
}

/// namerd's HTTP server at one address (the dtab API or admin).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NamerdHttp {
    addr: SocketAddr,
}

impl NamerdHttp {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        NamerdHttp { addr }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, "", None).await
    }

    /// `POST /api/1/dtabs/<ns>`: creates the namespace.
    pub(crate) async fn create(&self, ns: &str, dtab: &str) -> Answer {
        let path = format!("/api/1/dtabs/{ns}");
        self.send(Method::POST, &path, dtab, None).await
    }

    /// `PUT /api/1/dtabs/<ns>` with `If-Match`: compare-and-set.
    pub(crate) async fn update(&self, ns: &str, dtab: &str, if_match: &str) -> Answer {
        let path = format!("/api/1/dtabs/{ns}");
        self.send(Method::PUT, &path, dtab, Some(if_match)).await
    }

    async fn send(&self, method: Method, path: &str, body: &str, if_match: Option<&str>) -> Answer {
        let what = format!("{method} http://{}{path}", self.addr);
        tokio::time::timeout(CALL_LIMIT, self.exchange(method, path, body, if_match))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within {CALL_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: &str,
        if_match: Option<&str>,
    ) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/dtab");
        if let Some(version) = if_match {
            req = req.header("if-match", version);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned())))?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        let rsp = client.request(req).await?;
        let status = rsp.status();
        let header = |name: &str| {
            rsp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let stale = header("l5d-stale").as_deref() == Some("true");
        let body = rsp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            etag,
            stale,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// Reads the next chunk of a streaming HTTP body (a `?watch=true` answer)
/// within `limit`.
pub(crate) async fn next_chunk(body: &mut hyper::body::Incoming, limit: Duration) -> String {
    loop {
        let frame = tokio::time::timeout(limit, body.frame())
            .await
            .expect("a chunk within the limit")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            return String::from_utf8(data.to_vec()).unwrap();
        }
    }
}

/// Connects to the mesh API, giving up on one attempt after a second.
pub(crate) async fn connect(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
}

/// Opens `StreamBoundTree` for [`NAME`] in [`ROOT`].
pub(crate) async fn watch_tree(channel: &Channel) -> Result<Streaming<pb::BoundTreeRsp>, Status> {
    let req = pb::BindReq {
        root: Some(wire(ROOT)),
        name: Some(wire(NAME)),
        dtab: None,
    };
    let mut client = pb::interpreter_client::InterpreterClient::new(channel.clone());
    let opened = tokio::time::timeout(CALL_LIMIT, client.stream_bound_tree(req))
        .await
        .unwrap_or_else(|_| panic!("StreamBoundTree not answered within {CALL_LIMIT:?}"))?;
    Ok(opened.into_inner())
}

/// The next item of a stream, waiting at most [`CALL_LIMIT`].
pub(crate) async fn next<T>(stream: &mut Streaming<T>) -> Result<Option<T>, Status> {
    tokio::time::timeout(CALL_LIMIT, stream.message())
        .await
        .unwrap_or_else(|_| panic!("no stream item within {CALL_LIMIT:?}"))
}

/// The complete answer for [`NAME`] when `/svc` goes to `id`: one leaf,
/// `id` with the residual `/web`. Messages are compared with it whole, so
/// a partial or differently shaped tree never passes.
pub(crate) fn leaf_tree(id: &str) -> pb::BoundTreeRsp {
    let leaf = NameTree::Leaf(Bound::new(path(id), path("/web")));
    pb::BoundTreeRsp {
        tree: Some((&leaf).into()),
    }
}

/// A bound tree as text (leaves by their ids), for failure messages.
pub(crate) fn show(rsp: &pb::BoundTreeRsp) -> String {
    match rsp.tree.as_ref().map(NameTree::<Bound>::try_from) {
        Some(Ok(tree)) => tree.show_with(|b, out| out.push_str(&b.id.show())),
        Some(Err(e)) => format!("(undecodable tree: {e})"),
        None => "(no tree)".to_string(),
    }
}

pub(crate) fn wire(p: &str) -> pb::Path {
    (&path(p)).into()
}

fn path(p: &str) -> Path {
    Path::read(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}
