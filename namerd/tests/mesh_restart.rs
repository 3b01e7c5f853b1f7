//! namerd restarted while watchers are connected: each reconnecting client
//! gets a full snapshot.
//!
//! Ten clients, each on its own HTTP/2 connection as ten Linkerd proxies
//! would be, watch `/svc/web` in `/internal` (`StreamBoundTree`) and the
//! replica set of the id it binds to (`StreamReplicas`) on a `namerd`
//! process over SQLite. The process is stopped with SIGTERM: every stream
//! must end with `UNAVAILABLE`, and the process must exit 0. While it is
//! down a second namerd process, on the same SQLite file, changes the dtab
//! (compare-and-set on the version it read) and stops. The clients retry
//! all along with capped backoff; when the first namerd is started again on
//! its old ports, the first message each client gets on its new bound-tree
//! stream must be the complete current tree (the new id), not the tree it
//! had nor a partial one, and the replica streams must start with their
//! complete bound sets.

#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use l5d_proto::mesh::{self as pb, replicas};
use namerd_client::{
    CALL_LIMIT, NamerdHttp, connect, inet_id, leaf_tree, next, show, svc_dtab, watch_tree, wire,
};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

const NAMERD: &str = env!("CARGO_BIN_EXE_namerd");
const CLIENTS: usize = 10;
/// The ports `/svc` points at before and after the change.
const OLD: u16 = 1111;
const NEW: u16 = 2222;
/// How long a process may take to print its addresses, or to exit.
const PROCESS_LIMIT: Duration = Duration::from_secs(30);
/// Attempts at binding the old ports again, 250 ms apart.
const BIND_ATTEMPTS: u32 = 20;
/// From the first stop to every client holding new streams.
const RECONNECT_LIMIT: Duration = Duration::from_secs(90);
/// The longest pause between a client's connection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How namerd ends its streams when it stops: the status says to retry.
const SHUTTING_DOWN: &str = "namerd is shutting down";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_watchers_get_a_full_snapshot_after_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("namerd.db");

    let first = NamerdProcess::start(&config(&db, 0, 0))
        .await
        .expect("namerd starts");
    let (http_addr, mesh_addr) = (first.http, first.mesh);
    let created = NamerdHttp::new(http_addr)
        .create("internal", &svc_dtab(OLD))
        .await;
    assert_eq!(created.status, StatusCode::NO_CONTENT, "{created:?}");

    let mut proxies = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        proxies.push(Proxy::open(mesh_addr).await);
    }

    // SIGTERM: every stream ends with UNAVAILABLE and namerd exits 0.
    let stopped_at = Instant::now();
    let ((status, stderr), ends) = tokio::join!(
        first.stop(),
        futures::future::join_all(proxies.iter_mut().map(Proxy::ends))
    );
    assert!(status.success(), "namerd exited with {status}: {stderr}");
    for (i, (tree, replicas)) in ends.iter().enumerate() {
        for (rpc, end) in [("StreamBoundTree", tree), ("StreamReplicas", replicas)] {
            assert_eq!(
                (end.code(), end.message()),
                (Code::Unavailable, SHUTTING_DOWN),
                "client {i}'s {rpc}: {end:?}"
            );
        }
    }
    eprintln!(
        "SIGTERM to exit and all {} streams ended: {:?}",
        2 * CLIENTS,
        stopped_at.elapsed()
    );

    // The clients retry from now on, as proxies do.
    let down_since = Instant::now();
    let deadline = down_since + RECONNECT_LIMIT;
    let reconnects: Vec<JoinHandle<Reconnected>> = (0..CLIENTS)
        .map(|i| tokio::spawn(reconnect(i, mesh_addr, deadline)))
        .collect();
    drop(proxies);

    change_while_down(&db, http_addr, mesh_addr).await;

    let restarted = NamerdProcess::start_on_ports(&db, http_addr.port(), mesh_addr.port()).await;
    let restarted_at = Instant::now();
    eprintln!(
        "namerd was down for {:?}, the dtab changed meanwhile",
        restarted_at - down_since
    );
    assert_eq!((restarted.http, restarted.mesh), (http_addr, mesh_addr));

    let expected_tree = leaf_tree(&inet_id(NEW));
    let mut slowest = Duration::ZERO;
    for (i, task) in reconnects.into_iter().enumerate() {
        let got = task.await.expect("the reconnecting client panicked");
        assert_eq!(
            got.first_tree,
            expected_tree,
            "client {i}'s first tree after reconnecting was {}, not the full current tree {}",
            show(&got.first_tree),
            show(&expected_tree)
        );
        assert_eq!(got.held_replicas, bound_set(OLD), "client {i}: {OLD}");
        assert_eq!(got.new_replicas, bound_set(NEW), "client {i}: {NEW}");
        slowest = slowest.max(got.at.saturating_duration_since(restarted_at));
        eprintln!("client {i} reconnected after {} attempts", got.attempts);
    }
    eprintln!(
        "restart on the old ports to the last client's first snapshot: {slowest:?} (all {CLIENTS} got {})",
        show(&expected_tree)
    );

    let (status, stderr) = restarted.stop().await;
    assert!(status.success(), "namerd exited with {status}: {stderr}");
}

/// Changes `/svc` to the new port through a second namerd process on the
/// same SQLite file, with compare-and-set on the version it reads.
async fn change_while_down(db: &Path, old_http: SocketAddr, old_mesh: SocketAddr) {
    let second = start_elsewhere(db, &[old_http.port(), old_mesh.port()]).await;
    let api = NamerdHttp::new(second.http);
    let current = api.get("/api/1/dtabs/internal").await;
    assert_eq!(
        (current.status, current.stale),
        (StatusCode::OK, false),
        "{current:?}"
    );
    assert!(current.body.contains(&inet_id(OLD)), "{current:?}");
    let version = current.etag.expect("a dtab read carries its version");
    let updated = api.update("internal", &svc_dtab(NEW), &version).await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{updated:?}");
    let (status, stderr) = second.stop().await;
    assert!(
        status.success(),
        "the second namerd exited with {status}: {stderr}"
    );
}

/// Starts namerd on ports the OS picks, again if it picked one of `avoid`
/// (the stopped namerd's, which the retrying clients connect to).
async fn start_elsewhere(db: &Path, avoid: &[u16]) -> NamerdProcess {
    for _ in 0..5 {
        let running = NamerdProcess::start(&config(db, 0, 0))
            .await
            .expect("the second namerd starts");
        let ports = [
            running.admin.port(),
            running.http.port(),
            running.mesh.port(),
        ];
        if !ports.iter().any(|p| avoid.contains(p)) {
            return running;
        }
        let (status, stderr) = running.stop().await;
        assert!(status.success(), "namerd exited with {status}: {stderr}");
    }
    panic!("the OS gave the second namerd one of {avoid:?} five times");
}

fn config(db: &Path, http_port: u16, mesh_port: u16) -> String {
    let db = serde_json::to_string(&db.display().to_string()).expect("a JSON string");
    format!(
        "admin: {{port: 0}}\n\
         storage: {{kind: io.l5d.sqlite, path: {db}}}\n\
         interfaces:\n\
         - {{kind: io.l5d.httpController, port: {http_port}}}\n\
         - {{kind: io.l5d.mesh, port: {mesh_port}}}\n"
    )
}

// === impl NamerdProcess ===

/// A `namerd` process and the addresses it printed.
struct NamerdProcess {
    child: Child,
    admin: SocketAddr,
    http: SocketAddr,
    mesh: SocketAddr,
    /// Held open: namerd prints nothing more, but a closed pipe would make
    /// a later print fail.
    _stdout: Lines<BufReader<ChildStdout>>,
    /// Everything namerd writes to stderr, read all along so that the pipe
    /// never fills.
    stderr: JoinHandle<String>,
}

impl NamerdProcess {
    /// Starts namerd with `config` on standard input and waits for its
    /// `namerd listening ...` line; `Err` with its exit status and stderr
    /// if it exits instead.
    async fn start(config: &str) -> Result<NamerdProcess, String> {
        let mut child = Command::new(NAMERD)
            .arg("-")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn namerd");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(config.as_bytes())
            .await
            .expect("write the configuration");
        drop(stdin);
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = tokio::time::timeout(PROCESS_LIMIT, stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("namerd printed no line within {PROCESS_LIMIT:?}"))
            .expect("read namerd's stdout");
        let Some(line) = line else {
            let status = tokio::time::timeout(PROCESS_LIMIT, child.wait())
                .await
                .expect("namerd exits after closing stdout")
                .expect("wait for namerd");
            return Err(format!("exited with {status}: {}", collect(stderr).await));
        };
        let addr = |name: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no {name}=<address> in {line:?}"))
        };
        Ok(NamerdProcess {
            admin: addr("admin"),
            http: addr("http"),
            mesh: addr("mesh"),
            child,
            _stdout: stdout,
            stderr,
        })
    }

    /// Starts namerd on the given ports. A port the stopped namerd held may
    /// not be free again at once (another socket may have it for a moment),
    /// so a refused bind is retried, a bounded number of times.
    async fn start_on_ports(db: &Path, http_port: u16, mesh_port: u16) -> NamerdProcess {
        let mut last = String::new();
        for _ in 0..BIND_ATTEMPTS {
            match NamerdProcess::start(&config(db, http_port, mesh_port)).await {
                Ok(running) => return running,
                Err(why) if why.contains("cannot listen") => last = why,
                Err(why) => panic!("namerd did not start: {why}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("namerd could not bind its old ports in {BIND_ATTEMPTS} attempts: {last}");
    }

    /// SIGTERM, then the exit status (within [`PROCESS_LIMIT`]) and stderr.
    async fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("namerd is running").to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("run kill");
        assert!(killed.success(), "kill -TERM {pid}");
        let status = tokio::time::timeout(PROCESS_LIMIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("namerd did not exit within {PROCESS_LIMIT:?} of SIGTERM"))
            .expect("wait for namerd");
        (status, collect(self.stderr).await)
    }
}

async fn collect(stderr: JoinHandle<String>) -> String {
    match tokio::time::timeout(PROCESS_LIMIT, stderr).await {
        Ok(Ok(text)) => text,
        _ => "(stderr unavailable)".to_string(),
    }
}

// === impl Proxy ===

/// One client's connection and its two watches.
struct Proxy {
    _channel: Channel,
    tree: Streaming<pb::BoundTreeRsp>,
    replicas: Streaming<pb::Replicas>,
}

impl Proxy {
    /// Connects, opens both watches and checks their first messages.
    async fn open(mesh: SocketAddr) -> Proxy {
        let channel = connect(mesh).await.expect("connect to the mesh API");
        let mut tree = watch_tree(&channel).await.expect("StreamBoundTree opens");
        let first = next(&mut tree)
            .await
            .expect("a tree")
            .expect("an open stream");
        assert_eq!(first, leaf_tree(&inet_id(OLD)), "{}", show(&first));
        let mut replicas = watch_replicas(&channel, OLD)
            .await
            .expect("StreamReplicas opens");
        let first = next(&mut replicas)
            .await
            .expect("replicas")
            .expect("an open stream");
        assert_eq!(first, bound_set(OLD));
        Proxy {
            _channel: channel,
            tree,
            replicas,
        }
    }

    /// How each stream ended: the status it ended with. Any further message
    /// or a clean end is a failure.
    async fn ends(&mut self) -> (Status, Status) {
        let tree = match next(&mut self.tree).await {
            Err(status) => status,
            Ok(other) => panic!("StreamBoundTree: {other:?} instead of an error"),
        };
        let replicas = match next(&mut self.replicas).await {
            Err(status) => status,
            Ok(other) => panic!("StreamReplicas: {other:?} instead of an error"),
        };
        (tree, replicas)
    }
}

/// What a client got first after reconnecting.
struct Reconnected {
    attempts: u32,
    first_tree: pb::BoundTreeRsp,
    /// The first message on the re-opened watch of the id it held.
    held_replicas: pb::Replicas,
    /// The first message on a watch of the id the new tree names.
    new_replicas: pb::Replicas,
    at: Instant,
}

/// Connects until a connection is accepted (capped backoff, until
/// `deadline`), then re-opens the watches and takes their first messages.
/// Only a refused connection is retried: once connected, any failure is
/// the test's.
async fn reconnect(client: usize, mesh: SocketAddr, deadline: Instant) -> Reconnected {
    let mut backoff = Duration::from_millis(50);
    let mut attempts = 0;
    let channel = loop {
        attempts += 1;
        match connect(mesh).await {
            Ok(channel) => break channel,
            Err(e) => assert!(
                Instant::now() < deadline,
                "client {client} could not reconnect within {RECONNECT_LIMIT:?}: {e}"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    let mut tree = watch_tree(&channel).await.expect("StreamBoundTree opens");
    let first_tree = next(&mut tree)
        .await
        .expect("a tree")
        .expect("an open stream");
    let at = Instant::now();
    let held_replicas = first_replicas(&channel, OLD).await;
    let new_replicas = first_replicas(&channel, NEW).await;
    Reconnected {
        attempts,
        first_tree,
        held_replicas,
        new_replicas,
        at,
    }
}

async fn first_replicas(channel: &Channel, port: u16) -> pb::Replicas {
    let mut stream = watch_replicas(channel, port)
        .await
        .expect("StreamReplicas opens");
    next(&mut stream)
        .await
        .expect("replicas")
        .expect("an open stream")
}

async fn watch_replicas(channel: &Channel, port: u16) -> Result<Streaming<pb::Replicas>, Status> {
    let req = pb::ReplicasReq {
        id: Some(wire(&inet_id(port))),
    };
    let mut client = pb::resolver_client::ResolverClient::new(channel.clone());
    let opened = tokio::time::timeout(CALL_LIMIT, client.stream_replicas(req))
        .await
        .unwrap_or_else(|_| panic!("StreamReplicas not answered within {CALL_LIMIT:?}"))?;
    Ok(opened.into_inner())
}

/// The complete replica set of `/$/inet/127.0.0.1/<port>`: that one
/// endpoint, IPv4, with empty metadata.
fn bound_set(port: u16) -> pb::Replicas {
    let endpoint = pb::Endpoint {
        inet_af: pb::endpoint::AddressFamily::Inet4.into(),
        address: vec![127, 0, 0, 1],
        port: i32::from(port),
        meta: Some(pb::endpoint::Meta::default()),
        metadata: Default::default(),
    };
    pb::Replicas {
        result: Some(replicas::Result::Bound(replicas::Bound {
            endpoints: vec![endpoint],
            metadata: Default::default(),
        })),
    }
}
