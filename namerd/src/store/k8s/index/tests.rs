//! The index's rules, one scenario each, without a server.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use tokio::time::Instant;

use super::Index;
use crate::store::k8s::object::{Layout, NAMESPACE_ANNOTATION};
use crate::store::{Namespace, Version};

const TTL: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(60);

fn index() -> Index {
    let layout = Layout {
        name_prefix: "dtab-".into(),
        labels: Default::default(),
        data_key: "dtab".into(),
        retention: Default::default(),
    };
    Index::new(layout, TTL, GRACE)
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

fn cm(name: &str, rv: &str, dtab: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("dtab-{name}")),
            resource_version: Some(rv.into()),
            annotations: Some([(NAMESPACE_ANNOTATION.to_string(), name.to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([("dtab".to_string(), dtab.to_string())].into()),
        ..ConfigMap::default()
    }
}

/// The (dtab, version) watchers of `name` see.
fn seen(index: &Index, name: &str) -> Option<(String, Version)> {
    index
        .hub()
        .current(&ns(name))
        .map(|v| (v.dtab.show(), v.version))
}

fn at(dtab: &str, rv: &str) -> Option<(String, Version)> {
    Some((dtab.to_string(), Version::from_bytes(rv.as_bytes())))
}

#[test]
fn reset_apply_delete() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(
        vec![cm("a", "x1", "/a=>/1"), cm("b", "x2", "/b=>/1")],
        now,
        now,
    );
    assert!(ix.health().ready && !ix.health().stale);
    assert_eq!(seen(&ix, "a"), at("/a=>/1", "x1"));
    ix.apply(cm("a", "q7", "/a=>/2"));
    assert_eq!(seen(&ix, "a"), at("/a=>/2", "q7"));
    ix.delete(cm("b", "z", "/b=>/1"));
    assert_eq!(seen(&ix, "b"), None);
    assert_eq!(ix.hub().names(), vec![ns("a")]);
}

#[test]
fn own_write_holds_back_older_events_until_confirmed() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![cm("a", "5", "/a=>/1")], now, now);
    ix.wrote(&ns("a"), Some(cm("a", "9", "/a=>/mine")), now);
    assert_eq!(seen(&ix, "a"), at("/a=>/mine", "9"));
    // A late event of an older version (not ordered: "3" < "9" means nothing).
    ix.apply(cm("a", "3", "/a=>/older"));
    assert_eq!(seen(&ix, "a"), at("/a=>/mine", "9"), "never regresses");
    ix.apply(cm("a", "9", "/a=>/mine"));
    ix.apply(cm("a", "1", "/a=>/newer"));
    assert_eq!(
        seen(&ix, "a"),
        at("/a=>/newer", "1"),
        "after confirmation events apply"
    );
}

#[test]
fn a_write_the_watcher_already_delivered_changes_nothing() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![], now, now);
    ix.apply(cm("a", "b", "/a=>/mine"));
    ix.apply(cm("a", "c", "/a=>/theirs"));
    ix.wrote(&ns("a"), Some(cm("a", "b", "/a=>/mine")), now);
    assert_eq!(seen(&ix, "a"), at("/a=>/theirs", "c"));
}

#[test]
fn an_unconfirmed_write_expires_to_the_latest_held_state() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![], now, now);
    ix.wrote(&ns("a"), Some(cm("a", "m", "/a=>/mine")), now);
    // A list requested before the write finished cannot settle it.
    ix.reset(vec![cm("a", "n", "/a=>/after-relist")], now - TTL, now);
    assert_eq!(seen(&ix, "a"), at("/a=>/mine", "m"));
    ix.tick(now + TTL / 2);
    assert_eq!(seen(&ix, "a"), at("/a=>/mine", "m"));
    ix.tick(now + TTL);
    assert_eq!(seen(&ix, "a"), at("/a=>/after-relist", "n"));
}

#[test]
fn own_delete_is_not_undone_by_older_events() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![cm("a", "1", "/a=>/1")], now, now);
    ix.wrote(&ns("a"), None, now);
    assert_eq!(seen(&ix, "a"), None);
    ix.apply(cm("a", "1", "/a=>/1"));
    assert_eq!(seen(&ix, "a"), None);
    ix.delete(cm("a", "2", "/a=>/1"));
    ix.apply(cm("a", "3", "/a=>/again"));
    assert_eq!(seen(&ix, "a"), at("/a=>/again", "3"));
}

#[test]
fn missing_from_a_relist_keeps_the_last_good_dtab_and_is_stale() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(
        vec![cm("a", "1", "/a=>/1"), cm("b", "1", "/b=>/1")],
        now,
        now,
    );
    ix.reset(vec![cm("b", "1", "/b=>/1")], now, now);
    assert_eq!(seen(&ix, "a"), at("/a=>/1", "1"));
    let health = ix.health();
    assert!(health.stale, "{health:?}");
    assert!(health.last_error.unwrap().contains('a'));
    // It comes back: current again.
    ix.reset(
        vec![cm("a", "1", "/a=>/1"), cm("b", "1", "/b=>/1")],
        now,
        now,
    );
    assert!(!ix.health().stale);
    // Missing for longer than the grace period: believed deleted.
    ix.reset(vec![], now, now);
    ix.tick(now + GRACE / 2);
    assert!(seen(&ix, "a").is_some());
    ix.tick(now + GRACE);
    assert_eq!(seen(&ix, "a"), None);
    assert!(!ix.health().stale);
}

#[test]
fn failures_keep_values_until_a_list_succeeds() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![cm("a", "1", "/a=>/1")], now, now);
    ix.failed("500 Internal Server Error".into());
    assert!(ix.health().stale);
    assert_eq!(seen(&ix, "a"), at("/a=>/1", "1"));
    ix.reset(vec![cm("a", "1", "/a=>/1")], now, now);
    assert!(!ix.health().stale);
}

#[test]
fn corrupt_objects_keep_the_last_good_dtab() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![cm("a", "1", "/a=>/1")], now, now);
    ix.apply(cm("a", "2", "not a dtab"));
    assert_eq!(seen(&ix, "a"), at("/a=>/1", "1"));
    let entry = ix.entry(&ns("a")).unwrap();
    assert!(entry.corrupt.is_some());
    assert_eq!(entry.rv, "2");
}

#[test]
fn a_relist_requested_after_a_write_settles_it() {
    let mut ix = index();
    let now = Instant::now();
    ix.reset(vec![], now, now);
    ix.wrote(&ns("a"), Some(cm("a", "m", "/a=>/mine")), now);
    let later = now + Duration::from_millis(1);
    ix.reset(vec![cm("a", "n", "/a=>/theirs")], later, later);
    assert_eq!(seen(&ix, "a"), at("/a=>/theirs", "n"));
}
