//! The conformance cases on reads and watches: listing, history, watches
//! following writes, read-your-writes, and what a corrupt stored dtab does.
//! Run for every backend by `conformance!` in `store_conformance.rs`.

use std::time::{Duration, SystemTime};

use l5d_dtab::Dtab;
use namerd::store::{HistoryEntry, Namespace, Op, StoreError, Version};

use crate::backends::Harness;
use crate::wait::wait_for;
use crate::{WAIT, anyone, by, dtab, ns, v, version_of};

pub(crate) async fn list_is_sorted(h: Harness) {
    let mut list = h.store.watch_list();
    for name in ["pear", "apple", "Zed", "fig-1", "fig_2", "10"] {
        h.store
            .create(&ns(name), &dtab("/a=>/b"), &anyone())
            .await
            .unwrap();
    }
    let mut expected: Vec<Namespace> = ["10", "Zed", "apple", "fig-1", "fig_2", "pear"]
        .map(ns)
        .to_vec();
    expected.sort();
    assert_eq!(h.store.list().await.unwrap(), expected);
    wait_for(&mut list, WAIT, "the namespace list", |names| {
        *names == expected
    })
    .await;
}

pub(crate) async fn history_is_oldest_first(h: Harness) {
    let n = ns("audited");
    let start = SystemTime::now() - Duration::from_secs(60);
    let one = h
        .store
        .create(&n, &dtab("/a=>/one"), &by("alice"))
        .await
        .unwrap();
    let two = h
        .store
        .update(&n, &dtab("/a=>/two"), &one, &by("bob"))
        .await
        .unwrap();
    if !h.history_survives_delete() {
        // Kubernetes: the history lives in the object (and goes with it).
        let history = h.store.history(&n).await.unwrap();
        assert_eq!(
            rows(&history),
            [
                (one, Op::Create, Some(dtab("/a=>/one")), Some("alice")),
                (two.clone(), Op::Update, Some(dtab("/a=>/two")), Some("bob")),
            ]
        );
        assert!(history.iter().all(|e| e.committed_at >= start));
        assert_eq!(
            h.store.version(&n, &two).await.unwrap().as_ref(),
            Some(&history[1])
        );
        h.store.delete(&n, &by("carol")).await.unwrap();
        assert!(h.store.history(&n).await.unwrap().is_empty());
        return;
    }
    assert_eq!((one, two), (v(1), v(2)));
    h.store.delete(&n, &by("carol")).await.unwrap();
    let history = h.store.history(&n).await.unwrap();
    assert_eq!(
        rows(&history),
        [
            (v(1), Op::Create, Some(dtab("/a=>/one")), Some("alice")),
            (v(2), Op::Update, Some(dtab("/a=>/two")), Some("bob")),
            (v(3), Op::Delete, None, Some("carol")),
        ]
    );
    assert!(
        history
            .windows(2)
            .all(|w| w[0].committed_at <= w[1].committed_at)
    );
    assert!(history.iter().all(|e| e.committed_at >= start));
    assert_eq!(
        h.store.version(&n, &v(2)).await.unwrap().as_ref(),
        Some(&history[1])
    );
    assert_eq!(h.store.version(&n, &v(9)).await.unwrap(), None);
    assert_eq!(
        h.store
            .version(&n, &Version::from_bytes(b"x"))
            .await
            .unwrap(),
        None
    );
    assert!(h.store.history(&ns("unknown")).await.unwrap().is_empty());
}

pub(crate) async fn watch_ends_on_the_latest_after_a_burst(h: Harness) {
    let n = ns("busy");
    let mut version = h
        .store
        .create(&n, &dtab("/w=>/burst/0"), &anyone())
        .await
        .unwrap();
    let mut rx = h.store.watch(&n);
    assert_eq!(
        version_of(&rx.borrow_and_update()),
        Some(version.clone()),
        "a watch starts with the current value"
    );
    for i in 1..=30 {
        let text = format!("/w=>/burst/{i}");
        version = h
            .store
            .update(&n, &dtab(&text), &version, &anyone())
            .await
            .unwrap();
    }
    h.check_counter(&version, 31);
    let last = wait_for(&mut rx, WAIT, "the last of the burst", |value| {
        version_of(value) == Some(version.clone())
    })
    .await;
    assert_eq!(last.unwrap().dtab, dtab("/w=>/burst/30"));
}

pub(crate) async fn watch_of_absent_sees_create_then_delete(h: Harness) {
    let n = ns("ghost");
    let mut rx = h.store.watch(&n);
    assert_eq!(*rx.borrow_and_update(), None);
    let created = h
        .store
        .create(&n, &dtab("/a=>/b"), &anyone())
        .await
        .unwrap();
    h.check_counter(&created, 1);
    wait_for(&mut rx, WAIT, "the create", |value| {
        version_of(value) == Some(created.clone())
    })
    .await;
    h.store.delete(&n, &anyone()).await.unwrap();
    wait_for(&mut rx, WAIT, "the delete", Option::is_none).await;
}

pub(crate) async fn reads_and_watches_see_own_writes(h: Harness) {
    let n = ns("mine");
    let mut version = h
        .store
        .create(&n, &dtab("/a=>/0"), &anyone())
        .await
        .unwrap();
    let rx = h.store.watch(&n);
    for i in 1..=10 {
        let text = format!("/a=>/{i}");
        version = h
            .store
            .update(&n, &dtab(&text), &version, &anyone())
            .await
            .unwrap();
        // No waiting: both must hold as soon as the write has returned.
        let got = h.store.get(&n).await.unwrap().unwrap();
        assert_eq!((got.dtab, got.version), (dtab(&text), version.clone()));
        assert_eq!(version_of(&rx.borrow()), Some(version.clone()));
    }
}

pub(crate) async fn corrupt_stored_dtab_is_reported(h: Harness) {
    if let Some(server) = h.k8s_server() {
        return corrupt_config_map_is_reported(&h, server).await;
    }
    if !h.is_sql() {
        return; // The memory store cannot hold text that is not a dtab.
    }
    let n = ns("broken");
    h.store
        .create(&n, &dtab("/a=>/good"), &anyone())
        .await
        .unwrap();
    let rx = h.store.watch(&n);
    h.execute("UPDATE dtabs SET dtab = 'not a dtab' WHERE namespace = 'broken'")
        .await;
    let got = h.store.get(&n).await;
    assert!(
        matches!(&got, Err(StoreError::Corrupt { ns: bad, .. }) if *bad == n),
        "{got:?}"
    );
    h.execute("UPDATE dtab_history SET dtab = 'not a dtab' WHERE namespace = 'broken'")
        .await;
    let history = h.store.history(&n).await;
    assert!(
        matches!(&history, Err(StoreError::Corrupt { .. })),
        "{history:?}"
    );
    // Watchers keep the last good dtab, and the rest of the store works.
    assert_eq!(
        rx.borrow().as_ref().map(|d| d.dtab.clone()),
        Some(dtab("/a=>/good"))
    );
    assert!(h.store.list().await.unwrap().contains(&n));
    assert!(!h.store.health().stale);
}

/// Kubernetes: someone writes a ConfigMap whose text is not a dtab.
async fn corrupt_config_map_is_reported(h: &Harness, server: &l5d_k8s_api_server::ApiServer) {
    let n = ns("broken");
    h.store
        .create(&n, &dtab("/a=>/good"), &anyone())
        .await
        .unwrap();
    let rx = h.store.watch(&n);
    let mut object = server
        .get(
            l5d_k8s_api_server::Resource::ConfigMaps,
            "default",
            "dtab-broken",
        )
        .expect("the store's ConfigMap");
    object["data"]["dtab"] = "not a dtab".into();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    server.apply(object);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match h.store.get(&n).await {
            Err(StoreError::Corrupt { ns: bad, .. }) if bad == n => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "the corrupt dtab was not reported: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rx.borrow().as_ref().map(|d| d.dtab.clone()),
        Some(dtab("/a=>/good"))
    );
    assert!(h.store.list().await.unwrap().contains(&n));
    assert!(!h.store.health().stale);
}

/// A history as (version, op, dtab, author) rows, to compare whole.
fn rows(history: &[HistoryEntry]) -> Vec<(Version, Op, Option<Dtab>, Option<&str>)> {
    history
        .iter()
        .map(|e| (e.version.clone(), e.op, e.dtab.clone(), e.author.as_deref()))
        .collect()
}
