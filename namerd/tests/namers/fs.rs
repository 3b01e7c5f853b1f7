//! `io.l5d.fs` against a temporary directory.

use std::time::Duration;

use l5d_dtab::Addr;
use namerd::namer::Namer;
use namerd::namer::fs::{FsNamer, FsOptions};

use super::support::{FakeDns, addrs_of, bound, leaf, neg, path, poll_until, wait_until};

/// A namer over a fresh directory holding `files`; events on, no rescans
/// during a test unless asked.
async fn namer_with(
    files: &[(&str, &str)],
    tweak: impl FnOnce(&mut FsOptions),
) -> (tempfile::TempDir, FsNamer) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let mut opts = FsOptions::new(dir.path());
    opts.rescan_interval = Duration::from_secs(3600);
    tweak(&mut opts);
    let namer = FsNamer::new(opts).await.unwrap();
    (dir, namer)
}

#[tokio::test]
async fn lookups_bind_existing_files_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web"), "10.0.0.1 8080\n").unwrap();
    std::fs::write(dir.path().join(".hidden"), "10.0.0.9 1\n").unwrap();
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    // Kubernetes mounts ConfigMap keys as symlinks.
    std::os::unix::fs::symlink("web", dir.path().join("alias")).unwrap();
    let namer = FsNamer::new(FsOptions::new(dir.path())).await.unwrap();
    let cases = [
        ("/web", leaf("/#/io.l5d.fs/web", "/")),
        ("/web/a/b", leaf("/#/io.l5d.fs/web", "/a/b")),
        ("/alias", leaf("/#/io.l5d.fs/alias", "/")),
        ("/missing", neg()),
        ("/", neg()),
        ("/.hidden", neg()),
        ("/subdir", neg()),
        ("/..", neg()),
    ];
    for (p, want) in cases {
        assert_eq!(namer.lookup(&path(p)), want, "lookup {p}");
    }
    assert_eq!(namer.prefix(), &path("/#/io.l5d.fs"));
    let names: Vec<String> = namer.bound_names().iter().map(|p| p.show()).collect();
    assert_eq!(names, ["/#/io.l5d.fs/alias", "/#/io.l5d.fs/web"]);
}

#[tokio::test]
async fn resolve_reads_addresses_and_weights() {
    let files = [
        (
            "web",
            "# web servers\n10.0.0.2 8080\n10.0.0.1 8080 # first\n\n",
        ),
        ("api", "10.0.0.3 80 * 0.25\n::1 81\n"),
        ("empty", ""),
    ];
    let (_dir, namer) = namer_with(&files, |_| {}).await;
    assert_eq!(
        *namer.resolve(&path("/web")).borrow(),
        bound(&["10.0.0.1:8080", "10.0.0.2:8080"])
    );
    let api = namer.resolve(&path("/api")).borrow().clone();
    let Addr::Bound(set) = api else {
        panic!("api: {api:?}")
    };
    let got: Vec<_> = set
        .endpoints()
        .iter()
        .map(|e| (e.addr.to_string(), e.weight))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.3:80".to_string(), Some(0.25)),
            ("[::1]:81".to_string(), None)
        ]
    );
    assert_eq!(*namer.resolve(&path("/empty")).borrow(), bound(&[]));
    for id in ["/missing", "/web/extra", "/", "/.hidden"] {
        assert_eq!(
            *namer.resolve(&path(id)).borrow(),
            Addr::Neg,
            "resolve {id}"
        );
    }
}

#[tokio::test]
async fn host_names_are_resolved_when_read() {
    let dns = FakeDns::default();
    dns.set("svc.test", &["10.1.0.2", "10.1.0.1"]);
    let resolver = dns.resolver();
    let (_dir, namer) =
        namer_with(&[("svc", "svc.test 9000 * 2\n")], |o| o.resolver = resolver).await;
    let addr = namer.resolve(&path("/svc")).borrow().clone();
    assert_eq!(addrs_of(&addr).unwrap(), ["10.1.0.1:9000", "10.1.0.2:9000"]);
    let Addr::Bound(set) = addr else {
        unreachable!()
    };
    assert!(set.endpoints().iter().all(|e| e.weight == Some(2.0)));
}

#[tokio::test]
async fn files_appearing_changing_and_disappearing_are_seen_promptly() {
    let (dir, namer) = namer_with(&[], |_| {}).await;
    let file = dir.path().join("new");
    let mut names = namer.lookup_changes();
    let mut addr = namer.resolve(&path("/new"));
    assert_eq!(*addr.borrow_and_update(), Addr::Neg);

    std::fs::write(&file, "10.0.0.1 80\n").unwrap();
    let generation = *names.borrow_and_update();
    wait_until(&mut addr, "created", |a| *a == bound(&["10.0.0.1:80"])).await;
    let generation = wait_until(&mut names, "names changed on create", |g| *g > generation).await;
    assert_eq!(namer.lookup(&path("/new")), leaf("/#/io.l5d.fs/new", "/"));

    std::fs::write(&file, "10.0.0.2 80\n").unwrap();
    wait_until(&mut addr, "changed", |a| *a == bound(&["10.0.0.2:80"])).await;
    assert!(
        !names.has_changed().unwrap(),
        "an address change is not a name change"
    );

    std::fs::remove_file(&file).unwrap();
    wait_until(&mut addr, "deleted", |a| *a == Addr::Neg).await;
    wait_until(&mut names, "names changed on delete", |g| *g > generation).await;
    assert_eq!(namer.lookup(&path("/new")), neg());
    assert!(!namer.state().stale, "a deleted file is not an error");
}

#[tokio::test]
async fn a_malformed_file_keeps_the_last_good_set_and_reports_stale() {
    let (dir, namer) = namer_with(&[("web", "10.0.0.1 80\n")], |_| {}).await;
    let mut addr = namer.resolve(&path("/web"));
    std::fs::write(dir.path().join("web"), "10.0.0.2 80\n10.0.0.3\n").unwrap();
    poll_until("stale", || namer.state().stale).await;
    let state = namer.state();
    let error = state.last_error.unwrap();
    assert!(error.contains("web: line 2: malformed address"), "{error}");
    assert!(state.details.contains_key("error.web"));
    assert_eq!(*addr.borrow_and_update(), bound(&["10.0.0.1:80"]));

    std::fs::write(dir.path().join("web"), "10.0.0.4 80\n").unwrap();
    wait_until(&mut addr, "repaired", |a| *a == bound(&["10.0.0.4:80"])).await;
    assert!(!namer.state().stale);
}

#[tokio::test]
async fn a_file_that_never_parsed_is_failed_but_bound() {
    let (_dir, namer) = namer_with(&[("bad", "10.0.0.1 http\n")], |_| {}).await;
    assert_eq!(namer.lookup(&path("/bad")), leaf("/#/io.l5d.fs/bad", "/"));
    let addr = namer.resolve(&path("/bad")).borrow().clone();
    let Addr::Failed(message) = addr else {
        panic!("{addr:?}")
    };
    assert!(
        message.contains("line 1: \"http\" is not a port number"),
        "{message}"
    );
}

#[tokio::test]
async fn rescans_catch_changes_without_events() {
    let (dir, namer) = namer_with(&[], |o| {
        o.watch_events = false;
        o.rescan_interval = Duration::from_millis(50);
    })
    .await;
    assert_eq!(namer.state().details["events"], "disabled");
    let mut addr = namer.resolve(&path("/late"));
    std::fs::write(dir.path().join("late"), "10.0.0.5 80\n").unwrap();
    wait_until(&mut addr, "seen at a rescan", |a| {
        *a == bound(&["10.0.0.5:80"])
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_directory_keeps_the_names_and_is_stale() {
    let (dir, namer) = namer_with(&[("web", "10.0.0.1 80\n")], |o| {
        o.watch_events = false;
        o.rescan_interval = Duration::from_millis(20);
    })
    .await;
    let root = dir.path().to_path_buf();
    let moved = root.with_extension("moved");
    std::fs::rename(&root, &moved).unwrap();
    poll_until("stale", || namer.state().stale).await;
    assert!(
        namer
            .state()
            .last_error
            .unwrap()
            .contains("cannot read directory")
    );
    assert_eq!(namer.lookup(&path("/web")), leaf("/#/io.l5d.fs/web", "/"));
    assert_eq!(
        *namer.resolve(&path("/web")).borrow(),
        bound(&["10.0.0.1:80"])
    );
    std::fs::rename(&moved, &root).unwrap();
    poll_until("readable again", || !namer.state().stale).await;
}

#[tokio::test]
async fn dropping_the_namer_stops_its_work() {
    let (_dir, namer) = namer_with(&[("web", "10.0.0.1 80\n")], |_| {}).await;
    let mut addr = namer.resolve(&path("/web"));
    let mut names = namer.lookup_changes();
    drop(namer);
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        assert!(addr.changed().await.is_err());
        assert!(names.changed().await.is_err());
    });
    closed.await.expect("the worker released its channels");
}

#[tokio::test]
async fn a_missing_root_dir_is_an_error() {
    let err = FsNamer::new(FsOptions::new("/nonexistent/disco"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/disco"), "{err}");
}
