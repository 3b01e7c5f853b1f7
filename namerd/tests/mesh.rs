//! The `io.linkerd.mesh` gRPC API end to end: a mesh server on a loopback
//! port over an in-memory store, called with the generated tonic clients
//! (and, when grpcio is installed, with Python's grpcio).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::{Activity, Addr, Bound, Dtab, Name, NameTree, Path};
use l5d_proto::mesh::{self as pb, bound_name_tree::Node as TreeNode, replicas};
use namerd::interpreter::{Interpreter, InterpreterOptions};
use namerd::mesh::{self, MeshOptions};
use namerd::namer::inet::InetResolver;
use namerd::namer::{Namer, NamerState, fixed};
use namerd::store::memory::MemoryStore;
use namerd::store::{DtabStore, Namespace, WriteMeta};
use serde_json::{Value, json};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::{Code, Response, Status, Streaming};

type Interp = pb::interpreter_client::InterpreterClient<Channel>;
type Resolver = pb::resolver_client::ResolverClient<Channel>;
type Delegator = pb::delegator_client::DelegatorClient<Channel>;
type Codec = pb::codec_client::CodecClient<Channel>;

/// A bound on every wait for a stream item.
const WAIT: Duration = Duration::from_secs(10);
const SHUTTING_DOWN: &str = "namerd is shutting down";

/// A namer under `/#/pending` that never answers.
struct PendingNamer(Path);

impl Namer for PendingNamer {
    fn prefix(&self) -> &Path {
        &self.0
    }
    fn lookup(&self, _: &Path) -> Activity<NameTree<Name>> {
        Activity::Pending
    }
    fn lookup_changes(&self) -> watch::Receiver<u64> {
        fixed(0)
    }
    fn resolve(&self, _: &Path) -> watch::Receiver<Addr> {
        fixed(Addr::Pending)
    }
    fn state(&self) -> NamerState {
        NamerState::default()
    }
}

struct TestMesh {
    store: Arc<MemoryStore>,
    channel: Channel,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// A mesh server on 127.0.0.1 with at most `max_bindings` live bindings
/// and unary requests waiting 300 ms for pending values.
async fn start(max_bindings: usize) -> TestMesh {
    let store = Arc::new(MemoryStore::new(BTreeMap::new()));
    let pending: Arc<dyn Namer> = Arc::new(PendingNamer(path("/#/pending")));
    let opts = InterpreterOptions {
        max_bindings,
        ..InterpreterOptions::default()
    };
    let inet = Arc::new(InetResolver::default());
    let interpreter = Interpreter::new(
        store.clone() as Arc<dyn DtabStore>,
        vec![pending],
        inet,
        opts,
    );
    let limits = l5d_runtime::config::ServerSettings::default().listener_limits();
    let listener = l5d_runtime::listen::Listener::bind(
        "127.0.0.1:0".parse().unwrap(),
        "io.l5d.mesh",
        None,
        limits,
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let (shutdown, stop) = watch::channel(false);
    let opts = MeshOptions {
        pending_timeout: Duration::from_millis(300),
        ..MeshOptions::default()
    };
    let server = tokio::spawn(mesh::serve(listener, interpreter, stop, opts));
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let channel = channel
        .connect()
        .await
        .expect("connects to the mesh server");
    TestMesh {
        store,
        channel,
        addr,
        shutdown,
        server,
    }
}

impl TestMesh {
    fn interpreter(&self) -> Interp {
        Interp::new(self.channel.clone())
    }
    fn resolver(&self) -> Resolver {
        Resolver::new(self.channel.clone())
    }
    fn delegator(&self) -> Delegator {
        Delegator::new(self.channel.clone())
    }
    fn codec(&self) -> Codec {
        Codec::new(self.channel.clone())
    }
    async fn put(&self, ns: &str, dtab: &str) {
        let (ns, dtab) = (Namespace::new(ns).unwrap(), Dtab::read(dtab).unwrap());
        self.store
            .put(&ns, &dtab, &WriteMeta::default())
            .await
            .unwrap();
    }
    async fn get_tree(
        &self,
        root: Option<&str>,
        name: Option<&str>,
    ) -> Result<pb::BoundTreeRsp, Status> {
        inner(
            self.interpreter()
                .get_bound_tree(bind_req(root, name))
                .await,
        )
    }
    async fn watch_tree(&self, root: &str, name: &str) -> Streaming<pb::BoundTreeRsp> {
        let req = bind_req(Some(root), Some(name));
        self.interpreter()
            .stream_bound_tree(req)
            .await
            .unwrap()
            .into_inner()
    }
    async fn watch_replicas(&self, id: &str) -> Streaming<pb::Replicas> {
        let req = pb::ReplicasReq { id: Some(wire(id)) };
        self.resolver()
            .stream_replicas(req)
            .await
            .unwrap()
            .into_inner()
    }
}

fn path(p: &str) -> Path {
    Path::read(p).unwrap()
}

fn wire(p: &str) -> pb::Path {
    (&path(p)).into()
}

fn bind_req(root: Option<&str>, name: Option<&str>) -> pb::BindReq {
    pb::BindReq {
        root: root.map(wire),
        name: name.map(wire),
        dtab: None,
    }
}

fn inner<T>(rsp: Result<Response<T>, Status>) -> Result<T, Status> {
    rsp.map(Response::into_inner)
}

/// The next stream item, bounded in time.
async fn next<T>(stream: &mut Streaming<T>) -> Result<Option<T>, Status> {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a stream item within 10 s")
}

/// A bound tree as text, leaves shown by their ids.
fn show(rsp: Result<Option<pb::BoundTreeRsp>, Status>) -> String {
    let rsp = rsp.expect("a bound tree").expect("an open stream");
    let tree = NameTree::<Bound>::try_from(rsp.tree.as_ref().unwrap()).unwrap();
    tree.show_with(|b, out| out.push_str(&b.id.show()))
}

fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    let status = result.expect_err("an error status");
    assert_eq!((status.code(), status.message()), (code, message));
}

#[tokio::test]
async fn bind_arguments_are_checked_as_linkerd_does() {
    let mesh = start(100).await;
    let ns_message = "invalid dtab namespace a.b: namespace must contain only letter, number, '_' or '-' characters (at most 128)";
    let bad = Code::InvalidArgument;
    let cases = [
        (None, Some("/svc/a"), bad, "No namespace specified"),
        (Some("/default"), None, Code::NotFound, "No name given"),
        (Some("/default"), Some("/"), Code::NotFound, "No name given"),
        (
            Some("/a/b"),
            Some("/svc/a"),
            bad,
            "Invalid root: `/a/b` must have exactly one segment",
        ),
        (Some("/a.b"), Some("/svc/a"), bad, ns_message),
    ];
    for (root, name, code, message) in cases {
        assert_status(mesh.get_tree(root, name).await, code, message);
        let streamed = mesh
            .interpreter()
            .stream_bound_tree(bind_req(root, name))
            .await;
        assert_status(streamed, code, message);
    }
    let bad_dtab = pb::BindReq {
        dtab: Some(pb::Dtab {
            dentries: vec![pb::dtab::Dentry::default()],
        }),
        ..bind_req(Some("/default"), Some("/svc/a"))
    };
    let refused = mesh.interpreter().get_bound_tree(bad_dtab).await;
    assert_status(
        refused,
        bad,
        "Invalid dtab: invalid Dentry: the prefix is missing",
    );
}

#[tokio::test]
async fn bound_trees_follow_the_stored_dtab() {
    let mesh = start(100).await;
    // A namespace that does not exist binds with an empty dtab.
    let neg = mesh.get_tree(Some("/nope"), Some("/svc/a")).await.unwrap();
    assert_eq!(
        neg.tree.unwrap().node,
        Some(TreeNode::Neg(Default::default()))
    );

    mesh.put("default", "/svc=>/$/inet/127.0.0.1/8080").await;
    let got = mesh.get_tree(Some("/default"), Some("/svc")).await;
    assert_eq!(show(got.map(Some)), "/$/inet/127.0.0.1/8080");
    let mut stream = mesh.watch_tree("/default", "/svc").await;
    assert_eq!(show(next(&mut stream).await), "/$/inet/127.0.0.1/8080");
    // A write that changes nothing sends nothing; the next change arrives.
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/8080").await;
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/9090").await;
    assert_eq!(show(next(&mut stream).await), "/$/inet/127.0.0.1/9090");
}

#[tokio::test]
async fn failed_and_pending_bindings() {
    let mesh = start(100).await;
    mesh.put("default", "/fail=>/$/nosuchnamer;/wait=>/#/pending")
        .await;
    let failed = "Unknown namer: nosuchnamer for path: /$/nosuchnamer";
    let got = mesh.get_tree(Some("/default"), Some("/fail")).await;
    assert_status(got, Code::Unavailable, failed);
    let mut stream = mesh.watch_tree("/default", "/fail").await;
    assert_status(next(&mut stream).await, Code::Unavailable, failed);

    let got = mesh.get_tree(Some("/default"), Some("/wait")).await;
    assert_status(got, Code::Unavailable, "binding is still pending");
}

#[tokio::test]
async fn bindings_beyond_the_limit_are_refused() {
    let mesh = start(1).await;
    let _held = mesh.watch_tree("/default", "/a").await;
    let refused = mesh.get_tree(Some("/default"), Some("/b")).await;
    let message =
        "too many live bindings (the limit is 1, interpreter.maxBindings); try again later";
    assert_status(refused, Code::ResourceExhausted, message);
}

/// At the cap, a client holding more than its share loses one of its
/// bindings (the one asked for least recently; here both were asked for
/// within one tick of the idle clock): that stream ends, naming the cap,
/// the other stays open, and the new client binds.
#[tokio::test]
async fn at_the_cap_a_client_over_its_share_loses_a_binding() {
    let mesh = start(2).await;
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/1").await;
    let mut a1 = mesh.watch_tree("/default", "/svc/a1").await;
    let mut a2 = mesh.watch_tree("/default", "/svc/a2").await;
    for stream in [&mut a1, &mut a2] {
        assert!(next(stream).await.unwrap().is_some());
    }
    // Another peer (any 127/8 address is loopback on Linux).
    let other = tonic::transport::Endpoint::from_shared(format!("http://{}", mesh.addr))
        .unwrap()
        .local_address(Some([127, 0, 0, 2].into()))
        .connect()
        .await
        .unwrap();
    let got = Interp::new(other)
        .get_bound_tree(bind_req(Some("/default"), Some("/svc/b")))
        .await;
    assert!(got.is_ok(), "{got:?}");
    let message = "binding evicted: namerd is at its limit of live bindings \
                   (interpreter.maxBindings) and this client holds more than its share; try again later";
    let (ended, kept) = tokio::select! {
        m = next(&mut a1) => (m, &mut a2),
        m = next(&mut a2) => (m, &mut a1),
    };
    assert_status(ended, Code::ResourceExhausted, message);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), kept.message())
            .await
            .is_err(),
        "the other stream stays open"
    );
}

#[tokio::test]
async fn replicas_of_ids() {
    let mesh = start(100).await;
    let no_id = Some(replicas::Result::Failed(replicas::Failed {
        message: "No ID provided".into(),
    }));
    for id in [None, Some(pb::Path::default())] {
        let got = inner(
            mesh.resolver()
                .get_replicas(pb::ReplicasReq { id: id.clone() })
                .await,
        );
        assert_eq!(got.unwrap().result, no_id);
        let stream = mesh
            .resolver()
            .stream_replicas(pb::ReplicasReq { id })
            .await;
        let first = next(&mut stream.unwrap().into_inner())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.result, no_id);
    }

    // A transformer prefix is stripped; the first message may be pending.
    let mut stream = mesh
        .watch_replicas("/%/io.l5d.port/$/inet/127.0.0.1/8080")
        .await;
    let bound = loop {
        match next(&mut stream).await.unwrap().unwrap().result {
            Some(replicas::Result::Pending(_)) => continue,
            Some(replicas::Result::Bound(bound)) => break bound,
            other => panic!("expected bound, got {other:?}"),
        }
    };
    let endpoints: Vec<_> = bound
        .endpoints
        .iter()
        .map(|e| (e.inet_af, &e.address[..], e.port))
        .collect();
    assert_eq!(endpoints, [(0, &[127, 0, 0, 1][..], 8080)]);
    let req = pb::ReplicasReq {
        id: Some(wire("/$/inet/127.0.0.1/8080")),
    };
    let got = inner(mesh.resolver().get_replicas(req).await).unwrap();
    assert!(
        matches!(got.result, Some(replicas::Result::Bound(_))),
        "{got:?}"
    );
}

#[tokio::test]
async fn dtabs_and_their_versions() {
    let mesh = start(100).await;
    let root = pb::DtabReq {
        root: Some(wire("/default")),
    };
    let got = inner(mesh.delegator().get_dtab(root.clone()).await);
    assert_status(got, Code::NotFound, "Root not found");
    let mut absent = mesh
        .delegator()
        .stream_dtab(root.clone())
        .await
        .unwrap()
        .into_inner();
    assert_status(next(&mut absent).await, Code::NotFound, "Root not found");
    let no_root = inner(mesh.delegator().get_dtab(pb::DtabReq { root: None }).await);
    assert_status(no_root, Code::InvalidArgument, "No namespace specified");

    let show = |d: &pb::VersionedDtab| Dtab::try_from(d.dtab.as_ref().unwrap()).unwrap().show();
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/8080").await;
    let first = inner(mesh.delegator().get_dtab(root.clone()).await)
        .unwrap()
        .dtab
        .unwrap();
    assert_eq!(show(&first), "/svc=>/$/inet/127.0.0.1/8080");
    let mut stream = mesh
        .delegator()
        .stream_dtab(root)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next(&mut stream).await.unwrap().unwrap().dtab.unwrap(),
        first
    );
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/9090").await;
    let second = next(&mut stream).await.unwrap().unwrap().dtab.unwrap();
    assert_ne!(second.version, first.version);
    assert_eq!(show(&second), "/svc=>/$/inet/127.0.0.1/9090");
}

#[tokio::test]
async fn delegation_streams_exactly_one_trace() {
    let mesh = start(100).await;
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/8080").await;
    let req = pb::DelegateTreeReq {
        root: Some(wire("/default")),
        tree: Some((&NameTree::Leaf(path("/svc"))).into()),
        dtab: None,
    };
    let stream = mesh.delegator().stream_delegate_tree(req.clone()).await;
    let mut stream = stream.unwrap().into_inner();
    let trace = next(&mut stream).await.unwrap().expect("one trace");
    assert!(
        next(&mut stream).await.unwrap().is_none(),
        "exactly one message"
    );
    assert_eq!(
        trace,
        inner(mesh.delegator().get_delegate_tree(req).await).unwrap()
    );
    assert!(
        trace.tree.unwrap().dentry.is_some(),
        "Linkerd needs a dentry on every node"
    );

    let no_tree = pb::DelegateTreeReq {
        root: Some(wire("/default")),
        ..Default::default()
    };
    let got = inner(mesh.delegator().get_delegate_tree(no_tree).await);
    assert_status(got, Code::NotFound, "No name given");
}

#[tokio::test]
async fn codec_round_trips_and_parse_errors() {
    let mut codec = start(100).await.codec();
    let text = "/svc=>/#/io.l5d.fs;/host=>/svc";
    let dtab = inner(codec.read_dtab(pb::ReadDtabReq { text: text.into() }).await)
        .unwrap()
        .dtab;
    let shown = inner(codec.show_dtab(pb::ShowDtabReq { dtab }).await)
        .unwrap()
        .text;
    assert_eq!(shown, text);
    let p = inner(
        codec
            .read_path(pb::ReadPathReq {
                text: "/a/b".into(),
            })
            .await,
    )
    .unwrap()
    .path;
    assert_eq!(p, Some(wire("/a/b")));
    let shown = inner(codec.show_path(pb::ShowPathReq { path: p }).await)
        .unwrap()
        .text;
    assert_eq!(shown, "/a/b");

    let bad = codec
        .read_path(pb::ReadPathReq { text: "a/b".into() })
        .await;
    assert_status(
        bad,
        Code::InvalidArgument,
        &Path::read("a/b").unwrap_err().to_string(),
    );
    let bad = codec
        .read_dtab(pb::ReadDtabReq {
            text: "/a=>".into(),
        })
        .await;
    assert_status(
        bad,
        Code::InvalidArgument,
        &Dtab::read("/a=>").unwrap_err().to_string(),
    );
}

#[tokio::test]
async fn health_and_reflection() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mesh = start(100).await;
    let mut health = HealthClient::new(mesh.channel.clone());
    for service in std::iter::once("").chain(mesh::SERVICE_NAMES) {
        let req = HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(req).await.unwrap().into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(mesh.channel.clone());
    let list = MessageRequest::ListServices(String::new());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(list),
    };
    let rsp = reflection
        .server_reflection_info(tokio_stream::iter([req]))
        .await;
    let rsp = next(&mut rsp.unwrap().into_inner()).await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = rsp.message_response else {
        panic!("a service list, not {rsp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in mesh::SERVICE_NAMES
        .into_iter()
        .chain(["grpc.health.v1.Health"])
    {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_drains() {
    let mesh = start(100).await;
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/8080").await;
    let mut tree = mesh.watch_tree("/default", "/svc").await;
    next(&mut tree).await.unwrap().unwrap();
    let mut replicas = mesh.watch_replicas("/$/inet/127.0.0.1/8080").await;
    next(&mut replicas).await.unwrap().unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(mesh.channel.clone());
    let req = tonic_health::pb::HealthCheckRequest::default();
    let mut watch = health.watch(req).await.unwrap().into_inner();
    next(&mut watch).await.unwrap().unwrap();

    mesh.shutdown.send_replace(true);
    assert_status(next(&mut tree).await, Code::Unavailable, SHUTTING_DOWN);
    let end = loop {
        // Replicas may still deliver a change made before the shutdown.
        match next(&mut replicas).await {
            Ok(Some(_)) => continue,
            end => break end,
        }
    };
    assert_status(end, Code::Unavailable, SHUTTING_DOWN);
    // Health watchers see NOT_SERVING, and their streams end too.
    let mut statuses = vec![];
    while let Some(status) = next(&mut watch).await.unwrap() {
        statuses.push(status.status);
    }
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    assert_eq!(statuses.last(), Some(&not_serving), "{statuses:?}");
    let served = tokio::time::timeout(WAIT, mesh.server)
        .await
        .expect("the server drains");
    served.unwrap().unwrap();
}

/// Python's grpcio against this server (the project's rule: real
/// third-party clients). Skipped, loudly, where grpcio is not installed,
/// except in CI, where it must be.
#[tokio::test]
async fn grpcio_client_streams_bound_trees_and_replicas() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/grpcio/mesh_client.py"
    );
    let python = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("python3");
        cmd.args(args);
        cmd
    };
    let has_grpcio = python(&["-c", "import grpc, grpc_tools"]).status().await;
    if !has_grpcio.is_ok_and(|s| s.success()) {
        let hint = "pip install -r tests/grpcio/requirements.txt";
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must have grpcio: {hint}"
        );
        eprintln!("SKIPPED the grpcio client test: python3 has no grpcio/grpcio-tools ({hint})");
        return;
    }
    let mesh = start(100).await;
    mesh.put("default", "/svc=>/$/inet/127.0.0.1/8080").await;
    let addr = mesh.addr.to_string();
    let (name, id) = ("/svc/web", "/$/inet/127.0.0.1/8080");
    let args = [script, &addr, "default", name, id, "--skip-pending"];
    let out = python(&args).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mesh_client.py failed: {stdout}\n{stderr}"
    );
    eprintln!("mesh_client.py printed:\n{stdout}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |rpc: &str| lines.iter().find(|l| l["rpc"] == rpc).cloned().expect(rpc);
    let tree = of("StreamBoundTree");
    assert_eq!(
        (&tree["tree"], &tree["leaves"][0]["residual"]),
        (&json!(id), &json!("/web"))
    );
    let replicas = of("StreamReplicas");
    assert_eq!(
        (&replicas["state"], &replicas["endpoints"]),
        (&json!("bound"), &json!(["127.0.0.1:8080"]))
    );

    // A refused stream is reported as a JSON line and exit status 2.
    let out = python(&[script, &addr, "a.b", "/svc", "/", "--replicas", "0"])
        .output()
        .await
        .unwrap();
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (out.status.code(), &line["error"]["code"]),
        (Some(2), &json!("INVALID_ARGUMENT"))
    );
}
