//! How fast a dtab write reaches open `StreamBoundTree` watchers, and what
//! namerd's memory is with many streams open. A benchmark, not a test: it
//! prints figures and fails only if namerd does not work.
//!
//! ```text
//! cargo bench -p namerd --bench propagation            # 1,000 watchers, 20 writes, then 10,000 streams
//! WATCHERS=1000 WRITES=50 STREAMS=10000 SETTLE=15 cargo bench -p namerd --bench propagation
//! WATCHERS=10000 STREAMS=10000 cargo bench -p namerd --bench propagation   # propagation to 10,000
//! ```
//!
//! namerd runs as its own process (the release binary), with an in-memory
//! store; the watchers are tonic clients in this process, spread over a few
//! HTTP/2 connections as proxies would be. Propagation is measured from the
//! moment the write's 204 arrives to the moment each watcher has the new
//! tree (a watcher may see it before the 204; that counts as 0).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use l5d_proto::mesh::interpreter_client::InterpreterClient;
use l5d_proto::mesh::{BindReq, BoundTreeRsp, Path as PathMsg};
use namerd::store::Version;
use tokio::sync::{Notify, watch};

mod support;
use support::{Namerd, env, percentile};

/// When the watchers received each tree (by the port in it), and a wake-up
/// for the writer once every watcher has one: the writer never scans all
/// watchers, which would take CPU from namerd with 10,000 of them.
#[derive(Default)]
struct Arrivals {
    by_port: Mutex<HashMap<u16, Vec<Instant>>>,
    all_seen: Notify,
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The port of the tree's first leaf (`/$/inet/127.0.0.1/<port>`).
fn port_of(rsp: &BoundTreeRsp) -> Option<u16> {
    use l5d_proto::mesh::bound_name_tree::Node;
    match rsp.tree.as_ref()?.node.as_ref()? {
        Node::Leaf(leaf) => {
            let last = leaf.id.as_ref()?.elems.last()?;
            std::str::from_utf8(last).ok()?.parse().ok()
        }
        _ => None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let watchers = env("WATCHERS", 1000);
    let writes = env("WRITES", 20);
    let streams = env("STREAMS", 10_000);
    let connections = env("CONNECTIONS", 10);
    let settle = env("SETTLE", 15);

    // The watchers stand for many proxies but come from one address: the
    // per-client limits are raised to what they hold together.
    let config = format!(
        "admin: {{port: 0}}\n\
         storage: {{kind: io.l5d.inMemory, namespaces: {{internal: \"/svc => /$/inet/127.0.0.1/1\"}}}}\n\
         interpreter: {{maxBindingsPerClient: {n}, maxStreamsPerClient: {n}}}\n\
         interfaces:\n- {{kind: io.l5d.httpController, port: 0}}\n- {{kind: io.l5d.mesh, port: 0}}\n",
        n = watchers.max(streams)
    );
    let mut namerd = Namerd::start(&config).await;
    let http = namerd.addr("http");
    let pid = namerd.pid;
    let (idle_rss, _) = rss_kib(pid);

    let channels = namerd.mesh_channels(connections).await;
    let request = |name: &str| BindReq {
        root: Some(PathMsg {
            elems: vec![b"internal".to_vec()],
        }),
        name: Some(PathMsg {
            elems: name
                .trim_start_matches('/')
                .split('/')
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        }),
        dtab: None,
    };

    let received = Arc::new(Arrivals::default());
    let (ready_tx, ready) = watch::channel(0usize);
    let ready_tx = Arc::new(ready_tx);
    for i in 0..watchers {
        let mut client = InterpreterClient::new(channels[i % connections].clone());
        let (received, ready_tx, req) = (received.clone(), ready_tx.clone(), request("/svc/web"));
        tokio::spawn(async move {
            let mut stream = client
                .stream_bound_tree(req)
                .await
                .expect("stream opens")
                .into_inner();
            let mut first = true;
            while let Ok(Some(rsp)) = stream.message().await {
                let now = Instant::now();
                if let Some(port) = port_of(&rsp) {
                    let mut by_port = received.by_port.lock().unwrap();
                    let seen = by_port.entry(port).or_default();
                    seen.push(now);
                    if seen.len() == watchers {
                        received.all_seen.notify_one();
                    }
                }
                if first {
                    first = false;
                    ready_tx.send_modify(|n| *n += 1);
                }
            }
        });
    }
    let mut ready_rx = ready.clone();
    tokio::time::timeout(
        Duration::from_secs(60),
        ready_rx.wait_for(|n| *n == watchers),
    )
    .await
    .expect("every watcher has its first tree within 60 s")
    .unwrap();
    let (rss_watchers, _) = rss_kib(pid);

    let http_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut all = Vec::with_capacity(watchers * writes);
    let mut lasts = Vec::with_capacity(writes);
    for round in 0..writes {
        let port = 2 + round as u16;
        let req = http::Request::put(format!("http://{http}/api/1/dtabs/internal"))
            .header("content-type", "application/dtab")
            .header(
                "if-match",
                Version::from_counter(round as u64 + 1).to_etag(),
            )
            .body(Full::new(Bytes::from(format!(
                "/svc => /$/inet/127.0.0.1/{port}"
            ))))
            .unwrap();
        let rsp = http_client.request(req).await.unwrap();
        assert_eq!(rsp.status(), 204, "write {round} succeeded");
        let committed = Instant::now();
        let deadline = committed + Duration::from_secs(30);
        let mut delays = loop {
            if let Some(seen) = received.by_port.lock().unwrap().get(&port)
                && seen.len() == watchers
            {
                break seen
                    .iter()
                    .map(|t| t.saturating_duration_since(committed))
                    .collect::<Vec<_>>();
            }
            assert!(
                Instant::now() < deadline,
                "write {round} reached every watcher within 30 s"
            );
            let _ = tokio::time::timeout(Duration::from_millis(100), received.all_seen.notified())
                .await;
        };
        delays.sort();
        lasts.push(*delays.last().unwrap());
        all.extend(delays);
    }
    all.sort();
    lasts.sort();

    // Then many more streams, for memory: distinct names, so distinct bindings.
    let extra = streams.saturating_sub(watchers);
    let (more_tx, more) = watch::channel(0usize);
    let more_tx = Arc::new(more_tx);
    for i in 0..extra {
        let mut client = InterpreterClient::new(channels[i % connections].clone());
        let (more_tx, req) = (more_tx.clone(), request(&format!("/svc/web{i}")));
        tokio::spawn(async move {
            let mut stream = client
                .stream_bound_tree(req)
                .await
                .expect("stream opens")
                .into_inner();
            if let Ok(Some(_)) = stream.message().await {
                more_tx.send_modify(|n| *n += 1);
            }
            while let Ok(Some(_)) = stream.message().await {}
        });
    }
    let mut more_rx = more.clone();
    tokio::time::timeout(Duration::from_secs(120), more_rx.wait_for(|n| *n == extra))
        .await
        .expect("every extra stream has its first tree within 120 s")
        .unwrap();
    let (rss_streams, hwm) = rss_kib(pid);
    // jemalloc returns freed pages (the requests' decode buffers, the
    // connections' read buffers of the burst of opens) over its 10 s decay
    // time: what the open streams themselves hold is the RSS after it.
    tokio::time::sleep(Duration::from_secs(settle as u64)).await;
    let (rss_settled, _) = rss_kib(pid);

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "namerd propagation and stream memory ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| figure | result |");
    println!("| --- | --- |");
    println!("| watchers of one name / writes | {watchers} / {writes} |");
    println!(
        "| propagation, every watcher: p50 / p99 / max | {} / {} / {} |",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap())
    );
    println!(
        "| propagation, last watcher per write: p50 / p99 | {} / {} |",
        ms(percentile(&lasts, 0.5)),
        ms(percentile(&lasts, 0.99))
    );
    println!("| namerd RSS idle | {:.1} MiB |", idle_rss as f64 / 1024.0);
    println!(
        "| namerd RSS with {watchers} streams | {:.1} MiB |",
        rss_watchers as f64 / 1024.0
    );
    println!(
        "| namerd RSS with {streams} streams ({} distinct bindings) / peak | {:.1} MiB / {:.1} MiB |",
        extra + 1,
        rss_streams as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "| namerd RSS with {streams} streams, {settle} s later | {:.1} MiB |",
        rss_settled as f64 / 1024.0
    );
    let _ = namerd.process.kill().await;
}
