use super::*;

fn parse(args: &[&str]) -> Result<Invocation, clap::Error> {
    let argv = std::iter::once("namerctl").chain(args.iter().copied());
    Cli::try_parse_from(argv)?.invocation()
}

#[test]
fn clap_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn commands_and_aliases() {
    let file = || Source::File("f.dtab".into());
    let cases: Vec<(&[&str], Action)> = vec![
        (&["dtab", "list"], Action::List),
        (&["dtab", "ls"], Action::List),
        (
            &["dtab", "get", "internal"],
            Action::Get {
                name: "internal".into(),
                pretty: true,
            },
        ),
        (
            &["dtab", "cat", "internal", "--pretty=false"],
            Action::Get {
                name: "internal".into(),
                pretty: false,
            },
        ),
        (
            &["dtab", "get", "--pretty", "internal"],
            Action::Get {
                name: "internal".into(),
                pretty: true,
            },
        ),
        (
            &["dtab", "new", "internal", "-"],
            Action::Create {
                name: "internal".into(),
                source: Source::Stdin,
            },
        ),
        (
            &["dtab", "create", "internal", "f.dtab"],
            Action::Create {
                name: "internal".into(),
                source: file(),
            },
        ),
        (
            &[
                "dtab",
                "up",
                "internal",
                "f.dtab",
                "--version",
                "AAAAAAAAAAE=",
            ],
            Action::Update {
                name: "internal".into(),
                source: file(),
                version: Some("AAAAAAAAAAE=".into()),
                force: false,
                dry_run: false,
            },
        ),
        (
            &["dtab", "update", "--force", "internal", "f.dtab"],
            Action::Update {
                name: "internal".into(),
                source: file(),
                version: None,
                force: true,
                dry_run: false,
            },
        ),
        (
            &["dtab", "rm", "internal"],
            Action::Delete {
                name: "internal".into(),
            },
        ),
        (
            &["dtab", "del", "internal"],
            Action::Delete {
                name: "internal".into(),
            },
        ),
        (
            &["dtab", "delete", "internal"],
            Action::Delete {
                name: "internal".into(),
            },
        ),
        (
            &["dtab", "history", "internal"],
            Action::History {
                name: "internal".into(),
            },
        ),
        (
            &["dtab", "rollback", "internal", "AAAAAAAAAAE="],
            Action::Rollback {
                name: "internal".into(),
                version: "AAAAAAAAAAE=".into(),
            },
        ),
    ];
    for (args, action) in cases {
        let got = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(got.action, action, "{args:?}");
        assert!(!got.json);
    }
}

#[test]
fn global_flags() {
    let got = parse(&[
        "--base-url",
        "http://a:1",
        "dtab",
        "--json",
        "get",
        "x",
        "--config",
        "c.yaml",
        "--timeout",
        "5",
        "--token-file",
        "/run/t",
    ])
    .unwrap();
    assert_eq!(got.base_url.as_deref(), Some("http://a:1"));
    assert_eq!(got.config, Some(PathBuf::from("c.yaml")));
    assert_eq!(got.timeout_secs, 5);
    assert_eq!(got.token_file, Some(PathBuf::from("/run/t")));
    assert!(got.json);
    let got = parse(&["dtab", "ls", "--json=true", "--base-url=http://b"]).unwrap();
    assert!(got.json);
    assert_eq!(got.base_url.as_deref(), Some("http://b"));
    assert!(!parse(&["dtab", "ls", "--json=false"]).unwrap().json);
}

#[test]
fn usage_errors_use_the_go_messages() {
    let cases: &[(&[&str], &str)] = &[
        (&["dtab", "list", "x"], "list does not take arguments"),
        (&["dtab", "get"], "get requires a name argument"),
        (&["dtab", "get", "a", "b"], "get requires a name argument"),
        (
            &["dtab", "create", "a"],
            "create requires a name and file path",
        ),
        (
            &["dtab", "update", "a"],
            "update requires a name and file path",
        ),
        (&["dtab", "delete"], "delete requires one argument"),
        (&["dtab", "rm", "a", "b"], "delete requires one argument"),
        (&["dtab", "create", "a", ""], "empty dtab path"),
        (&["dtab", "update", "a", ""], "empty dtab path"),
        (&["dtab", "get", ""], "empty dtab name"),
        (&["dtab", "history"], "history requires a name argument"),
        (
            &["dtab", "rollback", "a"],
            "rollback requires a name and a version",
        ),
    ];
    for (args, message) in cases {
        let err = parse(args).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
        let text = err.to_string();
        assert!(text.contains(message), "{args:?}: {text}");
    }
    let err = parse(&["dtab", "update", "a", "f", "--force", "--version", "v"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
}

#[test]
fn diff_explain_and_canary() {
    let got = parse(&[
        "dtab",
        "diff",
        "internal",
        "--version",
        "AAAAAAAAAAE=..AAAAAAAAAAI=",
    ])
    .unwrap();
    assert_eq!(
        got.action,
        Action::Diff {
            name: "internal".into(),
            against: Against::Versions("AAAAAAAAAAE=".into(), "AAAAAAAAAAI=".into()),
        }
    );
    let got = parse(&[
        "dtab",
        "explain",
        "internal",
        "/svc/world",
        "--dtab",
        "/a=>/b",
    ])
    .unwrap();
    assert_eq!(
        got.action,
        Action::Explain {
            name: "internal".into(),
            path: "/svc/world".into(),
            dtab: "/a=>/b".into(),
        }
    );
    let got = parse(&[
        "canary",
        "start",
        "internal",
        "--path",
        "/host/world",
        "--from",
        "/srv/v1",
        "--to",
        "/srv/v2",
        "--interval",
        "100ms",
    ])
    .unwrap();
    let Action::Canary(Canary::Start { plan, .. }) = got.action else {
        panic!("a canary start");
    };
    assert_eq!(plan.steps, [1, 5, 25, 50, 100]);
    assert_eq!(plan.interval, std::time::Duration::from_millis(100));
    for steps in ["5,1,100", "1,50", "0,100"] {
        let err = parse(&[
            "canary", "start", "n", "--path", "/a", "--from", "/b", "--to", "/c", "--steps", steps,
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{steps}");
    }
    let err = parse(&["canary", "abort", "n", "--path", "nope"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}
