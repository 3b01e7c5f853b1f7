//! `io.l5d.k8s`: service discovery from Kubernetes Services and
//! EndpointSlices, for names `/#/io.l5d.k8s/<namespace>/<port>/<service>`
//! (with `labelSelector`, Linkerd's label *key*, one more segment: the
//! value the Service's label must have).
//!
//! `k8s/index.rs` is the pure per-namespace view; `k8s/discovery.rs` keeps
//! one watcher pair (Services, EndpointSlices) per Kubernetes namespace in
//! use, however many names and ids use it: a namespace-wide list+watch
//! costs one connection per resource and namespace, where one watch per
//! Service would multiply connections by the services of the mesh.
//!
//! A lookup answers from the index: `Pending` until the namespace's
//! Services were listed once, `~` for a Service that does not exist, else
//! the id `/#/io.l5d.k8s/<namespace>/<port>/<service>` with the rest of the
//! name as residual. The id's addresses are the ready endpoints of its
//! EndpointSlices on that port. This module knows nothing of namerd's
//! configuration file.

use std::fmt;
use std::time::Duration;

use l5d_dtab::{Activity, Addr, Bound, Name, NameError, NameTree, Path};
use tokio::sync::watch;

use super::{Namer, NamerState, fixed};
use crate::k8s::{ClientError, Connection};

pub(crate) mod discovery;
pub(crate) mod index;

use discovery::{Discovery, DiscoveryOptions, Target};
use index::PortSpec;

/// How a [`K8sNamer`] is set up (the `io.l5d.k8s` namer keys).
#[derive(Clone, Debug, PartialEq)]
pub struct K8sNamerOptions {
    /// The complete prefix, `/#/io.l5d.k8s` unless configured.
    pub prefix: Path,
    pub connection: Connection,
    /// A label key: names then carry a fourth segment, the value a
    /// Service's label must have to be found (Linkerd's `labelSelector`).
    pub label_selector: Option<String>,
    /// A watch on which nothing arrives this long is restarted (at least 6 s).
    pub idle_timeout: Duration,
    /// The longest pause between attempts to reach the API server again.
    pub max_backoff: Duration,
}

impl K8sNamerOptions {
    pub fn new(connection: Connection) -> Self {
        K8sNamerOptions {
            prefix: Path::utf8(["#", "io.l5d.k8s"]),
            connection,
            label_selector: None,
            idle_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The `io.l5d.k8s` namer.
pub struct K8sNamer {
    prefix: Path,
    label_selector: Option<String>,
    discovery: Discovery,
}

impl fmt::Debug for K8sNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K8sNamer")
            .field("prefix", &self.prefix)
            .field("label_selector", &self.label_selector)
            .finish_non_exhaustive()
    }
}

/// A name's parts: `<namespace>/<port>/<service>[/<label value>]`.
struct Parsed<'a> {
    namespace: &'a str,
    service: &'a str,
    port: PortSpec,
    label_value: Option<&'a str>,
    /// How many segments of the path the id takes.
    len: usize,
}

impl K8sNamer {
    /// Builds the client (reading a kubeconfig or service account now) and
    /// makes no request: namespaces are watched from their first use. Must
    /// run inside a tokio runtime.
    pub async fn new(opts: K8sNamerOptions) -> Result<Self, ClientError> {
        let client = opts.connection.client().await?;
        let discovery = Discovery::new(
            client,
            DiscoveryOptions {
                idle_timeout: opts.idle_timeout,
                max_backoff: opts.max_backoff,
                metric_label: opts.prefix.show(),
            },
        );
        Ok(K8sNamer {
            prefix: opts.prefix,
            label_selector: opts.label_selector,
            discovery,
        })
    }

    fn parse<'a>(&self, path: &'a Path) -> Option<Parsed<'a>> {
        let len = if self.label_selector.is_some() { 4 } else { 3 };
        let mut labels = path.labels().map(|l| std::str::from_utf8(l).ok());
        let namespace = labels.next()??;
        let port = labels.next()??;
        let service = labels.next()??;
        let label_value = match self.label_selector {
            Some(_) => Some(labels.next()??),
            None => None,
        };
        // Names that cannot exist are `~` without asking the API server
        // (and without watching a namespace that cannot be one).
        if !dns_label(namespace) || !dns_label(service) || port.is_empty() {
            return None;
        }
        Some(Parsed {
            namespace,
            service,
            port: PortSpec::parse(port),
            label_value,
            len,
        })
    }

    fn label<'a>(&'a self, parsed: &Parsed<'a>) -> Option<(&'a str, &'a str)> {
        self.label_selector.as_deref().zip(parsed.label_value)
    }
}

/// An RFC 1123 label, as Kubernetes namespace and Service names are.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Namer for K8sNamer {
    fn prefix(&self) -> &Path {
        &self.prefix
    }

    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        let Some(parsed) = self.parse(path) else {
            return Activity::Ok(NameTree::Neg);
        };
        let found = self
            .discovery
            .service(parsed.namespace, parsed.service, self.label(&parsed));
        match found {
            Err(e) => Activity::Failed(NameError::namer(path, e.to_string())),
            Ok(None) => Activity::Pending,
            Ok(Some(false)) => Activity::Ok(NameTree::Neg),
            Ok(Some(true)) => {
                let id = self.prefix.concat(&path.take(parsed.len));
                let bound = Bound::new(id, path.drop(parsed.len));
                Activity::Ok(NameTree::Leaf(Name::Bound(bound)))
            }
        }
    }

    fn lookup_changes(&self) -> watch::Receiver<u64> {
        self.discovery.changes()
    }

    fn resolve(&self, id: &Path) -> watch::Receiver<Addr> {
        let Some(parsed) = self.parse(id).filter(|p| p.len == id.len()) else {
            return fixed(Addr::Neg);
        };
        let target = Target {
            service: parsed.service.to_string(),
            port: parsed.port.clone(),
            label: self
                .label(&parsed)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        };
        self.discovery.resolve(parsed.namespace, target)
    }

    fn state(&self) -> NamerState {
        let mut state = self.discovery.state();
        if let Some(key) = &self.label_selector {
            state.details.insert("labelSelector".into(), key.clone());
        }
        state
    }
}
