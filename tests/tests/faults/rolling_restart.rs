//! A rolling restart of two namerd replicas on one PostgreSQL (one at a
//! time, 5 s apart, behind one address as a Kubernetes Service would put
//! them) under 400 requests a second to 200 names (2 each), each its own namerd
//! stream from the proxy: no request fails, a dtab change written during
//! the restarts reaches all 200 streams, and no acknowledged version is
//! lost.

use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, namerctl};

use super::load::Load;
use super::mesh_faults::Forwarder;
use super::pg_cluster::PgCluster;

const NAMES: usize = 200;

fn namerd_config(port: u16, disco: &std::path::Path) -> String {
    format!(
        "admin: {{port: 0}}\n\
         storage: {{kind: io.l5d.postgres, url: \"postgres://postgres@127.0.0.1:{port}/postgres\", pollIntervalMs: 500}}\n\
         namers: [{{kind: io.l5d.fs, rootDir: {}}}]\n\
         interfaces:\n- {{kind: io.l5d.httpController, port: 0}}\n- {{kind: io.l5d.mesh, port: 0}}\n",
        disco.display()
    )
}

/// `dtab update` with compare-and-set through `base`; the version
/// acknowledged, or `None` if refused.
async fn update(base: &str, file: &std::path::Path, text: &str) -> Option<String> {
    let (code, current, _) = namerctl(base, &["dtab", "get", "internal"]).await;
    if code != 0 {
        return None;
    }
    let version = current
        .lines()
        .find_map(|l| l.strip_prefix("# version "))?
        .trim()
        .to_string();
    std::fs::write(file, text).unwrap();
    let args = [
        "dtab",
        "update",
        "--version",
        &version,
        "internal",
        file.to_str().unwrap(),
    ];
    let (code, _, _) = namerctl(base, &args).await;
    (code == 0).then_some(version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_two_replicas_fails_no_request_and_loses_nothing() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let port = cluster.connect_options().get_port();
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    let v1 = Demo::start("http", "v1", &[]).await;
    let v2 = Demo::start("http", "v2", &[]).await;
    std::fs::write(disco.join("v1"), v1.fs_line()).unwrap();
    std::fs::write(disco.join("v2"), v2.fs_line()).unwrap();
    let config = namerd_config(port, &disco);
    let mut a = Namerd::start(&config).await;
    let mut b = Namerd::start(&config).await;
    a.create_dtab(dir.path(), "internal", "/svc => /#/io.l5d.fs/v1;\n")
        .await;
    let relay = Forwarder::start(a.mesh.parse().unwrap()).await;
    let proxy = Proxy::start(&format!(
        "admin: {{port: 0}}\nrouters:\n- protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  \
         interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{}, root: /internal, retry: {{baseSeconds: 1, maxSeconds: 2}}}}\n",
        relay.addr().port()
    ))
    .await;
    let router = proxy.router("http").to_string();
    // 200 names, each bound (a stream from the proxy to namerd) before the
    // restarts.
    let loads: Vec<Load> = (0..NAMES)
        .map(|i| Load::start(&router, &format!("n{i}"), (500 / NAMES as u32).max(2), 1))
        .collect();
    let since = Instant::now();
    while loads.iter().any(|l| l.tally().answered() == 0) {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "names not all bound"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let file = dir.path().join("w.dtab");
    let mut acked = Vec::new();
    // Restart a (b serves), then b (a serves), 5 s apart; a dtab change
    // through the replica that is up while the other is down.
    relay.restore(b.mesh.parse().unwrap());
    a.stop().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    acked.extend(update(&b.base_url(), &file, "/svc => /#/io.l5d.fs/v2;\n").await);
    a = Namerd::start(&config).await;
    relay.restore(a.mesh.parse().unwrap());
    b.stop().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    b = Namerd::start(&config).await;
    assert_eq!(
        acked.len(),
        1,
        "the change during the restarts was acknowledged"
    );

    // Every name's stream resumes with the latest value: all 200 route to v2.
    let since = Instant::now();
    while loads.iter().any(|l| !l.tally().served.contains_key("v2")) {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{} names never saw the change",
            loads
                .iter()
                .filter(|l| !l.tally().served.contains_key("v2"))
                .count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sent = 0;
    let mut failed = std::collections::BTreeMap::new();
    for l in loads {
        let t = l.stop().await;
        sent += t.sent;
        for (why, n) in t.failed {
            *failed.entry(why).or_insert(0) += n;
        }
    }
    // No acknowledged version lost: the history of both replicas has it.
    for replica in [&a, &b] {
        let (code, history, err) = namerctl(
            &replica.base_url(),
            &["dtab", "--json", "history", "internal"],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(
            history.contains("/#/io.l5d.fs/v2"),
            "the acknowledged change is in the history"
        );
    }
    eprintln!(
        "rolling restart: {sent} requests to {NAMES} names through two replicas restarted in turn, {} failed {failed:?}; \
         every name's stream resumed with the change written during the restarts",
        failed.values().sum::<u64>()
    );
    assert!(failed.is_empty(), "{failed:?}");
    proxy.stop().await;
    a.stop().await;
    b.stop().await;
    v1.stop().await;
    v2.stop().await;
}
