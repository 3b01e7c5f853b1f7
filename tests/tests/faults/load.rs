//! A steady load generator with exact accounting: a fixed rate over a few
//! keep-alive connections, loopback only, bounded by the caller's stop;
//! every request sent is counted once as answered by a backend (by
//! `x-served-by`) or failed (by status, or by the client's error).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a load run saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub sent: u64,
    /// Answers by the backend that served them.
    pub served: BTreeMap<String, u64>,
    /// Failures by why (`status 503: <l5d-err>`, `error: ...`).
    pub failed: BTreeMap<String, u64>,
    /// When each backend first answered, from the start of the load.
    pub first_served: BTreeMap<String, Duration>,
}

impl Tally {
    pub(crate) fn answered(&self) -> u64 {
        self.served.values().sum()
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

pub(crate) struct Load {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    tally: Arc<Mutex<Tally>>,
    pub started: Instant,
}

impl Load {
    /// `rate` requests a second for `Host: host` to `router`, spread over
    /// `connections` tasks, each on its own pooled connection. Each
    /// request waits at most 10 s (a hang is counted as a failure).
    pub(crate) fn start(router: &str, host: &str, rate: u32, connections: u32) -> Load {
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let period = Duration::from_secs_f64(f64::from(connections) / f64::from(rate));
        let tasks = (0..connections)
            .map(|_| {
                let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
                let (uri, host) = (format!("http://{router}/"), host.to_string());
                let (tally, mut stopped) = (tally.clone(), stopped.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = stopped.wait_for(|s| *s) => return,
                        }
                        let req = Request::get(&uri)
                            .header("host", &host)
                            .body(Empty::new())
                            .unwrap();
                        tally.lock().unwrap().sent += 1;
                        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
                            let rsp = client
                                .request(req)
                                .await
                                .map_err(|e| format!("error: {e}"))?;
                            let status = rsp.status();
                            let headers = rsp.headers().clone();
                            rsp.into_body()
                                .collect()
                                .await
                                .map_err(|e| format!("body: {e}"))?;
                            let served = headers
                                .get("x-served-by")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            if status == 200 && !served.is_empty() {
                                Ok(served)
                            } else {
                                let err = headers
                                    .get("l5d-err")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default();
                                Err(format!("status {status}: {err}"))
                            }
                        })
                        .await
                        .unwrap_or_else(|_| Err("no answer within 10 s".to_string()));
                        let mut t = tally.lock().unwrap();
                        match outcome {
                            Ok(served) => {
                                t.first_served
                                    .entry(served.clone())
                                    .or_insert_with(|| started.elapsed());
                                *t.served.entry(served).or_default() += 1;
                            }
                            Err(why) => *t.failed.entry(why).or_default() += 1,
                        }
                    }
                })
            })
            .collect();
        drop(stopped);
        Load {
            stop,
            tasks,
            tally,
            started,
        }
    }

    /// The figures so far.
    pub(crate) fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Stops sending, lets requests in flight finish, and returns the
    /// figures: every request sent is answered or failed.
    pub(crate) async fn stop(self) -> Tally {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await.unwrap();
        }
        let tally = self.tally.lock().unwrap().clone();
        assert_eq!(
            tally.sent,
            tally.answered() + tally.failures(),
            "every request is accounted for"
        );
        tally
    }
}
