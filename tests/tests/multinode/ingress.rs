//! linkerd as the Kubernetes ingress controller across nodes (issue 14,
//! part 2): an outside client (curl in the root namespace, HTTPS) reaches
//! node A's ingress router (30-l5d.yaml's `ingress`, with the certificate
//! of the Secret `l5d-ingress-tls`), which names the request by host and
//! path; namerd's `io.l5d.k8s.ingress` namer (namerd-config) matches it
//! against the Ingresses in the API server and answers the backend
//! Service, whose pods run on nodes B and C. The Ingress of
//! deploy/kubernetes/demo/hello-world-ingress.yaml routes by host and by
//! path; an Ingress added, changed and deleted takes effect within a
//! second; no rule is a 404 with `l5d-err`; and no `l5d-*` header reaches
//! the outside client (the ingress server has `clearContext: true`), but
//! `l5d-err` on the proxy's own error.

use std::time::{Duration, Instant};

use l5d_k8s_api_server::Resource;
use serde_json::{Value, json};

use super::Answer;
use super::cluster::{Cluster, NAMESPACE};
use super::deploy;

/// How soon an Ingress change must take effect at the edge (issue 14).
const PROMPT: Duration = Duration::from_secs(1);

/// The edge's own error header, the one `l5d-*` header an outside client
/// may see (on the proxy's 404 for no rule).
const L5D_ERR: &str = "l5d-err";

/// `hello` on node B, `world-v1` (the Service `world`) on node C, and the
/// example Ingress of the manifests, in force at node A's edge.
async fn demo_cluster() -> Option<Cluster> {
    let mut cluster = Cluster::start().await?;
    cluster.start_pod("node-b", "http", "hello").await;
    cluster.start_pod("node-c", "http", "world-v1").await;
    cluster.expose("hello", &["http"], &["hello"]);
    cluster.expose("world", &["http"], &["world-v1"]);
    let ingresses = deploy::objects("demo/hello-world-ingress.yaml", "Ingress");
    assert_eq!(ingresses.len(), 1, "the demo's one Ingress");
    for ingress in ingresses {
        cluster.apply(ingress);
    }
    // The edge is up and namerd has read the Ingress (within a second, as
    // `ingress_added_changed_and_deleted_takes_effect_within_a_second`
    // measures; 10 s here for a loaded machine).
    let since = Instant::now();
    while served(&outside(&cluster, "demo.example.com", "/world", &[]).await) != "world-v1" {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the demo Ingress never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(cluster)
}

/// A request from outside the cluster: curl in the root namespace, HTTPS
/// to node A's ingress router with `host` resolved to node A, verifying
/// the edge's certificate against the test CA (`curl --cacert`). Asserts
/// that no `l5d-*` header came back but the proxy's `l5d-err` on its own
/// 404.
async fn outside(cluster: &Cluster, host: &str, path: &str, extra: &[&str]) -> Answer {
    let edge = cluster.router("node-a", "ingress");
    let (ip, port) = edge.rsplit_once(':').expect("IP:PORT");
    let resolve = format!("{host}:{port}:{ip}");
    let url = format!("https://{host}:{port}{path}");
    let ca = cluster.dir.path().join("l5d-ingress-tls/ca.crt");
    let ca = ca.to_str().expect("a UTF-8 path");
    let mut args = vec!["-i", "--cacert", ca, "--resolve", resolve.as_str()];
    args.extend(extra);
    args.push(&url);
    let (code, out, err) = l5d_e2e::curl(&args).await;
    assert_eq!(code, 0, "curl {url}: {err}");
    let answer = Answer::parse(&out);
    for (name, _) in &answer.headers {
        assert!(
            !name.starts_with("l5d-") || (name == L5D_ERR && answer.status == 404),
            "{name} left the edge: {out}"
        );
    }
    answer
}

/// Which pod answered (`x-served-by`), or the status when none did.
fn served(answer: &Answer) -> String {
    match answer.header("x-served-by") {
        Some(pod) if answer.status == 200 => pod.to_string(),
        _ => answer.status.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_routes_outside_clients_by_host_and_path_over_tls_to_pods_on_other_nodes() {
    let Some(cluster) = demo_cluster().await else {
        return;
    };

    // By host, by path (port by name and by number), the path forwarded as
    // it came; one proxy on the way (node A's edge calls the pod on B or C
    // directly).
    for (host, path, pod) in [
        ("hello.example.com", "/", "hello"),
        ("hello.example.com", "/any/thing?x=1", "hello"),
        ("demo.example.com", "/hello", "hello"),
        ("demo.example.com", "/hello/there", "hello"),
        ("demo.example.com", "/world", "world-v1"),
        ("DEMO.example.com", "/world/", "world-v1"),
    ] {
        let answer = outside(&cluster, host, path, &[]).await;
        assert_eq!(served(&answer), pod, "{host}{path}: {answer:?}");
        assert_eq!(answer.body, format!("{pod}\n"), "{host}{path}");
        assert_eq!(answer.via(), ["1.1 linkerd"], "{host}{path}: {answer:?}");
        assert_eq!(answer.header("x-echo-path"), Some(path), "{host}{path}");
    }

    // No rule: Linkerd's error, a 404 naming the request, from the edge.
    for (host, path) in [
        ("demo.example.com", "/"),
        ("demo.example.com", "/worlds"),
        ("nowhere.test.example", "/hello"),
    ] {
        let answer = outside(&cluster, host, path, &[]).await;
        assert_eq!(answer.status, 404, "{host}{path}: {answer:?}");
        let err = answer.header(L5D_ERR).expect("l5d-err on the 404");
        assert!(
            err.starts_with("No+Ingress+rule+matches+%2Fingress%2F"),
            "{err}"
        );
        assert!(answer.header("x-served-by").is_none(), "{answer:?}");
    }

    // The outside cannot steer the edge: an l5d-dtab (and any l5d-*
    // header) is stripped before routing and never reaches the pod.
    let answer = outside(
        &cluster,
        "hello.example.com",
        "/",
        &[
            "-H",
            "l5d-dtab: /ingress/hello.example.com => /#/io.l5d.k8s/default/http/world",
            "-H",
            "l5d-ctx-dtab: /ingress => /#/io.l5d.k8s/default/http/world",
            "-H",
            "l5d-dst-service: /svc/forged",
        ],
    )
    .await;
    assert_eq!(served(&answer), "hello", "{answer:?}");
    for name in ["x-echo-l5d-dtab", "x-echo-l5d-ctx-dtab"] {
        assert!(answer.header(name).is_none(), "{name} reached the pod");
    }
    // The proxy's own l5d-dst-service, not the client's.
    let dst = answer.header("x-echo-l5d-dst-service");
    assert!(dst.is_some_and(|d| d != "/svc/forged"), "{dst:?}");

    // Plain HTTP to the edge's port gets no answer: it serves HTTPS only.
    let edge = cluster.router("node-a", "ingress");
    let plain = format!("http://{edge}/");
    let (code, out, _) =
        l5d_e2e::curl(&["-i", "-H", "Host: hello.example.com", plain.as_str()]).await;
    assert!(code != 0 || !out.contains("x-served-by"), "{out}");

    // The hops, from the metrics: A's ingress router sent to the pods on B
    // and C; their proxies saw none of it.
    let ma = cluster.metrics("node-a").await;
    for pod in ["hello", "world-v1"] {
        let addr = cluster.pod(pod).demo.addr.to_string();
        assert!(
            ma.sent_to("ingress", &addr) >= 2.0,
            "A's edge sent to {pod}"
        );
    }
    for node in ["node-b", "node-c"] {
        let m = cluster.metrics(node).await;
        assert_eq!(m.received("ingress"), 0.0, "{node}'s edge");
        assert_eq!(m.received("http-incoming"), 0.0, "{node}'s incoming router");
    }
}

/// The Ingress `shop` (host `shop.test.example`, every path) to `service`
/// on `port` (a name or a number).
fn shop(service: &str, port: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": NAMESPACE},
        "spec": {
            "ingressClassName": "linkerd",
            "rules": [{
                "host": "shop.test.example",
                "http": {"paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": service, "port": port}}
                }]}
            }]
        }
    })
}

/// Polls `shop.test.example/cart` from outside until `want` answers (a pod
/// name, or a status); the time from `since` to the end of the first
/// request that saw it. Fails after 2 × [`PROMPT`].
async fn effect(cluster: &Cluster, since: Instant, want: &str) -> Duration {
    loop {
        let answer = outside(cluster, "shop.test.example", "/cart", &[]).await;
        let elapsed = since.elapsed();
        if served(&answer) == want {
            return elapsed;
        }
        assert!(
            elapsed < 2 * PROMPT,
            "{want} not within {:?}: {answer:?}",
            2 * PROMPT
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_added_changed_and_deleted_takes_effect_within_a_second() {
    let Some(cluster) = demo_cluster().await else {
        return;
    };
    // shop.test.example has no rule yet.
    let before = outside(&cluster, "shop.test.example", "/cart", &[]).await;
    assert_eq!(before.status, 404, "{before:?}");

    let added = Instant::now();
    cluster.apply(shop("hello", json!({"name": "http"})));
    let add = effect(&cluster, added, "hello").await;

    let changed = Instant::now();
    cluster.apply(shop("world", json!({"number": 80})));
    let change = effect(&cluster, changed, "world-v1").await;

    let deleted = Instant::now();
    assert!(
        cluster.api.remove(Resource::Ingresses, NAMESPACE, "shop"),
        "the Ingress existed"
    );
    let delete = effect(&cluster, deleted, "404").await;

    eprintln!(
        "multinode: Ingress to effect at node A's edge (outside client, HTTPS, backends on B and C): \
         added {add:?}, changed {change:?}, deleted {delete:?} (each to the end of the first request \
         that saw it; one request takes a curl process and a TLS handshake)"
    );
    for (what, took) in [("added", add), ("changed", change), ("deleted", delete)] {
        assert!(took < PROMPT, "{what}: {took:?}");
    }
    // The demo's rules were untouched throughout.
    let answer = outside(&cluster, "demo.example.com", "/hello", &[]).await;
    assert_eq!(served(&answer), "hello", "{answer:?}");
}
