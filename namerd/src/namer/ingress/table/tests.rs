use serde_json::{Value, json};

use super::*;

fn ingress(ns: &str, name: &str, created: &str, spec: Value) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": created},
        "spec": spec,
    }))
    .unwrap()
}

fn linkerd() -> Selection {
    Selection {
        class: "linkerd".into(),
        ignore_default_backends: false,
    }
}

fn svc(name: &str, port: Value) -> Value {
    json!({"service": {"name": name, "port": port}})
}

fn path(path: &str, kind: &str, backend: Value) -> Value {
    json!({"path": path, "pathType": kind, "backend": backend})
}

/// `(host, path) -> "service"` for every case, `None` for no route.
fn check(table: &Table, cases: &[(&str, &str, Option<&str>)]) {
    for (host, p, want) in cases {
        let segments: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let got = table
            .route(host, &segments)
            .map(|r| r.backend.service.as_str());
        assert_eq!(got, *want, "{host}{p}");
    }
}

#[test]
fn hosts_paths_and_default_backends_route_as_documented() {
    let web = ingress(
        "default",
        "web",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "linkerd",
        "defaultBackend": svc("fallback", json!({"number": 80})),
        "rules": [
            {"host": "web.example", "http": {"paths": [
                path("/", "Prefix", svc("web", json!({"name": "http"}))),
                path("/api", "Prefix", svc("api", json!({"name": "http"}))),
                path("/api/v2", "Exact", svc("api-v2", json!({"number": 8080}))),
                path("/legacy", "ImplementationSpecific", svc("legacy", json!({"name": "http"}))),
            ]}},
            {"host": "*.apps.example", "http": {"paths": [
                path("/", "Prefix", svc("apps", json!({"name": "http"}))),
            ]}},
            {"http": {"paths": [
                path("/status", "Prefix", svc("status", json!({"name": "http"}))),
            ]}},
        ]}),
    );
    let (table, problems) = Table::build([&web], &linkerd());
    assert_eq!(problems, []);
    check(
        &table,
        &[
            ("web.example", "/", Some("web")),
            ("web.example", "/index.html", Some("web")),
            ("web.example", "/api", Some("api")),
            ("web.example", "/api/users", Some("api")),
            ("web.example", "/apis", Some("web")),
            ("web.example", "/api/v2", Some("api-v2")),
            ("web.example", "/api/v2/", Some("api-v2")),
            ("web.example", "/api/v2/x", Some("api")),
            ("web.example", "/legacy/x", Some("legacy")),
            ("a.apps.example", "/x", Some("apps")),
            ("a.b.apps.example", "/x", Some("fallback")),
            ("apps.example", "/x", Some("fallback")),
            ("other.example", "/status/1", Some("status")),
            // The exact host has rules but none for this path: the rules
            // without a host are next.
            ("web.example", "/status", Some("web")),
            ("other.example", "/", Some("fallback")),
        ],
    );
    let backend = &table.route("web.example", &["api", "v2"]).unwrap().backend;
    assert_eq!(backend.port, PortSpec::Number(8080));
    assert_eq!(table.routes().count(), 7);
}

#[test]
fn classes_are_read_from_the_annotation_first_then_the_field() {
    let mut annotated = ingress(
        "a",
        "annotated",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "nginx", "defaultBackend": svc("x", json!({"number": 80}))}),
    );
    annotated.metadata.annotations =
        Some([(CLASS_ANNOTATION.to_string(), "linkerd".to_string())].into());
    let other = ingress(
        "a",
        "other",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "nginx", "defaultBackend": svc("y", json!({"number": 80}))}),
    );
    let unclassed = ingress(
        "a",
        "unclassed",
        "2024-01-01T00:00:00Z",
        json!({"defaultBackend": svc("z", json!({"number": 80}))}),
    );
    let (table, problems) = Table::build([&other, &unclassed, &annotated], &linkerd());
    assert_eq!(problems, []);
    assert_eq!(table.ingresses(), 1);
    check(&table, &[("any", "/", Some("x"))]);
}

#[test]
fn conflicts_go_to_the_oldest_ingress_then_by_namespace_and_name() {
    let rule = |svc_name: &str| {
        json!({"ingressClassName": "linkerd",
            "defaultBackend": svc(svc_name, json!({"number": 80})),
            "rules": [{"host": "h", "http": {"paths": [path("/a", "Prefix", svc(svc_name, json!({"number": 80})))]}}]})
    };
    let young = ingress("a", "young", "2024-02-01T00:00:00Z", rule("young"));
    let old_b = ingress("b", "old", "2024-01-01T00:00:00Z", rule("old-b"));
    let old_a = ingress("a", "old", "2024-01-01T00:00:00Z", rule("old-a"));
    // Whatever the order they are listed in.
    for order in [[&young, &old_b, &old_a], [&old_a, &young, &old_b]] {
        let (table, problems) = Table::build(order, &linkerd());
        check(
            &table,
            &[("h", "/a", Some("old-a")), ("x", "/", Some("old-a"))],
        );
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "Ingress b/old: spec.defaultBackend: unused, Ingress a/old (older) has the default backend",
                "Ingress b/old: spec.rules[0].http.paths[0]: unused, host \"h\" path \"/a\" is routed by Ingress a/old (older)",
                "Ingress a/young: spec.defaultBackend: unused, Ingress a/old (older) has the default backend",
                "Ingress a/young: spec.rules[0].http.paths[0]: unused, host \"h\" path \"/a\" is routed by Ingress a/old (older)",
            ]
        );
    }
    // Exact and Prefix on the same path are not a conflict.
    let exact = ingress(
        "c",
        "exact",
        "2024-03-01T00:00:00Z",
        json!({"ingressClassName": "linkerd", "rules": [{"host": "h", "http": {"paths": [path("/a", "Exact", svc("exact", json!({"number": 80})))]}}]}),
    );
    let (table, problems) = Table::build([&old_a, &exact], &linkerd());
    assert_eq!(problems, []);
    check(
        &table,
        &[("h", "/a", Some("exact")), ("h", "/a/b", Some("old-a"))],
    );
}

#[test]
fn bad_ingresses_are_reported_and_do_not_disturb_the_others() {
    let good = ingress(
        "a",
        "good",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "linkerd", "rules": [{"host": "good", "http": {"paths": [path("/", "Prefix", svc("good", json!({"name": "http"})))]}}]}),
    );
    let empty = ingress(
        "a",
        "empty",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "linkerd", "rules": [{"host": "nothing"}]}),
    );
    let bad = ingress(
        "a",
        "bad",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "linkerd", "rules": [{"host": "bad", "http": {"paths": [
            path("/re/.*", "ImplementationSpecific", svc("x", json!({"name": "http"}))),
            path("/p", "Prefix", json!({"resource": {"kind": "Bucket", "name": "b"}})),
            path("/q", "Prefix", svc("x", json!({}))),
            path("/r", "Prefix", svc("x", json!({"number": 70000}))),
            path("/s", "Regex", svc("x", json!({"number": 80}))),
            path("/ok", "Prefix", svc("ok", json!({"number": 80}))),
            path("/ok/", "Prefix", svc("dup", json!({"number": 80}))),
        ]}}]}),
    );
    let (table, problems) = Table::build([&good, &empty, &bad], &linkerd());
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "Ingress a/bad: spec.rules[0].http.paths[0]: path \"/re/.*\" looks like a Linkerd 1.x regular expression; ImplementationSpecific paths are prefixes here",
            "Ingress a/bad: spec.rules[0].http.paths[1]: the backend is a resource, not a Service; only Services are routed",
            "Ingress a/bad: spec.rules[0].http.paths[2]: the Service port needs a name or a number",
            "Ingress a/bad: spec.rules[0].http.paths[3]: port number 70000 is out of range",
            "Ingress a/bad: spec.rules[0].http.paths[4]: pathType \"Regex\" is not Exact, Prefix or ImplementationSpecific",
            "Ingress a/bad: spec.rules[0].http.paths[6]: unused, host \"bad\" path \"/ok/\" is routed by an earlier rule of this Ingress",
            "Ingress a/empty: no rule with paths and no default backend: routes nothing",
        ]
    );
    check(
        &table,
        &[
            ("good", "/x", Some("good")),
            ("bad", "/ok/1", Some("ok")),
            ("bad", "/p", None),
            ("nothing", "/", None),
        ],
    );
}

#[test]
fn default_backends_can_be_ignored() {
    let only_default = ingress(
        "a",
        "d",
        "2024-01-01T00:00:00Z",
        json!({"ingressClassName": "linkerd", "defaultBackend": svc("d", json!({"number": 80}))}),
    );
    let strict = Selection {
        ignore_default_backends: true,
        ..linkerd()
    };
    let (table, problems) = Table::build([&only_default], &strict);
    check(&table, &[("any", "/", None)]);
    assert_eq!(
        problems[0].message,
        "no rule with paths, and default backends are ignored: routes nothing"
    );
}
