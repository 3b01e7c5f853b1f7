//! An application on node A calls a service whose only pod is on node C,
//! over HTTP/1.1 (curl with `http_proxy`), HTTP/2 (curl with prior
//! knowledge) and gRPC (Python grpcio): each request goes app -> A's
//! outgoing router -> C's incoming router -> the pod, which the pod sees
//! in `Via` (two proxies) and in `l5d-client-id` (C's incoming router
//! verified A's certificate), and every proxy's metrics count (A sent to
//! C's incoming port, C sent to the pod, B saw nothing).

use l5d_e2e::{python_has, repo_root, skip_or_fail};

use super::Answer;
use super::cluster::Cluster;
use super::deploy::L5D_NAMES;

/// Requests per protocol.
const N: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_h2_and_grpc_cross_from_node_a_to_a_pod_on_node_c() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let hello = cluster.start_pod("node-c", "http", "hello").await;
    let greeter = cluster.start_pod("node-c", "grpc", "greeter").await;
    cluster.expose("hello", &["http", "h2"], &["hello"]);
    cluster.expose("greeter", &["grpc"], &["greeter"]);
    let a = cluster.node("node-a").clone();

    let proxy = format!("http://{}", cluster.router("node-a", "http-outgoing"));
    let h2 = format!("hello:80:{}", cluster.router("node-a", "h2-outgoing"));
    let http1 = ["-i", "http://hello/"];
    let http2 = [
        "-i",
        "--http2-prior-knowledge",
        "--connect-to",
        &h2,
        "http://hello/",
    ];
    for (args, env, via) in [
        (
            &http1[..],
            vec![("http_proxy", proxy.as_str())],
            "1.1 linkerd",
        ),
        (&http2[..], vec![], "2.0 linkerd"),
    ] {
        for _ in 0..N {
            let (code, out, err) = a.curl_env(&env, args).await;
            assert_eq!(code, 0, "curl {args:?}: {err}");
            let answer = Answer::parse(&out);
            assert_eq!(answer.status, 200, "{out}");
            assert_eq!(answer.body, "hello\n", "{out}");
            assert_eq!(answer.via(), [via, via], "two proxies on the way: {out}");
            // C's incoming router verified A's client certificate (the
            // mesh hop is mutual TLS, as in the manifests).
            assert_eq!(
                answer.header("x-echo-l5d-client-id"),
                Some(L5D_NAMES[1]),
                "{out}"
            );
        }
    }
    let grpc = grpc_from_a(&cluster).await;

    let [ma, mb, mc] = [
        cluster.metrics("node-a").await,
        cluster.metrics("node-b").await,
        cluster.metrics("node-c").await,
    ];
    let c = cluster.node("node-c").ip;
    let mut routes = vec![
        ("http-outgoing", "http-incoming", 4141, hello),
        ("h2-outgoing", "h2-incoming", 4241, hello),
    ];
    if grpc {
        routes.push(("grpc-outgoing", "grpc-incoming", 4341, greeter));
    }
    for (outgoing, incoming, port, pod) in routes {
        let n = N as f64;
        assert_eq!(
            ma.sent_to(outgoing, &format!("{c}:{port}")),
            n,
            "A {outgoing} -> C:{port}"
        );
        assert_eq!(ma.received(outgoing), n, "A {outgoing}");
        assert_eq!(mc.received(incoming), n, "C {incoming}");
        assert_eq!(
            mc.sent_to(incoming, &pod.to_string()),
            n,
            "C {incoming} -> {pod}"
        );
        for (node, m, router) in [("A", &ma, incoming), ("C", &mc, outgoing)] {
            assert_eq!(m.received(router), 0.0, "{node} {router}");
        }
        for router in [outgoing, incoming] {
            assert_eq!(mb.received(router), 0.0, "B {router} is not on the way");
        }
    }
    eprintln!(
        "multinode: {N} requests each of HTTP/1.1, HTTP/2{} crossed A -> C:4141/4241{} -> pod",
        if grpc { " and gRPC" } else { "" },
        if grpc { "/4341" } else { "" },
    );
}

/// `N` SayHello calls with Python grpcio from inside node A through its
/// gRPC router; false (after skip_or_fail) when grpcio is missing.
async fn grpc_from_a(cluster: &Cluster) -> bool {
    if !python_has("grpc").await {
        skip_or_fail("python3 with grpcio (pip install -r tests/grpcio/requirements.txt)");
        return false;
    }
    let a = cluster.node("node-a");
    let client = repo_root().join("tests/grpcio/demo_client.py");
    let target = cluster.router("node-a", "grpc-outgoing");
    for i in 0..N {
        let name = format!("alice{i}");
        let out = tokio::process::Command::new("ip")
            .args(["netns", "exec", &a.netns, "python3"])
            .arg(&client)
            .args(["--target", &target, "--timeout", "10", "unary", &name])
            .output()
            .await
            .expect("python3 runs");
        let (code, out, err) = l5d_e2e::outcome(&out);
        assert_eq!(code, 0, "grpcio through A: {out}{err}");
        let reply: serde_json::Value = serde_json::from_str(out.trim()).expect("a JSON line");
        assert_eq!(reply["served_by"], "greeter", "{out}");
        assert_eq!(reply["message"], format!("hello {name} from greeter"));
    }
    true
}
