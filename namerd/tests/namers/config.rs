//! The `namers:` configuration: errors name their field; namers build.

use std::collections::BTreeSet;
use std::time::Duration;

use namerd::config::{BuildContext, NamerKind, TransformerKind, build_namers, parse_namers};
use serde_json::{Value, json};

use super::support::{FakeDns, bound, leaf, path};

fn parse_err(value: Value) -> (String, String) {
    match parse_namers(value.clone()) {
        Ok(_) => panic!("{value} parsed"),
        Err(e) => (e.field, e.message),
    }
}

#[test]
fn errors_name_the_field() {
    let fs = |extra: Value| {
        let mut obj = json!({"kind": "io.l5d.fs", "rootDir": "/disco"});
        obj.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        obj
    };
    let port = |t: Value| fs(json!({"transformers": [t]}));
    let cases = [
        (json!({"kind": "io.l5d.fs"}), "namers", "expected a list"),
        (
            json!([{"kind": "io.l5d.fs"}]),
            "namers[0].rootDir",
            "missing; it is required",
        ),
        (
            json!([{"rootDir": "/x"}]),
            "namers[0].kind",
            "missing; it is required",
        ),
        (
            json!([fs(json!({"bogus": 1}))]),
            "namers[0].bogus",
            "unknown field `bogus`",
        ),
        (
            json!([fs(json!({"prefix": "not a path"}))]),
            "namers[0].prefix",
            "",
        ),
        (
            json!([fs(json!({"prefix": 7}))]),
            "namers[0].prefix",
            "invalid type",
        ),
        (
            json!([fs(json!({"experimental": "yes"}))]),
            "namers[0].experimental",
            "invalid type",
        ),
        (
            json!([fs(json!({"rescanIntervalMs": 0}))]),
            "namers[0].rescanIntervalMs",
            "must be at least 1",
        ),
        (
            json!([{"kind": "io.l5d.k8s.external"}]),
            "namers[0].kind",
            "unsupported namer kind \"io.l5d.k8s.external\"; supported Kubernetes kinds",
        ),
        (
            json!([{"kind": "io.l5d.k8s", "hots": "x"}]),
            "namers[0].hots",
            "unknown field",
        ),
        (
            json!([{"kind": "io.l5d.k8s", "host": "h", "kubeconfig": "/k"}]),
            "namers[0].kubeconfig",
            "not both",
        ),
        (
            json!([{"kind": "io.l5d.k8s", "labelSelector": "a=b"}]),
            "namers[0].labelSelector",
            "expected a label key",
        ),
        (
            json!([{"kind": "io.l5d.k8s", "port": "x"}]),
            "namers[0].port",
            "invalid type",
        ),
        (
            json!([{"kind": "io.l5d.consul"}]),
            "namers[0].kind",
            "unsupported namer kind \"io.l5d.consul\"",
        ),
        (
            json!([{"kind": "io.l5d.serversets"}]),
            "namers[0].kind",
            "unsupported namer kind \"io.l5d.serversets\"",
        ),
        (
            json!([fs(json!({})), fs(json!({}))]),
            "namers[1].prefix",
            "Namers must not have overlapping prefixes: /#/io.l5d.fs & /#/io.l5d.fs",
        ),
        (
            json!([fs(json!({"prefix": "/a/b"})), fs(json!({"prefix": "/a"}))]),
            "namers[1].prefix",
            "Namers must not have overlapping prefixes: /#/a/b & /#/a",
        ),
        (
            json!([{"kind": "io.l5d.rewrite", "pattern": "/{a}", "name": "/b"}]),
            "namers[0].prefix",
            "The 'prefix' property is required for the io.l5d.rewrite namer.",
        ),
        (
            json!([{"kind": "io.l5d.rewrite", "prefix": "/rw", "pattern": "/{a}"}]),
            "namers[0].name",
            "missing; it is required",
        ),
        (
            json!([{"kind": "io.l5d.rewrite", "prefix": "/rw", "pattern": "/{a}", "name": "/{b}"}]),
            "namers[0].name",
            "does not capture",
        ),
        (
            json!([{"kind": "io.l5d.rewrite", "prefix": "/rw", "pattern": "/a//b", "name": "/b"}]),
            "namers[0].pattern",
            "empty segment",
        ),
        (
            json!([fs(json!({"transformers": {}}))]),
            "namers[0].transformers",
            "expected a list",
        ),
        (
            json!([port(json!({"kind": "io.l5d.port"}))]),
            "namers[0].transformers[0].port",
            "missing; it is required",
        ),
        (
            json!([port(json!({"kind": "io.l5d.port", "port": 0}))]),
            "namers[0].transformers[0].port",
            "must be 1-65535",
        ),
        (
            json!([port(json!({"kind": "io.l5d.port", "port": 70000}))]),
            "namers[0].transformers[0].port",
            "",
        ),
        (
            json!([port(json!({"kind": "io.l5d.localhost", "port": 1}))]),
            "namers[0].transformers[0].port",
            "unknown field",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.replace", "path": "not a path"})
            )]),
            "namers[0].transformers[0].path",
            "",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.const", "path": "/$/io.nope/x"})
            )]),
            "namers[0].transformers[0].path",
            "Unknown namer: io.nope",
        ),
        (
            json!([port(json!({"kind": "io.l5d.k8s.localnode"}))]),
            "namers[0].transformers[0].kind",
            "supported Kubernetes kinds",
        ),
        (
            json!([port(json!({"kind": "io.l5d.k8s.daemonset"}))]),
            "namers[0].transformers[0].namespace",
            "missing; it is required",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.k8s.daemonset", "namespace": "linkerd", "service": "l5d"})
            )]),
            "namers[0].transformers[0].port",
            "missing; it is required",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.k8s.daemonset", "namespace": "linkerd", "service": "l5d", "port": 4141})
            )]),
            "namers[0].transformers[0].port",
            "invalid type",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.k8s.daemonset", "namespace": "linkerd", "service": "l5d", "port": "http-incoming", "host": "x"})
            )]),
            "namers[0].transformers[0].host",
            "unknown field",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.k8s.daemonset", "namespace": "linkerd", "service": "", "port": "http-incoming"})
            )]),
            "namers[0].transformers[0].service",
            "non-empty",
        ),
        (
            json!([port(
                json!({"kind": "io.l5d.k8s.daemonset", "namespace": "a", "service": "b", "port": "c", "k8sPort": 8001, "kubeconfig": "/k"})
            )]),
            "namers[0].transformers[0].kubeconfig",
            "not both",
        ),
        (
            json!([port(json!({"kind": "io.l5d.ec2Host"}))]),
            "namers[0].transformers[0].kind",
            "unsupported transformer kind \"io.l5d.ec2Host\"",
        ),
    ];
    for (value, field, message) in cases {
        let (got_field, got_message) = parse_err(value.clone());
        assert_eq!(got_field, field, "{value}: {got_message}");
        assert!(got_message.contains(message), "{value}: {got_message}");
    }
}

#[test]
fn defaults_and_kinds() {
    let namers = parse_namers(json!([
        {"kind": "io.l5d.fs", "rootDir": "/disco", "experimental": true, "transformers": [
            {"kind": "io.l5d.port", "port": 4141},
            {"kind": "io.l5d.localhost", "prefix": "/local"},
            {"kind": "io.l5d.specificHost", "host": "node.test"},
            {"kind": "io.l5d.replace", "path": "/$/inet/127.0.0.1/1"},
            {"kind": "io.l5d.const", "path": "/$/nil"},
        ]},
        {"kind": "io.l5d.fs", "prefix": "/other", "rootDir": "/x", "rescanIntervalMs": 500, "transformers": null},
        {"kind": "io.l5d.rewrite", "prefix": "/portNsSvcToK8s", "pattern": "/{port}/{ns}/{svc}", "name": "/k8s/{ns}/{port}/{svc}"},
    ]))
    .unwrap();
    let prefixes: Vec<String> = namers.iter().map(|n| n.prefix.show()).collect();
    assert_eq!(prefixes, ["/#/io.l5d.fs", "/#/other", "/#/portNsSvcToK8s"]);
    assert_eq!(
        namers[0].kind,
        NamerKind::Fs {
            root_dir: "/disco".into(),
            rescan_interval: Duration::from_secs(10)
        }
    );
    assert_eq!(
        namers[1].kind,
        NamerKind::Fs {
            root_dir: "/x".into(),
            rescan_interval: Duration::from_millis(500)
        }
    );
    let kinds: Vec<&TransformerKind> = namers[0].transformers.iter().map(|t| &t.kind).collect();
    assert_eq!(
        kinds,
        [
            &TransformerKind::Port(4141),
            &TransformerKind::Localhost,
            &TransformerKind::SpecificHost("node.test".into()),
            &TransformerKind::Replace(path("/$/inet/127.0.0.1/1")),
            &TransformerKind::Const(path("/$/nil")),
        ]
    );
    assert_eq!(namers[0].transformers[1].prefix, Some(path("/local")));
    assert_eq!(namers[0].transformers[2].field, "namers[0].transformers[2]");
    assert!(namers[1].transformers.is_empty());
    assert_eq!(parse_namers(Value::Null).unwrap(), Vec::new());
}

#[tokio::test]
async fn namers_build_with_their_transformers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web"), "10.0.0.1 8080\n10.0.0.2 8080\n").unwrap();
    let configs = parse_namers(json!([
        {"kind": "io.l5d.fs", "rootDir": dir.path(), "transformers": [
            {"kind": "io.l5d.port", "port": 4141},
            {"kind": "io.l5d.localhost"},
        ]},
        {"kind": "io.l5d.rewrite", "prefix": "/rw", "pattern": "/{a}", "name": "/b/{a}"},
    ]))
    .unwrap();
    let ctx = BuildContext {
        local_ips: Some(BTreeSet::from(["10.0.0.2".parse().unwrap()])),
        ..BuildContext::default()
    };
    let namers = build_namers(&configs, &ctx).await.unwrap();
    let fs = &namers[0];
    assert_eq!(fs.prefix(), &path("/#/io.l5d.fs"));
    assert_eq!(
        fs.lookup(&path("/web/x")),
        leaf(
            "/%/io.l5d.localhost/%/io.l5d.port/4141/#/io.l5d.fs/web",
            "/x"
        )
    );
    assert_eq!(
        *fs.resolve(&path("/web")).borrow(),
        bound(&["10.0.0.2:4141"])
    );
    assert_eq!(namers[1].prefix(), &path("/#/rw"));
}

#[tokio::test]
async fn build_errors_name_the_field() {
    let missing =
        parse_namers(json!([{"kind": "io.l5d.fs", "rootDir": "/nonexistent/disco"}])).unwrap();
    let err = missing[0].build().await.unwrap_err();
    assert_eq!(err.field, "namers[0].rootDir");
    assert!(err.message.contains("/nonexistent/disco"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let unresolvable = parse_namers(
        json!([{"kind": "io.l5d.fs", "rootDir": dir.path(), "transformers": [
            {"kind": "io.l5d.specificHost", "host": "nowhere.test"},
        ]}]),
    )
    .unwrap();
    let ctx = BuildContext {
        resolver: FakeDns::default().resolver(),
        local_ips: None,
    };
    let err = unresolvable[0].build_with(&ctx).await.unwrap_err();
    assert_eq!(err.field, "namers[0].transformers[0].host");
    assert!(err.message.contains("cannot resolve nowhere.test"), "{err}");
}
