//! The configuration: Linkerd 1.x's shapes are accepted, and every
//! unusable configuration is refused with the field it is about.

use std::time::Duration;

use l5d_dtab::Prefix;
use l5d_runtime::config::{ServerSettings, reference};
use l5d_runtime::tls::TlsProtocol;
use linkerd_proxy::config::{
    AccrualConfig, AccrualPolicy, BackoffConfig, BalancerKind, HeaderSource, IdentifierConfig,
    InterpreterConfig, Protocol, ProxyConfig, TransformerConfig,
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
    let any_name = l5d_dtab::Path::read("/svc/web").unwrap();
    assert_eq!(
        out.service.resolve(&any_name).total_timeout,
        Some(Duration::from_secs(2))
    );
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

/// `io.l5d.static`: every entry whose prefix matches the bound id applies,
/// in order, a later one overriding only the fields it sets; the mesh hop
/// (client certificates) is TLS 1.3 unless `protocols` says otherwise.
#[test]
fn static_client_configs_apply_in_order() {
    let config = ProxyConfig::from_yaml(
        r#"
routers:
- protocol: http
  servers:
  - tls: {certPath: c, keyPath: k, caCertPath: ca, requireClientAuth: true}
  - {port: 4141, tls: {certPath: c, keyPath: k}, maxConnections: 5, idleTimeoutMs: 7}
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      connectTimeoutMs: 100
      loadBalancer: {kind: p2c}
    - prefix: "/#/io.l5d.fs/{service}"
      connectTimeoutMs: 200
      tls:
        commonName: "{service}.example"
        trustCerts: [ca.pem]
        clientAuth: {certPath: c, keyPath: k}
    - prefix: /#/*/web
      loadBalancer: {kind: roundRobin}
"#,
    )
    .unwrap();
    let router = &config.routers[0];
    let at = |id: &str| router.client.resolve(&l5d_dtab::Path::read(id).unwrap());
    assert_eq!(
        at("/$/inet/a/80").connect_timeout,
        Duration::from_millis(100)
    );
    assert_eq!(at("/$/inet/a/80").load_balancer, BalancerKind::P2c);
    let web = at("/#/io.l5d.fs/web");
    assert_eq!(web.connect_timeout, Duration::from_millis(200));
    assert_eq!(web.load_balancer, BalancerKind::RoundRobin);
    let entries = router.client.entries();
    assert_eq!(entries[1].field, "routers[0].client.configs[1]");
    let tls = entries[1].value.tls.as_ref().unwrap();
    assert_eq!(tls.protocols, Some(vec![TlsProtocol::Tls13]));
    let [mesh, edge] = &router.servers[..] else {
        panic!("two servers")
    };
    assert_eq!(
        mesh.settings.tls.as_ref().unwrap().protocols,
        [TlsProtocol::Tls13]
    );
    assert_eq!(
        edge.settings.tls.as_ref().unwrap().protocols,
        [TlsProtocol::Tls12, TlsProtocol::Tls13]
    );
    assert_eq!(edge.settings.max_connections, 5);
    assert_eq!(edge.settings.idle_timeout, Duration::from_millis(7));
    assert_eq!(mesh.settings.max_connections, 10_000);
    assert_eq!(mesh.settings.header_read_timeout, Duration::from_secs(10));
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
            "routers: [{protocol: http, servers: [{}], identifier: {kind: io.l5d.ingress, ingressClass: linkerd}}]",
            "routers[0].identifier.ingressClass",
            "unknown field",
        ),
        (
            "routers: [{protocol: http, servers: [{}], identifier: {kind: io.l5d.ingress, port: 70000}}]",
            "routers[0].identifier.port",
            "",
        ),
        (
            "routers: [{protocol: http, servers: [{}], identifier: {kind: io.l5d.ingress, ignoreDefaultBackends: maybe}}]",
            "routers[0].identifier.ignoreDefaultBackends",
            "",
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
            "replaced by io.l5d.opentelemetry",
        ),
        (
            "telemetry: [{kind: io.l5d.statsd}]\nrouters: [{protocol: http, servers: [{}]}]",
            "telemetry[0].kind",
            "unsupported",
        ),
        (
            "telemetry: [{kind: io.l5d.opentelemetry, endpoint: \"collector:4317\"}]\nrouters: [{protocol: http, servers: [{}]}]",
            "telemetry[0].endpoint",
            "expected http://host:port",
        ),
        (
            "namers: [{kind: io.l5d.fs, rootDir: /x}]\nrouters: [{protocol: http, servers: [{}]}]",
            "namers",
            "namerd",
        ),
        (
            "routers: [{protocol: http, servers: [{tls: {certPath: c}}]}]",
            "routers[0].servers[0].tls.keyPath",
            "missing",
        ),
        (
            "routers: [{protocol: http, servers: [{tls: {certPath: c, keyPath: k, protocols: [TLSv1.1]}}]}]",
            "routers[0].servers[0].tls.protocols[0]",
            "refused",
        ),
        (
            "routers: [{protocol: http, servers: [{maxConnections: 0}]}]",
            "routers[0].servers[0].maxConnections",
            "positive",
        ),
        (
            "routers: [{protocol: http, servers: [{idleTimeoutMs: 0}]}]",
            "routers[0].servers[0].idleTimeoutMs",
            "positive",
        ),
        (
            "admin: {maxConnectionsPerPeer: -1}\nrouters: [{protocol: http, servers: [{}]}]",
            "admin.maxConnectionsPerPeer",
            "",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {tls: {trustCerts: [ca.pem]}}}]",
            "routers[0].client.tls.commonName",
            "missing",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {tls: {commonName: '{service}', trustCerts: [ca.pem]}}}]",
            "routers[0].client.tls.commonName",
            "io.l5d.static",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {kind: io.l5d.static, configs: [{prefix: '/#/{a}', tls: {commonName: '{b}.x', trustCerts: [ca.pem]}}]}}]",
            "routers[0].client.configs[0].tls.commonName",
            "{b} is not captured",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {kind: io.l5d.static, configs: [{connectTimeoutMs: 5}]}}]",
            "routers[0].client.configs[0].prefix",
            "missing",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {kind: io.l5d.static, configs: [{prefix: 'a/b'}]}}]",
            "routers[0].client.configs[0].prefix",
            "must start with",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {kind: io.l5d.static, configs: [{prefix: /a, tls: {disableValidation: true, clientAuth: {certPath: c, keyPath: k}}}]}}]",
            "routers[0].client.configs[0].tls.disableValidation",
            "clientAuth",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {kind: io.l5d.perHost}}]",
            "routers[0].client.kind",
            "io.l5d.static",
        ),
        (
            "routers: [{protocol: http, servers: [{}], interpreter: {kind: io.l5d.mesh, dst: /$/inet/a/1, tls: {trustCerts: [ca], protocols: [SSLv3]}}}]",
            "routers[0].interpreter.tls.protocols[0]",
            "refused",
        ),
        (
            "routers: [{protocol: http, servers: [{}], bindingCache: {paths: 0}}]",
            "routers[0].bindingCache.paths",
            "at least 1",
        ),
        (
            "routers: [{protocol: http, servers: [{}], bindingCache: {maxKeyBytes: 10}}]",
            "routers[0].bindingCache.maxKeyBytes",
            "at least 1024",
        ),
        (
            "routers: [{protocol: http, servers: [{}], bindingCache: {trees: 10}}]",
            "routers[0].bindingCache.trees",
            "unknown field",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {budget: {percentCanRetry: 1001}}}}]",
            "routers[0].service.retries.budget.percentCanRetry",
            "0.0 to 1000.0",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {budget: {percentCanRetry: -0.5}}}}]",
            "routers[0].service.retries.budget.percentCanRetry",
            "0.0 to 1000.0",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {budget: {minRetriesPerSec: -1}}}}]",
            "routers[0].service.retries.budget.minRetriesPerSec",
            "",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {budget: {ttlSecs: 0}}}}]",
            "routers[0].service.retries.budget.ttlSecs",
            "1 to 60",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {backoff: {kind: jittered, minMs: 50, maxMs: 10}}}}]",
            "routers[0].service.retries.backoff.maxMs",
            "at least minMs",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {backoff: {kind: exponential}}}}]",
            "routers[0].service.retries.backoff.kind",
            "constant, jittered",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retries: {tries: 3}}}]",
            "routers[0].service.retries.tries",
            "unknown field",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {responseClassifier: {kind: io.l5d.h2.retryableRead5XX}}}]",
            "routers[0].service.responseClassifier.kind",
            "io.l5d.http.retryableRead5XX",
        ),
        (
            "routers: [{protocol: h2, servers: [{}], service: {responseClassifier: {kind: io.l5d.http.nonRetryable5XX}}}]",
            "routers[0].service.responseClassifier.kind",
            "io.l5d.h2.nonRetryable5XX",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {responseClassifier: {kind: io.l5d.h2.grpc.default}}}]",
            "routers[0].service.responseClassifier.kind",
            "gRPC classifiers are for h2 routers",
        ),
        (
            "routers: [{protocol: h2, servers: [{}], service: {responseClassifier: {kind: io.l5d.h2.grpc.retryableStatusCodes}}}]",
            "routers[0].service.responseClassifier.retryableStatusCodes",
            "missing",
        ),
        (
            "routers: [{protocol: h2, servers: [{}], service: {responseClassifier: {kind: io.l5d.h2.grpc.retryableStatusCodes, retryableStatusCodes: [0]}}}]",
            "routers[0].service.responseClassifier.retryableStatusCodes[0]",
            "1 to 16",
        ),
        (
            "routers: [{protocol: h2, servers: [{}], service: {responseClassifier: {kind: io.l5d.h2.grpc.sometimes}}}]",
            "routers[0].service.responseClassifier.kind",
            "io.l5d.h2.grpc.compliant",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {responseClassifier: {kind: io.l5d.http.allSuccessful, codes: [1]}}}]",
            "routers[0].service.responseClassifier.codes",
            "unknown field",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {retryBufferSize: {requestBytes: 100000000}}}]",
            "routers[0].service.retryBufferSize.requestBytes",
            "16 MiB",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {kind: io.l5d.static, configs: [{totalTimeoutMs: 5}]}}]",
            "routers[0].service.configs[0].prefix",
            "missing",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {kind: io.l5d.static, configs: [{prefix: /svc, totalTimeoutMs: 0}]}}]",
            "routers[0].service.configs[0].totalTimeoutMs",
            "greater than 0",
        ),
        (
            "routers: [{protocol: http, servers: [{}], service: {kind: io.l5d.perName}}]",
            "routers[0].service.kind",
            "io.l5d.static",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {requestAttemptTimeoutMs: 0}}]",
            "routers[0].client.requestAttemptTimeoutMs",
            "greater than 0",
        ),
        (
            "routers: [{protocol: http, servers: [{}], client: {requeueBudget: {percentCanRetry: 2000}}}]",
            "routers[0].client.requeueBudget.percentCanRetry",
            "0.0 to 1000.0",
        ),
    ];
    for (text, field, fragment) in cases {
        let err = ProxyConfig::from_yaml(text).expect_err(text);
        assert_eq!(err.field, *field, "{text}: {err}");
        assert!(err.message.contains(fragment), "{text}: {err}");
    }
}

/// Linkerd 1.x's `io.l5d.ingress` identifier with all its keys (which are
/// namerd's now) parses on http and h2 routers into the host-and-path
/// identifier.
#[test]
fn linkerds_ingress_identifier_keys_are_accepted() {
    for protocol in ["http", "h2"] {
        let config = ProxyConfig::from_yaml(&format!(
            "routers: [{{protocol: {protocol}, dstPrefix: /ingress, servers: [{{clearContext: true}}], \
             identifier: {{kind: io.l5d.ingress, namespace: default, ingressClassAnnotation: linkerd, \
             ignoreDefaultBackends: true, host: localhost, port: 8001}}}}]"
        ))
        .unwrap();
        let router = &config.routers[0];
        assert_eq!(
            router.identifiers,
            [IdentifierConfig::Ingress],
            "{protocol}"
        );
        assert_eq!(router.dst_prefix.show(), "/ingress");
        assert!(router.servers[0].clear_context);
    }
    let bare = ProxyConfig::from_yaml(
        "routers: [{protocol: http, servers: [{}], identifier: {kind: io.l5d.ingress}}]",
    )
    .unwrap();
    assert_eq!(bare.routers[0].identifiers, [IdentifierConfig::Ingress]);
}

/// `failureAccrual` defaults to Linkerd's (five consecutive failures, dead
/// for 5 s to 300 s) and, under `io.l5d.static`, the last matching entry
/// with the key sets the whole block.
#[test]
fn failure_accrual_defaults_to_linkerds_and_merges_by_prefix() {
    let config = ProxyConfig::from_yaml(
        r#"
routers:
- protocol: http
  servers: [{}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      failureAccrual: {kind: io.l5d.successRate, successRate: 0.9, requests: 20}
    - prefix: /#/io.l5d.fs/flaky
      failureAccrual:
        kind: io.l5d.consecutiveFailures
        failures: 3
        backoff: {kind: constant, ms: 1000}
    - prefix: /#/io.l5d.fs/windowed
      failureAccrual:
        kind: io.l5d.successRateWindowed
        successRate: 0.5
        window: 30
        backoff: {kind: jittered, minMs: 10, maxMs: 20}
    - prefix: /#/io.l5d.fs/never
      failureAccrual: {kind: none}
"#,
    )
    .unwrap();
    let client = &config.routers[0].client;
    let at = |id: &str| {
        client
            .resolve(&l5d_dtab::Path::read(id).unwrap())
            .failure_accrual
    };
    let linkerd_backoff = AccrualConfig::default().backoff;
    assert_eq!(
        linkerd_backoff,
        BackoffConfig::Jittered {
            min: Duration::from_secs(5),
            max: Duration::from_secs(300)
        }
    );
    assert_eq!(
        at("/$/inet/a/80"),
        AccrualConfig {
            policy: AccrualPolicy::SuccessRate {
                rate: 0.9,
                requests: 20
            },
            backoff: linkerd_backoff,
        }
    );
    assert_eq!(
        at("/#/io.l5d.fs/flaky"),
        AccrualConfig {
            policy: AccrualPolicy::ConsecutiveFailures { failures: 3 },
            backoff: BackoffConfig::Constant(Duration::from_secs(1)),
        }
    );
    assert_eq!(
        at("/#/io.l5d.fs/windowed"),
        AccrualConfig {
            policy: AccrualPolicy::SuccessRateWindowed {
                rate: 0.5,
                window: Duration::from_secs(30)
            },
            backoff: BackoffConfig::Jittered {
                min: Duration::from_millis(10),
                max: Duration::from_millis(20)
            },
        }
    );
    assert_eq!(at("/#/io.l5d.fs/never").policy, AccrualPolicy::None);

    let plain = ProxyConfig::from_yaml("routers: [{protocol: http, servers: [{}]}]").unwrap();
    let default = plain.routers[0]
        .client
        .resolve(&l5d_dtab::Path::read("/$/inet/a/80").unwrap())
        .failure_accrual;
    assert_eq!(
        default.policy,
        AccrualPolicy::ConsecutiveFailures { failures: 5 }
    );
    assert_eq!(default.backoff, linkerd_backoff);
}

/// Each unusable `failureAccrual`, the field its refusal names, and a
/// fragment of the message.
#[test]
fn bad_failure_accrual_names_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "{kind: io.l5d.consecutiveFailures, failures: 0}",
            "failureAccrual.failures",
            "at least 1",
        ),
        (
            "{kind: io.l5d.successRate, successRate: 0, requests: 10}",
            "failureAccrual.successRate",
            "(0, 1]",
        ),
        (
            "{kind: io.l5d.successRate, successRate: 1.5, requests: 10}",
            "failureAccrual.successRate",
            "(0, 1]",
        ),
        (
            "{kind: io.l5d.successRateWindowed, successRate: -0.5, window: 10}",
            "failureAccrual.successRate",
            "(0, 1]",
        ),
        (
            "{kind: io.l5d.successRate, successRate: 0.9, requests: 0}",
            "failureAccrual.requests",
            "at least 1",
        ),
        (
            "{kind: io.l5d.successRate, successRate: 0.9}",
            "failureAccrual.requests",
            "missing",
        ),
        (
            "{kind: io.l5d.successRateWindowed, successRate: 0.9, window: 0}",
            "failureAccrual.window",
            "at least 1",
        ),
        (
            "{kind: io.l5d.consecutiveFailures, backoff: {kind: jittered, minMs: 10, maxMs: 5}}",
            "failureAccrual.backoff.maxMs",
            "at least minMs",
        ),
        (
            "{kind: io.l5d.consecutiveFailures, backoff: {kind: exponential}}",
            "failureAccrual.backoff.kind",
            "supported: constant, jittered",
        ),
        (
            "{kind: io.l5d.consecutiveFailures, backoff: {kind: constant}}",
            "failureAccrual.backoff.ms",
            "missing",
        ),
        (
            "{kind: io.l5d.fancy}",
            "failureAccrual.kind",
            "supported: io.l5d.consecutiveFailures, io.l5d.successRate, io.l5d.successRateWindowed, none",
        ),
        ("{failures: 3}", "failureAccrual.kind", "missing"),
        (
            "{kind: io.l5d.consecutiveFailures, failure: 3}",
            "failureAccrual.failure",
            "unknown field",
        ),
        (
            "{kind: none, failures: 3}",
            "failureAccrual.failures",
            "unknown field",
        ),
    ];
    for (accrual, field, fragment) in cases {
        let text = format!(
            "routers: [{{protocol: http, servers: [{{}}], client: {{kind: io.l5d.static, configs: [{{prefix: /, failureAccrual: {accrual}}}]}}}}]"
        );
        let err = ProxyConfig::from_yaml(&text).expect_err(&text);
        let want = format!("routers[0].client.configs[0].{field}");
        assert_eq!(err.field, want, "{accrual}: {err}");
        assert!(err.message.contains(fragment), "{accrual}: {err}");
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
        "routers[].bindingCache",
        "routers[].bindingCache.paths",
        "routers[].bindingCache.maxKeyBytes",
        "routers[].bindingCache.idleTtlSecs",
        "routers[].maxHeadersKB",
        "routers[].maxInitialLineKB",
        "routers[].client.kind",
        "routers[].client.configs",
        "routers[].client.configs[].prefix",
        "routers[].client.tls.commonName",
        "routers[].client.tls.trustCerts",
        "routers[].client.tls.clientAuth.certPath",
        "routers[].client.tls.clientAuth.keyPath",
        "routers[].client.tls.disableValidation",
        "routers[].client.tls.protocols",
        "routers[].client.tls.reloadIntervalSecs",
        "routers[].interpreter.tls",
        "routers[].client.loadBalancer.kind",
        "routers[].client.loadBalancer.decayTimeMs",
        "routers[].client.loadBalancer.maxEffort",
        "routers[].client.loadBalancer.enableProbation",
        "routers[].client.connectTimeoutMs",
        "routers[].client.hostConnectionPool.idleTimeMs",
        "routers[].client.hostConnectionPool.maxIdle",
        "routers[].client.requestAttemptTimeoutMs",
        "routers[].client.requeueBudget",
        "routers[].client.requeueBudget.minRetriesPerSec",
        "routers[].client.requeueBudget.percentCanRetry",
        "routers[].client.requeueBudget.ttlSecs",
        "routers[].client.failureAccrual",
        "routers[].client.failureAccrual.kind",
        "routers[].client.failureAccrual.failures",
        "routers[].client.failureAccrual.successRate",
        "routers[].client.failureAccrual.requests",
        "routers[].client.failureAccrual.window",
        "routers[].client.failureAccrual.backoff.kind",
        "routers[].client.failureAccrual.backoff.ms",
        "routers[].client.failureAccrual.backoff.minMs",
        "routers[].client.failureAccrual.backoff.maxMs",
        "routers[].service.kind",
        "routers[].service.configs",
        "routers[].service.configs[].prefix",
        "routers[].service.totalTimeoutMs",
        "routers[].service.responseClassifier.kind",
        "routers[].service.responseClassifier.retryableStatusCodes",
        "routers[].service.responseClassifier.successStatusCodes",
        "routers[].service.retries.budget.minRetriesPerSec",
        "routers[].service.retries.budget.percentCanRetry",
        "routers[].service.retries.budget.ttlSecs",
        "routers[].service.retries.backoff.kind",
        "routers[].service.retries.backoff.ms",
        "routers[].service.retries.backoff.minMs",
        "routers[].service.retries.backoff.maxMs",
        "routers[].service.retryBufferSize.requestBytes",
        "routers[].service.retryBufferSize.responseBytes",
        "routers[].service.classificationTimeoutMs",
        "routers[].retryBufferTotalBytes",
    ];
    let shared: Vec<String> = ServerSettings::KEYS
        .iter()
        .flat_map(|key| [format!("routers[].servers[].{key}"), format!("admin.{key}")])
        .collect();
    let fields: Vec<&str> = fields
        .iter()
        .copied()
        .chain(shared.iter().map(String::as_str))
        .collect();
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
        "io.l5d.consecutiveFailures",
        "io.l5d.successRate",
        "io.l5d.successRateWindowed",
    ] {
        assert!(doc.contains(&format!("`{kind}`")), "no entry for {kind}");
    }
}

/// `io.l5d.static` service configs: every entry whose prefix matches the
/// logical name applies in order, later ones overriding the keys they set.
#[test]
fn static_service_configs_merge_by_prefix() {
    use linkerd_proxy::config::{BackoffConfig, ClassifierConfig, RetryableMethods};
    let config = ProxyConfig::from_yaml(
        r#"
routers:
- protocol: http
  servers: [{}]
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc
      totalTimeoutMs: 1000
      responseClassifier: {kind: io.l5d.http.retryableRead5XX}
    - prefix: "/svc/{name}-batch"
      totalTimeoutMs: 60000
      retries: {backoff: {kind: constant, ms: 100}}
    - prefix: /svc/*/v2
      responseClassifier: {kind: io.l5d.http.retryableIdempotent5XX}
"#,
    )
    .unwrap();
    let service = &config.routers[0].service;
    let of = |name: &str| service.resolve(&l5d_dtab::Path::read(name).unwrap());
    let web = of("/svc/web");
    assert_eq!(web.total_timeout, Some(Duration::from_secs(1)));
    assert_eq!(
        web.classifier,
        ClassifierConfig::Status(RetryableMethods::Read)
    );
    assert_eq!(web.backoff, BackoffConfig::Constant(Duration::ZERO));
    let batch = of("/svc/nightly-batch");
    assert_eq!(batch.total_timeout, Some(Duration::from_secs(60)));
    assert_eq!(
        batch.classifier,
        ClassifierConfig::Status(RetryableMethods::Read)
    );
    assert_eq!(
        batch.backoff,
        BackoffConfig::Constant(Duration::from_millis(100))
    );
    let v2 = of("/svc/web/v2");
    assert_eq!(v2.total_timeout, Some(Duration::from_secs(1)));
    assert_eq!(
        v2.classifier,
        ClassifierConfig::Status(RetryableMethods::Idempotent)
    );
    assert_eq!(of("/other").total_timeout, None);
}
