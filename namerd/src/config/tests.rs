//! The configuration file end to end: namerd's shapes parse, every error
//! names its field, and docs/namerd.md documents every field.

use std::path::PathBuf;

use l5d_runtime::config::{ServerSettings, reference};

use super::*;
use crate::store::Namespace;
use crate::store::k8s::K8sOptions;

#[test]
fn namerd_shaped_config() {
    let cfg = NamerdConfig::parse(
        "admin: {port: 9000}\n\
         storage:\n  kind: io.l5d.inMemory\n  namespaces:\n    internal: /svc => /host\n\
         interfaces:\n- kind: io.l5d.httpController\n  port: 4181\n",
    )
    .unwrap();
    assert_eq!(cfg.admin.port, 9000);
    let StorageConfig::InMemory { namespaces } = &cfg.storage else {
        panic!("expected in-memory storage");
    };
    let internal = Namespace::new("internal").unwrap();
    assert_eq!(namespaces[&internal].show(), "/svc=>/host");
    assert_eq!(cfg.http_controller().unwrap().port, 4181);
    assert_eq!(cfg.http_controller().unwrap().ip, AdminConfig::LOOPBACK);
}

#[test]
fn tracing_is_off_unless_configured() {
    let base = "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\n";
    assert_eq!(NamerdConfig::parse(base).unwrap().tracing, None);
    let on = format!(
        "{base}telemetry: [{{kind: io.l5d.prometheus}}, {{kind: io.l5d.opentelemetry, sampleRate: 0.5}}]"
    );
    let tracing = NamerdConfig::parse(&on).unwrap().tracing.unwrap();
    assert_eq!(
        (tracing.service_name.as_str(), tracing.sample_rate),
        ("namerd", 0.5)
    );
    assert_eq!(tracing.endpoint, "http://127.0.0.1:4317");
}

#[test]
fn interpreter_limits_default_and_parse() {
    let cfg = NamerdConfig::parse(
        "storage: {kind: io.l5d.inMemory}\n\
         interpreter: {maxBindingsPerClient: 7, maxStreamsPerClient: 8, bindBudget: 9}\n\
         interfaces: [{kind: io.l5d.mesh}]",
    )
    .unwrap();
    let opts = cfg.interpreter.options();
    assert_eq!(opts.clients.max_bindings_per_client, 7);
    assert_eq!(opts.clients.max_streams_per_client, 8);
    assert_eq!(opts.bind_budget, 9);
    assert_eq!(opts.max_key_bytes, 8 * 1024);
    let defaults = InterpreterConfig::default().options();
    assert_eq!(
        (defaults.max_bindings, defaults.idle_ttl.as_secs()),
        (10_000, 600)
    );
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            "interfaces: [{kind: io.l5d.httpController}]",
            "storage: missing; it is required",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\ntelemetry: [{kind: io.l5d.zipkin, host: z, port: 9410}]",
            "telemetry[0].kind: io.l5d.zipkin is replaced by io.l5d.opentelemetry",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\ntelemetry: [{kind: io.l5d.opentelemetry, sampleRate: 2}]",
            "telemetry[0].sampleRate: expected a fraction in [0, 1]",
        ),
        (
            "storage: {kind: io.l5d.zk}\ninterfaces: [{kind: io.l5d.httpController}]",
            "storage.kind: unsupported storage kind \"io.l5d.zk\"",
        ),
        (
            "storage: {kind: io.l5d.inMemory}",
            "interfaces: One or more interfaces must be specified",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: []",
            "interfaces: One or more interfaces must be specified",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, port: 70000}]",
            "interfaces[0].port:",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, prot: 1}]",
            "interfaces[0].prot: unknown field",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterpreter: {maxStreamsPerClient: -1}\ninterfaces: [{kind: io.l5d.mesh}]",
            "interpreter.maxStreamsPerClient:",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterpreter: {bindBudget: 0}\ninterfaces: [{kind: io.l5d.mesh}]",
            "interpreter.bindBudget: must be at least 1",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterpreter: {maxBindingsPerClient: 0}\ninterfaces: [{kind: io.l5d.mesh}]",
            "interpreter.maxBindingsPerClient: must be at least 1",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.thriftNameInterpreter}]",
            "interfaces[0].kind: unsupported interface kind \"io.l5d.thriftNameInterpreter\"",
        ),
        (
            "storage: {kind: io.l5d.postgres}\ninterfaces: [{kind: io.l5d.httpController}]",
            "storage.url: missing; it is required",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]\nnamers: [{kind: io.l5d.consul}]",
            "namers[0].kind:",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]\nrouters: []",
            "routers: unknown field",
        ),
        (
            "admin: {ip: not-an-ip}\nstorage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController}]",
            "admin.ip:",
        ),
        ("- a list", "(document): expected a mapping"),
        (
            "storage: {kind: io.l5d.inMemory, namespaces: {internal: \"/svc => \"}}\ninterfaces: [{kind: io.l5d.httpController}]",
            "storage.namespaces.internal: simple expected but end of input",
        ),
        (
            "storage: {kind: io.l5d.inMemory, namespaces: {\"a b\": /a=>/b}}\ninterfaces: [{kind: io.l5d.httpController}]",
            "storage.namespaces.a b: invalid dtab namespace",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh, idleTimeoutMs: 5}]",
            "interfaces[0].idleTimeoutMs: not supported on io.l5d.mesh",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, tls: {certPath: c, keyPath: k, protocols: [TLSv1.1]}}]",
            "interfaces[0].tls.protocols[0]: TLSv1.1 is refused",
        ),
        (
            "admin: {maxConnections: 0}\nstorage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]",
            "admin.maxConnections: must be positive",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\nnamers: [{kind: io.l5d.k8s.ingress, dst: \"not a path\"}]",
            "namers[0].dst:",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\nnamers: [{kind: io.l5d.k8s.ingress, ingressClass: \"\"}]",
            "namers[0].ingressClass: must not be empty",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\nnamers: [{kind: io.l5d.k8s.ingress, namespace: \"\"}]",
            "namers[0].namespace: must not be empty",
        ),
        (
            "storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.mesh}]\nnamers: [{kind: io.l5d.k8s.ingress, ingressClassAnnotation: x}]",
            "namers[0].ingressClassAnnotation: unknown field",
        ),
    ];
    for (text, want) in cases {
        let err = NamerdConfig::parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{text:?}: got {err:?}, want {want:?}"
        );
    }
}

/// The HTTP API is the write path: open writes beyond loopback are refused
/// unless the operator says so, and `auth` is checked field by field.
#[test]
fn http_controller_auth() {
    let parse = |controller: &str| {
        NamerdConfig::parse(&format!(
            "storage: {{kind: io.l5d.inMemory}}\n\
             interfaces:\n- {{kind: io.l5d.mesh}}\n- {{kind: io.l5d.httpController, {controller}}}"
        ))
    };
    let auth = "auth: {tokenFile: /t, permissions: {internal: {write: [deployer]}}}";
    for ok in [
        "ip: 127.0.0.1",
        "ip: \"::1\"",
        "ip: 0.0.0.0, allowUnauthenticatedWrites: true",
        &format!("ip: 0.0.0.0, {auth}"),
        &format!("ip: 0.0.0.0, {auth}, allowUnauthenticatedWrites: false"),
        "auth: {clientCertificates: {spiffe://e/ops: ops}, reads: restricted, permissions: {\"*\": {read: [\"*\"]}}}, \
         tls: {certPath: /c, keyPath: /k, caCertPath: /ca}",
    ] {
        parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let cfg = parse(&format!("ip: 0.0.0.0, {auth}")).unwrap();
    let auth_cfg = cfg.http_controller().unwrap().auth.as_ref().unwrap();
    assert_eq!(auth_cfg.reads, crate::auth::Reads::Open);
    assert_eq!(auth_cfg.token_file, Some(PathBuf::from("/t")));

    let cases = [
        (
            "ip: 0.0.0.0".to_string(),
            "interfaces[1].auth: missing: io.l5d.httpController listens on 0.0.0.0",
        ),
        (
            "ip: \"::\"".to_string(),
            "interfaces[1].auth: missing: io.l5d.httpController listens on ::",
        ),
        (
            format!("{auth}, allowUnauthenticatedWrites: true"),
            "interfaces[1].allowUnauthenticatedWrites: cannot be true with auth",
        ),
        (
            "auth: {permissions: {}}".to_string(),
            "interfaces[1].auth: configure tokenFile or clientCertificates",
        ),
        (
            "auth: {clientCertificates: {spiffe://e/ops: ops}, permissions: {}}, \
             tls: {certPath: /c, keyPath: /k}"
                .to_string(),
            "interfaces[1].auth.clientCertificates: needs tls with caCertPath",
        ),
        (
            "auth: {tokenFile: /t}".to_string(),
            "interfaces[1].auth.permissions: missing; it is required",
        ),
        (
            "auth: {tokenFile: /t, permissions: {}, tokenfile: /u}".to_string(),
            "interfaces[1].auth.tokenfile: unknown field",
        ),
        (
            "auth: {tokenFile: /t, permissions: {\"in ternal\": {write: [a]}}}".to_string(),
            "interfaces[1].auth.permissions.in ternal: invalid dtab namespace",
        ),
        (
            "auth: {tokenFile: /t, permissions: {internal: {write: [\"de ployer\"]}}}".to_string(),
            "interfaces[1].auth.permissions.internal.write[0]: invalid identity",
        ),
        (
            "auth: {tokenFile: /t, permissions: {internal: {wirte: [a]}}}".to_string(),
            "interfaces[1].auth.permissions.internal.wirte: unknown field",
        ),
        (
            "auth: {tokenFile: /t, reads: closed, permissions: {}}".to_string(),
            "interfaces[1].auth.reads: unknown variant `closed`",
        ),
    ];
    for (controller, want) in cases {
        let err = parse(&controller).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{controller}: got {err:?}, want {want:?}"
        );
    }
}

#[test]
fn k8s_storage_keys_and_defaults() {
    let parse = |storage: &str| {
        NamerdConfig::parse(&format!(
            "storage: {storage}\ninterfaces: [{{kind: io.l5d.httpController}}]"
        ))
    };
    let cfg = parse("{kind: io.l5d.k8s}").unwrap();
    let StorageConfig::Kubernetes(opts) = cfg.storage else {
        panic!("expected k8s storage");
    };
    assert_eq!(opts, K8sOptions::default());
    let cfg =
        parse("{kind: io.l5d.k8s, port: 8002, namespace: linkerd, idleTimeoutSecs: 30}").unwrap();
    let StorageConfig::Kubernetes(opts) = cfg.storage else {
        panic!("expected k8s storage");
    };
    assert_eq!(
        opts.connection,
        crate::k8s::Connection::Proxy {
            host: "localhost".into(),
            port: 8002
        }
    );
    assert_eq!(
        (opts.namespace.as_str(), opts.idle_timeout.as_secs()),
        ("linkerd", 30)
    );
    let cases = [
        (
            "{kind: io.l5d.k8s, host: h, kubeconfig: /k}",
            "storage.kubeconfig:",
        ),
        (
            "{kind: io.l5d.k8s, labelSelector: \"a!=b\"}",
            "storage.labelSelector:",
        ),
        (
            "{kind: io.l5d.k8s, namePrefix: Dtab-}",
            "storage.namePrefix:",
        ),
        ("{kind: io.l5d.k8s, dataKey: \"a/b\"}", "storage.dataKey:"),
        (
            "{kind: io.l5d.k8s, idleTimeoutSecs: 2}",
            "storage.idleTimeoutSecs:",
        ),
        ("{kind: io.l5d.k8s, hots: x}", "storage.hots: unknown field"),
    ];
    for (storage, want) in cases {
        let err = parse(storage).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{storage}: got {err:?}, want {want:?}"
        );
    }
}

#[test]
fn storage_history_is_read_for_every_kind() {
    let parse = |storage: &str| {
        NamerdConfig::parse(&format!(
            "storage: {storage}\ninterfaces: [{{kind: io.l5d.httpController}}]"
        ))
    };
    let cfg = parse("{kind: io.l5d.inMemory}").unwrap();
    assert_eq!(cfg.history, crate::store::Retention::default());
    for kind in ["io.l5d.inMemory", "io.l5d.sqlite", "io.l5d.k8s"] {
        let cfg = parse(&format!(
            "{{kind: {kind}, history: {{maxVersions: 5, maxAgeDays: 2}}}}"
        ))
        .unwrap();
        assert_eq!(cfg.history.max_versions, 5, "{kind}");
        assert_eq!(cfg.history.max_age.as_secs(), 2 * 24 * 3600, "{kind}");
    }
    let cases = [
        (
            "{kind: io.l5d.sqlite, history: {maxVersions: 0}}",
            "storage.history.maxVersions: must be at least 1",
        ),
        (
            "{kind: io.l5d.sqlite, history: {maxAgeDays: 0}}",
            "storage.history.maxAgeDays: must be at least 1",
        ),
        (
            "{kind: io.l5d.sqlite, history: {maxVersion: 3}}",
            "storage.history.maxVersion: unknown field",
        ),
        (
            "{kind: io.l5d.sqlite, history: {maxVersions: -1}}",
            "storage.history.maxVersions:",
        ),
    ];
    for (storage, want) in cases {
        let err = parse(storage).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{storage}: got {err:?}, want {want:?}"
        );
    }
}

#[test]
fn json_is_accepted() {
    let cfg = NamerdConfig::parse(
        r#"{"storage": {"kind": "io.l5d.sqlite", "path": "/tmp/x.db"}, "interfaces": [{"kind": "io.l5d.httpController"}]}"#,
    )
    .unwrap();
    assert!(
        matches!(cfg.storage, StorageConfig::Sqlite { ref path, .. } if path == &PathBuf::from("/tmp/x.db"))
    );
}

/// Every field the parser reads, each of which docs/namerd.md must have a
/// row for (besides the admin block's).
const DOCUMENTED: &[&str] = &[
    "storage",
    "storage.kind",
    "storage.path",
    "storage.url",
    "storage.pollIntervalMs",
    "storage.namespaces",
    "storage.experimental",
    "storage.host",
    "storage.port",
    "storage.kubeconfig",
    "storage.namespace",
    "storage.namePrefix",
    "storage.labelSelector",
    "storage.dataKey",
    "storage.idleTimeoutSecs",
    "storage.history",
    "storage.history.maxVersions",
    "storage.history.maxAgeDays",
    "namers",
    "namers[].kind",
    "namers[].prefix",
    "namers[].experimental",
    "namers[].rootDir",
    "namers[].rescanIntervalMs",
    "namers[].pattern",
    "namers[].name",
    "namers[].host",
    "namers[].port",
    "namers[].kubeconfig",
    "namers[].labelSelector",
    "namers[].ingressClass",
    "namers[].namespace",
    "namers[].ignoreDefaultBackends",
    "namers[].dst",
    "namers[].transformers",
    "namers[].transformers[].kind",
    "namers[].transformers[].prefix",
    "namers[].transformers[].namespace",
    "namers[].transformers[].service",
    "namers[].transformers[].port",
    "namers[].transformers[].hostNetwork",
    "namers[].transformers[].k8sHost",
    "namers[].transformers[].k8sPort",
    "namers[].transformers[].kubeconfig",
    "interpreter.maxBindings",
    "interpreter.idleTtlSecs",
    "interpreter.maxBindingsPerClient",
    "interpreter.maxStreamsPerClient",
    "interpreter.maxKeyBytes",
    "interpreter.bindBudget",
    "interfaces",
    "interfaces[].kind",
    "interfaces[].ip",
    "interfaces[].port",
    "interfaces[].maxBodyBytes",
    "interfaces[].auth",
    "interfaces[].auth.tokenFile",
    "interfaces[].auth.clientCertificates",
    "interfaces[].auth.reads",
    "interfaces[].auth.permissions",
    "interfaces[].allowUnauthenticatedWrites",
    "interfaces[].keepAliveIntervalMs",
    "interfaces[].keepAliveTimeoutMs",
    "interfaces[].maxConcurrentStreams",
    "telemetry",
];

/// The configuration reference in docs/namerd.md cannot drift: its
/// example parses, and every field the parser reads has a row.
#[test]
fn the_reference_documents_every_field() {
    let doc = include_str!("../../../docs/namerd.md");
    let server: Vec<String> = ["admin", "interfaces[]"]
        .iter()
        .flat_map(|block| {
            ServerSettings::KEYS
                .iter()
                .map(move |key| format!("{block}.{key}"))
        })
        .collect();
    let fields: Vec<&str> = DOCUMENTED
        .iter()
        .copied()
        .chain(server.iter().map(String::as_str))
        .collect();
    reference::check(doc, |text| NamerdConfig::parse(text).map(drop), &fields);
}
