//! Routing loops (issue 12): a proxy whose dtab routes a name back to
//! itself. Before, a loop ended by the header-count limit after ~95 hops
//! (`maxCallDepth` was 1000), and 30 concurrent loops took the proxy to
//! 5,118 descriptors. Now `maxCallDepth` (20, HTTP/1.1 and h2 alike) ends
//! it: each hop adds one `Via` entry, and the request that arrives with 20
//! is refused with 400, which every hop passes back to the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::setup::{Setup, status};

/// What the deepest hop says: 20 proxies in `Via`, the limit.
const DEPTH_ERR: &str = "Maximum+call+depth+exceeded%3A+20+proxies+in+Via%2C+at+most+20";

/// Open descriptors of a process (Linux).
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_loop_ends_at_the_call_depth_limit() {
    let s = Setup::start().await;
    s.name("loop", s.proxy.router("http"), "http").await;
    s.name("loop-h2", s.proxy.router("h2"), "h2").await;
    for (label, h2, host) in [("http", false, "loop"), ("h2", true, "loop-h2")] {
        let (code, err) = status(&s.proxy, label, h2, &format!("http://{host}/"), &[]).await;
        assert_eq!(code, 400, "{label}: {err}");
        assert!(err.starts_with(DEPTH_ERR), "{label}: {err}");
    }

    // 30 loops at once over HTTP/1.1, where every hop in flight holds two
    // sockets of the proxy (its client's and its server's). Sampling can
    // only miss the peak, never inflate it.
    let pid = s.proxy.pid().expect("the proxy runs");
    let before = descriptors(pid);
    let peak = Arc::new(AtomicUsize::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(descriptors(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let loops: Vec<_> = (0..30)
        .map(|_| {
            let proxy_router = s.proxy.router("http").to_string();
            tokio::spawn(async move {
                let connect_to = format!("loop:80:{proxy_router}");
                let (code, out, err) = l5d_e2e::curl(&[
                    "-o",
                    "/dev/null",
                    "-D",
                    "-",
                    "--connect-to",
                    &connect_to,
                    "http://loop/",
                ])
                .await;
                assert_eq!(code, 0, "{err}");
                out
            })
        })
        .collect();
    for l in loops {
        let head = l.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        assert!(head.contains(DEPTH_ERR), "{head}");
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "30 concurrent loops: proxy descriptors {before} before, {peak} at the sampled peak (issue: 5,118)"
    );
    // 30 loops x 20 hops x 2 sockets is 1,200 above the idle proxy; the
    // bound leaves room for pooled connections and the sampler's timing.
    assert!(
        peak < before + 1_500,
        "30 loops took the proxy from {before} to {peak} descriptors"
    );
    s.stop().await;
}
