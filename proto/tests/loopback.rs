//! End-to-end check of the generated code: a tonic server and a generated
//! client talk over a real TCP connection on the loopback interface.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use l5d_proto::mesh::{
    self, BindReq, BoundNameTree, BoundTreeRsp, Path, ReadDtabReq, ReadDtabRsp, ReadPathReq,
    ReadPathRsp, ShowDtabReq, ShowDtabRsp, ShowPathReq, ShowPathRsp, bound_name_tree,
    codec_client::CodecClient,
    codec_server::{Codec, CodecServer},
    interpreter_client::InterpreterClient,
    interpreter_server::{Interpreter, InterpreterServer},
};
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::transport::{Channel, Server, server::TcpIncoming};
use tonic::{Request, Response, Status};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn path(segments: &[&str]) -> Path {
    Path {
        elems: segments.iter().map(|s| s.as_bytes().to_vec()).collect(),
    }
}

/// The fixed leaf every bind resolves to: `/#/io.l5d.k8s/default/http/hello`
/// with residual `/<version>`.
fn leaf(version: u32) -> BoundTreeRsp {
    BoundTreeRsp {
        tree: Some(BoundNameTree {
            node: Some(bound_name_tree::Node::Leaf(bound_name_tree::Leaf {
                id: Some(path(&["#", "io.l5d.k8s", "default", "http", "hello"])),
                residual: Some(path(&[&version.to_string()])),
            })),
        }),
    }
}

#[derive(Debug, Default)]
struct FixedInterpreter;

#[tonic::async_trait]
impl Interpreter for FixedInterpreter {
    async fn get_bound_tree(
        &self,
        request: Request<BindReq>,
    ) -> Result<Response<BoundTreeRsp>, Status> {
        let req = request.into_inner();
        if req.root.is_none() {
            return Err(Status::invalid_argument("No namespace specified"));
        }
        Ok(Response::new(leaf(0)))
    }

    type StreamBoundTreeStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<BoundTreeRsp, Status>>>;

    async fn stream_bound_tree(
        &self,
        _request: Request<BindReq>,
    ) -> Result<Response<Self::StreamBoundTreeStream>, Status> {
        let updates = (1..=3).map(|v| Ok(leaf(v))).collect::<Vec<_>>();
        Ok(Response::new(tokio_stream::iter(updates)))
    }
}

/// Implements only `ReadPath` (naively: split on `/`).
#[derive(Debug, Default)]
struct PathOnlyCodec;

#[tonic::async_trait]
impl Codec for PathOnlyCodec {
    async fn read_dtab(&self, _: Request<ReadDtabReq>) -> Result<Response<ReadDtabRsp>, Status> {
        Err(Status::unimplemented("ReadDtab"))
    }

    async fn show_dtab(&self, _: Request<ShowDtabReq>) -> Result<Response<ShowDtabRsp>, Status> {
        Err(Status::unimplemented("ShowDtab"))
    }

    async fn read_path(
        &self,
        request: Request<ReadPathReq>,
    ) -> Result<Response<ReadPathRsp>, Status> {
        let text = request.into_inner().text;
        let Some(rest) = text.strip_prefix('/') else {
            return Err(Status::invalid_argument("path must start with '/'"));
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        Ok(Response::new(ReadPathRsp {
            path: Some(path(&segments)),
        }))
    }

    async fn show_path(&self, _: Request<ShowPathReq>) -> Result<Response<ShowPathRsp>, Status> {
        Err(Status::unimplemented("ShowPath"))
    }
}

/// A client-side channel wrapper that records the HTTP/2 `:path` of every
/// request, i.e. the gRPC method path on the wire.
#[derive(Debug, Clone)]
struct Recording {
    inner: Channel,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Service<http::Request<tonic::body::Body>> for Recording {
    type Response = <Channel as Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.paths
            .lock()
            .expect("paths lock")
            .push(req.uri().path().to_owned());
        self.inner.call(req)
    }
}

/// Binds the listener first (so the address is ready before any client
/// connects), then serves both services on it in a background task.
async fn start_server() -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener);
    let server = tokio::spawn(async move {
        Server::builder()
            .add_service(InterpreterServer::new(FixedInterpreter))
            .add_service(CodecServer::new(PathOnlyCodec))
            .serve_with_incoming(incoming)
            .await
            .expect("server failed");
    });
    Ok((addr, server))
}

#[test]
fn service_names() {
    assert_eq!(
        <InterpreterServer<FixedInterpreter> as NamedService>::NAME,
        "io.linkerd.mesh.Interpreter"
    );
    assert_eq!(
        <CodecServer<PathOnlyCodec> as NamedService>::NAME,
        "io.linkerd.mesh.Codec"
    );
    assert_eq!(
        mesh::interpreter_server::SERVICE_NAME,
        "io.linkerd.mesh.Interpreter"
    );
    assert_eq!(
        mesh::resolver_server::SERVICE_NAME,
        "io.linkerd.mesh.Resolver"
    );
    assert_eq!(
        mesh::delegator_server::SERVICE_NAME,
        "io.linkerd.mesh.Delegator"
    );
    assert_eq!(mesh::codec_server::SERVICE_NAME, "io.linkerd.mesh.Codec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interpreter_and_codec_over_loopback() -> Result<(), BoxError> {
    let (addr, server) = start_server().await?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let paths = Arc::new(Mutex::new(Vec::new()));
    let recording = Recording {
        inner: channel,
        paths: Arc::clone(&paths),
    };

    let bind = BindReq {
        root: Some(path(&["default"])),
        name: Some(path(&["svc", "hello"])),
        dtab: None,
    };

    // Unary.
    let mut interpreter = InterpreterClient::new(recording.clone());
    let rsp = interpreter.get_bound_tree(bind.clone()).await?.into_inner();
    assert_eq!(rsp, leaf(0));

    // Server errors arrive as gRPC statuses.
    let err = interpreter
        .get_bound_tree(BindReq::default())
        .await
        .expect_err("missing root must fail");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "No namespace specified");

    // Server streaming: exactly three messages, then the end of the stream.
    let mut stream = interpreter.stream_bound_tree(bind).await?.into_inner();
    let mut received = Vec::new();
    while let Some(msg) = stream.message().await? {
        received.push(msg);
    }
    assert_eq!(received, vec![leaf(1), leaf(2), leaf(3)]);

    // Codec, on the same connection.
    let mut codec = CodecClient::new(recording);
    let rsp = codec
        .read_path(ReadPathReq {
            text: "/svc/hello".to_owned(),
        })
        .await?
        .into_inner();
    assert_eq!(rsp.path, Some(path(&["svc", "hello"])));
    let err = codec
        .show_path(ShowPathReq { path: None })
        .await
        .expect_err("ShowPath is not implemented by this server");
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    let paths = paths.lock().expect("paths lock").clone();
    assert_eq!(
        paths,
        [
            "/io.linkerd.mesh.Interpreter/GetBoundTree",
            "/io.linkerd.mesh.Interpreter/GetBoundTree",
            "/io.linkerd.mesh.Interpreter/StreamBoundTree",
            "/io.linkerd.mesh.Codec/ReadPath",
            "/io.linkerd.mesh.Codec/ShowPath",
        ]
    );

    server.abort();
    Ok(())
}

#[test]
fn wire_encoding_matches_field_numbers() -> Result<(), BoxError> {
    use prost::Message as _;

    // Path { elems: ["a"] } is field 1, wire type 2: tag 0x0a, len 1, "a".
    assert_eq!(path(&["a"]).encode_to_vec(), [0x0a, 0x01, b'a']);

    // BoundNameTree.leaf is field 6 (tag 0x32) holding Leaf.id (field 1, tag 0x0a).
    let tree = BoundNameTree {
        node: Some(bound_name_tree::Node::Leaf(bound_name_tree::Leaf {
            id: Some(path(&["a"])),
            residual: None,
        })),
    };
    assert_eq!(
        tree.encode_to_vec(),
        [0x32, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'a']
    );

    // Dtab.Dentry.Prefix.Elem: label is field 1 (bytes), wildcard field 2.
    use mesh::dtab::dentry::prefix::{Elem, elem};
    let wildcard = Elem {
        value: Some(elem::Value::Wildcard(elem::Wildcard {})),
    };
    assert_eq!(wildcard.encode_to_vec(), [0x12, 0x00]);
    let label = Elem {
        value: Some(elem::Value::Label(b"x".to_vec())),
    };
    assert_eq!(label.encode_to_vec(), [0x0a, 0x01, b'x']);

    // Replicas.bound is field 4; Endpoint.port is field 3 (varint).
    let replicas = mesh::Replicas {
        result: Some(mesh::replicas::Result::Bound(mesh::replicas::Bound {
            endpoints: vec![mesh::Endpoint {
                inet_af: mesh::endpoint::AddressFamily::Inet4 as i32,
                address: vec![127, 0, 0, 1],
                port: 8080,
                meta: None,
                metadata: Default::default(),
            }],
            metadata: Default::default(),
        })),
    };
    let bytes = replicas.encode_to_vec();
    assert_eq!(&bytes[..2], [0x22, 0x0b]);
    assert_eq!(mesh::Replicas::decode(bytes.as_slice())?, replicas);
    assert_eq!(mesh::endpoint::AddressFamily::Inet6 as i32, 1);
    Ok(())
}
