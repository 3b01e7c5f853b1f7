//! Transformers (`namers[].transformers` in namerd's configuration): rewrite
//! what a namer answers, as Linkerd's `NameTreeTransformer`s do, before the
//! interpreter sees it.
//!
//! A transformer rewrites each bound id to `/%/<prefix>/<id>` and changes
//! the addresses of that id: `io.l5d.port` replaces every port,
//! `io.l5d.localhost` and `io.l5d.specificHost` keep only the addresses of
//! some hosts (none left is `Neg`), `io.l5d.replace` puts a fixed path in
//! place of every bound name, `io.l5d.const` answers a fixed path
//! whatever the namer said, and `io.l5d.k8s.daemonset` replaces each
//! address by the DaemonSet proxy on its node (`transformer/daemonset.rs`).
//! That last one depends on a second input, the proxies' own addresses:
//! its address part reads their current value, and
//! [`Transformer::addr_input`] tells the transformed namer to recompute
//! when they change. [`TransformedNamer`] applies a list of them to
//! a namer and is itself a namer. When an id is resolved, the interpreter
//! strips the `/%/...` prefix and asks the namer whose prefix follows; the
//! wrapper then applies the address part of every transformer in order.
//!
//! Depends on the naming core and the namer interface only; it knows
//! nothing of configuration files or of which namer it wraps.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use l5d_dtab::{
    Activity, Addr, AddrSet, Binder, Bound, Dtab, Endpoint, Name, NameError, NameTree, NoNamers,
    Path, Weighted,
};
use tokio::sync::watch;

use crate::k8s::ClientError;
use crate::namer::NamerState;
use crate::namer::inet::HostResolver;

mod daemonset;
mod local_ips;
mod transformed;

pub use daemonset::DaemonSetOptions;
pub use local_ips::local_ips;
pub use transformed::TransformedNamer;

/// Why a transformer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransformerError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("cannot bind {path}: {error}")]
    Bind { path: Path, error: NameError },
    #[error(transparent)]
    Kubernetes(#[from] ClientError),
}

/// One configured transformer.
#[derive(Clone)]
pub struct Transformer {
    /// `/%` followed by the configured (or default) prefix.
    prefix: Path,
    op: Op,
}

#[derive(Clone)]
enum Op {
    Port(u16),
    /// Keep the endpoints whose IP is in the set (canonical forms).
    Hosts(Arc<BTreeSet<IpAddr>>),
    /// Every bound leaf becomes `bound`, under the id `prefix ++ path`.
    Replace {
        path: Path,
        bound: NameTree<Bound>,
    },
    /// Every bound tree (even `~`) becomes `bound`.
    Const {
        path: Path,
        bound: NameTree<Bound>,
    },
    DaemonSet(Arc<daemonset::DaemonSet>),
}

impl fmt::Debug for Transformer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Port(port) => write!(f, "Transformer({}, port {port})", self.prefix),
            Op::Hosts(ips) => write!(f, "Transformer({}, hosts {ips:?})", self.prefix),
            Op::Replace { path, .. } => write!(f, "Transformer({}, replace {path})", self.prefix),
            Op::Const { path, .. } => write!(f, "Transformer({}, const {path})", self.prefix),
            Op::DaemonSet(ds) => write!(f, "Transformer({}, {ds:?})", self.prefix),
        }
    }
}

fn with_transformer_prefix(prefix: &Path) -> Path {
    Path::utf8(["%"]).concat(prefix)
}

impl Transformer {
    /// `io.l5d.port`: every address gets `port`; prefix `/io.l5d.port/<port>`.
    pub fn port(port: u16) -> Self {
        let prefix = Path::utf8(["io.l5d.port".to_string(), port.to_string()]);
        Transformer {
            prefix: with_transformer_prefix(&prefix),
            op: Op::Port(port),
        }
    }

    /// `io.l5d.localhost` over a known set of this host's IPs (see
    /// [`local_ips`]); prefix `/io.l5d.localhost`.
    pub fn localhost(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        Transformer::hosts("io.l5d.localhost", ips)
    }

    /// `io.l5d.specificHost` for `host`, resolved once now; prefix
    /// `/io.l5d.specificHost`.
    pub async fn specific_host(
        host: &str,
        resolver: &HostResolver,
    ) -> Result<Self, TransformerError> {
        let ips = resolver
            .lookup(host)
            .await
            .map_err(|source| TransformerError::Resolve {
                host: host.to_string(),
                source,
            })?;
        Ok(Transformer::specific_ips(ips))
    }

    /// `io.l5d.specificHost` over known IPs.
    pub fn specific_ips(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        Transformer::hosts("io.l5d.specificHost", ips)
    }

    fn hosts(kind: &str, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let ips = ips.into_iter().map(|ip| ip.to_canonical()).collect();
        Transformer {
            prefix: with_transformer_prefix(&Path::utf8([kind])),
            op: Op::Hosts(Arc::new(ips)),
        }
    }

    /// `io.l5d.replace`: bound names become `path`, bound now through the
    /// global `/$` namer (as Linkerd binds it with an empty dtab); `~`
    /// stays `~`. Prefix `/io.l5d.replace`.
    pub fn replace(path: &Path) -> Result<Self, TransformerError> {
        Ok(Transformer {
            prefix: with_transformer_prefix(&Path::utf8(["io.l5d.replace"])),
            op: Op::Replace {
                path: path.clone(),
                bound: bind_global(path)?,
            },
        })
    }

    /// `io.l5d.const`: every answer becomes `path`, even `~`. Prefix
    /// `/io.l5d.const`.
    pub fn constant(path: &Path) -> Result<Self, TransformerError> {
        Ok(Transformer {
            prefix: with_transformer_prefix(&Path::utf8(["io.l5d.const"])),
            op: Op::Const {
                path: path.clone(),
                bound: bind_global(path)?,
            },
        })
    }

    /// `io.l5d.k8s.daemonset`: builds the Kubernetes client and starts
    /// watching the proxies' Service; prefix
    /// `/io.l5d.k8s.daemonset/<namespace>/<port>/<service>`. Must run
    /// inside a tokio runtime.
    pub async fn daemonset(opts: &DaemonSetOptions) -> Result<Self, TransformerError> {
        let ds = daemonset::DaemonSet::start(opts).await?;
        Ok(Transformer {
            prefix: with_transformer_prefix(&opts.default_prefix()),
            op: Op::DaemonSet(Arc::new(ds)),
        })
    }

    /// A second input of the address part besides the namer's addresses,
    /// if it has one: the result of [`Transformer::transform_addr`] may
    /// change whenever it does.
    pub fn addr_input(&self) -> Option<watch::Receiver<Addr>> {
        match &self.op {
            Op::DaemonSet(ds) => Some(ds.proxies()),
            _ => None,
        }
    }

    /// The state of what the transformer watches itself, if anything.
    pub fn state(&self) -> Option<NamerState> {
        match &self.op {
            Op::DaemonSet(ds) => Some(ds.state()),
            _ => None,
        }
    }

    /// The same transformer under a configured prefix (`prefix:` key,
    /// without the `/%`).
    pub fn with_prefix(mut self, prefix: &Path) -> Self {
        self.prefix = with_transformer_prefix(prefix);
        self
    }

    /// The prefix put on ids, starting with `/%`.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Applies the transformer to a namer's answer. Trees that still hold
    /// paths to look up again pass unchanged (as in Linkerd, only fully
    /// bound trees are transformed).
    pub fn transform_tree(&self, tree: NameTree<Name>) -> NameTree<Name> {
        if !is_bound(&tree) {
            return tree;
        }
        match &self.op {
            Op::Port(_) | Op::Hosts(_) | Op::DaemonSet(_) => tree.map(&mut |leaf| match leaf {
                Name::Bound(b) => Name::Bound(Bound {
                    id: self.prefix.concat(&b.id),
                    residual: b.residual.clone(),
                    weight: b.weight,
                }),
                Name::Path(p) => Name::Path(p.clone()),
            }),
            Op::Replace { path, bound } => {
                let replacement = self.relabel(path, bound);
                replace_leaves(&tree, &replacement)
            }
            Op::Const { path, bound } => self.relabel(path, bound),
        }
    }

    /// Applies the transformer to the addresses of an id it rewrote.
    pub fn transform_addr(&self, addr: Addr) -> Addr {
        if let Op::DaemonSet(ds) = &self.op {
            return ds.transform(addr);
        }
        let Addr::Bound(set) = addr else {
            return addr;
        };
        let endpoints: Vec<Endpoint> = match &self.op {
            Op::Port(port) => set
                .endpoints()
                .iter()
                .cloned()
                .map(|mut e| {
                    e.addr = SocketAddr::new(e.addr.ip(), *port);
                    e
                })
                .collect(),
            Op::Hosts(ips) => {
                let kept: Vec<Endpoint> = set
                    .endpoints()
                    .iter()
                    .filter(|e| ips.contains(&e.addr.ip().to_canonical()))
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    return Addr::Neg;
                }
                kept
            }
            // Their ids resolve elsewhere (the replacement's own id).
            Op::Replace { .. } | Op::Const { .. } => return Addr::Bound(set),
            Op::DaemonSet(_) => unreachable!("handled above"),
        };
        // Ports may now coincide: the set sorts and drops duplicates again.
        Addr::Bound(AddrSet::with_meta(endpoints, set.meta().clone()))
    }

    /// The replacement tree with ids `prefix ++ path`, as Linkerd names them.
    fn relabel(&self, path: &Path, bound: &NameTree<Bound>) -> NameTree<Name> {
        let id = self.prefix.concat(path);
        bound.map(&mut |b| {
            Name::Bound(Bound {
                id: id.clone(),
                residual: b.residual.clone(),
                weight: b.weight,
            })
        })
    }
}

/// Binds `path` with no dtab and no configured namers: the `/$` namespace.
fn bind_global(path: &Path) -> Result<NameTree<Bound>, TransformerError> {
    let dtab = Dtab::empty();
    match Binder::new(&dtab, &NoNamers).bind_path(path) {
        Activity::Ok(tree) => Ok(tree),
        Activity::Failed(error) => Err(TransformerError::Bind {
            path: path.clone(),
            error,
        }),
        Activity::Pending => unreachable!("the global namer answers at once"),
    }
}

/// Whether every leaf is bound (Linkerd's `isBound`).
fn is_bound(tree: &NameTree<Name>) -> bool {
    match tree {
        NameTree::Leaf(Name::Bound(_)) | NameTree::Neg | NameTree::Empty | NameTree::Fail => true,
        NameTree::Leaf(Name::Path(_)) => false,
        NameTree::Alt(trees) => trees.iter().all(is_bound),
        NameTree::Union(members) => members.iter().all(|w| is_bound(&w.tree)),
    }
}

/// `tree` with each leaf replaced by `replacement`.
fn replace_leaves(tree: &NameTree<Name>, replacement: &NameTree<Name>) -> NameTree<Name> {
    match tree {
        NameTree::Leaf(_) => replacement.clone(),
        NameTree::Alt(trees) => NameTree::Alt(
            trees
                .iter()
                .map(|t| replace_leaves(t, replacement))
                .collect(),
        ),
        NameTree::Union(members) => NameTree::Union(
            members
                .iter()
                .map(|w| Weighted::new(w.weight, replace_leaves(&w.tree, replacement)))
                .collect(),
        ),
        NameTree::Neg => NameTree::Neg,
        NameTree::Fail => NameTree::Fail,
        NameTree::Empty => NameTree::Empty,
    }
}
