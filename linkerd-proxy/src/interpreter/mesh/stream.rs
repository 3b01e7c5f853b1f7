//! One namerd stream kept open for as long as its entry lives:
//! `StreamBoundTree` for a binding, `StreamReplicas` for an address set.
//!
//! The task opens the stream, publishes every message that converts, and
//! on any error or end reopens it after a capped, never-ending backoff
//! (reset by each received message). Each reopened stream starts with
//! namerd's full snapshot, which replaces the value (R5). What it never
//! does is replace an answer with a failure: while namerd is away the last
//! good value stays and the failure goes to the entry's `lastError`; only a
//! key that never had an answer shows `Failed`, so that it does not hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures::future::BoxFuture;
use l5d_dtab::{Addr, Bound, Dtab, NameTree, Path};
use l5d_proto::mesh as pb;
use l5d_runtime::Backoff;
use tonic::Streaming;
use tonic::transport::Channel;

use super::conn::Failure;
use super::shared::Shared;
use crate::interpreter::cache::Entry;
use crate::interpreter::{BindState, Resolution};

/// What differs between the two kinds of stream.
pub(crate) trait Watch: Send + Sync + 'static {
    type Msg: Send + 'static;
    type State: Clone + Send + Sync + 'static;

    fn open(
        &self,
        channel: Channel,
    ) -> BoxFuture<'static, Result<Streaming<Self::Msg>, tonic::Status>>;

    /// What a message does to the current value; an error rejects it.
    fn apply(&self, msg: &Self::Msg, current: &Self::State)
    -> Result<Applied<Self::State>, String>;

    /// Whether the value is an answer from namerd (which a failure must not
    /// replace) rather than `Pending` or our own `Failed`.
    fn is_answer(state: &Self::State) -> bool;

    fn failed(message: &str) -> Self::State;

    /// Whether `new` differs from `cur` other than in its receipt time.
    fn differs(cur: &Self::State, new: &Self::State) -> bool;
}

/// The effect of one message.
pub(crate) enum Applied<T> {
    Publish(T),
    /// Keep the current value (e.g. `pending` after an answer), noting
    /// why if namerd reported a problem.
    Keep(Option<String>),
}

/// Counts a stream as open for as long as it is.
struct OpenGuard<'a>(&'a AtomicU64);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keeps `entry` fed from namerd until the task is aborted.
pub(crate) async fn run<W: Watch>(watch: W, entry: Arc<Entry<W::State>>, shared: Arc<Shared>) {
    let opts = &shared.opts;
    let mut backoff = Backoff::new(opts.retry_base, opts.retry_max);
    let mut attempt = 0u64;
    loop {
        if attempt > 0 {
            shared.conn.count_reconnect();
        }
        attempt += 1;
        let failure = match watch.open(shared.channel.clone()).await {
            Ok(stream) => {
                shared.counters.streams_open.fetch_add(1, Ordering::Relaxed);
                let _open = OpenGuard(&shared.counters.streams_open);
                read(&watch, stream, &entry, &shared, &mut backoff).await
            }
            Err(status) => Failure::of(&status),
        };
        tracing::debug!(error = failure.message(), "namerd stream failed");
        entry.set_error(Some(failure.message().to_owned()));
        if !W::is_answer(&entry.current()) {
            entry.set(W::failed(failure.message()));
        }
        match &failure {
            Failure::Unreachable(m) => {
                shared.conn.down(m);
                let delay = backoff.next_delay();
                shared.conn.backoff(delay).await;
            }
            Failure::Server(_) => tokio::time::sleep(backoff.next_delay()).await,
            Failure::Refused(_) => tokio::time::sleep(backoff.max()).await,
        }
    }
}

/// Reads messages until the stream fails or ends.
async fn read<W: Watch>(
    watch: &W,
    mut stream: Streaming<W::Msg>,
    entry: &Entry<W::State>,
    shared: &Shared,
    backoff: &mut Backoff,
) -> Failure {
    loop {
        let msg = match stream.message().await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Failure::Unreachable("namerd unreachable: the stream ended".into()),
            Err(status) => return Failure::of(&status),
        };
        backoff.reset();
        shared.conn.up();
        let applied = watch.apply(&msg, &entry.current());
        match applied {
            Ok(Applied::Publish(state)) => {
                shared.counters.updates.fetch_add(1, Ordering::Relaxed);
                entry.set_error(None);
                entry.publish_if(state, W::differs);
            }
            Ok(Applied::Keep(error)) => {
                entry.received();
                if error.is_some() {
                    entry.set_error(error);
                }
            }
            Err(why) => {
                tracing::warn!(error = %why, "namerd sent a message that does not convert; keeping the last value");
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                entry.reject(format!("rejected an update: {why}"));
            }
        }
    }
}

// === BindWatch ===

/// `StreamBoundTree(root, name, local)`.
#[derive(Debug)]
pub(crate) struct BindWatch {
    pub(crate) root: Path,
    pub(crate) name: Path,
    pub(crate) local: Dtab,
}

impl Watch for BindWatch {
    type Msg = pb::BoundTreeRsp;
    type State = BindState;

    fn open(
        &self,
        channel: Channel,
    ) -> BoxFuture<'static, Result<Streaming<Self::Msg>, tonic::Status>> {
        let req = pb::BindReq {
            root: Some((&self.root).into()),
            name: Some((&self.name).into()),
            dtab: Some((&self.local).into()),
        };
        Box::pin(async move {
            let mut client = pb::interpreter_client::InterpreterClient::new(channel);
            Ok(client.stream_bound_tree(req).await?.into_inner())
        })
    }

    fn apply(&self, msg: &Self::Msg, _: &BindState) -> Result<Applied<BindState>, String> {
        let tree = msg.tree.as_ref().ok_or("invalid BoundTreeRsp: no tree")?;
        let tree = NameTree::<Bound>::try_from(tree).map_err(|e| e.to_string())?;
        Ok(Applied::Publish(BindState::Bound {
            tree: Arc::new(tree),
            at: SystemTime::now(),
        }))
    }

    fn is_answer(state: &BindState) -> bool {
        matches!(state, BindState::Bound { .. })
    }

    fn failed(message: &str) -> BindState {
        BindState::Failed {
            message: message.into(),
        }
    }

    fn differs(cur: &BindState, new: &BindState) -> bool {
        match (cur, new) {
            (BindState::Bound { tree: a, .. }, BindState::Bound { tree: b, .. }) => a != b,
            _ => true,
        }
    }
}

// === ResolveWatch ===

/// `StreamReplicas(id)`.
#[derive(Debug)]
pub(crate) struct ResolveWatch {
    pub(crate) id: Path,
}

impl Watch for ResolveWatch {
    type Msg = pb::Replicas;
    type State = Resolution;

    fn open(
        &self,
        channel: Channel,
    ) -> BoxFuture<'static, Result<Streaming<Self::Msg>, tonic::Status>> {
        let req = pb::ReplicasReq {
            id: Some((&self.id).into()),
        };
        Box::pin(async move {
            let mut client = pb::resolver_client::ResolverClient::new(channel);
            Ok(client.stream_replicas(req).await?.into_inner())
        })
    }

    /// `pending` and `failed` from namerd replace only a value that is not
    /// an answer: a set of addresses stays until namerd sends another set
    /// or says the id is gone (`neg`).
    fn apply(&self, msg: &Self::Msg, current: &Resolution) -> Result<Applied<Resolution>, String> {
        let answered = Self::is_answer(current);
        let addr = Addr::try_from(msg).map_err(|e| e.to_string())?;
        Ok(match addr {
            Addr::Pending if answered => Applied::Keep(None),
            Addr::Failed(m) if answered => {
                Applied::Keep(Some(format!("namerd failed to resolve: {m}")))
            }
            addr => Applied::Publish(Resolution::now(addr)),
        })
    }

    fn is_answer(state: &Resolution) -> bool {
        matches!(state.addr, Addr::Bound(_) | Addr::Neg)
    }

    fn failed(message: &str) -> Resolution {
        Resolution::now(Addr::Failed(message.into()))
    }

    fn differs(cur: &Resolution, new: &Resolution) -> bool {
        match (&cur.addr, &new.addr) {
            (Addr::Bound(a), Addr::Bound(b)) => a != b,
            (Addr::Neg, Addr::Neg) => false,
            _ => true,
        }
    }
}
