//! R1: namerd killed and restarted under 1,000 requests a second through
//! two proxies in a row (an outgoing proxy that sends to an incoming one,
//! each with its own namespace in namerd). Nothing bound before the kill
//! fails, and a dtab change made while the proxies' namerd is down (by
//! another namerd on the same database) reaches them soon after it
//! returns.

use std::path::Path;
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, namerctl};

use super::load::Load;

use super::mesh_faults::Forwarder;

/// The incoming proxy's namespace: `world` is `world-v1`.
const INTERNAL: &str = "/srv => /#/io.l5d.fs;\n/svc => /srv;\n/svc/world => /srv/world-v1;\n";

fn proxy_config(mesh: &str, root: &str) -> String {
    let port = mesh.rsplit(':').next().unwrap();
    format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: http
  servers: [{{port: 0}}]
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: {root}, retry: {{baseSeconds: 1, maxSeconds: 2}}}}
"#
    )
}

/// `namerctl dtab update` with compare-and-set on the current version.
async fn update(base: &str, dir: &Path, ns: &str, text: &str) {
    let (code, current, err) = namerctl(base, &["dtab", "get", ns]).await;
    assert_eq!(code, 0, "namerctl dtab get: {err}");
    let version = current
        .lines()
        .find_map(|l| l.strip_prefix("# version "))
        .expect("a version line")
        .trim()
        .to_string();
    let file = dir.join("update.dtab");
    std::fs::write(&file, text).unwrap();
    let args = [
        "dtab",
        "update",
        "--version",
        &version,
        ns,
        file.to_str().unwrap(),
    ];
    let (code, _, err) = namerctl(base, &args).await;
    assert_eq!(code, 0, "namerctl dtab update: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namerd_killed_and_restarted_under_load_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = Demo::start("http", "world-v1", &[]).await;
    let v2 = Demo::start("http", "world-v2", &[]).await;
    for d in [&v1, &v2] {
        d.register(dir.path());
    }
    let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
    let forwarder = Forwarder::start(namerd.mesh.parse().unwrap()).await;
    let mesh = forwarder.addr().to_string();
    namerd.create_dtab(dir.path(), "internal", INTERNAL).await;
    let incoming = Proxy::start(&proxy_config(&mesh, "/internal")).await;
    let to_incoming = format!(
        "/svc/world => /$/inet/127.0.0.1/{};\n",
        incoming.router("http").rsplit(':').next().unwrap()
    );
    namerd
        .create_dtab(dir.path(), "outgoing", &to_incoming)
        .await;
    let outgoing = Proxy::start(&proxy_config(&mesh, "/outgoing")).await;
    let router = outgoing.router("http").to_string();

    // Bound and answering before the fault (a generous 10 s for the first
    // bindings of a fresh namerd).
    let warm = Load::start(&router, "world", 200, 4);
    let since = Instant::now();
    while warm.tally().served.get("world-v1").copied().unwrap_or(0) < 50 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{:?}",
            warm.tally()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    warm.stop().await;

    let load = Load::start(&router, "world", 1000, 16);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // namerd dies without warning; the path to it refuses connections.
    namerd.kill().await;
    forwarder.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Meanwhile an operator shifts world to v2 through another namerd on
    // the same database.
    let other = Namerd::start(&Namerd::fs_config(dir.path())).await;
    update(
        &other.base_url(),
        dir.path(),
        "internal",
        &INTERNAL.replace("world-v1;", "world-v2;"),
    )
    .await;
    other.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_return = load.tally();
    assert!(
        !before_return.served.contains_key("world-v2"),
        "the change cannot arrive while namerd is away: {before_return:?}"
    );

    // namerd returns behind the same address.
    let returned = Namerd::start(&Namerd::fs_config(dir.path())).await;
    forwarder.restore(returned.mesh.parse().unwrap());
    let back = load.started.elapsed();
    let since = Instant::now();
    while !load.tally().served.contains_key("world-v2") {
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the change made during the outage did not arrive within 15 s of namerd's return"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = load.stop().await;
    let arrived = tally.first_served["world-v2"].saturating_sub(back);
    let elapsed = tally.sent as f64 / 1000.0;
    eprintln!(
        "R1: {} requests over ~{elapsed:.0} s through two proxies, {} answered ({:?}), {} failed {:?}; \
         the dtab change made during the outage reached traffic {arrived:?} after namerd returned",
        tally.sent,
        tally.answered(),
        tally.served,
        tally.failures(),
        tally.failed
    );
    assert_eq!(tally.failures(), 0, "requests failed: {:?}", tally.failed);
    assert!(tally.sent >= 5_000, "the load ran: {} requests", tally.sent);
    assert!(
        arrived <= Duration::from_secs(5),
        "within 5 s of namerd's return (the target is 2 s; 5 s leaves room for a loaded machine): {arrived:?}"
    );
    outgoing.stop().await;
    incoming.stop().await;
    returned.stop().await;
    v1.stop().await;
    v2.stop().await;
}
