//! Backend churn: an id's endpoints change 20 times a second (the fs
//! namer's file rewritten, one backend out and another in each time)
//! under 500 requests a second: no request fails, and once the proxy has
//! the last set (its `/client_state.json` says so) the endpoints removed
//! get no further request (their per-endpoint counters stop).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy, curl};

use super::load::Load;

async fn admin(proxy: &Proxy, path: &str) -> String {
    let (code, out, err) = curl(&["-sS", &format!("http://{}{path}", proxy.admin)]).await;
    assert_eq!(code, 0, "{err}");
    out
}

/// The addresses of the id's endpoints as the proxy's balancer has them.
async fn balanced(proxy: &Proxy) -> BTreeSet<String> {
    let page = admin(proxy, "/client_state.json").await;
    let json: serde_json::Value = serde_json::from_str(&page).unwrap();
    json["http"]["/#/io.l5d.fs/world"]["endpoints"]
        .as_array()
        .map(|eps| {
            eps.iter()
                .map(|e| e["address"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Requests the proxy sent to `addr`.
async fn dispatched(proxy: &Proxy, addr: &str) -> f64 {
    let page = admin(proxy, "/admin/metrics/prometheus").await;
    page.lines()
        .filter(|l| {
            l.starts_with("linkerd_endpoint_requests_total{")
                && l.contains(&format!("endpoint=\"{addr}\""))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_churning_20_times_a_second_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    let mut backends = Vec::new();
    for i in 0..6 {
        backends.push(Demo::start("http", &format!("world-{i}"), &[]).await);
    }
    let line = |i: usize| backends[i].fs_line();
    let write = |set: &[usize]| {
        let text: String = set.iter().map(|i| line(*i)).collect();
        // Written whole and renamed in, so the namer never reads half a file.
        let tmp = dir.path().join("world.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, disco.join("world")).unwrap();
    };
    write(&[0, 1, 2]);
    let namerd = Namerd::start(&Namerd::fs_config(dir.path())).await;
    namerd
        .create_dtab(dir.path(), "internal", "/svc => /#/io.l5d.fs;\n")
        .await;
    let port = namerd.mesh.rsplit(':').next().unwrap().to_string();
    let proxy = Proxy::start(&format!(
        r#"
admin: {{port: 0}}
routers:
- protocol: http
  label: http
  servers: [{{port: 0}}]
  client: {{loadBalancer: {{kind: p2c}}}}
  interpreter: {{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{port}, root: /internal}}
"#
    ))
    .await;
    let router = proxy.router("http").to_string();
    let load = Load::start(&router, "world", 500, 8);
    load.wait_answered(50, Duration::from_secs(10)).await;

    // 200 changes, one every 50 ms: a window of three backends sliding
    // over the six.
    let mut set: Vec<usize> = vec![0, 1, 2];
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for next in 3..203 {
        tick.tick().await;
        set.remove(0);
        set.push(next % 6);
        write(&set);
    }
    let last: BTreeSet<String> = set.iter().map(|i| backends[*i].addr.to_string()).collect();
    // The last set reaches the balancer (the fs namer and the stream take
    // milliseconds; 10 s is a generous bound).
    let since = Instant::now();
    while balanced(&proxy).await != last {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the last set never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removed: Vec<String> = backends
        .iter()
        .map(|b| b.addr.to_string())
        .filter(|a| !last.contains(a))
        .collect();
    let mut counts = Vec::new();
    for addr in &removed {
        counts.push(dispatched(&proxy, addr).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (addr, before) in removed.iter().zip(&counts) {
        let after = dispatched(&proxy, addr).await;
        assert_eq!(
            after, *before,
            "{addr} got requests after its removal was streamed"
        );
    }
    let tally = load.stop().await;
    eprintln!(
        "churn: 200 endpoint changes in 10 s under 500 requests/s: {} requests, {} answered {:?}, {} failed {:?}; \
         removed endpoints got 0 requests in the 3 s after the proxy had the last set",
        tally.sent,
        tally.answered(),
        tally.served,
        tally.failures(),
        tally.failed
    );
    assert_eq!(tally.failures(), 0, "{:?}", tally.failed);
    proxy.stop().await;
    namerd.stop().await;
    for b in backends {
        b.stop().await;
    }
}
