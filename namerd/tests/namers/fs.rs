//! `io.l5d.fs` against a temporary directory.

use std::time::Duration;

use l5d_dtab::Addr;
use namerd::namer::Namer;
use namerd::namer::fs::{FsNamer, FsOptions};
use namerd::namer::inet::HostResolver;

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
        message.contains("line 1: the port (second field) is not a number"),
        "{message}"
    );
}

/// The `Failed` message of `name`'s address set.
fn failure(namer: &FsNamer, name: &str) -> String {
    match namer.resolve(&path(name)).borrow().clone() {
        Addr::Failed(message) => message.to_string(),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn links_out_of_the_root_are_refused_and_links_inside_followed() {
    let outside = tempfile::tempdir().unwrap();
    // What a mistaken or planted link could publish: a passwd-like file,
    // and one that would even parse.
    std::fs::write(
        outside.path().join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(outside.path().join("addrs"), "10.9.9.9 80\n").unwrap();
    let (dir, namer) = namer_with(&[], |_| {}).await;
    let root = dir.path();
    std::os::unix::fs::symlink(outside.path().join("passwd"), root.join("passwd")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("addrs"), root.join("addrs")).unwrap();
    // A relative link climbing out (both directories are in the same
    // temporary directory).
    let climb = format!(
        "../{}/passwd",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    std::os::unix::fs::symlink(climb, root.join("up")).unwrap();
    // Kubernetes' ConfigMap layout: web -> ..data/web, ..data -> ..2024.
    std::fs::create_dir(root.join("..2024")).unwrap();
    std::fs::write(root.join("..2024/web"), "10.0.0.1 80\n").unwrap();
    std::os::unix::fs::symlink("..2024", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/web", root.join("web")).unwrap();
    let mut web = namer.resolve(&path("/web"));
    wait_until(&mut web, "a link inside the root", |a| {
        *a == bound(&["10.0.0.1:80"])
    })
    .await;
    poll_until("the links out are seen", || {
        namer.state().details.contains_key("error.up")
    })
    .await;
    for name in ["/passwd", "/addrs", "/up"] {
        let message = failure(&namer, name);
        assert!(message.contains("outside rootDir"), "{name}: {message}");
        for secret in ["root:x", "10.9.9.9"] {
            assert!(!message.contains(secret), "{name}: {message}");
        }
    }
}

#[tokio::test]
async fn special_and_oversized_files_are_refused_without_blocking() {
    let (dir, namer) = namer_with(&[], |_| {}).await;
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
    let big = "10.0.0.1 80\n".repeat(namerd::namer::fs::MAX_FILE_BYTES as usize / 12 + 1);
    std::fs::write(dir.path().join("big"), big).unwrap();
    // The namer goes on: a file written after them is seen promptly.
    let mut after = namer.resolve(&path("/after"));
    std::fs::write(dir.path().join("after"), "10.0.0.2 80\n").unwrap();
    wait_until(&mut after, "a file after the fifo", |a| {
        *a == bound(&["10.0.0.2:80"])
    })
    .await;
    poll_until("both refused", || {
        let details = namer.state().details;
        details.contains_key("error.fifo") && details.contains_key("error.big")
    })
    .await;
    assert!(failure(&namer, "/fifo").contains("not a regular file"));
    assert!(failure(&namer, "/big").contains("larger than 1048576 bytes"));
    // A namer started over the same directory is not held up either.
    let start = FsNamer::new(FsOptions::new(dir.path()));
    let again = tokio::time::timeout(Duration::from_secs(10), start).await;
    assert!(again.expect("starts within 10 s").is_ok());
}

#[tokio::test]
async fn errors_never_repeat_a_files_content() {
    let resolver = HostResolver::from_fn(|host| async move {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no addresses"),
        ))
    });
    let files = [
        ("one", "s3cr3t-one\n"),
        ("port", "10.0.0.1 s3cr3t-port\n"),
        ("weight", "10.0.0.1 80 * s3cr3t-weight\n"),
        ("host", "# comment\ns3cr3t-host 80\n"),
    ];
    let (_dir, namer) = namer_with(&files, |o| o.resolver = resolver).await;
    let state = namer.state();
    for (name, _) in files {
        let message = failure(&namer, &format!("/{name}"));
        let detail = &state.details[&format!("error.{name}")];
        for text in [&message, detail] {
            assert!(text.contains(": line "), "{name}: {text}");
            assert!(!text.contains("s3cr3t"), "{name}: {text}");
        }
    }
    assert!(failure(&namer, "/host").contains("line 2: cannot resolve the host"));
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
