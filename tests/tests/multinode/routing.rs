//! Routing decisions across nodes: a canary shift written with namerctl
//! moves the traffic of node A's applications from a pod on node B to one
//! on node C within a second; a per-request `l5d-dtab` from an
//! application on A is honoured on both hops (the outgoing router picks
//! the node, the incoming one the pod there) and stripped on an untrusting
//! server (`clearContext: true`).

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::deploy::EDGE_PORT;
use super::{Answer, load_from};

/// How soon a dtab change must move the traffic (issue 14).
const PROMPT: Duration = Duration::from_secs(1);

/// `world-v1` on node B, `world-v2` on node C, each behind its own Service
/// and both behind `world` (as deploy/kubernetes/demo/hello-world.yaml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_shift_with_namerctl_moves_cross_node_traffic_within_a_second() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    cluster.start_pod("node-b", "http", "world-v1").await;
    cluster.start_pod("node-c", "http", "world-v2").await;
    cluster.expose("world-v1", &["http"], &["world-v1"]);
    cluster.expose("world-v2", &["http"], &["world-v2"]);
    cluster.expose("world", &["http"], &["world-v1", "world-v2"]);

    let rt = cluster.node("node-a").runtime();
    let load = load_from(
        &rt,
        &cluster.router("node-a", "http-outgoing"),
        "world",
        200,
    );
    load.wait_answered(50, Duration::from_secs(15)).await;
    assert_eq!(load.tally().served.keys().collect::<Vec<_>>(), ["world-v1"]);

    // The internal dtab pins world to v1; the operator moves it to v2.
    let shift = Instant::now();
    let namerctl = cluster
        .edit_dtab("internal", |text| {
            text.lines()
                .map(|l| match l.trim_start().starts_with("/host/world ") {
                    true => "/host/world => /srv/world-v2 ;",
                    false => l,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .await;
    // Until 2 s after the write, when v1 last answered and v2 first did.
    let (mut v1, mut last_v1, mut first_v2) = (load.tally().served["world-v1"], None, None);
    while shift.elapsed() < 2 * PROMPT {
        let tally = load.tally();
        if tally.served["world-v1"] > v1 {
            (v1, last_v1) = (tally.served["world-v1"], Some(shift.elapsed()));
        }
        if first_v2.is_none() && tally.served.contains_key("world-v2") {
            first_v2 = Some(shift.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tally = load.stop().await;
    drop(rt);
    let first_v2 = first_v2.expect("world-v2 answered");
    let last = last_v1.map_or("never".to_string(), |t| format!("after {t:?}"));
    eprintln!(
        "multinode: canary shift across nodes (B -> C): namerctl took {namerctl:?}; from its start \
         world-v2 (node C) first answered after {first_v2:?}, world-v1 (node B) last {last}; \
         {tally:?}"
    );
    let last_v1 = last_v1.unwrap_or_default();
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert!(
        first_v2 < PROMPT && last_v1 < PROMPT,
        "{first_v2:?} {last_v1:?}"
    );
    let [mb, mc] = [
        cluster.metrics("node-b").await,
        cluster.metrics("node-c").await,
    ];
    let v2_pod = cluster.pod("world-v2").demo.addr.to_string();
    assert_eq!(
        mc.sent_to("http-incoming", &v2_pod),
        tally.served["world-v2"] as f64,
        "every world-v2 answer came through C's incoming router"
    );
    assert_eq!(
        mb.received("http-incoming"),
        tally.served["world-v1"] as f64
    );
}

/// Node C runs a world-v1 and a world-v2 pod, node B another world-v1;
/// the dtab pins world to v1. An override to v2 from node A must pick node
/// C on the first hop and, carried in `l5d-ctx-dtab`, the v2 pod on the
/// second (C's incoming router alone would pick either pod of `world`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l5d_dtab_override_crosses_both_hops_and_is_stripped_at_an_untrusting_server() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    cluster.start_pod("node-b", "http", "world-v1-b").await;
    cluster.start_pod("node-c", "http", "world-v1-c").await;
    cluster.start_pod("node-c", "http", "world-v2").await;
    cluster.expose("world-v1", &["http"], &["world-v1-b", "world-v1-c"]);
    cluster.expose("world-v2", &["http"], &["world-v2"]);
    cluster.expose(
        "world",
        &["http"],
        &["world-v1-b", "world-v1-c", "world-v2"],
    );
    let a = cluster.node("node-a").clone();
    let trusted = format!("http://{}", cluster.router("node-a", "http-outgoing"));
    let edge = format!("http://{}:{EDGE_PORT}", a.ip);
    let get = async |proxy: &str, host: &str, dtab: &str| {
        let url = format!("http://{host}/");
        let (code, out, err) = a
            .curl_env(
                &[("http_proxy", proxy)],
                &["-i", "-H", &format!("l5d-dtab: {dtab}"), &url],
            )
            .await;
        assert_eq!(code, 0, "{err}");
        Answer::parse(&out)
    };

    let over = "/host/world => /srv/world-v2";
    for _ in 0..20 {
        let answer = get(&trusted, "world", over).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("x-served-by"), Some("world-v2"), "{answer:?}");
        let ctx = answer.header("x-echo-l5d-ctx-dtab").unwrap_or_default();
        assert!(
            ctx.contains("/srv/world-v2"),
            "the context reached the pod: {answer:?}"
        );
        assert_eq!(
            answer.header("x-echo-l5d-dtab"),
            None,
            "l5d-dtab is not forwarded"
        );
    }
    // A name only the override routes.
    let nowhere = "/host/nowhere => /srv/world-v2";
    let answer = get(&trusted, "nowhere", nowhere).await;
    assert_eq!(answer.header("x-served-by"), Some("world-v2"), "{answer:?}");

    // The untrusting server: the override is gone before routing, and
    // nothing of it travels on.
    let answer = get(&edge, "nowhere", nowhere).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(
        answer.header("l5d-err").is_some(),
        "Linkerd's error: {answer:?}"
    );
    let mut served = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let answer = get(&edge, "world", over).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        for header in ["x-echo-l5d-ctx-dtab", "x-echo-l5d-dtab"] {
            assert_eq!(answer.header(header), None, "{header}: {answer:?}");
        }
        served.insert(answer.header("x-served-by").unwrap_or_default().to_string());
    }
    eprintln!(
        "multinode: the override reached world-v2 on C 20 of 20 times; at the untrusting \
         server it was stripped ({served:?} answered world, nowhere was a 502)"
    );
    assert!(served.iter().all(|s| s.starts_with("world-")), "{served:?}");
}
