//! The `io.l5d.mesh` interpreter: namerd's `io.linkerd.mesh` gRPC streams.
//!
//! As Linkerd's mesh client (`interpreter/mesh/Client.scala`): one HTTP/2
//! connection to namerd (plain or TLS, see `channel.rs`) carries one `StreamBoundTree` per distinct
//! (local dtab, name) and one `StreamReplicas` per distinct bound id, each
//! feeding a `watch` channel shared by every caller ([`cache`]). Each stream
//! lives in a task ([`stream`]) that reconnects forever on a capped,
//! jittered backoff and never turns a known answer into a failure; a key
//! nobody holds for `idle_ttl` is dropped, which cancels its stream, and so
//! is a key whose router released it (an evicted route).
//! Depends on `l5d-proto`'s generated clients and conversions only.
//!
//! [`cache`]: super::cache

mod channel;
mod conn;
pub(crate) mod delegate_json;
mod dst;
mod shared;
mod stream;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use l5d_dtab::{Addr, Bound, DelegateTree, Dtab, NameTree, Path};
use l5d_proto::mesh as pb;
use l5d_runtime::tls::HANDSHAKE_FAILURE_REASONS;
use l5d_runtime::watch_cache::spawn_sweeper;
use serde_json::{Value, json};
use tokio::sync::watch;

use self::conn::{Conn, Failure, Phase};
pub use self::dst::Dst;
pub use self::shared::MeshOptions;
use self::shared::{Counters, Shared};
use self::stream::{BindWatch, ResolveWatch, Watch};
use super::cache::{self, BindKey, Cache, Entry};
use super::state_json::{self, millis};
use super::{BindState, DelegateError, Interpreter, Resolution};

/// Counters for the admin's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// gRPC streams open to namerd now.
    pub streams_open: u64,
    /// Streams reopened after a failure (`watch_reconnects_total`).
    pub reconnects: u64,
    /// Messages that carried a value.
    pub updates: u64,
    /// Messages that did not convert (the last good value was kept).
    pub rejected: u64,
    /// Failed TLS handshakes with namerd, in the order of
    /// `l5d_runtime::tls::HANDSHAKE_FAILURE_REASONS`.
    pub tls_failures: [u64; HANDSHAKE_FAILURE_REASONS.len()],
}

/// The `io.l5d.mesh` client. See the module documentation.
#[derive(Debug)]
pub struct MeshInterpreter {
    shared: Arc<Shared>,
    binds: Cache<BindKey, BindState>,
    /// Shared with delegation futures, which outlive a borrow of `self`.
    resolves: Arc<Cache<Path, Resolution>>,
}

// === impl MeshInterpreter ===

impl MeshInterpreter {
    /// Starts the client; it connects when the first stream opens. Must be
    /// called within a tokio runtime.
    pub fn new(opts: MeshOptions) -> Arc<MeshInterpreter> {
        let counters = Counters::default();
        let channel = channel::channel(&opts, counters.tls_failures.clone());
        let conn = Arc::new(Conn::new());
        conn::spawn_probe(
            Arc::downgrade(&conn),
            channel.clone(),
            opts.probe_interval,
            opts.connect_timeout.max(Duration::from_secs(1)),
        );
        let idle_ttl = opts.idle_ttl;
        let this = Arc::new(MeshInterpreter {
            shared: Arc::new(Shared {
                opts,
                channel,
                conn,
                counters,
            }),
            binds: cache::cache(idle_ttl),
            resolves: Arc::new(cache::cache(idle_ttl)),
        });
        spawn_sweeper(Arc::downgrade(&this), idle_ttl, |this| {
            let evicted = this.binds.sweep() + this.resolves.sweep();
            if evicted > 0 {
                tracing::debug!(evicted, "dropped idle namerd streams");
            }
        });
        this
    }

    pub fn options(&self) -> &MeshOptions {
        &self.shared.opts
    }

    pub fn stats(&self) -> MeshStats {
        let c = &self.shared.counters;
        MeshStats {
            streams_open: c.streams_open.load(Ordering::Relaxed),
            reconnects: self.shared.conn.reconnects.load(Ordering::Relaxed),
            updates: c.updates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            tls_failures: c.tls_failures.snapshot(),
        }
    }

    /// The number of bindings and address sets held.
    pub fn len(&self) -> (usize, usize) {
        (self.binds.len(), self.resolves.len())
    }

    /// A new entry fed by one namerd stream.
    fn stream<W: Watch>(&self, init: W::State, watch: W) -> Arc<Entry<W::State>> {
        Entry::start(init, |entry| {
            let task = tokio::spawn(stream::run(watch, entry, self.shared.clone()));
            Some(task.abort_handle())
        })
    }
}

impl Interpreter for MeshInterpreter {
    fn bind(&self, local: &Dtab, name: &Path) -> watch::Receiver<BindState> {
        cache::subscribe(&self.binds, BindKey::new(local, name), |key| {
            let watch = BindWatch {
                root: self.shared.opts.root.clone(),
                name: key.name.clone(),
                local: key.local.clone(),
            };
            self.stream(BindState::Pending, watch)
        })
    }

    fn resolve(&self, id: &Path) -> watch::Receiver<Resolution> {
        cache::subscribe(&self.resolves, id.clone(), |id| {
            let watch = ResolveWatch { id: id.clone() };
            self.stream(Resolution::now(Addr::Pending), watch)
        })
    }

    fn release(&self, local: &Dtab, name: &Path) {
        // Eviction aborts the stream's task, which cancels the gRPC stream.
        self.binds.evict_if_unused(&BindKey::new(local, name));
    }

    fn release_resolution(&self, id: &Path) {
        self.resolves.evict_if_unused(id);
    }

    fn delegate(
        &self,
        local: &Dtab,
        path: &Path,
    ) -> BoxFuture<'static, Result<Value, DelegateError>> {
        let req = pb::DelegateTreeReq {
            root: Some((&self.shared.opts.root).into()),
            tree: Some((&NameTree::Leaf(path.clone())).into()),
            dtab: Some(local.into()),
        };
        let mut client = pb::delegator_client::DelegatorClient::new(self.shared.channel.clone());
        let limit = self.shared.opts.delegate_timeout;
        // Leaves show the address sets held when the answer comes.
        let resolves = self.resolves.clone();
        async move {
            let rsp = tokio::time::timeout(limit, client.get_delegate_tree(req))
                .await
                .map_err(|_| DelegateError {
                    message: format!("namerd did not answer within {limit:?}"),
                })?
                .map_err(|status| DelegateError {
                    message: Failure::of(&status).message().to_owned(),
                })?
                .into_inner();
            let tree = rsp.tree.as_ref().ok_or_else(|| DelegateError {
                message: "invalid DelegateTreeRsp: no tree".into(),
            })?;
            let tree = DelegateTree::<Bound>::try_from(tree).map_err(|e| DelegateError {
                message: e.to_string(),
            })?;
            Ok(delegate_json::render(&tree, &|id| {
                resolves
                    .peek(id)
                    .map(|e| state_json::addr_json(&e.current().addr))
            }))
        }
        .boxed()
    }

    fn state(&self) -> Value {
        let conn = self.shared.conn.state();
        let phase = match conn.phase {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Backoff => "backoff",
        };
        let streams = state_json::streams(&self.binds, &self.resolves);
        let stats = self.stats();
        json!({
            "kind": "io.l5d.mesh",
            "dst": self.shared.opts.dst.to_string(),
            "root": self.shared.opts.root.show(),
            "connection": {
                "state": phase,
                "since": millis(conn.since),
                "lastError": conn.last_error.as_deref(),
                "watch_reconnects_total": stats.reconnects,
            },
            "streamsOpen": stats.streams_open,
            "updates": stats.updates,
            "rejected": stats.rejected,
            "streams": streams,
        })
    }
}
