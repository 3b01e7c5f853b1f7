//! Nodes changing under a steady load from node A: a pod moving from node
//! B to node C the way a rollout moves it (the new pod ready, the old one
//! terminating, then gone: three EndpointSlice updates), with no failed
//! request; and node C's proxy killed: requests to the pod on B go on
//! without a failure, requests to the pod on C fail fast with Linkerd's
//! error instead of hanging.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::{Answer, load_from, until};

/// Requests a second from node A.
const RATE: u32 = 100;
/// A bound on each wait for the mesh to act on a change: it takes
/// milliseconds; the bound is for a machine with one core kept busy.
const BOUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_moving_from_node_b_to_node_c_under_load_fails_no_request() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    cluster.start_pod("node-b", "http", "hello-b").await;
    cluster.expose("hello", &["http"], &["hello-b"]);
    let rt = cluster.node("node-a").runtime();
    let load = load_from(
        &rt,
        &cluster.router("node-a", "http-outgoing"),
        "hello",
        RATE,
    );
    load.wait_answered(50, BOUND).await;

    // The new pod on C becomes ready beside the old one.
    let moving = Instant::now();
    cluster.start_pod("node-c", "http", "hello-c").await;
    cluster.publish("hello", &["http"], &[("hello-b", true), ("hello-c", true)]);
    until("hello-c answers", BOUND, || {
        load.tally().served.contains_key("hello-c")
    })
    .await;
    // The old one terminates: out of the ready set, then, once nothing has
    // reached it for half a second, stopped and gone from the slice.
    cluster.publish("hello", &["http"], &[("hello-b", false), ("hello-c", true)]);
    let (mut last, mut since) = (load.tally().served["hello-b"], Instant::now());
    until("hello-b is left alone", BOUND, || {
        let now = load.tally().served["hello-b"];
        if now != last {
            (last, since) = (now, Instant::now());
        }
        since.elapsed() > Duration::from_millis(500)
    })
    .await;
    cluster.stop_pod("hello-b").await;
    cluster.expose("hello", &["http"], &["hello-c"]);
    let moved = moving.elapsed();
    let answered = load.tally().answered();
    load.wait_answered(answered + 50, BOUND).await;

    let tally = load.stop().await;
    eprintln!(
        "multinode: pod move B -> C under {RATE} requests/s from A took {moved:?}: {} sent, \
         {} failed, served {:?}",
        tally.sent,
        tally.failures(),
        tally.served
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert_eq!(
        tally.served["hello-b"], last,
        "nothing reached hello-b after it left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_proxy_fails_fast_for_its_node_and_no_other() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    cluster.start_pod("node-b", "http", "on-b").await;
    cluster.start_pod("node-c", "http", "on-c").await;
    cluster.expose("on-b", &["http"], &["on-b"]);
    cluster.expose("on-c", &["http"], &["on-c"]);
    let a = cluster.node("node-a").clone();
    let proxy = format!("http://{}", cluster.router("node-a", "http-outgoing"));
    let get = async || {
        let since = Instant::now();
        let (code, out, err) = a
            .curl_env(&[("http_proxy", &proxy)], &["-i", "http://on-c/"])
            .await;
        assert_eq!(code, 0, "curl on-c: {err} (10 s: a hang)");
        (Answer::parse(&out), since.elapsed())
    };
    let (answer, _) = get().await;
    assert_eq!(answer.header("x-served-by"), Some("on-c"), "{answer:?}");
    let rt = a.runtime();
    let load = load_from(
        &rt,
        &cluster.router("node-a", "http-outgoing"),
        "on-b",
        RATE,
    );
    load.wait_answered(50, BOUND).await;

    cluster.kill_proxy("node-c").await;
    let mut took = Vec::new();
    for _ in 0..5 {
        let (answer, elapsed) = get().await;
        assert_eq!(answer.status, 502, "{answer:?}");
        let err = answer
            .header("l5d-err")
            .unwrap_or_else(|| panic!("l5d-err: {answer:?}"));
        assert!(!err.is_empty());
        took.push(elapsed);
    }
    let answered = load.tally().answered();
    load.wait_answered(answered + 50, BOUND).await;
    let tally = load.stop().await;
    let slowest = took.iter().max().copied().unwrap_or_default();
    eprintln!(
        "multinode: node C's proxy killed: 5 requests A -> on-c answered 502 with l5d-err \
         in {took:?}; load to on-b {} sent, {} failed",
        tally.sent,
        tally.failures()
    );
    assert_eq!(tally.failures(), 0, "{tally:?}");
    // A hang would take curl's 10 s; a refused connection, milliseconds.
    // 3 s leaves room for a busy machine and the proxy's own requeues.
    assert!(slowest < Duration::from_secs(3), "{took:?}");
}
