//! The configuration: Linkerd 1.x's shapes are accepted, and every
//! unusable configuration is refused with the field it is about.

use std::time::Duration;

use l5d_dtab::Prefix;
use l5d_runtime::config::reference;
use linkerd_proxy::config::{
    BalancerKind, HeaderSource, IdentifierConfig, InterpreterConfig, Protocol, ProxyConfig,
    TransformerConfig,
};
use linkerd_proxy::overrides::AddressOverrides;

#[test]
fn the_servicemesh_shape_parses() {
    let config = ProxyConfig::from_yaml(
        r#"
admin: {ip: 0.0.0.0, port: 9990}
telemetry:
- kind: io.l5d.prometheus
usage: {enabled: false}
routers:
- protocol: http
  label: http-outgoing
  dtab: /svc => /$/inet/127.1/8080
  servers: [{ip: 0.0.0.0, port: 4140}]
  interpreter:
    kind: io.l5d.mesh
    dst: /$/inet/namerd.linkerd.svc.cluster.local/4321
    root: /internal
    retry: {baseSeconds: 1, maxSeconds: 10}
  client: {loadBalancer: {kind: ewma, decayTimeMs: 5000}, connectTimeoutMs: 500}
  service: {totalTimeoutMs: 2000}
- protocol: http
  label: http-incoming
  servers: [{port: 4141, clearContext: true}]
  interpreter:
    kind: io.l5d.mesh
    dst: /$/inet/namerd/4321
    root: /internal
    transformers: [{kind: io.l5d.k8s.localnode, hostNetwork: true}]
- protocol: h2
  label: grpc-outgoing
  servers: [{port: 4340}]
  identifier: {kind: io.l5d.header.path, segments: 1}
  client: {loadBalancer: {kind: roundRobin}}
"#,
    )
    .unwrap();
    assert_eq!(config.admin.port, 9990);
    let [out, inc, grpc] = &config.routers[..] else {
        panic!("three routers")
    };
    assert_eq!(out.protocol, Protocol::Http);
    assert_eq!(out.dst_prefix.show(), "/svc");
    assert_eq!(
        out.identifiers,
        [IdentifierConfig::HeaderToken {
            header: HeaderSource::Named(http::header::HOST)
        }]
    );
    let any_id = l5d_dtab::Path::read("/#/io.l5d.fs/web").unwrap();
    let out_client = out.client.resolve(&any_id);
    assert_eq!(
        out_client.load_balancer,
        BalancerKind::Ewma {
            decay: Duration::from_secs(5)
        }
    );
    assert_eq!(out_client.connect_timeout, Duration::from_millis(500));
    assert_eq!(out.service.total_timeout, Some(Duration::from_secs(2)));
    assert!(
        matches!(&out.interpreter, InterpreterConfig::Mesh { root, .. } if root.show() == "/internal")
    );
    assert!(inc.servers[0].clear_context);
    assert_eq!(inc.servers[0].ip.to_string(), "127.0.0.1");
    assert_eq!(
        inc.interpreter.transformers(),
        [TransformerConfig::LocalNode { host_network: true }]
    );
    assert_eq!(grpc.protocol, Protocol::H2);
    // Loop detection: 20 for HTTP/1.1 and h2 alike (Linkerd: 1000 and 10).
    assert_eq!(grpc.servers[0].max_call_depth, 20);
    assert_eq!(out.servers[0].max_call_depth, 20);
    assert_eq!(
        grpc.identifiers,
        [IdentifierConfig::HeaderPath {
            header: HeaderSource::Path,
            segments: Some(1)
        }]
    );
    assert_eq!(
        grpc.client.resolve(&any_id).load_balancer,
        BalancerKind::RoundRobin
    );
}

#[test]
fn defaults_follow_linkerd() {
    let config = ProxyConfig::from_yaml("routers: [{protocol: h2, servers: [{}]}]").unwrap();
    let router = &config.routers[0];
    assert_eq!(router.label, "h2");
    assert_eq!(router.servers[0].port, 4142);
    assert_eq!(config.admin.addr().to_string(), "127.0.0.1:9990");
    assert_eq!(
        router.identifiers,
        [IdentifierConfig::HeaderToken {
            header: HeaderSource::Authority
        }]
    );
    assert_eq!(router.binding_timeout, Duration::from_secs(10));
    assert!(matches!(
        router.interpreter,
        InterpreterConfig::Default { .. }
    ));
    assert_eq!(
        router.servers[0].allow_override_to_addresses,
        AddressOverrides::Refused
    );
}

#[test]
fn servers_may_allow_overrides_to_addresses() {
    let config = ProxyConfig::from_yaml(
        r#"
routers:
- protocol: http
  servers:
  - {port: 1, allowOverrideToAddresses: true}
  - {port: 2, allowOverrideToAddresses: false}
  - {port: 3, allowOverrideToAddresses: ["/$/inet/127.0.0.1/*", /$/inet/backend]}
"#,
    )
    .unwrap();
    let got: Vec<_> = config.routers[0]
        .servers
        .iter()
        .map(|s| s.allow_override_to_addresses.clone())
        .collect();
    let prefixes = ["/$/inet/127.0.0.1/*", "/$/inet/backend"]
        .iter()
        .map(|p| Prefix::read(p).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            AddressOverrides::Any,
            AddressOverrides::Refused,
            AddressOverrides::Prefixes(prefixes)
        ]
    );
}

/// Each bad configuration, the field the error must name, and a fragment
/// of its message.
#[test]
fn bad_configurations_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("routers: []", "routers", "at least one"),
        ("admin: {port: 1}\nrouter: []", "router", "unknown field"),
        (
            "routers: [{servers: [{}]}]",
            "routers[0].protocol",
            "missing",
        ),
        (
            "routers: [{protocol: thrift, servers: [{}]}]",
            "routers[0].protocol",
            "not supported",
        ),
        (
            "routers: [{protocol: http}]",
            "routers[0].servers",
            "missing",
        ),
        (
            "routers: [{protocol: http, servers: [{port: 99999}]}]",
            "routers[0].servers[0].port",
            "",
        ),
        (
            "routers: [{protocol: http, servers: [{allowOverrideToAddresses: maybe}]}]",
            "routers[0].servers[0].allowOverrideToAddresses",
            "expected true, false or a list",
        ),
        (
            "routers: [{protocol: http, servers: [{allowOverrideToAddresses: []}]}]",
            "routers[0].servers[0].allowOverrideToAddresses",
            "expected true, false or a list",
        ),
        (
            "routers: [{protocol: http, servers: [{allowOverrideToAddresses: [/svc/a]}]}]",
            "routers[0].servers[0].allowOverrideToAddresses[0]",
            "/$/",
        ),
        (
            "routers: [{protocol: http, servers: [{allowOverrideToAddresses: ['/$/inet/a b']}]}]",
            "routers[0].servers[0].allowOverrideToAddresses[0]",
            "",
        ),
        (
            "routers: [{protocol: http, servers: [{clearContext: true, allowOverrideToAddresses: true}]}]",
            "routers[0].servers[0].allowOverrideToAddresses",
            "clearContext",
        ),
        (
            "routers: [{protocol: http, servers: [{prot: 1}]}]",
            "routers[0].servers[0].prot",
            "unknown field `prot`",
        ),
        (
            "routers: [{protocol: http, servers: [{}], dtab: '/a =>'}]",
            "routers[0].dtab",
            "",
        ),
        (
            "routers: [{protocol: http, servers: [{}], identifier: {kind: io.l5d.nope}}]",
            "routers[0].identifier.kind",
            "unknown identifier",
        ),
        (
            "routers: [{protocol: h2, servers: [{}], identifier: [{kind: io.l5d.header.token}, {kind: io.l5d.path}]}]",
            "routers[0].identifier[1].kind",
            "HTTP/1.1",
        ),
        (
            "routers: [{protocol: http, servers: [{}], interpreter: {kind: io.l5d.namerd, dst: /$/inet/a/1}}]",
            "routers[0].interpreter.kind",
            "not supported",
        ),
        (
            "routers: [{protocol: http, servers: [{}], interpreter: {kind: io.l5d.mesh, dst: namerd:4321}}]",
            "routers[0].interpreter.dst",
            "/$/inet/<host>/<port>",
        ),
        (
            "routers: [{protocol: http, servers: [{}], interpreter: {kind: io.l5d.mesh, dst: /$/inet/a/1, root: /a/b}}]",
            "routers[0].interpreter.root",
            "single-segment",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {loadBalancer: {kind: aperture}}}]",
            "routers[0].client.loadBalancer.kind",
            "not supported",
        ),
        (
            "routers: [{protocol: http, servers: [{}], interpreter: {kind: default, transformers: [{kind: io.l5d.port, port: 1}]}}]",
            "routers[0].interpreter.transformers[0].kind",
            "namerd",
        ),
        (
            "routers: [{protocol: http, label: a, servers: [{}]}, {protocol: h2, label: a, servers: [{}]}]",
            "routers[1].label",
            "duplicate",
        ),
        (
            "routers: [{protocol: http, servers: [{port: 4140}]}, {protocol: h2, servers: [{port: 4140}]}]",
            "routers[1].servers[0].port",
            "already used",
        ),
        (
            "telemetry: [{kind: io.l5d.zipkin}]\nrouters: [{protocol: http, servers: [{}]}]",
            "telemetry[0].kind",
            "unsupported",
        ),
        (
            "namers: [{kind: io.l5d.fs, rootDir: /x}]\nrouters: [{protocol: http, servers: [{}]}]",
            "namers",
            "namerd",
        ),
    ];
    for (text, field, fragment) in cases {
        let err = ProxyConfig::from_yaml(text).expect_err(text);
        assert_eq!(err.field, *field, "{text}: {err}");
        assert!(err.message.contains(fragment), "{text}: {err}");
    }
}

/// docs/linkerd-proxy.md documents every field, and its full example is a
/// valid configuration.
#[test]
fn the_reference_documents_every_field() {
    let doc = include_str!("../../docs/linkerd-proxy.md");
    let fields = [
        "telemetry",
        "usage",
        "namers",
        "routers",
        "routers[].protocol",
        "routers[].label",
        "routers[].servers",
        "routers[].servers[].ip",
        "routers[].servers[].port",
        "routers[].servers[].clearContext",
        "routers[].servers[].allowOverrideToAddresses",
        "routers[].servers[].maxConcurrentRequests",
        "routers[].servers[].headerReadTimeoutMs",
        "routers[].servers[].maxHeaders",
        "routers[].servers[].maxConcurrentStreamsPerConnection",
        "routers[].servers[].maxPendingResets",
        "routers[].servers[].maxHeaderListBytes",
        "routers[].servers[].maxCallDepth",
        "routers[].identifier",
        "routers[].dstPrefix",
        "routers[].dtab",
        "routers[].interpreter",
        "routers[].bindingTimeoutMs",
        "routers[].maxHeadersKB",
        "routers[].maxInitialLineKB",
        "routers[].client.kind",
        "routers[].client.loadBalancer.kind",
        "routers[].client.loadBalancer.decayTimeMs",
        "routers[].client.loadBalancer.maxEffort",
        "routers[].client.loadBalancer.enableProbation",
        "routers[].client.connectTimeoutMs",
        "routers[].client.hostConnectionPool.idleTimeMs",
        "routers[].client.hostConnectionPool.maxIdle",
        "routers[].service.kind",
        "routers[].service.totalTimeoutMs",
    ];
    reference::check(doc, |text| ProxyConfig::from_yaml(text).map(drop), &fields);
    for kind in [
        "io.l5d.header.token",
        "io.l5d.methodAndHost",
        "io.l5d.path",
        "io.l5d.header",
        "io.l5d.header.path",
        "io.l5d.static",
        "io.l5d.mesh",
        "io.l5d.k8s.localnode",
    ] {
        assert!(doc.contains(&format!("`{kind}`")), "no entry for {kind}");
    }
}
