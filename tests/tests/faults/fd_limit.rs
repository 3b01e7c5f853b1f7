//! Resource exhaustion: the proxy at its file-descriptor limit refuses new
//! connections cleanly (they are closed at once, not left unanswered in
//! the kernel's backlog) and serves again as soon as descriptors free up.

use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Proxy, curl};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The proxy's descriptor limit here: well under the connections opened.
const NOFILE: usize = 128;
const CONNECTIONS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_descriptor_limit_the_proxy_refuses_cleanly_and_recovers() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        l5d_e2e::skip_or_fail(
            "prlimit (util-linux) is needed to lower the proxy's descriptor limit",
        );
        return;
    }
    let world = Demo::start("http", "world", &[]).await;
    let nofile = format!("--nofile={NOFILE}:{NOFILE}");
    let proxy = Proxy::start_via(
        &["prlimit", &nofile, "--"],
        &format!(
            "admin: {{port: 0}}\nrouters:\n- protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  dtab: /svc/world => /$/inet/127.0.0.1/{}\n",
            world.addr.port()
        ),
    )
    .await;
    let router = proxy.router("http").to_string();
    let get = || async {
        let (code, out, _) = curl(&[
            "-sS",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "host: world",
            &format!("http://{router}/"),
        ])
        .await;
        (code, out)
    };
    assert_eq!(get().await, (0, "200".to_string()));

    // Far more connections than descriptors; the kernel completes every
    // handshake, the proxy takes what it can.
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(
            TcpStream::connect(&router)
                .await
                .expect("the kernel accepts"),
        );
    }
    // A refused connection is closed at once; an accepted one stays open,
    // waiting for its request (until the 10 s header timeout). 2 s is a
    // generous bound for the refusals.
    let mut refused = 0;
    for c in &mut conns {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(2), c.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => refused += 1,
            Ok(Ok(_)) => panic!("the proxy sent bytes unasked"),
            Err(_) => {} // still open: accepted
        }
    }
    let accepted = CONNECTIONS - refused;
    let (_, page, _) = curl(&[
        "-sS",
        &format!("http://{}/admin/metrics/prometheus", proxy.admin),
    ])
    .await;
    let counted: f64 = page
        .lines()
        .filter(|l| {
            l.starts_with("listener_connections_refused_total{")
                && l.contains("reason=\"fd_limit\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    eprintln!(
        "fd limit {NOFILE}: of {CONNECTIONS} connections {accepted} were accepted and {refused} refused at once \
         ({counted} counted as fd_limit)"
    );
    assert!(
        accepted < NOFILE,
        "{accepted} accepted under a limit of {NOFILE}"
    );
    assert!(refused >= CONNECTIONS - NOFILE, "{refused} refused");
    assert!(counted >= 1.0, "refusals at the limit are counted");

    // Descriptors free up: the proxy serves again.
    drop(conns);
    let since = Instant::now();
    loop {
        if get().await == (0, "200".to_string()) {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the proxy does not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(proxy.stop().await, Some(0));
    world.stop().await;
}
