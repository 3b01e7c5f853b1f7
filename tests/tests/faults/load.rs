//! A steady load generator with exact accounting: a fixed rate over a few
//! keep-alive connections, loopback only, bounded by the caller's stop;
//! every request sent is counted once as answered by a backend (by
//! `x-served-by`) or failed (by status, or by the client's error).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
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

/// What a load sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// HTTP/1.1 GETs, `Host` naming the service.
    Http1,
    /// HTTP/2 (prior knowledge) GETs, `:authority` naming the service.
    H2,
    /// gRPC-shaped HTTP/2 POSTs (an empty message; `l5d-demo` answers any
    /// method with `grpc-status: 0`).
    Grpc,
}

/// One task's way of sending a request.
enum Sender {
    Http1(Box<Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>>),
    /// Made on first use and again after a failure.
    H2(Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>>),
}

impl Sender {
    async fn send(
        &mut self,
        router: &str,
        req: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        match self {
            Sender::Http1(client) => client.request(req).await.map_err(|e| format!("error: {e}")),
            Sender::H2(slot) => {
                if slot.as_ref().is_none_or(|s| s.is_closed()) {
                    let stream = tokio::net::TcpStream::connect(router)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let (send, conn) = hyper::client::conn::http2::handshake(
                        TokioExecutor::new(),
                        TokioIo::new(stream),
                    )
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                    tokio::spawn(conn);
                    *slot = Some(send);
                }
                let send = slot.as_mut().expect("connected");
                let result = send.send_request(req).await;
                if result.is_err() {
                    *slot = None;
                }
                result.map_err(|e| format!("error: {e}"))
            }
        }
    }
}

fn request(kind: Kind, router: &str, host: &str) -> Request<Full<Bytes>> {
    match kind {
        Kind::Http1 => Request::get(format!("http://{router}/"))
            .header("host", host)
            .body(Full::default()),
        Kind::H2 => Request::get(format!("http://{host}/")).body(Full::default()),
        Kind::Grpc => Request::post(format!("http://{host}/l5d.demo.Greeter/Hello"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))),
    }
    .unwrap()
}

impl Load {
    /// `rate` HTTP/1.1 requests a second for `Host: host` to `router`,
    /// spread over `connections` tasks, each on its own pooled connection.
    /// Each request waits at most 10 s (a hang is counted as a failure).
    pub(crate) fn start(router: &str, host: &str, rate: u32, connections: u32) -> Load {
        Load::start_kind(Kind::Http1, router, host, rate, connections)
    }

    /// As [`start`](Self::start), sending `kind`.
    pub(crate) fn start_kind(
        kind: Kind,
        router: &str,
        host: &str,
        rate: u32,
        connections: u32,
    ) -> Load {
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let period = Duration::from_secs_f64(f64::from(connections) / f64::from(rate));
        let tasks = (0..connections)
            .map(|_| {
                let mut sender = match kind {
                    Kind::Http1 => {
                        Sender::Http1(Box::new(Client::builder(TokioExecutor::new()).build_http()))
                    }
                    Kind::H2 | Kind::Grpc => Sender::H2(None),
                };
                let (router, host) = (router.to_string(), host.to_string());
                let (tally, mut stopped) = (tally.clone(), stopped.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = stopped.wait_for(|s| *s) => return,
                        }
                        let req = request(kind, &router, &host);
                        tally.lock().unwrap().sent += 1;
                        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
                            let rsp = sender.send(&router, req).await?;
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

    /// Waits until `n` requests were answered (the names are bound and
    /// the path works), failing the test after `bound`.
    pub(crate) async fn wait_answered(&self, n: u64, bound: Duration) {
        let since = Instant::now();
        while self.tally().answered() < n {
            assert!(since.elapsed() < bound, "{:?}", self.tally());
            tokio::time::sleep(Duration::from_millis(20)).await;
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
