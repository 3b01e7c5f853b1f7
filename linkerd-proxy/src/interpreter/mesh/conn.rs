//! The state of the one HTTP/2 connection to namerd, as the streams on it
//! see it, and the probe that notices namerd's return.
//!
//! Every stream reconnects on its own capped backoff, but a stream in
//! backoff also wakes as soon as the connection is known to work again:
//! when any other stream receives a message, or when the probe (a tiny
//! unary call, one per `probe_interval`, only while namerd is away) gets an
//! answer. Recovery after namerd returns therefore takes about one probe
//! interval, not up to `retry_max` per stream (R2, R8).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use l5d_proto::mesh as pb;
use tokio::sync::{Notify, watch};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::error::push_sources;

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing has been received yet.
    Connecting,
    /// A stream has received a message (or the probe an answer) since the
    /// last failure.
    Connected,
    /// namerd was unreachable on the last attempt; streams are in backoff.
    Backoff,
}

#[derive(Clone, Debug)]
pub(crate) struct ConnState {
    pub(crate) phase: Phase,
    pub(crate) last_error: Option<Arc<str>>,
    pub(crate) since: SystemTime,
}

/// How a failed call failed, which decides the message and the retry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer from namerd (connection refused, reset, keep-alive
    /// timeout, stream ended): retry on backoff, wake on recovery.
    Unreachable(String),
    /// namerd refused the request itself (no such namespace, invalid
    /// name): retrying soon will not help.
    Refused(String),
    /// namerd answered with an error of its own (storage down): retry on
    /// backoff.
    Server(String),
}

#[derive(Debug)]
pub(crate) struct Conn {
    state: watch::Sender<ConnState>,
    recovered: Notify,
    pub(crate) reconnects: AtomicU64,
}

// === impl Failure ===

impl Failure {
    pub(crate) fn of(status: &Status) -> Failure {
        let detail = describe(status);
        match status.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::Unimplemented
            | Code::OutOfRange
            | Code::AlreadyExists => Failure::Refused(format!("namerd: {detail}")),
            Code::Internal | Code::ResourceExhausted | Code::Aborted | Code::DataLoss
                if !is_transport(status) =>
            {
                Failure::Server(format!("namerd error: {detail}"))
            }
            _ => Failure::Unreachable(format!("namerd unreachable: {detail}")),
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Unreachable(m) | Failure::Refused(m) | Failure::Server(m) => m,
        }
    }
}

/// A status from the transport (tonic or hyper) rather than from namerd.
fn is_transport(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
}

/// The status message followed by its causes, which is where tonic puts
/// "connection refused".
fn describe(status: &Status) -> String {
    let mut out = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_owned()
    };
    push_sources(&mut out, std::error::Error::source(status));
    out
}

// === impl Conn ===

impl Conn {
    pub(crate) fn new() -> Self {
        Conn {
            state: watch::Sender::new(ConnState {
                phase: Phase::Connecting,
                last_error: None,
                since: SystemTime::now(),
            }),
            recovered: Notify::new(),
            reconnects: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> ConnState {
        self.state.borrow().clone()
    }

    /// Something arrived from namerd.
    pub(crate) fn up(&self) {
        let changed = self.state.send_if_modified(|s| {
            if s.phase == Phase::Connected {
                return false;
            }
            s.phase = Phase::Connected;
            s.since = SystemTime::now();
            true
        });
        if changed {
            self.recovered.notify_waiters();
        }
    }

    /// A call found namerd unreachable.
    pub(crate) fn down(&self, error: &str) {
        self.state.send_modify(|s| {
            if s.phase != Phase::Backoff {
                s.since = SystemTime::now();
            }
            s.phase = Phase::Backoff;
            s.last_error = Some(error.into());
        });
    }

    /// Sleeps for `delay`, or less if the connection is seen to work again
    /// meanwhile.
    pub(crate) async fn backoff(&self, delay: Duration) {
        let recovered = self.recovered.notified();
        tokio::pin!(recovered);
        recovered.as_mut().enable();
        if self.state.borrow().phase == Phase::Connected {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = recovered => {}
        }
    }

    pub(crate) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// While the connection is in backoff, asks namerd a trivial question
/// (`Codec.ReadPath`) every `every` (jittered); any answer from namerd
/// means it is back. Stops when the interpreter is dropped.
pub(crate) fn spawn_probe(conn: Weak<Conn>, channel: Channel, every: Duration, timeout: Duration) {
    let Some(mut rx) = conn.upgrade().map(|c| c.state.subscribe()) else {
        return;
    };
    tokio::spawn(async move {
        let mut client = pb::codec_client::CodecClient::new(channel);
        loop {
            if rx.wait_for(|s| s.phase == Phase::Backoff).await.is_err() {
                return;
            }
            let jitter = every.mul_f64(0.5 + fastrand::f64() / 2.0);
            tokio::time::sleep(jitter).await;
            if rx.borrow().phase != Phase::Backoff {
                continue;
            }
            let req = pb::ReadPathReq { text: "/".into() };
            let answered = match tokio::time::timeout(timeout, client.read_path(req)).await {
                Ok(Ok(_)) => true,
                Ok(Err(status)) => !matches!(Failure::of(&status), Failure::Unreachable(_)),
                Err(_) => false,
            };
            let Some(conn) = conn.upgrade() else { return };
            if answered {
                tracing::info!("namerd answers again");
                conn.up();
            }
        }
    });
}
