//! Endpoint churn: how soon after the last of many rapid changes every
//! `StreamReplicas` watcher holds the final set. A benchmark, not a test:
//! it prints figures and fails only if namerd does not work.
//!
//! ```text
//! cargo bench -p namerd --bench churn      # 1,000 endpoints, 100 writes/s for 3 s, 100 watchers, 3 rounds
//! ENDPOINTS=1000 RATE=100 SECONDS=3 WATCHERS=100 ROUNDS=3 cargo bench -p namerd --bench churn
//! ```
//!
//! The generator is the `io.l5d.fs` namer's own input: namerd (the release
//! binary, its own process) watches a directory; a writer thread rewrites
//! the service file `churn` `RATE` times a second with `ENDPOINTS`
//! addresses, each write a different set (a window of ports that moves by
//! [`SHIFT`]: that many endpoints leave and as many join), atomically (a
//! staging file renamed over it, as configuration tools and Kubernetes do).
//! The watchers are tonic clients in this process, `StreamReplicas` of
//! `/#/io.l5d.fs/churn` spread over a few HTTP/2 connections. They keep
//! each message as bytes, with its arrival time, and do not decode it:
//! decoding 1,000 endpoints per message per watcher would take the two
//! cores from namerd. After the round, once nothing more arrives, each
//! watcher's last message is decoded and must be the final set. The figure
//! is the time from the last rename to that message's arrival (0 if before).

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use l5d_proto::codec::MeshCodec;
use l5d_proto::mesh::{Path as PathMsg, Replicas, ReplicasReq, replicas};
use prost::Message as _;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};

mod support;
use support::{Namerd, env, percentile};

/// Endpoints that leave (and join) per write.
const SHIFT: u32 = 10;

/// The first port of the first set.
const BASE_PORT: u32 = 20_000;

/// Per watcher: the messages it received, and the last one with its
/// arrival time.
#[derive(Clone, Default)]
struct Arrivals {
    count: usize,
    last: Option<(Bytes, Instant)>,
}

/// The mesh codec for the request; responses kept as bytes.
#[derive(Clone, Default)]
struct RawReplicas;

impl Codec for RawReplicas {
    type Encode = ReplicasReq;
    type Decode = Bytes;
    type Encoder = <MeshCodec<ReplicasReq, Replicas> as Codec>::Encoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        MeshCodec::<ReplicasReq, Replicas>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The CPU time (user + system) namerd has used so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // In clock ticks: USER_HZ, 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// The set of write `k`: `endpoints` consecutive ports from its first.
fn first_port(k: u32) -> u32 {
    BASE_PORT + k * SHIFT
}

/// The first port of a set of `endpoints` addresses, if it is one.
fn first_of(rsp: &Replicas, endpoints: usize) -> Option<u32> {
    match rsp.result.as_ref()? {
        replicas::Result::Bound(bound) if bound.endpoints.len() == endpoints => {
            bound.endpoints.iter().map(|e| e.port as u32).min()
        }
        _ => None,
    }
}

/// Writes set `k` over `file`, through `staging` in another directory of
/// the same file system.
fn write_set(staging: &std::path::Path, file: &std::path::Path, k: u32, endpoints: usize) {
    let mut text = String::with_capacity(endpoints * 16);
    for j in 0..endpoints as u32 {
        text.push_str(&format!("127.0.0.1 {}\n", first_port(k) + j));
    }
    let mut f = std::fs::File::create(staging).expect("create the staging file");
    f.write_all(text.as_bytes())
        .expect("write the staging file");
    drop(f);
    std::fs::rename(staging, file).expect("rename the staging file over the service file");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let endpoints = env("ENDPOINTS", 1000);
    let rate = env("RATE", 100).max(1);
    let seconds = env("SECONDS", 3);
    let watchers = env("WATCHERS", 100);
    let rounds = env("ROUNDS", 3);
    let connections = env("CONNECTIONS", 10).max(1);
    assert!(
        first_port((rounds * (rate * seconds + 1)) as u32) as usize + endpoints <= 65_535,
        "the ports of every set fit in 1-65535"
    );

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (disco, staging) = (tmp.path().join("disco"), tmp.path().join("staging"));
    std::fs::create_dir(&disco).unwrap();
    std::fs::create_dir(&staging).unwrap();
    let (file, staging) = (disco.join("churn"), staging.join("churn"));
    let mut k = 0u32;
    write_set(&staging, &file, k, endpoints);

    let config = format!(
        "admin: {{port: 0}}\n\
         storage: {{kind: io.l5d.inMemory, namespaces: {{default: \"/svc => /#/io.l5d.fs\"}}}}\n\
         namers:\n- {{kind: io.l5d.fs, rootDir: \"{dir}\"}}\n\
         interpreter: {{maxStreamsPerClient: {n}}}\n\
         interfaces:\n- {{kind: io.l5d.httpController, port: 0}}\n- {{kind: io.l5d.mesh, port: 0}}\n",
        dir = disco.display(),
        n = watchers.max(1)
    );
    let mut namerd = Namerd::start(&config).await;
    let pid = namerd.pid;

    let channels = namerd.mesh_channels(connections).await;
    let received: Arc<Mutex<Vec<Arrivals>>> =
        Arc::new(Mutex::new(vec![Arrivals::default(); watchers]));
    for i in 0..watchers {
        let mut client = tonic::client::Grpc::new(channels[i % connections].clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let req = ReplicasReq {
            id: Some(PathMsg {
                elems: vec![b"#".to_vec(), b"io.l5d.fs".to_vec(), b"churn".to_vec()],
            }),
        };
        let received = received.clone();
        tokio::spawn(async move {
            client.ready().await.expect("the connection is ready");
            let path =
                http::uri::PathAndQuery::from_static("/io.linkerd.mesh.Resolver/StreamReplicas");
            let mut stream = client
                .server_streaming(tonic::Request::new(req), path, RawReplicas)
                .await
                .expect("stream opens")
                .into_inner();
            while let Ok(Some(rsp)) = stream.message().await {
                let now = Instant::now();
                let mut received = received.lock().unwrap();
                received[i].count += 1;
                received[i].last = Some((rsp, now));
            }
        });
    }

    // Waits until every watcher's last message is set `k` (checked every
    // 200 ms, so that the check takes no CPU while sets arrive); the time
    // each got it.
    let wait_for = |k: u32, what: String| {
        let received = received.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let seen: Vec<Option<Instant>> = received
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        let (bytes, at) = r.last.as_ref()?;
                        let rsp = Replicas::decode(bytes.clone()).ok()?;
                        (first_of(&rsp, endpoints) == Some(first_port(k))).then_some(*at)
                    })
                    .collect();
                if seen.iter().all(Option::is_some) {
                    break seen.into_iter().map(Option::unwrap).collect::<Vec<_>>();
                }
                assert!(Instant::now() < deadline, "{what} within 30 s");
            }
        }
    };
    wait_for(k, "every watcher has the first set".into()).await;

    let writes = rate * seconds;
    let period = Duration::from_secs(1) / rate as u32;
    let mut all = Vec::new();
    let mut lasts = Vec::new();
    let mut messages = Vec::new();
    let mut cpu_per_round = Duration::ZERO;
    let mut achieved = Vec::new();
    for round in 0..rounds {
        for r in received.lock().unwrap().iter_mut() {
            r.count = 0;
        }
        let cpu_before = cpu(pid);
        let (staging, file, start) = (staging.clone(), file.clone(), k + 1);
        // The writer runs on its own thread, at a fixed rate.
        let last_write = tokio::task::spawn_blocking(move || {
            let begin = Instant::now();
            for w in 0..writes {
                let due = begin + period * w as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                write_set(&staging, &file, start + w as u32, endpoints);
            }
            (Instant::now(), begin.elapsed())
        });
        let (done, took) = last_write.await.unwrap();
        k += writes as u32;
        let got = wait_for(k, format!("round {round}: every watcher has the final set")).await;
        cpu_per_round += cpu(pid).saturating_sub(cpu_before);
        // A loaded machine may delay the writer: the rate reached is shown.
        achieved.push(writes as f64 / took.as_secs_f64());
        let mut delays: Vec<Duration> = got
            .into_iter()
            .map(|t| t.saturating_duration_since(done))
            .collect();
        delays.sort();
        lasts.push(*delays.last().unwrap());
        all.extend(delays);
        let counts: usize = received.lock().unwrap().iter().map(|r| r.count).sum();
        messages.push(counts as f64 / watchers as f64);
        // Quiet between rounds.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    all.sort();
    lasts.sort();

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "namerd endpoint churn ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| figure | result |");
    println!("| --- | --- |");
    println!(
        "| endpoints / writes per second / seconds / watchers / rounds | \
         {endpoints} / {rate} / {seconds} / {watchers} / {rounds} |"
    );
    println!(
        "| final set held, after the last write, every watcher: p50 / p99 / max | {} / {} / {} |",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap())
    );
    println!(
        "| final set held, last watcher per round: min / median / max | {} / {} / {} |",
        ms(lasts[0]),
        ms(percentile(&lasts, 0.5)),
        ms(*lasts.last().unwrap())
    );
    println!(
        "| sets received per watcher per round (of {writes} written) | {} |",
        messages
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "| writes per second reached, per round | {} |",
        achieved
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "| namerd CPU per round ({seconds} s of churn) | {:.2} s |",
        cpu_per_round.as_secs_f64() / rounds as f64
    );
    let _ = namerd.process.kill().await;
}
