//! linkerd-proxy over TLS and under hostile clients, every part a real
//! process, probed with curl and `openssl s_client`: the DaemonSet mesh
//! hop (outgoing -> incoming over mutual TLS 1.3, the incoming router's
//! bindings from a namerd that requires client certificates too, the
//! caller's identity in `l5d-client-id`, refused certificates counted by
//! reason and logged), a TLS scan of HTTP/1.1 and h2 routers, slowloris
//! against a router and the admin server, and a connection cap.
//!
//! Without `openssl` the scans are skipped loudly, and fail under
//! `CI=true` (`l5d_e2e::openssl_or_skip`).

use std::path::Path;
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, curl, namerctl, openssl_or_skip, s_client_version};
use l5d_runtime::testing::{Pair, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far beyond every timeout below, even on a busy machine.
const BOUND: Duration = Duration::from_secs(30);

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// `{certPath, keyPath}` of `pair`, as YAML.
fn pair_yaml(pair: &Pair) -> String {
    format!("{{certPath: {}, keyPath: {}}}", p(&pair.cert), p(&pair.key))
}

/// Outgoing proxy -> incoming proxy over TLS 1.3 with client certificates,
/// the incoming router binding through a namerd whose gRPC interface
/// requires them too. curl through the outgoing proxy reaches the backend,
/// which gets the outgoing proxy's identity in `l5d-client-id`, not the
/// one curl forged. Straight at the incoming router: an expired client
/// certificate is refused, logged and counted as `expired`; none, another
/// CA's and TLS 1.2 are refused and counted by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_hop_is_mutual_tls() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    let backend = Demo::start("http", "world-v1", &[]).await;
    std::fs::write(disco.join("world-v1"), backend.fs_line()).unwrap();
    let ca = p(&pki.ca_cert);
    let client = pair_yaml(&pki.client);
    let mtls = format!(
        "{{certPath: {}, keyPath: {}, caCertPath: {ca}, requireClientAuth: true}}",
        p(&pki.server.cert),
        p(&pki.server.key)
    );
    let namerd = Namerd::start(&format!(
        r#"
admin: {{port: 0}}
storage: {{kind: io.l5d.sqlite, path: {db}}}
namers: [{{kind: io.l5d.fs, rootDir: {disco}}}]
interfaces:
- {{kind: io.l5d.httpController, port: 0}}
- {{kind: io.l5d.mesh, port: 0, tls: {mtls}}}
"#,
        db = p(&dir.path().join("namerd.db")),
        disco = p(&disco),
    ))
    .await;
    let dtab = dir.path().join("internal.dtab");
    std::fs::write(
        &dtab,
        "/srv => /#/io.l5d.fs; /svc => /srv; /svc/world => /srv/world-v1;",
    )
    .unwrap();
    let (code, _, err) = namerctl(
        &namerd.base_url(),
        &["dtab", "create", "internal", dtab.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "namerctl dtab create: {err}");
    let mesh_port = namerd.mesh.rsplit(':').next().unwrap().to_string();
    let incoming = Proxy::start_logged(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: incoming
  servers: [{{port: 0, tls: {mtls}}}]
  interpreter:
    kind: io.l5d.mesh
    dst: /$/inet/127.0.0.1/{mesh_port}
    root: /internal
    tls: {{commonName: localhost, trustCerts: [{ca}], clientAuth: {client}}}
"#
    ))
    .await;
    let in_addr = incoming.router("incoming").to_string();
    let in_port = in_addr.rsplit(':').next().unwrap();
    let outgoing = Proxy::start(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: outgoing
  servers: [{{port: 0}}]
  dtab: /svc => /$/inet/127.0.0.1/{in_port}
  client:
    tls: {{commonName: localhost, trustCerts: [{ca}], clientAuth: {client}}}
"#
    ))
    .await;

    // The application's request, through both proxies, with a forged
    // identity that must not reach the backend.
    let proxy = format!("http://{}", outgoing.router("outgoing"));
    let forged = "l5d-client-id: spiffe://l5d.test/forged";
    let (code, out, err) =
        curl(&["-x", &proxy, "-H", forged, "-D", "-", "http://world/hello"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("world-v1\n"), "{out}");
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("x-echo-l5d-client-id: "))
        .collect();
    assert_eq!(ids, ["spiffe://l5d.test/deployer"], "{out}");

    // Straight at the incoming router: only the CA's client certificates.
    let url = format!("https://localhost:{in_port}/hello");
    let base = ["--cacert", &ca, "-H", "Host: world"];
    let with = |pair: Option<&Pair>| {
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        if let Some(pair) = pair {
            args.extend(["--cert".into(), p(&pair.cert), "--key".into(), p(&pair.key)]);
        }
        args.push(url.clone());
        args
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args).await
    };
    // First, so that the log line (one a second per listener) is its.
    let (code, out, err) = run(with(Some(&pki.expired))).await;
    assert_ne!(code, 0, "an expired client certificate: {out}");
    eprintln!("an expired certificate: curl exit {code}: {}", err.trim());
    let (code, out, err) = run(with(Some(&pki.client))).await;
    assert_eq!((code, out.as_str()), (0, "world-v1\n"), "{err}");
    let (code, out, err) = run(with(None)).await;
    assert_ne!(code, 0, "no client certificate: {out}");
    eprintln!("without a certificate: curl exit {code}: {}", err.trim());
    let (code, out, err) = run(with(Some(&pki.other_client))).await;
    assert_ne!(code, 0, "another CA's certificate: {out}");
    eprintln!("another CA's certificate: curl exit {code}: {}", err.trim());

    let mut reasons = vec!["expired", "no_certificate", "unknown_ca"];
    if openssl_or_skip().await {
        let cert = p(&pki.client.cert);
        let key = p(&pki.client.key);
        let auth = ["-cert", &cert, "-key", &key, "-CAfile", &ca];
        let (ok, out) = s_client_version(&in_addr, "-tls1_2", &auth).await;
        assert!(
            !ok && !out.contains("New, TLSv1.2"),
            "TLS 1.2 on the mesh hop:\n{out}"
        );
        eprintln!("the mesh hop with TLS 1.2: refused");
        let (ok, out) = s_client_version(&in_addr, "-tls1_3", &auth).await;
        assert!(ok && out.contains("New, TLSv1.3"), "{out}");
        reasons.push("protocol");
    }
    let metrics = admin_metrics(&incoming.admin).await;
    for reason in reasons {
        let refused = format!(
            "listener_handshake_failures_total{{listener=\"incoming/{in_addr}\",reason=\"{reason}\"}} 1"
        );
        assert!(metrics.contains(&refused), "no {refused} in\n{metrics}");
    }

    assert_eq!(outgoing.stop().await, Some(0));
    let log = incoming.stop_with_log().await;
    let refusal = log
        .lines()
        .find(|l| l.contains("TLS handshake refused"))
        .unwrap_or_else(|| panic!("no refusal logged in\n{log}"));
    eprintln!("logged: {refusal}");
    for part in [
        "reason=\"expired\"",
        "certificate expired",
        &format!("listener=incoming/{in_addr}"),
    ] {
        assert!(refusal.contains(part), "no {part} in {refusal}");
    }
    namerd.stop().await;
    backend.stop().await;
}

async fn admin_metrics(admin: &str) -> String {
    let (code, out, err) = curl(&[&format!("http://{admin}/admin/metrics/prometheus")]).await;
    assert_eq!(code, 0, "{err}");
    out
}

/// An HTTP/1.1 and an h2 router with TLS: `openssl s_client` finds TLS 1.0
/// and 1.1 refused (offered for real: security level 0 on the client),
/// 1.2 and 1.3 accepted, and ALPN `http/1.1` or `h2` by the router; curl
/// gets through both, over HTTP/2 on the h2 router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_routers_scanned_with_openssl_and_curl() {
    let pki = TestPki::new();
    let cert = pki.issue("world", &["world", "localhost", "127.0.0.1"]);
    let backend = Demo::start("http", "world-v1", &[]).await;
    let tls = pair_yaml(&cert);
    let dtab = format!("/svc/world => /$/inet/127.0.0.1/{}", backend.addr.port());
    let proxy = Proxy::start(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: https
  servers: [{{port: 0, tls: {tls}}}]
  dtab: {dtab}
- protocol: h2
  label: h2s
  servers: [{{port: 0, tls: {tls}}}]
  dtab: {dtab}
"#
    ))
    .await;
    let https = proxy.router("https").to_string();
    let h2s = proxy.router("h2s").to_string();
    let ca = p(&pki.ca_cert);

    let connect_to = |addr: &str| format!("world:443:{addr}");
    let (code, out, err) = curl(&[
        "--cacert",
        &ca,
        "--connect-to",
        &connect_to(&https),
        "https://world/hello",
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "world-v1\n"), "{err}");
    let (code, out, err) = curl(&[
        "--http2",
        "--cacert",
        &ca,
        "--connect-to",
        &connect_to(&h2s),
        "-D",
        "-",
        "https://world/h2",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(out.ends_with("world-v1\n"), "{out}");

    if !openssl_or_skip().await {
        return;
    }
    let args = [
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-servername",
        "world",
    ];
    for (addr, alpn) in [(&https, "http/1.1"), (&h2s, "h2")] {
        for old in ["-tls1", "-tls1_1"] {
            let (ok, out) = s_client_version(addr, old, &args).await;
            assert!(!ok && !out.contains("New, TLSv1"), "{old} accepted:\n{out}");
            eprintln!("{addr} {old}: refused");
        }
        for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
            let mut with_alpn = args.to_vec();
            with_alpn.extend(["-alpn", "h2,http/1.1"]);
            let (ok, out) = s_client_version(addr, flag, &with_alpn).await;
            assert!(ok, "{flag}:\n{out}");
            assert!(out.contains(&format!("New, {version}")), "{flag}:\n{out}");
            assert!(
                out.contains(&format!("ALPN protocol: {alpn}")),
                "{flag}:\n{out}"
            );
            assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        }
    }
    assert_eq!(proxy.stop().await, Some(0));
    backend.stop().await;
}

/// Connects to `addr`, sends a request head that never ends (a header
/// line every 200 ms), and returns how long the server took to close.
async fn slowloris(addr: String) -> Option<Duration> {
    let start = Instant::now();
    let stream = TcpStream::connect(&addr).await.ok()?;
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let _ = write.write_all(b"GET / HTTP/1.1\r\nHost: world\r\n").await;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write
                .write_all(format!("x-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(BOUND, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    closed.ok().map(|()| start.elapsed())
}

/// Slowloris against a router and the admin server: every connection is
/// closed about one header timeout (1 s here) after it opened. A router
/// capped at 3 connections closes the fourth at once, without a byte, and
/// serves again when one is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_connection_caps_are_cut_off() {
    let backend = Demo::start("http", "world-v1", &[]).await;
    let dtab = format!("/svc/world => /$/inet/127.0.0.1/{}", backend.addr.port());
    let proxy = Proxy::start(&format!(
        r#"
admin: {{port: 0, headerReadTimeoutMs: 1000}}
routers:
- protocol: http
  label: slow
  servers: [{{port: 0, headerReadTimeoutMs: 1000}}]
  dtab: {dtab}
- protocol: http
  label: capped
  servers: [{{port: 0, maxConnections: 3}}]
  dtab: {dtab}
"#
    ))
    .await;
    let slow = proxy.router("slow").to_string();
    let admin = proxy.admin.clone();

    // 200 on the router and 40 on admin (under its 50 per peer), at once.
    let mut probes = Vec::new();
    for i in 0..240 {
        let addr = if i < 200 { slow.clone() } else { admin.clone() };
        probes.push(tokio::spawn(slowloris(addr)));
    }
    let mut closed = Vec::new();
    for probe in probes {
        let took = probe.await.unwrap().expect("closed within 30 s");
        closed.push(took);
    }
    closed.sort();
    let (median, max) = (closed[closed.len() / 2], closed[closed.len() - 1]);
    eprintln!(
        "slowloris: 240 connections (200 router, 40 admin) closed after median {median:?}, max {max:?} (header timeout 1 s)"
    );
    assert!(
        closed[0] >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        closed[0]
    );

    // The cap: three held, the fourth closed without a byte.
    let capped = proxy.router("capped").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&capped).await.unwrap());
    }
    let mut fourth = TcpStream::connect(&capped).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(BOUND, fourth.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the fourth connection was not closed: {read:?}"
    );
    eprintln!(
        "connection cap: the fourth connection closed after {:?}",
        started.elapsed()
    );
    drop(held);
    let proxy_url = format!("http://{capped}");
    let deadline = Instant::now() + BOUND;
    loop {
        let (code, out, _) = curl(&["-x", &proxy_url, "http://world/"]).await;
        if code == 0 && out == "world-v1\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the capped router never served again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let metrics = admin_metrics(&admin).await;
    for series in [
        format!("listener_timeouts_total{{listener=\"slow/{slow}\",timeout=\"header\"}} 200"),
        "listener_timeouts_total{listener=\"admin\",timeout=\"header\"} 40".to_string(),
        format!(
            "listener_connections_refused_total{{listener=\"capped/{capped}\",reason=\"max_connections\"}} 1"
        ),
    ] {
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
    assert_eq!(proxy.stop().await, Some(0));
    backend.stop().await;
}
