//! Distributed tracing end to end: two real proxies and namerd exporting
//! spans over OTLP to a collector in the test (`l5d_trace::collector`, a
//! gRPC server on OpenTelemetry's protos), curl as the client, and an
//! `l5d-demo` backend that logs the trace headers it was sent.
//!
//! client --curl--> proxy A (outgoing, default interpreter, to B)
//!        --> proxy B (incoming, io.l5d.mesh to namerd) --> world-v1

use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, curl, demo_requests, demo_requests_clear};
use l5d_trace::collector::{Collector, Received};

const DTAB: &str = "/srv => /#/io.l5d.fs;\n/svc => /srv;\n/svc/world => /srv/world-v1;\n";
/// Spans are sent every 100 ms; this bounds waiting for them (generous,
/// for a loaded machine).
const SPANS_BOUND: Duration = Duration::from_secs(30);

fn telemetry(endpoint: &str, extra: &str) -> String {
    format!(
        "telemetry:\n- {{kind: io.l5d.opentelemetry, endpoint: \"{endpoint}\", sampleRate: 1.0, batchDelayMs: 100{extra}}}\n"
    )
}

/// Proxy B: the incoming router, bound through namerd.
fn proxy_b_config(mesh: &str, endpoint: &str) -> String {
    let port = mesh.rsplit(':').next().unwrap();
    format!(
        "admin: {{port: 0}}\n\
         routers:\n\
         - protocol: http\n  label: incoming\n  servers: [{{port: 0}}]\n  \
           interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal}}\n\
         {}",
        telemetry(endpoint, "")
    )
}

/// Proxy A: an outgoing router that sends `world` to B, and an untrusting
/// edge router (`clearContext`) in front of the same route.
fn proxy_a_config(b: &str, endpoint: &str) -> String {
    let (ip, port) = b.rsplit_once(':').unwrap();
    let dtab = format!("/svc/world => /$/inet/{ip}/{port}");
    format!(
        "admin: {{port: 0}}\n\
         routers:\n\
         - protocol: http\n  label: outgoing\n  dtab: \"{dtab}\"\n  servers: [{{port: 0}}]\n\
         - protocol: http\n  label: edge\n  dtab: \"{dtab}\"\n  servers: [{{port: 0, clearContext: true}}]\n\
         {}",
        telemetry(endpoint, ", serviceName: proxy-a")
    )
}

struct Chain {
    _dir: tempfile::TempDir,
    collector: Collector,
    backend: Demo,
    _namerd: Namerd,
    b: Proxy,
    a: Proxy,
}

impl Chain {
    async fn start() -> Chain {
        let collector = Collector::start().await;
        let dir = tempfile::tempdir().unwrap();
        let backend = Demo::start("http", "world-v1", &["--log-requests"]).await;
        backend.register(dir.path());
        let namerd_config = format!(
            "{}{}",
            Namerd::fs_config(dir.path()),
            telemetry(&collector.endpoint(), "")
        );
        let namerd = Namerd::start(&namerd_config).await;
        namerd.create_dtab(dir.path(), "internal", DTAB).await;
        let b = Proxy::start(&proxy_b_config(&namerd.mesh, &collector.endpoint())).await;
        let a = Proxy::start(&proxy_a_config(b.router("incoming"), &collector.endpoint())).await;
        Chain {
            _dir: dir,
            collector,
            backend,
            _namerd: namerd,
            b,
            a,
        }
    }

    /// `GET /` for `host` through A's `router`, with `headers`; the status.
    async fn get(&self, router: &str, host: &str, headers: &[String]) -> String {
        let url = format!("http://{}/", self.a.router(router));
        let host = format!("Host: {host}");
        let mut args = vec![
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            host.as_str(),
        ];
        for h in headers {
            args.extend(["-H", h.as_str()]);
        }
        args.push(url.as_str());
        let (code, out, err) = curl(&args).await;
        assert_eq!(code, 0, "curl: {err}");
        out
    }

    /// The trace headers the backend was sent by its last request.
    fn last_backend_headers(&self) -> serde_json::Value {
        let log = demo_requests(self.backend.addr);
        let last = log.as_array().and_then(|a| a.last()).cloned();
        demo_requests_clear(self.backend.addr);
        last.expect("the backend answered a request")["headers"].clone()
    }

    /// The spans of `trace_id`, once `n` of them (from the two proxies)
    /// have arrived.
    async fn trace(&self, trace_id: &str, n: usize) -> Vec<Received> {
        let of_trace = |s: &[Received]| {
            s.iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect::<Vec<_>>()
        };
        let spans = self
            .collector
            .wait_for(SPANS_BOUND, |s| of_trace(s).len() >= n)
            .await;
        of_trace(&spans)
    }
}

fn by_service<'a>(spans: &'a [Received], service: &str) -> &'a Received {
    spans
        .iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("no span from {service} in {spans:#?}"))
}

fn traceparent(headers: &serde_json::Value) -> (String, String, String) {
    let tp = headers["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("no traceparent in {headers}"));
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    (
        parts[1].to_string(),
        parts[2].to_string(),
        parts[3].to_string(),
    )
}

#[tokio::test]
async fn spans_chain_across_two_proxies_and_namerd() {
    let chain = Chain::start().await;

    // 1. No context from the client: A starts the trace, B continues it,
    //    the backend is told B's span.
    assert_eq!(chain.get("outgoing", "world", &[]).await, "200");
    let (trace_id, parent, flags) = traceparent(&chain.last_backend_headers());
    assert_eq!(flags, "01");
    let spans = chain.trace(&trace_id, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let (a, b) = (
        by_service(&spans, "proxy-a"),
        by_service(&spans, "linkerd-proxy"),
    );
    assert_eq!(a.parent_span_id, "", "A's span is the root");
    assert_eq!(b.parent_span_id, a.span_id, "B's span is A's child");
    assert_eq!(parent, b.span_id, "the backend's parent is B's span");
    assert_eq!(a.kind, 2, "a server span");
    assert_eq!(b.name, "/svc/world");
    assert_eq!(b.attributes["l5d.router"], "incoming");
    assert_eq!(b.attributes["l5d.name"], "/svc/world");
    assert_eq!(b.attributes["l5d.bound_id"], "/#/io.l5d.fs/world-v1");
    assert_eq!(b.attributes["l5d.endpoint"], chain.backend.addr.to_string());
    assert_eq!(b.attributes["l5d.retries"], "0");
    assert_eq!(b.attributes["http.response.status_code"], "200");
    assert_eq!(b.attributes["http.request.method"], "GET");
    assert_eq!(
        a.attributes["l5d.bound_id"],
        format!("/$/inet/{}", chain.b.router("incoming").replace(':', "/"))
    );
    assert_ne!(a.status, 2);

    // 2. A sampled W3C context from the client is continued.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let header = format!("traceparent: 00-{client_trace}-{client_span}-01");
    assert_eq!(chain.get("outgoing", "world", &[header]).await, "200");
    let (seen_trace, _, _) = traceparent(&chain.last_backend_headers());
    assert_eq!(seen_trace, client_trace);
    let spans = chain.trace(client_trace, 2).await;
    assert_eq!(by_service(&spans, "proxy-a").parent_span_id, client_span);

    // 3. B3 (multi-header, 64-bit trace id) as Linkerd 1.x's users send it:
    //    continued, and forwarded as B3 with the hop's span.
    let b3_trace = "a3ce929d0e0e4736";
    let b3 = [
        format!("X-B3-TraceId: {b3_trace}"),
        "X-B3-SpanId: 1111111111111111".to_string(),
        "X-B3-Sampled: 1".to_string(),
    ];
    assert_eq!(chain.get("outgoing", "world", &b3).await, "200");
    let headers = chain.last_backend_headers();
    let spans = chain.trace(&format!("{:0>32}", b3_trace), 2).await;
    let (a, b) = (
        by_service(&spans, "proxy-a"),
        by_service(&spans, "linkerd-proxy"),
    );
    assert_eq!(a.parent_span_id, "1111111111111111");
    assert_eq!(headers["x-b3-traceid"], b3_trace);
    assert_eq!(headers["x-b3-spanid"], b.span_id.as_str());
    assert_eq!(headers["x-b3-parentspanid"], a.span_id.as_str());
    assert_eq!(headers["x-b3-sampled"], "1");

    // 4. A trusted caller's "not sampled" holds at every hop: no spans,
    //    and the backend is told so.
    let unsampled = "5bf92f3577b34da6a3ce929d0e0e4736";
    let header = format!("traceparent: 00-{unsampled}-{client_span}-00");
    assert_eq!(chain.get("outgoing", "world", &[header]).await, "200");
    let (seen_trace, _, flags) = traceparent(&chain.last_backend_headers());
    assert_eq!((seen_trace.as_str(), flags.as_str()), (unsampled, "00"));

    // 5. An untrusted client (clearContext) does not decide: at rate 1.0
    //    its "not sampled" is overridden (and, at rate 0, "sampled" would
    //    be), the trace id is kept.
    let edge_trace = "6bf92f3577b34da6a3ce929d0e0e4736";
    let header = format!("traceparent: 00-{edge_trace}-{client_span}-00");
    assert_eq!(chain.get("edge", "world", &[header]).await, "200");
    let spans = chain.trace(edge_trace, 2).await;
    assert_eq!(
        by_service(&spans, "proxy-a").attributes["l5d.router"],
        "edge"
    );

    // 6. A failure is on the span, with Linkerd's error.
    assert_eq!(chain.get("outgoing", "nowhere", &[]).await, "502");
    let is_failed = |s: &Received| s.name == "/svc/nowhere" && s.status == 2;
    let failed = chain
        .collector
        .wait_for(SPANS_BOUND, |s| s.iter().any(is_failed))
        .await;
    let failed = failed
        .iter()
        .find(|s| is_failed(s))
        .unwrap_or_else(|| panic!("no failed span of the unroutable request"));
    assert_eq!(failed.attributes["http.response.status_code"], "502");

    // The unsampled trace left no span anywhere.
    assert!(
        chain
            .collector
            .spans()
            .iter()
            .all(|s| s.trace_id != unsampled),
        "spans of an unsampled trace"
    );

    // namerd: the store write that made the dtab and the bind of the
    // proxy's name.
    let namerd = chain
        .collector
        .wait_for(SPANS_BOUND, |s| {
            s.iter().any(|s| s.name == "namerd.store.write")
                && s.iter().any(|s| s.name == "namerd.bind")
        })
        .await;
    let write = namerd
        .iter()
        .find(|s| s.name == "namerd.store.write")
        .expect("a store write span");
    assert_eq!(write.service, "namerd");
    assert_eq!(write.attributes["l5d.namespace"], "internal");
    assert_eq!(write.attributes["l5d.change"], "create");
    let bind = namerd
        .iter()
        .find(|s| {
            s.name == "namerd.bind"
                && s.attributes
                    .get("l5d.name")
                    .is_some_and(|n| n == "/svc/world")
        })
        .unwrap_or_else(|| panic!("no bind span of /svc/world in {namerd:#?}"));
    assert_eq!(bind.attributes["l5d.bound"], "/#/io.l5d.fs/world-v1");
}

/// A collector that refuses connections, or accepts and never answers,
/// never makes a request wait: spans queue (10 at most here) and are
/// dropped. Each request is bounded at 2 s, far below the 10 s export
/// timeout a request waiting on an export would show.
#[tokio::test]
async fn a_down_or_silent_collector_never_slows_requests() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Demo::start("http", "world-v1", &[]).await;
    backend.register(dir.path());
    // Nothing listens on a port just released.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    for collector in [refused, silent_addr] {
        let config = format!(
            "admin: {{port: 0}}\n\
             routers:\n\
             - protocol: http\n  label: out\n  dtab: \"/svc/world => /$/inet/127.0.0.1/{port}\"\n  servers: [{{port: 0}}]\n\
             telemetry:\n- {{kind: io.l5d.opentelemetry, endpoint: \"http://{collector}\", sampleRate: 1.0, \
               batchDelayMs: 50, exportTimeoutMs: 10000, maxQueueSize: 10}}\n",
            port = backend.addr.port()
        );
        let proxy = Proxy::start(&config).await;
        let url = format!("http://{}/", proxy.router("out"));
        let mut slowest = Duration::ZERO;
        for _ in 0..200 {
            let started = Instant::now();
            let (code, out, err) = curl(&[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "5",
                "-H",
                "Host: world",
                &url,
            ])
            .await;
            assert_eq!(
                (code, out.as_str()),
                (0, "200"),
                "collector {collector}: {err}"
            );
            slowest = slowest.max(started.elapsed());
        }
        assert!(
            slowest < Duration::from_secs(2),
            "collector {collector}: a request took {slowest:?}"
        );
        eprintln!("collector {collector}: 200 requests, slowest {slowest:?}");
        proxy.stop().await;
    }
    held.abort();
}
