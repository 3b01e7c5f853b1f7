//! The `io.l5d.k8s.ingress` namer end to end: namerd in-process with the
//! `io.l5d.k8s` and `io.l5d.k8s.ingress` namers on the test API server,
//! watched through `StreamBoundTree` while the tests write Ingresses and
//! Services: a rule added, changed and deleted reaches the stream within a
//! second each; every bad Ingress is reported in `/namer_state.json`
//! without disturbing the others; conflicts go to the oldest Ingress; a
//! lookup made before the first list is told when it lands.

#[path = "support/k8s_discovery.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod k8s_discovery;
#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_discovery::{Tree, service};
use l5d_dtab::Dtab;
use l5d_k8s_api_server::{ApiServer, Resource};
use namerd::config::StorageConfig;
use namerd::store::Namespace;
use namerd::testing::{TestNamerd, start_with_namers_yaml};
use namerd_client::{NamerdHttp, connect};
use serde_json::{Value, json};
use tonic::transport::Channel;

/// How long a change may take to reach a stream (the brief's bound).
const PROMPT: Duration = Duration::from_secs(1);
/// A bound on waits for state that follows a change (generous: a busy
/// machine).
const SETTLE: Duration = Duration::from_secs(10);

const NAMERS: &str = "[{kind: io.l5d.k8s, kubeconfig: KUBECONFIG}, \
                      {kind: io.l5d.k8s.ingress, kubeconfig: KUBECONFIG}]";
const DTAB: &str = "/ingress => /#/io.l5d.k8s.ingress";
const INGRESS_NAMER: &str = "/#/io.l5d.k8s.ingress";

struct Edge {
    api: ApiServer,
    namerd: TestNamerd,
    channel: Channel,
    _dir: tempfile::TempDir,
}

async fn start() -> Edge {
    let api = ApiServer::start().await.expect("the API server starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path()).unwrap();
    let yaml = NAMERS.replace("KUBECONFIG", &kubeconfig.display().to_string());
    let namespaces = BTreeMap::from([(
        Namespace::new("ingress").unwrap(),
        Dtab::read(DTAB).unwrap(),
    )]);
    let namerd = start_with_namers_yaml(StorageConfig::InMemory { namespaces }, &yaml).await;
    let addr = namerd.namerd().mesh_addr().expect("the mesh API is on");
    let channel = connect(addr).await.expect("connect to the mesh API");
    Edge {
        api,
        namerd,
        channel,
        _dir: dir,
    }
}

/// An Ingress of class `linkerd` (by the field) with `rules`.
fn ingress(ns: &str, name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["ingressClassName"] = json!("linkerd");
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn rule(host: &str, path: &str, kind: &str, svc: &str, port: Value) -> Value {
    json!({"host": host, "http": {"paths": [
        {"path": path, "pathType": kind, "backend": {"service": {"name": svc, "port": port}}}]}})
}

fn leaf(ns: &str, port: &str, svc: &str) -> String {
    format!("/#/io.l5d.k8s/{ns}/{port}/{svc} /")
}

impl Edge {
    async fn tree(&self, name: &str) -> Tree {
        Tree::open(&self.channel, "/ingress", name).await
    }

    async fn state(&self) -> Value {
        let admin = NamerdHttp::new(self.namerd.namerd().admin_addr());
        let answer = admin.get("/namer_state.json").await;
        let state: Value = serde_json::from_str(&answer.body).unwrap();
        state[INGRESS_NAMER].clone()
    }

    /// The problems the namer reports, once they are exactly `want`
    /// (bounded by [`SETTLE`]).
    async fn problems_until(&self, want: &[&str]) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let state = self.state().await;
            let problems: Vec<String> = state["details"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.starts_with("problem."))
                .map(|(_, v)| v.as_str().unwrap().to_string())
                .collect();
            if problems == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "problems {problems:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for `tree` to show `want` after a change made at `since`, and
/// says how long it took.
async fn took(tree: &mut Tree, want: &str, since: Instant, what: &str) -> Duration {
    tree.until(want).await;
    let took = since.elapsed();
    println!("ingress: {what} reached the bound tree in {took:?}");
    assert!(took < PROMPT, "{what}: {took:?}");
    took
}

/// A rule added, changed (to another Service, then to a port number) and
/// deleted: each reaches `StreamBoundTree` within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_changes_reach_bound_trees_within_a_second() {
    let edge = start().await;
    edge.api
        .apply(service("shop", "web", &[("http", 80), ("admin", 9000)]));
    edge.api.apply(service("shop", "web-v2", &[("http", 80)]));
    let mut tree = edge.tree("/ingress/shop.example/cart/1").await;
    tree.until("~").await;

    let t = Instant::now();
    let web = |svc: &str, port: Value| {
        ingress(
            "shop",
            "web",
            json!({"rules": [rule("shop.example", "/cart", "Prefix", svc, port)]}),
        )
    };
    edge.api.apply(web("web", json!({"name": "http"})));
    took(
        &mut tree,
        &leaf("shop", "http", "web"),
        t,
        "an Ingress added",
    )
    .await;

    let t = Instant::now();
    edge.api.apply(web("web-v2", json!({"name": "http"})));
    took(
        &mut tree,
        &leaf("shop", "http", "web-v2"),
        t,
        "a backend changed",
    )
    .await;

    let t = Instant::now();
    edge.api.apply(web("web", json!({"number": 9000})));
    took(
        &mut tree,
        &leaf("shop", "9000", "web"),
        t,
        "a port by number",
    )
    .await;

    let t = Instant::now();
    assert!(edge.api.remove(Resource::Ingresses, "shop", "web"));
    took(&mut tree, "~", t, "an Ingress deleted").await;
    edge.problems_until(&[]).await;
}

/// Every bad input is reported (and logged) while the good Ingress keeps
/// routing; a missing Service that appears later clears its problem and
/// starts routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ingresses_are_reported_and_never_take_down_good_ones() {
    let edge = start().await;
    edge.api.apply(service("shop", "web", &[("http", 80)]));
    edge.api.apply(ingress(
        "shop",
        "good",
        json!({"rules": [rule("good.example", "/", "Prefix", "web", json!({"name": "http"}))]}),
    ));
    let mut good = edge.tree("/ingress/good.example/x").await;
    good.until(&leaf("shop", "http", "web")).await;

    for bad in [
        ingress(
            "shop",
            "no-service",
            json!({"rules": [rule("a.example", "/", "Prefix", "missing", json!({"name": "http"}))]}),
        ),
        ingress(
            "shop",
            "no-port",
            json!({"rules": [rule("b.example", "/", "Prefix", "web", json!({"name": "grpc"}))]}),
        ),
        ingress(
            "shop",
            "no-paths",
            json!({"rules": [{"host": "c.example"}]}),
        ),
        ingress(
            "shop",
            "later",
            json!({"rules": [rule("good.example", "/", "Prefix", "web", json!({"number": 80}))]}),
        ),
    ] {
        edge.api.apply(bad);
    }
    // Created in the same second as shop/good (timestamps are whole
    // seconds): the name decides, and "good" comes first.
    edge.problems_until(&[
        "Ingress shop/later: spec.rules[0].http.paths[0]: unused, host \"good.example\" path \"/\" is routed by Ingress shop/good (older)",
        "Ingress shop/no-paths: no rule with paths and no default backend: routes nothing",
        "Ingress shop/no-port: backend Service shop/web port grpc: the Service has no such port",
        "Ingress shop/no-service: backend Service shop/missing does not exist",
    ])
    .await;
    let state = edge.state().await;
    assert_eq!(
        state["details"]["ingresses"],
        "listed, 5 of the class, 3 routes"
    );
    let mut a = edge.tree("/ingress/a.example").await;
    a.until("~").await;
    let mut b = edge.tree("/ingress/b.example").await;
    b.until("~").await;
    // The good route never moved.
    good.until(&leaf("shop", "http", "web")).await;

    let t = Instant::now();
    edge.api.apply(service("shop", "missing", &[("http", 80)]));
    took(
        &mut a,
        &leaf("shop", "http", "missing"),
        t,
        "a missing Service created",
    )
    .await;
    edge.problems_until(&[
        "Ingress shop/later: spec.rules[0].http.paths[0]: unused, host \"good.example\" path \"/\" is routed by Ingress shop/good (older)",
        "Ingress shop/no-paths: no rule with paths and no default backend: routes nothing",
        "Ingress shop/no-port: backend Service shop/web port grpc: the Service has no such port",
    ])
    .await;
}

/// Two Ingresses claim one host and path: the older routes; deleting it
/// hands the rule to the younger. Ingresses of another class, or of none,
/// are not read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_resolve_oldest_first_and_other_classes_are_ignored() {
    let edge = start().await;
    edge.api.apply(service("a", "first", &[("http", 80)]));
    edge.api.apply(service("b", "second", &[("http", 80)]));
    let claim = |ns: &str, svc: &str| {
        ingress(
            ns,
            "claim",
            json!({"rules": [rule("h.example", "/api", "Prefix", svc, json!({"name": "http"}))]}),
        )
    };
    edge.api.apply(claim("a", "first"));
    let mut tree = edge.tree("/ingress/h.example/api/v1").await;
    tree.until(&leaf("a", "http", "first")).await;
    // The test server stamps creation times in whole seconds, as the real
    // one does: wait for the next second so that the second is younger.
    let created =
        edge.api.get(Resource::Ingresses, "a", "claim").unwrap()["metadata"]["creationTimestamp"]
            .clone();
    let deadline = Instant::now() + SETTLE;
    loop {
        edge.api.apply(claim("b", "second"));
        let second = edge.api.get(Resource::Ingresses, "b", "claim").unwrap();
        if second["metadata"]["creationTimestamp"] != created {
            break;
        }
        assert!(edge.api.remove(Resource::Ingresses, "b", "claim"));
        assert!(Instant::now() < deadline, "the clock did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    edge.problems_until(&[
        "Ingress b/claim: spec.rules[0].http.paths[0]: unused, host \"h.example\" path \"/api\" is routed by Ingress a/claim (older)",
    ])
    .await;
    tree.until(&leaf("a", "http", "first")).await;

    let mut nginx = claim("a", "second");
    nginx["metadata"]["name"] = json!("nginx");
    nginx["spec"]["ingressClassName"] = json!("nginx");
    nginx["spec"]["rules"][0]["host"] = json!("n.example");
    edge.api.apply(nginx);
    let mut unclassed = claim("a", "second");
    unclassed["metadata"]["name"] = json!("unclassed");
    unclassed["spec"]
        .as_object_mut()
        .unwrap()
        .remove("ingressClassName");
    unclassed["spec"]["rules"][0]["host"] = json!("u.example");
    edge.api.apply(unclassed);

    let t = Instant::now();
    assert!(edge.api.remove(Resource::Ingresses, "a", "claim"));
    took(
        &mut tree,
        &leaf("b", "http", "second"),
        t,
        "the older Ingress deleted",
    )
    .await;
    edge.problems_until(&[]).await;
    for host in ["n.example", "u.example"] {
        let mut other = edge.tree(&format!("/ingress/{host}/api")).await;
        other.until("~").await;
    }
    let state = edge.state().await;
    assert_eq!(
        state["details"]["ingresses"],
        "listed, 1 of the class, 1 routes"
    );
}

/// A lookup made before the first list of Ingresses answers `Pending` and
/// waits for the namer's change signal: the first list must give one even
/// when it finds no Ingress (the table stays empty), or the binding stays
/// pending until some unrelated Ingress changes. Deterministic: every API
/// request fails until the lookup has been made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_list_wakes_lookups_made_before_it_even_if_empty() {
    use l5d_dtab::{Activity, NameTree, Path};
    use namerd::k8s::Connection;
    use namerd::namer::Namer as _;
    use namerd::namer::ingress::{IngressNamer, IngressNamerOptions};

    let api = ApiServer::start().await.expect("the API server starts");
    api.faults().fail_next(usize::MAX, 500);
    let connection = Connection::Proxy {
        host: api.addr().ip().to_string(),
        port: api.addr().port(),
    };
    let namer = IngressNamer::new(IngressNamerOptions {
        max_backoff: Duration::from_millis(200),
        ..IngressNamerOptions::new(connection)
    })
    .await
    .expect("the namer starts");
    let mut changes = namer.lookup_changes();
    let name = Path::utf8(["shop.example", "cart"]);
    assert!(matches!(namer.lookup(&name), Activity::Pending));
    api.faults().fail_next(0, 500);
    tokio::time::timeout(SETTLE, changes.changed())
        .await
        .expect("a change once the Ingresses are listed")
        .expect("the namer is alive");
    assert!(matches!(namer.lookup(&name), Activity::Ok(NameTree::Neg)));
}
