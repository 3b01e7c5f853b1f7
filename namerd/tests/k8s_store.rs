//! Acceptance tests of the Kubernetes dtab store (`io.l5d.k8s`) against the
//! test API server, for what the shared conformance suite cannot show:
//! two replicas racing, watches that expire or stall, objects the API
//! server briefly hides, and resource versions that are neither numbers
//! nor ordered. Every wait is bounded; request counts come from the
//! server's own record.

#[path = "support/k8s_api.rs"]
mod k8s_api;
#[path = "support/namerd_client.rs"]
#[allow(dead_code, reason = "shared support: each test uses part of it")]
mod namerd_client;
#[path = "support/wait.rs"]
mod wait;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use l5d_dtab::Dtab;
use l5d_k8s_api_server::{ApiServer, Options, RecordedRequest, Resource};
use l5d_proto::mesh as pb;
use namerd::config::StorageConfig;
use namerd::store::k8s::{K8sOptions, K8sStore};
use namerd::store::{DtabStore, Namespace, StoreError, VersionedDtab, WriteMeta};
use namerd_client::{
    NamerdHttp, ROOT, connect, inet_id, leaf_tree, next, show, svc_dtab, watch_tree,
};
use tokio::time::Instant;
use wait::wait_for;

const WAIT: Duration = Duration::from_secs(10);

fn ns(name: &str) -> Namespace {
    Namespace::new(name).expect("namespace")
}

fn dtab(text: &str) -> Dtab {
    Dtab::read(text).expect("dtab")
}

async fn open(server: &ApiServer, idle: Duration) -> Arc<K8sStore> {
    let opts = K8sOptions {
        idle_timeout: idle,
        ..k8s_api::k8s_options(server)
    };
    Arc::new(K8sStore::open(opts).await.expect("open the store"))
}

fn lists_and_watches(requests: &[RecordedRequest]) -> (usize, usize) {
    let ours = requests.iter().filter(|r| {
        r.method == "GET" && r.path.contains("/configmaps") && r.path.contains("labelSelector")
    });
    let (watches, lists): (Vec<_>, Vec<_>) = ours.partition(|r| r.is_watch());
    (lists.len(), watches.len())
}

/// A write behind namerd's back, as another tool would make it.
fn edit_behind(server: &ApiServer, name: &str, text: &str) {
    let mut object = server
        .get(Resource::ConfigMaps, "default", name)
        .expect("the store's ConfigMap");
    object["data"]["dtab"] = text.into();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    server.apply(object);
}

/// Two replicas (two stores on one API server) update the same version at
/// once: exactly one wins, the other is told the winner's version, and both
/// replicas' watches end on the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_updating_one_version_have_one_winner() {
    let server = ApiServer::start().await.unwrap();
    let (a, b) = (
        open(&server, Duration::from_secs(60)).await,
        open(&server, Duration::from_secs(60)).await,
    );
    let base = a
        .create(&ns("race"), &dtab("/a=>/base"), &WriteMeta::default())
        .await
        .unwrap();
    let mut rx_b = b.watch(&ns("race"));
    wait_for(&mut rx_b, WAIT, "replica b sees the create", |v| {
        v.is_some()
    })
    .await;
    let (race, meta) = (ns("race"), WriteMeta::default());
    let (text_a, text_b) = (dtab("/a=>/from-a"), dtab("/a=>/from-b"));
    let (ra, rb) = tokio::join!(
        a.update(&race, &text_a, &base, &meta),
        b.update(&race, &text_b, &base, &meta),
    );
    let (winner, loser, text) = match (ra, rb) {
        (Ok(v), Err(e)) => (v, e, "/a=>/from-a"),
        (Err(e), Ok(v)) => (v, e, "/a=>/from-b"),
        other => panic!("exactly one must win: {other:?}"),
    };
    assert!(
        matches!(&loser, StoreError::VersionMismatch { current, .. } if *current == winner),
        "{loser:?}"
    );
    let expected = Some(VersionedDtab {
        dtab: dtab(text),
        version: winner,
    });
    for store in [&a, &b] {
        let mut rx = store.watch(&ns("race"));
        wait_for(&mut rx, WAIT, "the winner", |v| *v == expected).await;
    }
}

/// A watch resumed from a compacted version gets 410 Gone, relists and
/// converges within 5 s, with one relist, not a loop of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_version_relists_once() {
    for opaque_versions in [false, true] {
        let server = ApiServer::start_with(Options {
            opaque_versions,
            ..Options::default()
        })
        .await
        .unwrap();
        let store = open(&server, Duration::from_secs(60)).await;
        store
            .create(&ns("web"), &dtab("/a=>/1"), &WriteMeta::default())
            .await
            .unwrap();
        let mut rx = store.watch(&ns("web"));
        wait_for(&mut rx, WAIT, "the create", |v| v.is_some()).await;
        // The store's watch follows its list: a close sent before the
        // server counts it open would miss it.
        wait::wait_until(WAIT, "the store's watch", || {
            server.faults().open_watches() > 0
        })
        .await;
        // The watch sees nothing while a change lands and history is
        // compacted past it; then it is cut and must resume from there.
        server.faults().stall_watches(true);
        edit_behind(&server, "dtab-web", "/a=>/2");
        server.compact();
        let before = server.requests().len();
        let start = Instant::now();
        server.faults().close_watches();
        // The resumed watch (from the compacted version) is open before the
        // server answers anything, so the 410 is what ends it.
        wait::wait_until(WAIT, "a resumed watch", || {
            lists_and_watches(&server.requests()[before..]).1 > 0
        })
        .await;
        server.faults().stall_watches(false);
        wait_for(&mut rx, Duration::from_secs(5), "the relist", |v| {
            v.as_ref().is_some_and(|v| v.dtab == dtab("/a=>/2"))
        })
        .await;
        let took = start.elapsed();
        // Let a hot loop show itself, if there is one.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (lists, watches) = lists_and_watches(&server.requests()[before..]);
        eprintln!(
            "opaque={opaque_versions}: converged in {took:?}; {lists} lists, {watches} watches in 2 s after"
        );
        assert!((1..=2).contains(&lists), "relisted {lists} times");
        assert!(watches <= 6, "{watches} watch requests: a hot loop");
        assert!(!store.health().stale, "{:?}", store.health());
    }
}

/// A watch on which nothing arrives (not even a bookmark) is given up and
/// restarted within the configured idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watch_is_restarted_within_the_idle_timeout() {
    let idle = Duration::from_secs(6);
    let server = ApiServer::start().await.unwrap();
    let store = open(&server, idle).await;
    store
        .create(&ns("web"), &dtab("/a=>/1"), &WriteMeta::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.faults().stall_watches(true);
    let start = Instant::now();
    let before = server.requests().len();
    let restarted = loop {
        let (_, watches) = lists_and_watches(&server.requests()[before..]);
        if watches > 0 {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < idle + Duration::from_secs(10),
            "no new watch after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("a stalled watch was restarted after {restarted:?} (idle timeout {idle:?})");
    // Not long before the idle timeout (the last event came shortly before
    // `start`), so it was the timeout that restarted it; the upper bound
    // above is generous for loaded machines.
    assert!(restarted >= idle / 2, "{restarted:?}");
    // The new watch works once the server does.
    edit_behind(&server, "dtab-web", "/a=>/2");
    server.faults().stall_watches(false);
    let mut rx = store.watch(&ns("web"));
    wait_for(&mut rx, WAIT, "the change", |v| {
        v.as_ref().is_some_and(|v| v.dtab == dtab("/a=>/2"))
    })
    .await;
}

/// A ConfigMap the API server hides for a while (404 on GET, left out of a
/// relist): namerd keeps serving the last good dtab, over the HTTP API
/// (marked stale) and on an open StreamBoundTree, and recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_config_map_keeps_its_last_good_dtab() {
    let server = ApiServer::start().await.unwrap();
    let namerd =
        namerd::testing::start(StorageConfig::Kubernetes(k8s_api::k8s_options(&server))).await;
    let http = NamerdHttp::new(namerd.namerd().http_addr().unwrap());
    let internal = ROOT.trim_start_matches('/');
    assert_eq!(
        http.create(internal, &svc_dtab(8080)).await.status,
        StatusCode::NO_CONTENT
    );
    let channel = connect(namerd.namerd().mesh_addr().unwrap()).await.unwrap();
    let mut tree = watch_tree(&channel).await.unwrap();
    let first = next(&mut tree).await.unwrap().unwrap();
    assert_eq!(first, leaf_tree(&inet_id(8080)), "{}", show(&first));

    server
        .faults()
        .hide(Resource::ConfigMaps, "default", "dtab-internal", true);
    // A failed watch restart makes the store relist, and the list lacks it.
    server.faults().fail_next(1, 500);
    server.faults().close_watches();
    let store = namerd.namerd().ready().await;
    wait::wait_until(WAIT, "the store notices", || store.health().stale).await;
    let read = http.get("/api/1/dtabs/internal").await;
    assert_eq!(
        (read.status, read.stale),
        (StatusCode::OK, true),
        "{read:?}"
    );
    assert!(read.body.contains("8080"), "{read:?}");
    // The stream sends nothing new: no Neg, no empty tree.
    let quiet = tokio::time::timeout(Duration::from_secs(1), tree.message()).await;
    assert!(
        quiet.is_err(),
        "the stream changed while the dtab was hidden: {quiet:?}"
    );

    server
        .faults()
        .hide(Resource::ConfigMaps, "default", "dtab-internal", false);
    wait::wait_until(WAIT, "the store recovers", || !store.health().stale).await;
    let read = http.get("/api/1/dtabs/internal").await;
    assert_eq!(
        (read.status, read.stale),
        (StatusCode::OK, false),
        "{read:?}"
    );
    // And changes flow again.
    let etag = read.etag.unwrap();
    assert_eq!(
        http.update(internal, &svc_dtab(9090), &etag).await.status,
        StatusCode::NO_CONTENT
    );
    let changed: pb::BoundTreeRsp = next(&mut tree).await.unwrap().unwrap();
    assert_eq!(changed, leaf_tree(&inet_id(9090)), "{}", show(&changed));
    namerd.shutdown().await;
}

/// Versions that are random tokens, neither numeric nor ordered: CAS,
/// read-your-writes and watches work by equality alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_resource_versions() {
    let server = ApiServer::start_with(Options {
        opaque_versions: true,
        ..Options::default()
    })
    .await
    .unwrap();
    let store = open(&server, Duration::from_secs(60)).await;
    let n = ns("tokens");
    let mut version = store
        .create(&n, &dtab("/a=>/0"), &WriteMeta::default())
        .await
        .unwrap();
    let rx = store.watch(&n);
    let mut seen = vec![version.clone()];
    for i in 1..=20 {
        let text = format!("/a=>/{i}");
        let stale = seen.first().unwrap().clone();
        if i > 1 {
            let refused = store
                .update(&n, &dtab(&text), &stale, &WriteMeta::default())
                .await;
            assert!(
                matches!(refused, Err(StoreError::VersionMismatch { .. })),
                "{refused:?}"
            );
        }
        version = store
            .update(&n, &dtab(&text), &version, &WriteMeta::default())
            .await
            .unwrap();
        assert!(
            !seen.contains(&version),
            "a version was reused: {version:?}"
        );
        seen.push(version.clone());
        let got = store.get(&n).await.unwrap().unwrap();
        assert_eq!((got.dtab, got.version), (dtab(&text), version.clone()));
        assert_eq!(
            rx.borrow().as_ref().map(|v| v.version.clone()),
            Some(version.clone())
        );
    }
    // Behind our back, too.
    edit_behind(&server, "dtab-tokens", "/a=>/theirs");
    let mut rx = store.watch(&n);
    wait_for(&mut rx, WAIT, "a write by someone else", |v| {
        v.as_ref().is_some_and(|v| v.dtab == dtab("/a=>/theirs"))
    })
    .await;
    let history = store.history(&n).await.unwrap();
    assert_eq!(history.len(), 17, "16 earlier versions and the current one");
}

/// A dtab too large for a ConfigMap is refused before any API call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtab_over_one_mebibyte_is_refused_without_a_call() {
    let server = ApiServer::start().await.unwrap();
    let store = open(&server, Duration::from_secs(60)).await;
    let text: Vec<String> = (0..12_000)
        .map(|i| format!("/s{i:05}=>/{}", "x".repeat(90)))
        .collect();
    let before = server.requests().len();
    let refused = store
        .create(&ns("huge"), &dtab(&text.join(";")), &WriteMeta::default())
        .await;
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("too large for a Kubernetes ConfigMap"),
        "{message}"
    );
    let calls: Vec<_> = server.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .cloned()
        .collect();
    assert!(calls.is_empty(), "{calls:?}");
}
