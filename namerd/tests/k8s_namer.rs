//! The `io.l5d.k8s` namer and the `io.l5d.k8s.daemonset` transformer end
//! to end: namerd in-process, configured with a kubeconfig for the test
//! API server, watched through its gRPC streams (`StreamReplicas`,
//! `StreamBoundTree`) while the tests write Services and EndpointSlices
//! and inject API failures. Every wait is bounded.

#[path = "support/k8s_discovery.rs"]
mod k8s_discovery;
#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_discovery::{Replicas, Set, Tree, bound, service, slice};
use l5d_dtab::Dtab;
use l5d_k8s_api_server::{ApiServer, Resource};
use namerd::config::StorageConfig;
use namerd::store::Namespace;
use namerd::testing::{TestNamerd, start_with_namers_yaml};
use namerd_client::{NamerdHttp, connect};
use tonic::transport::Channel;

/// How long a change may take to reach a stream (the brief's bound).
const PROMPT: Duration = Duration::from_secs(1);
/// A bound on waits that include reconnecting with backoff.
const RECOVERY: Duration = Duration::from_secs(20);

const HELLO: &str = "/#/io.l5d.k8s/default/http/hello";
const DS_HELLO: &str =
    "/%/io.l5d.k8s.daemonset/linkerd/http-incoming/l5d/#/io.l5d.k8s/default/http/hello";

struct Mesh {
    api: ApiServer,
    namerd: TestNamerd,
    channel: Channel,
    _dir: tempfile::TempDir,
}

/// The test API server and a namerd whose namers (`namers_yaml`, with
/// `KUBECONFIG` standing for the server's kubeconfig) use it, and whose
/// dtab namespace `internal` holds `dtab`.
async fn start(namers_yaml: &str, dtab: &str) -> Mesh {
    let api = ApiServer::start().await.expect("the API server starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path()).unwrap();
    let yaml = namers_yaml.replace("KUBECONFIG", &kubeconfig.display().to_string());
    let namespaces = BTreeMap::from([(
        Namespace::new("internal").unwrap(),
        Dtab::read(dtab).unwrap(),
    )]);
    let namerd = start_with_namers_yaml(StorageConfig::InMemory { namespaces }, &yaml).await;
    let addr = namerd.namerd().mesh_addr().expect("the mesh API is on");
    let channel = connect(addr).await.expect("connect to the mesh API");
    Mesh {
        api,
        namerd,
        channel,
        _dir: dir,
    }
}

const K8S: &str = "[{kind: io.l5d.k8s, kubeconfig: KUBECONFIG}]";
const SVC_DTAB: &str = "/svc => /#/io.l5d.k8s/default/http";

/// `hello` with its port `http` (80 -> 8080), endpoints as given.
fn hello(api: &ApiServer, endpoints: &[k8s_discovery::Ep<'_>]) {
    api.apply(service("default", "hello", &[("http", 80)]));
    api.apply(slice(
        "default",
        "hello-a",
        "hello",
        ("http", 8080),
        endpoints,
    ));
}

impl Mesh {
    async fn namer_stale(&self, prefix: &str) -> bool {
        let admin = NamerdHttp::new(self.namerd.namerd().admin_addr());
        let answer = admin.get("/namer_state.json").await;
        let state: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        state[prefix]["stale"]
            .as_bool()
            .unwrap_or_else(|| panic!("no state for {prefix}: {state}"))
    }
}

/// EndpointSlice changes (an endpoint added, one turning not ready, a
/// second slice) reach a `StreamReplicas` watcher within a second each;
/// no ready endpoints is an empty set, a deleted Service `Neg`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slice_changes_reach_stream_replicas_promptly() {
    let mesh = start(K8S, SVC_DTAB).await;
    hello(&mesh.api, &[("10.1.1.5", "n1", true)]);
    let mut replicas = Replicas::open(&mesh.channel, HELLO).await;
    replicas
        .until(&bound(&["10.1.1.5:8080@n1"]), RECOVERY)
        .await;

    type Step<'a> = (&'a str, Box<dyn Fn(&ApiServer) + 'a>, Set);
    let steps: Vec<Step<'_>> = vec![
        (
            "an endpoint added",
            Box::new(|api| hello(api, &[("10.1.1.5", "n1", true), ("10.1.2.5", "n2", true)])),
            bound(&["10.1.1.5:8080@n1", "10.1.2.5:8080@n2"]),
        ),
        (
            "one not ready",
            Box::new(|api| hello(api, &[("10.1.1.5", "n1", false), ("10.1.2.5", "n2", true)])),
            bound(&["10.1.2.5:8080@n2"]),
        ),
        (
            "a second slice",
            Box::new(|api| {
                api.apply(slice(
                    "default",
                    "hello-b",
                    "hello",
                    ("http", 8080),
                    &[("10.1.3.5", "n3", true)],
                ));
            }),
            bound(&["10.1.2.5:8080@n2", "10.1.3.5:8080@n3"]),
        ),
        (
            "no ready endpoints",
            Box::new(|api| {
                api.remove(Resource::EndpointSlices, "default", "hello-b");
                hello(api, &[("10.1.2.5", "n2", false)]);
            }),
            Set::Bound(vec![]),
        ),
        (
            "the Service deleted",
            Box::new(|api| {
                api.remove(Resource::Services, "default", "hello");
            }),
            Set::Neg,
        ),
        (
            "the Service back",
            Box::new(|api| hello(api, &[("10.1.1.7", "n1", true)])),
            bound(&["10.1.1.7:8080@n1"]),
        ),
    ];
    let mut latencies = Vec::new();
    for (what, change, want) in steps {
        change(&mesh.api);
        let took = replicas.until(&want, Duration::from_secs(10)).await;
        println!("EndpointSlice change -> StreamReplicas: {what}: {took:?}");
        assert!(took < PROMPT, "{what}: took {took:?}");
        latencies.push(took);
    }
    latencies.sort();
    println!(
        "EndpointSlice change -> StreamReplicas over {} changes: median {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    mesh.namerd.shutdown().await;
}

/// `/svc/hello` binds through the dtab to the Service's id; a missing
/// Service is `~`, so an alternative takes over, until the Service appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_bind_through_the_dtab_and_a_missing_service_fails_over() {
    let dtab =
        "/fallback => /$/inet/127.0.0.1/9; /svc => /fallback; /svc => /#/io.l5d.k8s/default/http";
    let mesh = start(K8S, dtab).await;
    hello(&mesh.api, &[("10.1.1.5", "n1", true)]);

    let mut tree = Tree::open(&mesh.channel, "/internal", "/svc/hello/extra").await;
    tree.until(&format!("{HELLO} /extra")).await;

    let mut missing = Tree::open(&mesh.channel, "/internal", "/svc/world").await;
    missing.until("/$/inet/127.0.0.1/9 /world").await;
    mesh.api.apply(service("default", "world", &[("http", 80)]));
    missing.until("/#/io.l5d.k8s/default/http/world /").await;
    // Without an alternative, a missing Service binds to nothing.
    let mut only_k8s = Tree::open(
        &mesh.channel,
        "/other",
        "/#/io.l5d.k8s/default/http/nowhere",
    )
    .await;
    only_k8s.until("~").await;
    let mut replicas = Replicas::open(&mesh.channel, "/#/io.l5d.k8s/default/http/nowhere").await;
    replicas.until(&Set::Neg, RECOVERY).await;

    // Five names and an id in `default`: one list and one watch of each
    // resource, shared by all of them.
    for resource in [
        "/namespaces/default/services",
        "/namespaces/default/endpointslices",
    ] {
        let requests: Vec<_> = mesh
            .api
            .requests()
            .into_iter()
            .filter(|r| r.path.contains(resource))
            .collect();
        let watches = requests.iter().filter(|r| r.is_watch()).count();
        assert_eq!((requests.len() - watches, watches), (1, 1), "{requests:?}");
    }
    mesh.namerd.shutdown().await;
}

/// With `labelSelector` (a label key, as Linkerd's), names carry the value
/// the Service's label must have; a change of the label rebinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selector_names_carry_the_label_value() {
    let namers = "[{kind: io.l5d.k8s, kubeconfig: KUBECONFIG, labelSelector: version}]";
    let mesh = start(namers, SVC_DTAB).await;
    let mut labelled = service("default", "hello", &[("http", 80)]);
    labelled["metadata"]["labels"] = serde_json::json!({"version": "v1"});
    mesh.api.apply(labelled.clone());
    mesh.api.apply(slice(
        "default",
        "hello-a",
        "hello",
        ("http", 8080),
        &[("10.1.1.5", "n1", true)],
    ));

    let mut v1 = Tree::open(&mesh.channel, "/internal", "/svc/hello/v1/x").await;
    v1.until(&format!("{HELLO}/v1 /x")).await;
    let mut v2 = Tree::open(&mesh.channel, "/internal", "/svc/hello/v2").await;
    v2.until("~").await;
    let mut replicas = Replicas::open(&mesh.channel, &format!("{HELLO}/v1")).await;
    replicas
        .until(&bound(&["10.1.1.5:8080@n1"]), RECOVERY)
        .await;

    labelled["metadata"]["labels"] = serde_json::json!({"version": "v2"});
    mesh.api.apply(labelled);
    v2.until(&format!("{HELLO}/v2 /")).await;
    v1.until("~").await;
    replicas.until(&Set::Neg, RECOVERY).await;
    mesh.namerd.shutdown().await;
}

/// While the API server fails (5xx on every request, watches closed) the
/// last good set stays and the namer says it is stale; once the server
/// answers again, what changed meanwhile arrives and staleness clears.
/// Closed watches alone lose nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failures_keep_the_last_good_set() {
    let mesh = start(K8S, SVC_DTAB).await;
    hello(&mesh.api, &[("10.1.1.5", "n1", true)]);
    let mut replicas = Replicas::open(&mesh.channel, HELLO).await;
    replicas
        .until(&bound(&["10.1.1.5:8080@n1"]), RECOVERY)
        .await;

    // Closed watches resume where they were.
    mesh.api.faults().close_watches();
    hello(&mesh.api, &[("10.1.1.6", "n1", true)]);
    replicas
        .until(&bound(&["10.1.1.6:8080@n1"]), RECOVERY)
        .await;
    assert!(!mesh.namer_stale("/#/io.l5d.k8s").await);

    // Every request fails until told otherwise; closing the watches makes
    // the watchers ask.
    mesh.api.faults().fail_next(usize::MAX, 500);
    mesh.api.faults().close_watches();
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while !mesh.namer_stale("/#/io.l5d.k8s").await {
        assert!(tokio::time::Instant::now() < deadline, "never stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A change the namer cannot see; the stream keeps the last good set.
    hello(&mesh.api, &[("10.1.1.7", "n1", true)]);
    replicas.quiet_for(Duration::from_millis(500)).await;
    assert_eq!(replicas.last, bound(&["10.1.1.6:8080@n1"]));

    mesh.api.faults().fail_next(0, 500);
    replicas
        .until(&bound(&["10.1.1.7:8080@n1"]), RECOVERY)
        .await;
    let deadline = tokio::time::Instant::now() + RECOVERY;
    while mesh.namer_stale("/#/io.l5d.k8s").await {
        assert!(tokio::time::Instant::now() < deadline, "still stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mesh.namerd.shutdown().await;
}

/// Namers with the daemonset transformer: by subnet on `/io.l5d.k8s`
/// (proxies are pods in their node's /24), by node name on
/// `/io.l5d.k8s.host` (proxies on the host network, node IPs).
const DAEMONSET: &str = "
- kind: io.l5d.k8s
  kubeconfig: KUBECONFIG
  transformers:
  - {kind: io.l5d.k8s.daemonset, namespace: linkerd, service: l5d, port: http-incoming, kubeconfig: KUBECONFIG}
- kind: io.l5d.k8s
  prefix: /io.l5d.k8s.host
  kubeconfig: KUBECONFIG
  transformers:
  - {kind: io.l5d.k8s.daemonset, namespace: linkerd, service: l5d-host, port: http-incoming, hostNetwork: true, kubeconfig: KUBECONFIG}
";

const DS_HOST_HELLO: &str =
    "/%/io.l5d.k8s.daemonset/linkerd/http-incoming/l5d-host/#/io.l5d.k8s.host/default/http/hello";

/// The proxies' Services: pods on n1 and n2 (none on n3), and host-network
/// proxies on the same nodes.
fn proxies(api: &ApiServer, pods: &[k8s_discovery::Ep<'_>]) {
    let port = ("http-incoming", 4141);
    api.apply(service("linkerd", "l5d", &[("http-incoming", 4141)]));
    api.apply(slice("linkerd", "l5d-a", "l5d", port, pods));
    api.apply(service("linkerd", "l5d-host", &[("http-incoming", 4141)]));
    let hosts = [("192.168.0.1", "n1", true), ("192.168.0.2", "n2", true)];
    api.apply(slice("linkerd", "l5d-host-a", "l5d-host", port, &hosts));
}

/// Each endpoint of `hello` (on n1, n2 and n3) becomes the proxy on its
/// node, by subnet or by node name; n3 has none, so its endpoint is
/// dropped. The set follows both the proxies' and the application's
/// changes, and is `Neg` when no endpoint has a proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_sends_each_endpoint_to_the_proxy_on_its_node() {
    let mesh = start(DAEMONSET, SVC_DTAB).await;
    let pods = [("10.1.1.200", "n1", true), ("10.1.2.200", "n2", true)];
    proxies(&mesh.api, &pods);
    let app = [
        ("10.1.1.5", "n1", true),
        ("10.1.2.5", "n2", true),
        ("10.1.3.5", "n3", true),
    ];
    hello(&mesh.api, &app);

    let mut tree = Tree::open(&mesh.channel, "/internal", "/svc/hello").await;
    tree.until(&format!("{DS_HELLO} /")).await;

    let mut by_subnet = Replicas::open(&mesh.channel, DS_HELLO).await;
    let two = bound(&["10.1.1.200:4141@n1", "10.1.2.200:4141@n2"]);
    by_subnet.until(&two, RECOVERY).await;
    let mut by_node = Replicas::open(&mesh.channel, DS_HOST_HELLO).await;
    let hosts = bound(&["192.168.0.1:4141@n1", "192.168.0.2:4141@n2"]);
    by_node.until(&hosts, RECOVERY).await;

    // A proxy starts on n3: the proxies' change alone updates the set.
    let three = [pods[0], pods[1], ("10.1.3.200", "n3", true)];
    mesh.api.apply(slice(
        "linkerd",
        "l5d-a",
        "l5d",
        ("http-incoming", 4141),
        &three,
    ));
    let all = bound(&[
        "10.1.1.200:4141@n1",
        "10.1.2.200:4141@n2",
        "10.1.3.200:4141@n3",
    ]);
    let took = by_subnet.until(&all, Duration::from_secs(10)).await;
    println!("proxy EndpointSlice change -> daemonset StreamReplicas: {took:?}");
    assert!(took < PROMPT, "{took:?}");

    // The application leaves n1: the application's change updates it.
    hello(&mesh.api, &app[1..]);
    let took = by_subnet
        .until(
            &bound(&["10.1.2.200:4141@n2", "10.1.3.200:4141@n3"]),
            Duration::from_secs(10),
        )
        .await;
    println!("app EndpointSlice change -> daemonset StreamReplicas: {took:?}");
    assert!(took < PROMPT, "{took:?}");
    by_node
        .until(&bound(&["192.168.0.2:4141@n2"]), RECOVERY)
        .await;

    // Only n1 has a proxy now and the application is not there: Neg.
    mesh.api.apply(slice(
        "linkerd",
        "l5d-a",
        "l5d",
        ("http-incoming", 4141),
        &pods[..1],
    ));
    by_subnet.until(&Set::Neg, RECOVERY).await;
    mesh.namerd.shutdown().await;
}
