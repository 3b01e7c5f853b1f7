use super::*;

fn marker(action: Action, step: usize) -> Marker {
    Marker {
        action,
        path: "/host/world".into(),
        from: "/srv/v1".into(),
        to: "/srv/v2".into(),
        steps: vec![1, 50, 100],
        step,
    }
}

fn entry(version: &str, author: &str, dtab: &[(&str, &str)]) -> HistoryEntry {
    HistoryEntry {
        version: version.into(),
        op: "update".into(),
        committed_at: "t".into(),
        author: Some(author.into()),
        dtab: Some(dtab.iter().map(|(p, d)| Dentry::new(*p, *d)).collect()),
    }
}

fn noted(m: &Marker) -> String {
    format!("127.0.0.1:4000 (l5d-author: alice {})", m.render())
}

#[test]
fn markers_read_back() {
    let m = marker(Action::Step, 2);
    assert_eq!(
        m.render(),
        "[canary step path=/host/world from=/srv/v1 to=/srv/v2 steps=1,50,100 step=2]"
    );
    assert_eq!(Marker::find(&noted(&m)), Some(m.clone()));
    assert_eq!(m.percent(), 50);
    assert_eq!(Marker::find("alice"), None);
    assert_eq!(Marker::find("[canary nonsense]"), None);
}

#[test]
fn dentries_are_replaced_appended_and_removed() {
    let d = |p: &str, x: &str| Dentry::new(p, x);
    let dtab = vec![
        d("/a", "/x"),
        d("/host/world", "/v0"),
        d("/host/world", "/v1"),
    ];
    let new = with_dentry(&dtab, "/host/world", Some(d("/host/world", "/v2")));
    assert_eq!(new[2], d("/host/world", "/v2"));
    assert_eq!(new[1], d("/host/world", "/v0"));
    assert_eq!(with_dentry(&dtab, "/host/world", None).len(), 2);
    assert_eq!(with_dentry(&dtab, "/b", Some(d("/b", "/y"))).len(), 4);
    assert_eq!(destination("/v1", "/v2", 5), "95 * /v1 & 5 * /v2");
    assert_eq!(destination("/v1", "/v2", 100), "/v2");
}

#[test]
fn state_from_history() {
    let base = [("/svc", "/host"), ("/host/world", "/srv/v1")];
    let step1 = [("/svc", "/host"), ("/host/world", "99*/srv/v1 & /srv/v2")];
    let mut h = vec![
        entry("v1", "alice", &base),
        entry("v2", &noted(&marker(Action::Start, 1)), &step1),
    ];
    let State::Running(r) = state("ns", &h, "/host/world").unwrap() else {
        panic!("running");
    };
    assert_eq!(r.original, Some(Dentry::new("/host/world", "/srv/v1")));
    assert_eq!(r.start_version, "v2");
    assert_eq!(r.edited, None);

    // Another dentry edited: still the canary's.
    let other = [("/svc", "/host2"), ("/host/world", "99*/srv/v1 & /srv/v2")];
    h.push(entry("v3", "bob", &other));
    let State::Running(r) = state("ns", &h, "/host/world").unwrap() else {
        panic!("running");
    };
    assert_eq!((r.edited, r.current_version.as_str()), (None, "v3"));

    // The canary's dentry edited: named.
    h.push(entry("v4", "carol", &[("/svc", "/host2")]));
    let State::Running(r) = state("ns", &h, "/host/world").unwrap() else {
        panic!("running");
    };
    let edit = r.edited.unwrap();
    assert_eq!(
        (edit.version.as_str(), edit.author.as_str(), edit.now),
        ("v4", "carol", None)
    );

    h.push(entry("v5", &noted(&marker(Action::Abort, 1)), &base));
    assert!(matches!(
        state("ns", &h, "/host/world").unwrap(),
        State::Over { .. }
    ));
    assert_eq!(state("ns", &h, "/other").unwrap(), State::None);
    assert_eq!(paths(&h), ["/host/world"]);
    assert!(
        state("ns", &h[1..2], "/host/world").is_err(),
        "start without the version before"
    );
}

#[test]
fn a_marker_namerd_would_drop_is_refused_before_writing() {
    let plan = |path: String| run::Plan {
        path,
        from: "/srv/world-v1".into(),
        to: "/srv/world-v2".into(),
        steps: vec![1, 5, 25, 50, 100],
        interval: std::time::Duration::ZERO,
        gate: None,
    };
    assert!(run::check_marker(&plan("/host/world".into())).is_ok());
    let long = format!("/host/{}", "w".repeat(200));
    let err = run::check_marker(&plan(long.clone())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "the canary's marker [canary promote path={long} from=/srv/world-v1"
        )),
        "{msg}"
    );
    assert!(
        msg.contains("namerd records at most 256 printable ASCII bytes"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 1);
}
