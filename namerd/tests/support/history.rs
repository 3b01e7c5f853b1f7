//! The conformance cases on history retention and pagination: pruning by
//! count (every backend) and by age (SQL, whose rows a test can age behind
//! the store's back; the in-memory and ConfigMap stores are checked on
//! explicit clocks in their unit tests), pages that walk every retained
//! version exactly once, and concurrent writers under a tight retention.
//! Run for every backend by `conformance!` in `store_conformance.rs`.

use std::sync::Arc;
use std::time::Duration;

use namerd::store::{DtabStore, HistoryEntry, HistoryPage, Namespace, Op, Retention, Version};

use crate::backends::Harness;
use crate::{anyone, dtab, ns};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn keep(max_versions: usize) -> Retention {
    Retention {
        max_versions,
        max_age: 90 * DAY,
    }
}

/// The dtab texts of a history, oldest first (`-` for a deletion).
fn texts(history: &[HistoryEntry]) -> Vec<String> {
    history
        .iter()
        .map(|e| e.dtab.as_ref().map_or("-".to_string(), |d| d.show()))
        .collect()
}

/// Creates `n` and writes `/a=>/v{i}` for `i` in `1..=count`; the last
/// version.
async fn write_versions(store: &dyn DtabStore, n: &Namespace, count: usize) -> Version {
    let mut version = store.create(n, &dtab("/a=>/v1"), &anyone()).await.unwrap();
    for i in 2..=count {
        let text = format!("/a=>/v{i}");
        version = store
            .update(n, &dtab(&text), &version, &anyone())
            .await
            .unwrap();
    }
    version
}

pub(crate) async fn retention_keeps_the_newest_versions(h: Harness) {
    let store = h.reopen(keep(3)).await;
    let n = ns("kept");
    let last = write_versions(&*store, &n, 7).await;
    h.check_counter(&last, 7);
    let history = store.history(&n).await.unwrap();
    assert_eq!(texts(&history), ["/a=>/v5", "/a=>/v6", "/a=>/v7"]);
    assert_eq!(history.last().unwrap().version, last);
    assert_eq!(
        store.get(&n).await.unwrap().map(|v| v.version),
        Some(last.clone())
    );
    assert!(
        store
            .version(&n, &history[0].version)
            .await
            .unwrap()
            .is_some(),
        "a retained version can be read back"
    );
    if !h.history_survives_delete() {
        return;
    }
    // The deletion is a version too; a re-created namespace continues
    // after it although the older versions are gone.
    store.delete(&n, &anyone()).await.unwrap();
    let history = store.history(&n).await.unwrap();
    assert_eq!(texts(&history), ["/a=>/v6", "/a=>/v7", "-"]);
    assert_eq!(history[2].op, Op::Delete);
    let again = store.create(&n, &dtab("/a=>/b"), &anyone()).await.unwrap();
    h.check_counter(&again, 9);
}

pub(crate) async fn retention_prunes_by_age(h: Harness) {
    if !h.is_sql() {
        // Memory and ConfigMaps: store/retention.rs and k8s/object.rs test
        // the same rule on explicit clocks.
        return;
    }
    let store = h
        .reopen(Retention {
            max_versions: 1_000,
            max_age: 10 * DAY,
        })
        .await;
    let n = ns("aged");
    write_versions(&*store, &n, 3).await;
    // Versions 1 and 2 committed eleven days ago.
    h.execute(
        "UPDATE dtab_history SET committed_at = committed_at - 950400000 \
         WHERE namespace = 'aged' AND version <= 2",
    )
    .await;
    assert_eq!(
        store.history(&n).await.unwrap().len(),
        3,
        "pruning happens when the namespace is written"
    );
    let current = store.get(&n).await.unwrap().unwrap().version;
    store
        .update(&n, &dtab("/a=>/v4"), &current, &anyone())
        .await
        .unwrap();
    assert_eq!(
        texts(&store.history(&n).await.unwrap()),
        ["/a=>/v3", "/a=>/v4"]
    );
    // Everything old, the current version included: the next write keeps
    // only itself, and the namespace's versions go on from there.
    h.execute("UPDATE dtab_history SET committed_at = 0 WHERE namespace = 'aged'")
        .await;
    let current = store.get(&n).await.unwrap().unwrap().version;
    let v5 = store
        .update(&n, &dtab("/a=>/v5"), &current, &anyone())
        .await
        .unwrap();
    h.check_counter(&v5, 5);
    assert_eq!(texts(&store.history(&n).await.unwrap()), ["/a=>/v5"]);
}

pub(crate) async fn pages_walk_every_retained_version_once(h: Harness) {
    let n = ns("paged");
    write_versions(&*h.store, &n, 10).await;
    let all = h.store.history(&n).await.unwrap();
    assert_eq!(all.len(), 10);
    let mut walked = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = HistoryPage { before, limit: 3 };
        let got = h.store.history_page(&n, &page).await.unwrap();
        pages += 1;
        assert!(got.len() <= 3, "a page holds at most its limit");
        let Some(oldest) = got.last() else { break };
        before = Some(oldest.version.clone());
        walked.extend(got);
        assert!(pages <= 10, "pagination ends");
    }
    walked.reverse();
    assert_eq!(walked, all, "every version once, in order");
    assert_eq!(pages, 5, "3 + 3 + 3 + 1, then an empty page");
    let newest = HistoryPage {
        before: None,
        limit: 1,
    };
    assert_eq!(
        h.store.history_page(&n, &newest).await.unwrap(),
        [all[9].clone()]
    );
}

pub(crate) async fn concurrent_writers_never_lose_the_current_version(h: Harness) {
    let store: Arc<dyn DtabStore> = h.reopen(keep(2)).await;
    let n = ns("contended");
    store
        .create(&n, &dtab("/a=>/start"), &anyone())
        .await
        .unwrap();
    let writers = (0..4).map(|w| {
        let store = store.clone();
        let n = n.clone();
        tokio::spawn(async move {
            for i in 0..6 {
                let text = format!("/a=>/w{w}x{i}");
                store.put(&n, &dtab(&text), &anyone()).await.unwrap();
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    let current = store.get(&n).await.unwrap().expect("the namespace exists");
    let history = store.history(&n).await.unwrap();
    assert!(history.len() <= 2, "{} versions kept", history.len());
    let newest = history.last().expect("the current version is kept");
    assert_eq!(newest.version, current.version);
    assert_eq!(newest.dtab.as_ref(), Some(&current.dtab));
    let read = store.version(&n, &current.version).await.unwrap();
    assert_eq!(read.and_then(|e| e.dtab), Some(current.dtab));
    h.check_counter(&current.version, 25);
}
