//! The interpreters against real sockets: the `io.l5d.mesh` client
//! against an in-process namerd (fs namer, in-memory store), through a TCP
//! forwarder the tests cut, blackhole and repoint; the `default`
//! interpreter with DNS; the local-node filter over a channel the test
//! drives. Every wait is bounded and waits on a channel or a counter.

#[path = "support/mesh_faults.rs"]
mod mesh_faults;
#[path = "support/mesh_namerd.rs"]
mod mesh_namerd;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use l5d_dtab::{Addr, Bound, Dtab, Endpoint, NameTree, Path};
use linkerd_proxy::interpreter::fixed::FixedInterpreter;
use linkerd_proxy::interpreter::localnode::{LocalFilter, LocalNode};
use linkerd_proxy::interpreter::mesh::{Dst, MeshInterpreter, MeshOptions};
use linkerd_proxy::interpreter::{BindState, Interpreter, Resolution};
use mesh_faults::Forwarder;
use mesh_namerd::{put_dtab, wait_for, wait_until};
use tokio::sync::watch;
use tokio::time::Instant;

const NS: &str = "internal";
const FIRST: Duration = Duration::from_secs(10);
/// The bound on a change that takes milliseconds (dtab writes ~2 ms, fs
/// changes ~30 ms, a fast failure under 1 ms; the figures are printed):
/// generous, so that a loaded machine does not fail a behaviour test.
const SECOND: Duration = Duration::from_secs(5);

fn path(s: &str) -> Path {
    Path::read(s).unwrap()
}

fn leaf(id: &str) -> NameTree<Bound> {
    NameTree::Leaf(Bound::new(path(id), Path::empty()))
}

fn is_tree(want: NameTree<Bound>) -> impl FnMut(&BindState) -> bool {
    move |s| matches!(s, BindState::Bound { tree, .. } if **tree == want)
}

fn addrs(s: &Resolution) -> Option<Vec<String>> {
    match &s.addr {
        Addr::Bound(set) => Some(set.endpoints().iter().map(|e| e.addr.to_string()).collect()),
        _ => None,
    }
}

fn has_addrs(want: &'static [&'static str]) -> impl FnMut(&Resolution) -> bool {
    move |s| addrs(s).is_some_and(|a| a == want)
}

fn is_failed(s: &BindState) -> bool {
    matches!(s, BindState::Failed { .. })
}

/// namerd with `/svc => /#/io.l5d.fs`, the disco directory, and a mesh
/// client in front of it through a forwarder.
struct Mesh {
    namerd: Option<namerd::testing::TestNamerd>,
    disco: tempfile::TempDir,
    fwd: Forwarder,
    mesh: Arc<MeshInterpreter>,
}

impl Mesh {
    async fn start(tune: impl FnOnce(&mut MeshOptions)) -> Mesh {
        let disco = tempfile::tempdir().unwrap();
        write(&disco, "web", "127.0.0.1 8080\n127.0.0.2 8081\n");
        write(&disco, "api", "127.0.0.9 9000\n");
        let namerd = mesh_namerd::start(NS, "/svc => /#/io.l5d.fs", disco.path()).await;
        let fwd = Forwarder::start(namerd.mesh_addr().unwrap()).await;
        let dst = Dst::parse(&format!("/$/inet/127.0.0.1/{}", fwd.addr().port())).unwrap();
        let mut opts = MeshOptions::new(dst);
        opts.root = Path::utf8([NS]);
        opts.retry_base = Duration::from_millis(100);
        opts.retry_max = Duration::from_secs(2);
        tune(&mut opts);
        Mesh {
            namerd: Some(namerd),
            disco,
            fwd,
            mesh: MeshInterpreter::new(opts),
        }
    }

    fn http(&self) -> SocketAddr {
        self.namerd.as_ref().unwrap().http_addr().unwrap()
    }

    fn bind(&self, name: &str) -> watch::Receiver<BindState> {
        self.mesh.bind(&Dtab::empty(), &path(name))
    }

    fn conn_state(&self) -> String {
        self.mesh.state()["connection"]["state"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn write(dir: &tempfile::TempDir, name: &str, content: &str) {
    // Write then rename, so the namer never reads a half-written file.
    let tmp = dir.path().join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.path().join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_resolves_and_shares_one_stream_per_key() {
    let m = Mesh::start(|_| {}).await;
    let mut tree = m.bind("/svc/web");
    wait_for(
        &mut tree,
        FIRST,
        "the bound tree",
        is_tree(leaf("/#/io.l5d.fs/web")),
    )
    .await;
    let mut eps = m.mesh.resolve(&path("/#/io.l5d.fs/web"));
    let (set, _) = wait_for(&mut eps, FIRST, "the endpoints", |s| addrs(s).is_some()).await;
    let Addr::Bound(set) = set.addr else {
        unreachable!()
    };
    assert_eq!(
        set.endpoints(),
        &[
            Endpoint::new("127.0.0.1:8080".parse().unwrap()),
            Endpoint::new("127.0.0.2:8081".parse().unwrap())
        ]
    );

    // The same keys again: the same channels, no new stream.
    let again = m.bind("/svc/web");
    assert!(matches!(*again.borrow(), BindState::Bound { .. }));
    let _eps2 = m.mesh.resolve(&path("/#/io.l5d.fs/web"));
    assert_eq!(m.mesh.len(), (1, 1));
    assert_eq!(m.mesh.stats().streams_open, 2);
    // A different local dtab is a different key.
    let local = Dtab::read("/svc/web => /svc/api").unwrap();
    let mut other = m.mesh.bind(&local, &path("/svc/web"));
    wait_for(
        &mut other,
        FIRST,
        "the overridden tree",
        is_tree(leaf("/#/io.l5d.fs/api")),
    )
    .await;
    assert_eq!(m.mesh.len(), (2, 1));
    assert_eq!(m.mesh.stats().streams_open, 3);
    assert_eq!(m.conn_state(), "connected");
    let state = m.mesh.state();
    assert_eq!(state["streams"].as_array().unwrap().len(), 3, "{state:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtab_and_endpoint_changes_arrive_promptly() {
    let m = Mesh::start(|_| {}).await;
    let mut tree = m.bind("/svc/web");
    wait_for(
        &mut tree,
        FIRST,
        "the bound tree",
        is_tree(leaf("/#/io.l5d.fs/web")),
    )
    .await;
    let mut eps = m.mesh.resolve(&path("/#/io.l5d.fs/web"));
    wait_for(&mut eps, FIRST, "the endpoints", |s| addrs(s).is_some()).await;

    let start = Instant::now();
    put_dtab(m.http(), NS, "/svc => /#/io.l5d.fs; /svc/web => /svc/api").await;
    wait_for(
        &mut tree,
        SECOND,
        "the new tree",
        is_tree(leaf("/#/io.l5d.fs/api")),
    )
    .await;
    eprintln!("dtab write -> proxy watch: {:?}", start.elapsed());

    let start = Instant::now();
    write(&m.disco, "web", "127.0.0.3 8082\n");
    wait_for(
        &mut eps,
        SECOND,
        "the new endpoints",
        has_addrs(&["127.0.0.3:8082"]),
    )
    .await;
    eprintln!("fs namer file -> proxy watch: {:?}", start.elapsed());
    assert!(m.mesh.stats().updates >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namerd_restart_keeps_last_values_and_new_names_fail_fast() {
    let mut m = Mesh::start(|_| {}).await;
    let mut tree = m.bind("/svc/web");
    wait_for(
        &mut tree,
        FIRST,
        "the bound tree",
        is_tree(leaf("/#/io.l5d.fs/web")),
    )
    .await;
    let mut eps = m.mesh.resolve(&path("/#/io.l5d.fs/web"));
    wait_for(&mut eps, FIRST, "the endpoints", |s| addrs(s).is_some()).await;

    // namerd goes away; the forwarder refuses like a closed port.
    m.fwd.cut();
    m.namerd.take().unwrap().shutdown().await;
    wait_until(FIRST, "the connection in backoff", || {
        m.conn_state() == "backoff"
    })
    .await;
    let mut fresh = m.bind("/svc/api");
    let (state, took) = wait_for(
        &mut fresh,
        Duration::from_secs(2),
        "a fast failure",
        is_failed,
    )
    .await;
    eprintln!("new name while namerd is down -> Failed: {took:?} ({state:?})");
    let BindState::Failed { message } = state else {
        unreachable!()
    };
    assert!(message.starts_with("namerd unreachable: "), "{message}");
    // The last answers stay.
    assert!(is_tree(leaf("/#/io.l5d.fs/web"))(&tree.borrow()));
    assert!(has_addrs(&["127.0.0.1:8080", "127.0.0.2:8081"])(
        &eps.borrow()
    ));
    let state = m.mesh.state();
    assert!(state["connection"]["lastError"].is_string(), "{state:#}");

    // A new namerd (another port, another store) behind the same address;
    // the removed endpoint and the changed dtab replace the old values.
    write(&m.disco, "web", "127.0.0.2 8081\n");
    let namerd = mesh_namerd::start(
        NS,
        "/svc => /#/io.l5d.fs; /svc/web => /svc/api",
        m.disco.path(),
    )
    .await;
    m.fwd.restore(namerd.mesh_addr().unwrap());
    m.namerd = Some(namerd);
    let (_, took) = wait_for(
        &mut tree,
        Duration::from_secs(3),
        "the new snapshot",
        is_tree(leaf("/#/io.l5d.fs/api")),
    )
    .await;
    eprintln!("namerd back -> snapshot in the watch: {took:?}");
    wait_for(
        &mut eps,
        SECOND,
        "the endpoint removed",
        has_addrs(&["127.0.0.2:8081"]),
    )
    .await;
    wait_for(
        &mut fresh,
        SECOND,
        "the new name bound",
        is_tree(leaf("/#/io.l5d.fs/api")),
    )
    .await;
    assert_eq!(m.conn_state(), "connected");
    assert!(m.mesh.stats().reconnects >= 2);

    let start = Instant::now();
    put_dtab(m.http(), NS, "/svc => /#/io.l5d.fs").await;
    wait_for(
        &mut tree,
        SECOND,
        "an update after the restart",
        is_tree(leaf("/#/io.l5d.fs/web")),
    )
    .await;
    eprintln!(
        "dtab write after the restart -> proxy watch: {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namerd_never_reached_fails_fast_and_keeps_trying() {
    // A port nobody listens on: connections are refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dst = Dst::parse(&format!("/$/inet/127.0.0.1/{port}")).unwrap();
    let mut opts = MeshOptions::new(dst);
    opts.retry_base = Duration::from_millis(50);
    opts.retry_max = Duration::from_millis(200);
    let mesh = MeshInterpreter::new(opts);
    let mut tree = mesh.bind(&Dtab::empty(), &path("/svc/web"));
    let (state, took) = wait_for(&mut tree, SECOND, "a fast failure", is_failed).await;
    eprintln!("namerd never reached -> Failed: {took:?} ({state:?})");
    // The stream keeps retrying (R8: the backoff never ends).
    wait_until(FIRST, "retries", || mesh.stats().reconnects >= 3).await;
    let state = mesh.state();
    assert_eq!(state["connection"]["state"], "backoff", "{state:#}");
    assert_eq!(state["streams"][0]["state"], "failed", "{state:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_connection_is_detected_by_keepalive() {
    let m = Mesh::start(|o| {
        o.keepalive_interval = Duration::from_millis(300);
        o.keepalive_timeout = Duration::from_millis(300);
    })
    .await;
    let mut tree = m.bind("/svc/web");
    wait_for(
        &mut tree,
        FIRST,
        "the bound tree",
        is_tree(leaf("/#/io.l5d.fs/web")),
    )
    .await;
    let before = m.mesh.stats().reconnects;
    let accepted = m.fwd.accepted();

    m.fwd.blackhole_open();
    // Detection: PING interval + timeout (600 ms here), then a new
    // connection through the forwarder.
    let took = wait_until(Duration::from_secs(3), "a reconnect", || {
        m.mesh.stats().reconnects > before
            && m.fwd.accepted() > accepted
            && m.mesh.stats().streams_open == 1
    })
    .await;
    eprintln!("blackhole -> reconnected: {took:?}");
    assert!(is_tree(leaf("/#/io.l5d.fs/web"))(&tree.borrow()));

    let start = Instant::now();
    put_dtab(m.http(), NS, "/svc => /#/io.l5d.fs; /svc/web => /svc/api").await;
    wait_for(
        &mut tree,
        SECOND,
        "an update after the blackhole",
        is_tree(leaf("/#/io.l5d.fs/api")),
    )
    .await;
    eprintln!(
        "dtab write after the blackhole -> proxy watch: {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keys_are_evicted_and_their_streams_cancelled() {
    let m = Mesh::start(|o| o.idle_ttl = Duration::from_millis(200)).await;
    let mut tree = m.bind("/svc/web");
    wait_for(
        &mut tree,
        FIRST,
        "the bound tree",
        is_tree(leaf("/#/io.l5d.fs/web")),
    )
    .await;
    let mut eps = m.mesh.resolve(&path("/#/io.l5d.fs/web"));
    wait_for(&mut eps, FIRST, "the endpoints", |s| addrs(s).is_some()).await;
    // Held receivers keep their entries past the ttl.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(m.mesh.len(), (1, 1));

    drop(tree);
    wait_until(Duration::from_secs(2), "the binding evicted", || {
        m.mesh.len() == (0, 1)
    })
    .await;
    drop(eps);
    wait_until(Duration::from_secs(2), "the resolution evicted", || {
        m.mesh.len() == (0, 0) && m.mesh.stats().streams_open == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namerds_refusal_fails_with_its_message() {
    let m = Mesh::start(|o| o.root = Path::utf8(["a", "b"])).await;
    let mut tree = m.bind("/svc/web");
    let (state, _) = wait_for(&mut tree, FIRST, "the refusal", is_failed).await;
    let BindState::Failed { message } = state else {
        unreachable!()
    };
    assert!(message.starts_with("namerd: "), "{message}");
    assert!(message.contains("exactly one segment"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegate_renders_namerds_json() {
    let m = Mesh::start(|_| {}).await;
    let local = Dtab::read("/svc/web => /svc/api").unwrap();
    let json = m.mesh.delegate(&local, &path("/svc/web")).await.unwrap();
    // The local rule first, the stored one as the fallback.
    assert_eq!(json["type"], "alt", "{json:#}");
    assert_eq!(json["path"], "/svc/web");
    assert!(json.get("dentry").is_none(), "no nop dentry: {json:#}");
    let local_rule = &json["alt"][0];
    assert_eq!(local_rule["type"], "delegate", "{json:#}");
    assert_eq!(local_rule["dentry"]["prefix"], "/svc/web", "{json:#}");
    assert_eq!(
        local_rule["delegate"]["bound"]["id"], "/#/io.l5d.fs/api",
        "{json:#}"
    );
    assert_eq!(local_rule["delegate"]["bound"]["path"], "/", "{json:#}");
    assert_eq!(
        json["alt"][1]["bound"]["id"], "/#/io.l5d.fs/web",
        "{json:#}"
    );
}

// === default interpreter ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_binds_inet_fail_and_local_dtabs() {
    let dtab = Dtab::read("/svc => /$/inet/127.0.0.1/4140; /svc/bad => /$/fail").unwrap();
    let fixed = FixedInterpreter::new(dtab, Duration::from_secs(5));
    let mut tree = fixed.bind(&Dtab::empty(), &path("/svc/web"));
    let want = NameTree::Leaf(Bound::new(path("/$/inet/127.0.0.1/4140"), path("/web")));
    wait_for(&mut tree, SECOND, "the bound tree", is_tree(want)).await;
    let mut eps = fixed.resolve(&path("/$/inet/127.0.0.1/4140"));
    wait_for(
        &mut eps,
        SECOND,
        "the address",
        has_addrs(&["127.0.0.1:4140"]),
    )
    .await;

    let mut bad = fixed.bind(&Dtab::empty(), &path("/svc/bad"));
    wait_for(&mut bad, SECOND, "a Fail tree", is_tree(NameTree::Fail)).await;

    let local = Dtab::read("/svc/web => /$/inet/127.0.0.2/80").unwrap();
    let mut over = fixed.bind(&local, &path("/svc/web"));
    let want = NameTree::Leaf(Bound::new(path("/$/inet/127.0.0.2/80"), Path::empty()));
    wait_for(&mut over, SECOND, "the overridden tree", is_tree(want)).await;

    let mut neg = fixed.resolve(&path("/#/io.l5d.fs/web"));
    wait_for(&mut neg, SECOND, "neg", |s| matches!(s.addr, Addr::Neg)).await;
    let json = fixed
        .delegate(&Dtab::empty(), &path("/svc/web"))
        .await
        .unwrap();
    assert_eq!(json["type"], "delegate", "{json:#}");
    let leaf = &json["delegate"];
    assert_eq!(leaf["dentry"]["prefix"], "/svc", "{json:#}");
    assert_eq!(leaf["bound"]["id"], "/$/inet/127.0.0.1/4140", "{json:#}");
    // The address set held for the id is shown.
    assert_eq!(leaf["bound"]["addr"]["type"], "bound", "{json:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_resolves_host_names_through_dns() {
    let fixed = FixedInterpreter::new(Dtab::empty(), Duration::from_millis(200));
    let mut eps = fixed.resolve(&path("/$/inet/localhost/8080"));
    let (set, _) = wait_for(&mut eps, FIRST, "localhost's addresses", |s| {
        addrs(s).is_some()
    })
    .await;
    let addrs = addrs(&set).unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a == "127.0.0.1:8080" || a == "[::1]:8080"),
        "{addrs:?}"
    );
    let mut bad = fixed.resolve(&path("/$/inet/no-such-host.invalid/80"));
    wait_for(&mut bad, FIRST, "a failure", |s| {
        matches!(s.addr, Addr::Failed(_))
    })
    .await;
}

// === local-node filter ===

/// An interpreter whose one address set the test sets.
#[derive(Debug)]
struct Fake(watch::Sender<Resolution>);

impl Interpreter for Fake {
    fn bind(&self, _: &Dtab, _: &Path) -> watch::Receiver<BindState> {
        watch::channel(BindState::Pending).1
    }
    fn resolve(&self, _: &Path) -> watch::Receiver<Resolution> {
        self.0.subscribe()
    }
    fn delegate(
        &self,
        _: &Dtab,
        _: &Path,
    ) -> futures::future::BoxFuture<
        'static,
        Result<serde_json::Value, linkerd_proxy::interpreter::DelegateError>,
    > {
        Box::pin(async { Ok(serde_json::Value::Null) })
    }
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

fn ep(addr: &str, node: Option<&str>) -> Endpoint {
    let mut e = Endpoint::new(addr.parse().unwrap());
    e.node_name = node.map(Arc::from);
    e
}

fn bound(eps: Vec<Endpoint>) -> Resolution {
    Resolution::now(Addr::bound(eps))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localnode_keeps_this_nodes_endpoints() {
    let set = vec![
        ep("10.0.1.5:80", Some("node-a")),
        ep("10.0.2.6:80", Some("node-b")),
        ep("10.0.1.7:80", Some("node-b")),
    ];
    let fake = Arc::new(Fake(watch::Sender::new(bound(set))));
    let inner: Arc<dyn Interpreter> = fake.clone();
    let id = path("/#/io.l5d.k8s/default/http/web");

    let by_node = LocalNode::new(
        inner.clone(),
        LocalFilter::ByNode("node-b".into()),
        Duration::from_secs(60),
    );
    let mut rx = by_node.resolve(&id);
    wait_for(
        &mut rx,
        SECOND,
        "node-b's endpoints",
        has_addrs(&["10.0.1.7:80", "10.0.2.6:80"]),
    )
    .await;

    let by_subnet = LocalNode::new(
        inner.clone(),
        LocalFilter::BySubnet("10.0.1.200".parse().unwrap()),
        Duration::from_secs(60),
    );
    let mut rx2 = by_subnet.resolve(&id);
    wait_for(
        &mut rx2,
        SECOND,
        "the /24's endpoints",
        has_addrs(&["10.0.1.5:80", "10.0.1.7:80"]),
    )
    .await;

    // The derived channels follow the inner one.
    let tx = &fake.0;
    tx.send_replace(bound(vec![ep("10.0.1.9:80", Some("node-a"))]));
    wait_for(&mut rx, SECOND, "no local endpoint", has_addrs(&[])).await;
    wait_for(
        &mut rx2,
        SECOND,
        "the new /24 endpoint",
        has_addrs(&["10.0.1.9:80"]),
    )
    .await;
    tx.send_replace(Resolution::now(Addr::Neg));
    wait_for(&mut rx, SECOND, "neg passes through", |s| {
        matches!(s.addr, Addr::Neg)
    })
    .await;
}
